//! Email: SMTP submission to the sender's own relay, SendGrid's Mail Send API, or the sandbox.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use recobro_common::Channel;
use recobro_common::secret::Secret;
use uuid::Uuid;

use super::{ProviderError, SANDBOX_SENDER, classify_http, redacted};
use crate::unsubscribe::{Link, UnsubscribeLinks};

pub struct OutgoingEmail<'a> {
    pub reminder_id: Uuid,
    /// The contact point `to` is: the one-click unsubscribe link withdraws it, and only it.
    pub point_id: Uuid,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

impl OutgoingEmail<'_> {
    /// The RFC 8058 one-click unsubscribe URL: a signed token for this reminder and point.
    fn unsubscribe_url(&self, links: &UnsubscribeLinks) -> String {
        links.url(&Link {
            reminder_id: self.reminder_id,
            point_id: self.point_id,
            channel: Channel::Email,
        })
    }
}

/// Every provider signs the one-click unsubscribe links of its emails (the sandbox too, so
/// the local stack behaves like production).
pub enum EmailProvider {
    Sandbox(UnsubscribeLinks),
    SendGrid(SendGrid),
    Smtp(Smtp),
}

/// SMTP submission to the sender's own relay, always over TLS: STARTTLS on 587, or implicit
/// TLS on 465.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The bare address of `from`: our sender, as deliveries record it.
    from_address: String,
    /// Signs the one-click unsubscribe link (RFC 8058), on our public URL.
    unsubscribe: UnsubscribeLinks,
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
    pub fn new(settings: &SmtpSettings, unsubscribe: UnsubscribeLinks) -> Result<Smtp, String> {
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
            from_address: from.email.to_string(),
            from,
            unsubscribe,
        })
    }

    /// Returns the Message-ID, which is made from the reminder id: a resubmission carries the
    /// same one, and mailbox providers that deduplicate by Message-ID show it once.
    pub async fn send(&self, email: &OutgoingEmail<'_>) -> Result<String, ProviderError> {
        let to: Mailbox = email.to.parse().map_err(|err| {
            ProviderError::Permanent(redacted(
                &format!("the recipient is not an email address: {err}"),
                email.to,
            ))
        })?;
        let unsubscribe = email.unsubscribe_url(&self.unsubscribe);
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
            .map_err(|err| ProviderError::Permanent(redacted(&format!("message: {err}"), email.to)))?;
        // Each SMTP command has its own 10 s timeout; the whole session stays well inside the
        // time after which a claim still "calling" counts as cut short.
        let sent =
            tokio::time::timeout(std::time::Duration::from_secs(45), self.transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(message_id),
            Ok(Err(err)) => {
                let code = err.status().map(|code| code.to_string()).unwrap_or_default();
                // Relays quote the recipient in their refusals ("<ap@x.example>: no such user").
                let reason = redacted(&format!("smtp: {err}"), email.to);
                match code.as_str() {
                    // Authentication or TLS refused: our setup, not this message. Retried (and
                    // given up after the attempts allowed), never charged to the debtor.
                    "530" | "534" | "535" | "538" => {
                        tracing::error!(error = %reason, "the SMTP relay refused our credentials or TLS");
                        Err(ProviderError::Transient(reason))
                    }
                    // Other 5xx: the relay refused this message for good (unknown mailbox, policy).
                    _ if err.is_permanent() => Err(ProviderError::Permanent(reason)),
                    // 4xx, timeouts, TLS or connection failures: worth another attempt.
                    _ => Err(ProviderError::Transient(reason)),
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
    /// Signs the one-click unsubscribe link (RFC 8058), on our public URL.
    pub unsubscribe: UnsubscribeLinks,
}

impl SendGrid {
    pub async fn send(&self, email: &OutgoingEmail<'_>) -> Result<String, ProviderError> {
        let unsubscribe = email.unsubscribe_url(&self.unsubscribe);
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
            .map_err(|err| {
                ProviderError::Transient(redacted(&format!("sendgrid unreachable: {err}"), email.to))
            })?;
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
        // SendGrid's error bodies may quote the personalization they refused.
        Err(classify_http(
            status.as_u16(),
            None,
            &[],
            redacted(&format!("sendgrid {}: {text}", status.as_u16()), email.to),
        ))
    }
}

impl EmailProvider {
    pub fn name(&self) -> &'static str {
        match self {
            EmailProvider::Sandbox(_) => "sandbox-email",
            EmailProvider::SendGrid(_) => "sendgrid",
            EmailProvider::Smtp(_) => "smtp",
        }
    }

    /// Our address emails go from (replies and STOPs are matched on it).
    pub fn sender(&self) -> &str {
        match self {
            EmailProvider::Sandbox(_) => SANDBOX_SENDER,
            EmailProvider::SendGrid(sendgrid) => &sendgrid.from,
            EmailProvider::Smtp(smtp) => &smtp.from_address,
        }
    }

    /// Whether a send has an effect outside this process (the sandbox only logs).
    pub fn leaves_the_process(&self) -> bool {
        !matches!(self, EmailProvider::Sandbox(_))
    }

    /// Sends and returns the provider's message id. No idempotency key is sent: SendGrid gets
    /// the reminder id only as a custom arg, and over SMTP it only makes the Message-ID (some
    /// mailboxes collapse duplicates by it; the relay does not). Sending once rests on the
    /// caller's send claim.
    pub async fn send(&self, email: &OutgoingEmail<'_>) -> Result<String, ProviderError> {
        match self {
            EmailProvider::Sandbox(unsubscribe) => {
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
                // The link is built as a real provider's is (and logged: ids only, and the local
                // stack's only way to try it by hand).
                let unsubscribe = email.unsubscribe_url(unsubscribe);
                let unsubscribe_path = unsubscribe
                    .find("/unsubscribe/")
                    .map_or("", |at| &unsubscribe[at..]);
                tracing::info!(reminder_id = %email.reminder_id, point_id = %email.point_id, body_chars = email.body.chars().count(), unsubscribe_path, "sandbox email accepted");
                Ok(format!("sandbox-{}", email.reminder_id))
            }
            EmailProvider::SendGrid(sendgrid) => sendgrid.send(email).await,
            EmailProvider::Smtp(smtp) => smtp.send(email).await,
        }
    }
}
