//! Delivery providers, one module per kind of message: `email` (sandbox, SMTP, SendGrid) and
//! `text` (sandbox, Twilio SMS, WhatsApp Cloud API), and `settings`, which picks one per
//! channel. The sandbox is used only where it is chosen explicitly: it accepts every message
//! and keeps it (in the deliveries table) so a newcomer can read what would have been sent.
//! Recipients at `bounce.sandbox.invalid` fail permanently and at `busy.sandbox.invalid`
//! transiently, for trying the failure paths.
//!
//! Here: what a composed message is, how each channel shapes it, and the error every provider
//! answers with.

mod email;
mod settings;
mod text;

use std::sync::Arc;

pub use email::{EmailProvider, OutgoingEmail, SendGrid, Smtp, SmtpSettings};
pub use settings::{
    EMAIL_PROVIDER, EmailChoice, ProviderSettings, SMS_PROVIDER, SendGridSettings, SmsChoice, TwilioSettings,
    WHATSAPP_PROVIDER, WhatsAppChoice, WhatsAppSettings,
};
pub use text::{OutgoingText, TextProvider, Twilio, WhatsAppCloud};

use recobro_rules::Channel;
use uuid::Uuid;

use crate::compose::Variables;

/// The sender deliveries through a sandbox record: no number or address of ours.
pub const SANDBOX_SENDER: &str = "sandbox";

/// The longest provider error text kept as a delivery reason.
const MAX_REASON_CHARS: usize = 300;

/// A provider's error text made fit for logs and delivery reasons: the recipient's address or
/// number (as given, without its '+', or URL-encoded; letters in any case) becomes
/// `<recipient>`, and the text is cut to a few hundred characters.
pub(crate) fn redacted(text: &str, recipient: &str) -> String {
    let recipient = recipient.trim();
    let mut forms = vec![recipient.to_string()];
    let digits = recipient.trim_start_matches('+');
    if digits != recipient {
        forms.push(format!("%2B{digits}"));
        forms.push(digits.to_string());
    }
    if recipient.contains('@') {
        forms.push(recipient.replace('@', "%40"));
    }
    let mut text = text.to_string();
    // Too short a "recipient" would blank out unrelated text; real ones are never this short.
    for form in forms.iter().filter(|form| form.len() >= 5) {
        text = replace_ignoring_ascii_case(&text, form, "<recipient>");
    }
    if text.chars().count() > MAX_REASON_CHARS {
        text = text.chars().take(MAX_REASON_CHARS).collect::<String>() + "…";
    }
    text
}

fn replace_ignoring_ascii_case(text: &str, needle: &str, with: &str) -> String {
    let lower_text = text.to_ascii_lowercase();
    let lower_needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    // ASCII lowercasing keeps byte offsets, so positions found in the copy hold in `text`.
    while let Some(at) = lower_text[from..].find(&lower_needle) {
        out.push_str(&text[from..from + at]);
        out.push_str(with);
        from += at + needle.len();
    }
    out.push_str(&text[from..]);
    out
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

/// 5xx, 429 and the provider's own rate-limit codes are worth retrying; any other refusal
/// (invalid or unsubscribed number, outside the window) will not change by retrying.
pub(super) fn classify_http(
    status: u16,
    code: Option<i64>,
    retry_codes: &[i64],
    reason: String,
) -> ProviderError {
    let rate_limited = code.is_some_and(|code| retry_codes.contains(&code));
    if status >= 500 || status == 429 || rate_limited {
        ProviderError::Transient(reason)
    } else {
        ProviderError::Permanent(reason)
    }
}

/// A message ready for its provider: rendered, addressed, allowed by the rules. Each channel
/// shapes it its own way (see `Providers::send`).
pub struct Composed<'a> {
    pub reminder_id: Uuid,
    /// The debtor's contact point `to` belongs to (one-click unsubscribe links are bound to it).
    pub point_id: Uuid,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// The template it was rendered from; empty for one-off free-form text.
    pub template: &'a str,
    pub locale: &'a str,
    pub variables: &'a Variables,
}

/// The variables a WhatsApp utility template takes, in the order Meta approved them.
const WHATSAPP_PARAMETERS: [&str; 5] = [
    "debtor_name",
    "invoice_number",
    "amount",
    "due_date",
    "payment_link",
];

/// The same for a statement's summary templates (`statement_summary_*`).
const WHATSAPP_STATEMENT_PARAMETERS: [&str; 4] = ["debtor_name", "invoice_count", "total", "payment_link"];

impl Composed<'_> {
    fn variable(&self, name: &str) -> &str {
        self.variables.get(name).map(String::as_str).unwrap_or_default()
    }

    /// An SMS carries the subject, the link and the opt-out; free-form text goes as it is
    /// (it already ends with its opt-out line).
    fn text(&self) -> String {
        // A statement's summary is written for a text message, link and opt-out included.
        if self.template.is_empty() || self.is_statement() {
            return self.body.to_string();
        }
        format!(
            "{}. {} {}",
            self.subject,
            self.variable("payment_link"),
            self.variable("opt_out")
        )
    }

    fn is_statement(&self) -> bool {
        crate::templates::statement::form_of(self.template).is_some()
    }

    /// The WhatsApp template's parameters, in the order Meta approved them.
    fn whatsapp_parameters(&self) -> Vec<String> {
        let names: &[&str] = if self.is_statement() {
            &WHATSAPP_STATEMENT_PARAMETERS
        } else {
            &WHATSAPP_PARAMETERS
        };
        names.iter().map(|name| self.variable(name).to_string()).collect()
    }

    /// Meta's language code for the debtor's language.
    fn meta_language(&self) -> &'static str {
        match crate::templates::language(self.locale) {
            "pt" => "pt_BR",
            "en" => "en",
            _ => "es",
        }
    }
}

/// The three channels' providers.
pub struct Providers {
    pub email: EmailProvider,
    pub sms: TextProvider,
    pub whatsapp: TextProvider,
}

impl Providers {
    /// The sandbox on every channel, its unsubscribe links signed with a key of its own (for
    /// benchmarks and tests: the links verify nowhere).
    pub fn sandbox() -> Providers {
        Providers {
            email: EmailProvider::Sandbox(crate::unsubscribe::UnsubscribeLinks {
                public_url: "http://localhost:8080".into(),
                keys: Arc::new(crate::unsubscribe::UnsubscribeKeys::ephemeral()),
            }),
            sms: TextProvider::Sandbox("sandbox-sms"),
            whatsapp: TextProvider::Sandbox("sandbox-whatsapp"),
        }
    }

    /// Our own address or number on `channel` (Twilio's From, the WhatsApp phone number id,
    /// the email From address, or "sandbox"): recorded with each delivery, since a reply is
    /// matched on it and a STOP sent to it holds for every tenant that shares it.
    pub fn sender(&self, channel: Channel) -> &str {
        match channel {
            Channel::Email => self.email.sender(),
            Channel::Sms => self.sms.sender(),
            Channel::Whatsapp => self.whatsapp.sender(),
        }
    }

    pub fn name(&self, channel: Channel) -> &'static str {
        match channel {
            Channel::Email => self.email.name(),
            Channel::Sms => self.sms.name(),
            Channel::Whatsapp => self.whatsapp.name(),
        }
    }

    /// Whether a send on `channel` has an effect outside this process (the sandbox only logs).
    pub fn leaves_the_process(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.leaves_the_process(),
            Channel::Sms => self.sms.leaves_the_process(),
            Channel::Whatsapp => self.whatsapp.leaves_the_process(),
        }
    }

    /// Shapes the message for the channel and sends it; returns the provider's message id.
    pub async fn send(&self, channel: Channel, message: &Composed<'_>) -> Result<String, ProviderError> {
        let provider = match channel {
            Channel::Email => {
                let email = OutgoingEmail {
                    reminder_id: message.reminder_id,
                    point_id: message.point_id,
                    to: message.to,
                    subject: message.subject,
                    body: message.body,
                };
                return self.email.send(&email).await;
            }
            Channel::Sms => &self.sms,
            Channel::Whatsapp => &self.whatsapp,
        };
        let text = message.text();
        let outgoing = OutgoingText {
            reminder_id: message.reminder_id,
            to: message.to,
            text: &text,
            template: message.template,
            language: message.meta_language(),
            parameters: message.whatsapp_parameters(),
        };
        provider.send(&outgoing).await
    }
}

#[cfg(test)]
mod shaping_tests {
    use super::*;

    fn variables() -> Variables {
        Variables::from([
            ("payment_link", "https://pay.example/i/1".to_string()),
            ("opt_out", "Responda BAJA".to_string()),
            ("debtor_name", "Ana".to_string()),
            ("amount", "$ 10,00".to_string()),
        ])
    }

    fn message<'a>(template: &'a str, variables: &'a Variables) -> Composed<'a> {
        Composed {
            reminder_id: Uuid::nil(),
            point_id: Uuid::nil(),
            to: "+573001112233",
            subject: "Su factura A-1 vence mañana",
            body: "Texto libre\n\nResponda BAJA",
            template,
            locale: "pt-BR",
            variables,
        }
    }

    #[test]
    fn an_sms_reminder_is_its_subject_link_and_opt_out() {
        let variables = variables();
        assert_eq!(
            message("preventive", &variables).text(),
            "Su factura A-1 vence mañana. https://pay.example/i/1 Responda BAJA"
        );
        assert_eq!(message("", &variables).text(), "Texto libre\n\nResponda BAJA");
    }

    #[test]
    fn provider_errors_lose_the_recipient_and_their_length() {
        assert_eq!(
            redacted(
                "twilio 400 error 21211: The 'To' number +15005550001 is not a valid phone number.",
                "+15005550001"
            ),
            "twilio 400 error 21211: The 'To' number <recipient> is not a valid phone number."
        );
        assert_eq!(
            redacted(
                "whatsapp 400 error 131026: 15005550001 unreachable",
                "+15005550001"
            ),
            "whatsapp 400 error 131026: <recipient> unreachable",
            "Graph quotes the digits without '+'"
        );
        assert_eq!(
            redacted(
                "smtp: permanent error (550): 5.1.1 <AP@Tornillo.example>: Recipient address rejected",
                "ap@tornillo.example"
            ),
            "smtp: permanent error (550): 5.1.1 <<recipient>>: Recipient address rejected"
        );
        assert_eq!(
            redacted("bad to=ap%40tornillo.example", "ap@tornillo.example"),
            "bad to=<recipient>"
        );
        let long = redacted(
            &format!("sendgrid 400: {}", "x".repeat(1000)),
            "ap@tornillo.example",
        );
        assert_eq!(
            long.chars().count(),
            MAX_REASON_CHARS + 1,
            "cut, and marked as cut"
        );
        assert_eq!(redacted("error 30003", ""), "error 30003");
    }

    #[test]
    fn whatsapp_gets_metas_language_code_and_the_approved_parameters_in_order() {
        let variables = variables();
        let message = message("preventive", &variables);
        assert_eq!(message.meta_language(), "pt_BR");
        assert_eq!(
            message.whatsapp_parameters(),
            ["Ana", "", "$ 10,00", "", "https://pay.example/i/1"]
        );
    }

    #[test]
    fn a_statement_summary_goes_as_written_and_takes_the_statements_parameters() {
        let mut variables = variables();
        variables.insert("invoice_count", "6".into());
        variables.insert("total", "$ 60,00".into());
        let summary = message("statement_summary_overdue", &variables);
        assert_eq!(
            summary.text(),
            summary.body,
            "the summary carries its own link and opt-out"
        );
        assert_eq!(
            summary.whatsapp_parameters(),
            ["Ana", "6", "$ 60,00", "https://pay.example/i/1"]
        );
        let single = message("overdue", &variables);
        assert_ne!(
            single.text(),
            single.body,
            "one invoice's SMS: subject, link and opt-out"
        );
    }
}
