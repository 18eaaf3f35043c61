//! Delivery providers. The sandbox is the default when no credentials are configured: it
//! accepts every message and keeps it (in the deliveries table) so a newcomer can read what
//! would have been sent. Recipients at `bounce.sandbox.invalid` fail permanently and at
//! `busy.sandbox.invalid` transiently, for trying the failure paths.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use uuid::Uuid;

pub struct OutgoingEmail<'a> {
    pub reminder_id: Uuid,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Will never succeed (invalid address, unsubscribed): record and move on.
    #[error("permanent: {0}")]
    Permanent(String),
    /// May succeed later (timeout, 5xx, rate limit): retry.
    #[error("transient: {0}")]
    Transient(String),
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
    pub password: String,
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
                settings.password.clone(),
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
    pub api_key: String,
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
            .bearer_auth(&self.api_key)
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

    /// Sends and returns the provider's message id. The reminder id doubles as the
    /// idempotency key.
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

/// A text message (SMS or WhatsApp): the plain text for SMS, the approved template and its
/// parameters for WhatsApp.
pub struct OutgoingText<'a> {
    pub reminder_id: Uuid,
    pub to: &'a str,
    pub text: &'a str,
    /// Empty for free-form text (WhatsApp allows it only inside its 24-hour window).
    pub template: &'a str,
    /// Meta's language code: "es", "pt_BR", "en".
    pub language: &'a str,
    pub parameters: Vec<String>,
}

/// Twilio Programmable Messaging.
pub struct Twilio {
    pub http: reqwest::Client,
    /// https://api.twilio.com, or a stand-in in tests.
    pub api_base: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    /// Where Twilio posts status callbacks (our public URL + /webhooks/twilio).
    pub status_callback: Option<String>,
}

#[derive(serde::Deserialize)]
struct TwilioMessage {
    sid: String,
}

#[derive(serde::Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

impl Twilio {
    pub async fn send(&self, sms: &OutgoingText<'_>) -> Result<String, ProviderError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_base, self.account_sid
        );
        let mut form = vec![("To", sms.to), ("From", self.from.as_str()), ("Body", sms.text)];
        if let Some(callback) = &self.status_callback {
            form.push(("StatusCallback", callback.as_str()));
        }
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|err| ProviderError::Transient(format!("twilio unreachable: {err}")))?;
        let status = response.status();
        if status.is_success() {
            let message: TwilioMessage = response
                .json()
                .await
                .map_err(|err| ProviderError::Transient(format!("twilio answer: {err}")))?;
            return Ok(message.sid);
        }
        let error: TwilioError = response.json().await.unwrap_or(TwilioError {
            code: None,
            message: None,
        });
        let reason = format!(
            "twilio {} error {}: {}",
            status.as_u16(),
            error.code.unwrap_or_default(),
            error.message.unwrap_or_default()
        );
        Err(classify_http(status.as_u16(), error.code, &[20429], reason))
    }
}

/// WhatsApp Business Cloud API (Graph API): approved templates only, since collection
/// reminders start the conversation (outside the 24-hour customer service window).
pub struct WhatsAppCloud {
    pub http: reqwest::Client,
    /// https://graph.facebook.com/v21.0, or a stand-in in tests.
    pub api_base: String,
    pub phone_number_id: String,
    pub access_token: String,
}

#[derive(serde::Deserialize)]
struct GraphSent {
    messages: Vec<GraphMessageId>,
}

#[derive(serde::Deserialize)]
struct GraphMessageId {
    id: String,
}

#[derive(serde::Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

#[derive(serde::Deserialize)]
struct GraphError {
    code: Option<i64>,
    message: Option<String>,
}

impl WhatsAppCloud {
    pub async fn send(&self, message: &OutgoingText<'_>) -> Result<String, ProviderError> {
        let url = format!("{}/{}/messages", self.api_base, self.phone_number_id);
        let parameters: Vec<serde_json::Value> = message
            .parameters
            .iter()
            .map(|text| serde_json::json!({"type": "text", "text": text}))
            .collect();
        // Graph wants the E.164 digits without '+'.
        let to = message.to.trim_start_matches('+');
        let body = if message.template.is_empty() {
            serde_json::json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": false, "body": message.text},
            })
        } else {
            serde_json::json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "template",
                "template": {
                    "name": message.template,
                    "language": {"code": message.language},
                    "components": [{"type": "body", "parameters": parameters}],
                },
            })
        };
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.access_token)
            .json(&body)
            .send()
            .await
            .map_err(|err| ProviderError::Transient(format!("whatsapp unreachable: {err}")))?;
        let status = response.status();
        if status.is_success() {
            let sent: GraphSent = response
                .json()
                .await
                .map_err(|err| ProviderError::Transient(format!("whatsapp answer: {err}")))?;
            return sent
                .messages
                .into_iter()
                .next()
                .map(|m| m.id)
                .ok_or_else(|| ProviderError::Transient("whatsapp answered without a message id".into()));
        }
        let error = response.json::<GraphErrorBody>().await.ok().map(|b| b.error);
        let code = error.as_ref().and_then(|e| e.code);
        let reason = format!(
            "whatsapp {} error {}: {}",
            status.as_u16(),
            code.unwrap_or_default(),
            error.and_then(|e| e.message).unwrap_or_default()
        );
        // 130429 throughput, 131056 pair rate limit, 4/80007 rate limits: try again later.
        Err(classify_http(
            status.as_u16(),
            code,
            &[130429, 131056, 4, 80007],
            reason,
        ))
    }
}

/// 5xx, 429 and the provider's own rate-limit codes are worth retrying; any other refusal
/// (invalid or unsubscribed number, outside the window) will not change by retrying.
fn classify_http(status: u16, code: Option<i64>, retry_codes: &[i64], reason: String) -> ProviderError {
    let rate_limited = code.is_some_and(|code| retry_codes.contains(&code));
    if status >= 500 || status == 429 || rate_limited {
        ProviderError::Transient(reason)
    } else {
        ProviderError::Permanent(reason)
    }
}

/// Where SMS and WhatsApp go: a real provider when configured, else the sandbox.
pub enum TextProvider {
    Sandbox(&'static str),
    Twilio(Twilio),
    WhatsApp(WhatsAppCloud),
}

impl TextProvider {
    pub fn name(&self) -> &'static str {
        match self {
            TextProvider::Sandbox(name) => name,
            TextProvider::Twilio(_) => "twilio",
            TextProvider::WhatsApp(_) => "whatsapp-cloud",
        }
    }

    /// Whether a send has an effect outside this process (the sandbox only logs).
    pub fn leaves_the_process(&self) -> bool {
        !matches!(self, TextProvider::Sandbox(_))
    }

    pub async fn send(&self, message: &OutgoingText<'_>) -> Result<String, ProviderError> {
        match self {
            TextProvider::Sandbox(name) => {
                tracing::info!(reminder_id = %message.reminder_id, provider = name, chars = message.text.chars().count(), "sandbox text accepted");
                Ok(format!("{name}-{}", message.reminder_id))
            }
            TextProvider::Twilio(twilio) => twilio.send(message).await,
            TextProvider::WhatsApp(whatsapp) => whatsapp.send(message).await,
        }
    }
}
