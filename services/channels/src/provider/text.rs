//! SMS through Twilio and WhatsApp through Meta's Cloud API, or the sandbox.

use recobro_common::secret::Secret;
use uuid::Uuid;

use super::{ProviderError, SANDBOX_SENDER, classify_http, redacted};

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
    pub auth_token: Secret,
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
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
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
        // Twilio's messages quote the number ("The 'To' number +1... is not valid").
        let reason = redacted(
            &format!(
                "twilio {} error {}: {}",
                status.as_u16(),
                error.code.unwrap_or_default(),
                error.message.unwrap_or_default()
            ),
            sms.to,
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
    pub access_token: Secret,
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
            .bearer_auth(self.access_token.expose())
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
        let reason = redacted(
            &format!(
                "whatsapp {} error {}: {}",
                status.as_u16(),
                code.unwrap_or_default(),
                error.and_then(|e| e.message).unwrap_or_default()
            ),
            message.to,
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

    /// Our number (Twilio's From) or WhatsApp phone number id messages go from: replies and
    /// STOPs are matched on it.
    pub fn sender(&self) -> &str {
        match self {
            TextProvider::Sandbox(_) => SANDBOX_SENDER,
            TextProvider::Twilio(twilio) => &twilio.from,
            TextProvider::WhatsApp(whatsapp) => &whatsapp.phone_number_id,
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
