//! Email: SMTP submission to the sender's own relay, SendGrid's Mail Send API, or the sandbox.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use recobro_common::secret::Secret;
use uuid::Uuid;

use super::{ProviderError, classify_http};

pub struct OutgoingEmail<'a> {
    pub reminder_id: Uuid,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

pub enum EmailProvider {
    Sandbox,
    SendGrid(SendGrid),
    Smtp(Smtp),
}

/// SMTP submission to the sender's own relay, always over TLS: STARTTLS on 587, or implicit
/// TLS on 465.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Our public base URL: the one-click unsubscribe link points at it (RFC 8058).
    public_url: String,
}

/// Where and how to submit mail.
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// TLS from the first byte (465) rather than STARTTLS (587).
    pub implicit_tls: bool,
    pub username: String,
    pub password: Secret,
    pub from: String,
    /// A PEM root trusted besides the public ones (a relay with a private CA).
    pub extra_root_pem: Option<Vec<u8>>,
}

impl Smtp {
    pub fn new(settings: &SmtpSettings, public_url: &str) -> Result<Smtp, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|err| format!("SMTP_FROM {:?}: {err}", settings.from))?;
        let mut tls = TlsParameters::builder(settings.host.clone());
        if let Some(pem) = &settings.extra_root_pem {
            let root = Certificate::from_pem(pem).map_err(|err| format!("SMTP_CA_FILE: {err}"))?;
            tls = tls.add_root_certificate(root);
        }
        let tls = tls.build_rustls().map_err(|err| format!("SMTP TLS: {err}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(if settings.implicit_tls {
                Tls::Wrapper(tls)
            } else {
                Tls::Required(tls)
            })
            .timeout(Some(std::time::Duration::from_secs(10)))
            .hello_name(ClientId::Domain(from.email.domain().to_string()));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.expose().to_string(),
            ));
        }
        Ok(Smtp {
            transport: builder.build(),
            from,
            public_url: public_url.to_string(),
        })
    }

    /// Returns the Message-ID, which is made from the reminder id: a resubmission carries the
    /// same one, and mailbox providers that deduplicate by Message-ID show it once.
    pub async fn send(&self, email: &OutgoingEmail<'_>) -> Result<String, ProviderError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|err| ProviderError::Permanent(format!("recipient {:?}: {err}", email.to)))?;
        let unsubscribe = format!(
            "{}/unsubscribe/{}",
            self.public_url.trim_end_matches('/'),
            email.reminder_id
        );
        let message_id = format!("<{}@{}>", email.reminder_id, self.from.email.domain());
        let header =
            |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(message_id.clone()))
            .raw_header(header("List-Unsubscribe", format!("<{unsubscribe}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.to_string())
            .map_err(|err| ProviderError::Permanent(format!("message: {err}")))?;
        // Each SMTP command has its own 10 s timeout; the whole session stays well inside the
        // time after which a claim still "calling" counts as cut short.
        let sent =
            tokio::time::timeout(std::time::Duration::from_secs(45), self.transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(message_id),
            Ok(Err(err)) => {
                let code = err.status().map(|code| code.to_string()).unwrap_or_default();
                match code.as_str() {
                    // Authentication or TLS refused: our setup, not this message. Retried (and
                    // given up after the attempts allowed), never charged to the debtor.
                    "530" | "534" | "535" | "538" => {
                        tracing::error!(error = %err, "the SMTP relay refused our credentials or TLS");
                        Err(ProviderError::Transient(format!("smtp: {err}")))
                    }
                    // Other 5xx: the relay refused this message for good (unknown mailbox, policy).
                    _ if err.is_permanent() => Err(ProviderError::Permanent(format!("smtp: {err}"))),
                    // 4xx, timeouts, TLS or connection failures: worth another attempt.
                    _ => Err(ProviderError::Transient(format!("smtp: {err}"))),
                }
            }
            Err(_) => Err(ProviderError::Transient(
                "smtp: the session took over 45 s".into(),
            )),
        }
    }
}

/// SendGrid's v3 Mail Send API.
pub struct SendGrid {
    pub http: reqwest::Client,
    /// https://api.sendgrid.com, or a stand-in in tests.
    pub api_base: String,
    pub api_key: Secret,
    pub from: String,
    /// Our public base URL: the one-click unsubscribe link points at it (RFC 8058).
    pub public_url: String,
}

impl SendGrid {
    pub async fn send(&self, email: &OutgoingEmail<'_>) -> Result<String, ProviderError> {
        let unsubscribe = format!(
            "{}/unsubscribe/{}",
            self.public_url.trim_end_matches('/'),
            email.reminder_id
        );
        let body = serde_json::json!({
            "personalizations": [{"to": [{"email": email.to}]}],
            "from": {"email": self.from},
            "subject": email.subject,
            "content": [{"type": "text/plain", "value": email.body}],
            // Large mailbox providers require one-click unsubscribe from bulk senders.
            "headers": {
                "List-Unsubscribe": format!("<{unsubscribe}>"),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            // Only our own id: never personal data in provider-side fields.
            "custom_args": {"reminder_id": email.reminder_id.to_string()},
        });
        let response = self
            .http
            .post(format!("{}/v3/mail/send", self.api_base))
            .bearer_auth(self.api_key.expose())
            .json(&body)
            .send()
            .await
            .map_err(|err| ProviderError::Transient(format!("sendgrid unreachable: {err}")))?;
        let status = response.status();
        if status.is_success() {
            let id = response
                .headers()
                .get("x-message-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            return Ok(if id.is_empty() {
                format!("sendgrid-{}", email.reminder_id)
            } else {
                id
            });
        }
        let text = response.text().await.unwrap_or_default();
        Err(classify_http(
            status.as_u16(),
            None,
            &[],
            format!(
                "sendgrid {}: {}",
                status.as_u16(),
                text.chars().take(300).collect::<String>()
            ),
        ))
    }
}

impl EmailProvider {
    pub fn name(&self) -> &'static str {
        match self {
            EmailProvider::Sandbox => "sandbox-email",
            EmailProvider::SendGrid(_) => "sendgrid",
            EmailProvider::Smtp(_) => "smtp",
        }
    }

    /// Whether a send has an effect outside this process (the sandbox only logs).
    pub fn leaves_the_process(&self) -> bool {
        !matches!(self, EmailProvider::Sandbox)
    }

    /// Sends and returns the provider's message id. No idempotency key is sent: SendGrid gets
    /// the reminder id only as a custom arg, and over SMTP it only makes the Message-ID (some
    /// mailboxes collapse duplicates by it; the relay does not). Sending once rests on the
    /// caller's send claim.
    pub async fn send(&self, email: &OutgoingEmail<'_>) -> Result<String, ProviderError> {
        match self {
            EmailProvider::Sandbox => {
                // Like a provider's test credentials, reserved domains act out failures.
                let domain = email
                    .to
                    .rsplit_once('@')
                    .map(|(_, domain)| domain)
                    .unwrap_or_default();
                match domain {
                    "" => {
                        return Err(ProviderError::Permanent(
                            "recipient is not an email address".into(),
                        ));
                    }
                    "bounce.sandbox.invalid" => {
                        return Err(ProviderError::Permanent(
                            "mailbox does not exist (sandbox)".into(),
                        ));
                    }
                    "busy.sandbox.invalid" => {
                        return Err(ProviderError::Transient("provider busy (sandbox)".into()));
                    }
                    _ => {}
                }
                tracing::info!(reminder_id = %email.reminder_id, subject = email.subject, body_chars = email.body.chars().count(), "sandbox email accepted");
                Ok(format!("sandbox-{}", email.reminder_id))
            }
            EmailProvider::SendGrid(sendgrid) => sendgrid.send(email).await,
            EmailProvider::Smtp(smtp) => smtp.send(email).await,
        }
    }
}
