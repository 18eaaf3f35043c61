//! Which provider each channel uses, chosen explicitly, and its credentials.
//!
//! There is no default: a service that silently fell back to the sandbox when a credential was
//! missing would record reminders as sent that nobody received. So each channel names its
//! provider (`RECOBRO_EMAIL_PROVIDER`, `RECOBRO_SMS_PROVIDER`, `RECOBRO_WHATSAPP_PROVIDER`), a
//! chosen provider without a credential stops the service naming the variable, and so does a
//! provider variable the service does not know (a misspelling) or a credential of a provider
//! no channel uses (someone believes it is in use).

use std::sync::Arc;

use recobro_common::config::{ConfigError, Env};
use recobro_common::secret::Secret;

use super::{EmailProvider, Providers, SendGrid, Smtp, SmtpSettings, TextProvider, Twilio, WhatsAppCloud};
use crate::unsubscribe::{UnsubscribeKeys, UnsubscribeLinks};

pub const EMAIL_PROVIDER: &str = "RECOBRO_EMAIL_PROVIDER";
pub const SMS_PROVIDER: &str = "RECOBRO_SMS_PROVIDER";
pub const WHATSAPP_PROVIDER: &str = "RECOBRO_WHATSAPP_PROVIDER";

/// Every provider variable the service reads, by provider.
const SMTP_VARIABLES: &[&str] = &[
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_TLS",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_CA_FILE",
];
const SENDGRID_VARIABLES: &[&str] = &[
    "SENDGRID_API_KEY",
    "SENDGRID_FROM",
    "SENDGRID_API_BASE",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
];
const TWILIO_VARIABLES: &[&str] = &[
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM",
    "TWILIO_API_BASE",
    "TWILIO_WEBHOOK_SHARED_KEY",
];
const WHATSAPP_VARIABLES: &[&str] = &[
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_API_BASE",
];
/// The prefixes whose variables must all be known, and those variables.
const PROVIDER_PREFIXES: [(&str, &[&str]); 4] = [
    ("SMTP_", SMTP_VARIABLES),
    ("SENDGRID_", SENDGRID_VARIABLES),
    ("TWILIO_", TWILIO_VARIABLES),
    ("WHATSAPP_", WHATSAPP_VARIABLES),
];

/// Where email goes.
pub enum EmailChoice {
    Smtp(SmtpSettings),
    SendGrid(SendGridSettings),
    Sandbox,
}

pub struct SendGridSettings {
    pub api_key: Secret,
    pub from: String,
    pub api_base: String,
    /// The public key SendGrid signs its event webhook with (base64 DER); unset, the event
    /// webhook answers 403.
    pub webhook_public_key: Option<String>,
}

/// Where SMS goes.
pub enum SmsChoice {
    Twilio(TwilioSettings),
    Sandbox,
}

pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: Secret,
    pub from: String,
    pub api_base: String,
    /// Set when Twilio Webhooks Settings sign our webhooks with their own keys
    /// (comma-separated, several while one is rotated).
    pub webhook_shared_keys: Vec<Secret>,
}

/// Where WhatsApp goes.
pub enum WhatsAppChoice {
    Cloud(WhatsAppSettings),
    Sandbox,
}

pub struct WhatsAppSettings {
    pub access_token: Secret,
    pub phone_number_id: String,
    pub api_base: String,
    pub app_secret: Secret,
    pub verify_token: Secret,
}

pub struct ProviderSettings {
    pub email: EmailChoice,
    pub sms: SmsChoice,
    pub whatsapp: WhatsAppChoice,
    /// Sign and verify one-click unsubscribe links: every email carries one, so they are
    /// always required (the sandbox's emails too, so the local stack works like production).
    pub unsubscribe_keys: Arc<UnsubscribeKeys>,
}

impl ProviderSettings {
    pub fn from_env(env: &impl Env) -> Result<ProviderSettings, ConfigError> {
        refuse_unknown_variables(env)?;
        let email = match choice(env, EMAIL_PROVIDER, &["smtp", "sendgrid", "sandbox"])? {
            "smtp" => EmailChoice::Smtp(smtp(env)?),
            "sendgrid" => EmailChoice::SendGrid(SendGridSettings {
                api_key: Secret::new(env.required("SENDGRID_API_KEY")?),
                from: env.required("SENDGRID_FROM")?,
                api_base: env.or("SENDGRID_API_BASE", "https://api.sendgrid.com"),
                webhook_public_key: env
                    .get("SENDGRID_WEBHOOK_PUBLIC_KEY")
                    .filter(|k| !k.trim().is_empty()),
            }),
            _ => EmailChoice::Sandbox,
        };
        let sms = match choice(env, SMS_PROVIDER, &["twilio", "sandbox"])? {
            "twilio" => SmsChoice::Twilio(TwilioSettings {
                account_sid: env.required("TWILIO_ACCOUNT_SID")?,
                auth_token: Secret::new(env.required("TWILIO_AUTH_TOKEN")?),
                from: env.required("TWILIO_FROM")?,
                api_base: env.or("TWILIO_API_BASE", "https://api.twilio.com"),
                webhook_shared_keys: env
                    .or("TWILIO_WEBHOOK_SHARED_KEY", "")
                    .split(',')
                    .map(|key| key.trim().to_string())
                    .filter(|key| !key.is_empty())
                    .map(Secret::new)
                    .collect(),
            }),
            _ => SmsChoice::Sandbox,
        };
        let whatsapp = match choice(env, WHATSAPP_PROVIDER, &["whatsapp-cloud", "sandbox"])? {
            "whatsapp-cloud" => WhatsAppChoice::Cloud(WhatsAppSettings {
                access_token: Secret::new(env.required("WHATSAPP_ACCESS_TOKEN")?),
                phone_number_id: env.required("WHATSAPP_PHONE_NUMBER_ID")?,
                api_base: env.or("WHATSAPP_API_BASE", "https://graph.facebook.com/v21.0"),
                app_secret: Secret::new(env.required("WHATSAPP_APP_SECRET")?),
                verify_token: Secret::new(env.required("WHATSAPP_VERIFY_TOKEN")?),
            }),
            _ => WhatsAppChoice::Sandbox,
        };
        let settings = ProviderSettings {
            email,
            sms,
            whatsapp,
            unsubscribe_keys: Arc::new(UnsubscribeKeys::from_env(env)?),
        };
        settings.refuse_unused_credentials(env)?;
        Ok(settings)
    }

    /// Whether some channel goes to the sandbox (its unsigned reply webhook is served only then).
    pub fn uses_sandbox(&self) -> bool {
        matches!(self.email, EmailChoice::Sandbox)
            || matches!(self.sms, SmsChoice::Sandbox)
            || matches!(self.whatsapp, WhatsAppChoice::Sandbox)
    }

    /// The providers as configured; `public_url` is where webhooks and unsubscribe links point.
    pub fn build(&self, http: &reqwest::Client, public_url: &str) -> Result<Providers, String> {
        let unsubscribe = UnsubscribeLinks {
            public_url: public_url.to_string(),
            keys: self.unsubscribe_keys.clone(),
        };
        let email = match &self.email {
            EmailChoice::Smtp(smtp) => EmailProvider::Smtp(Smtp::new(smtp, unsubscribe)?),
            EmailChoice::SendGrid(sendgrid) => EmailProvider::SendGrid(SendGrid {
                http: http.clone(),
                api_base: sendgrid.api_base.clone(),
                api_key: sendgrid.api_key.clone(),
                from: sendgrid.from.clone(),
                unsubscribe,
            }),
            EmailChoice::Sandbox => EmailProvider::Sandbox(unsubscribe),
        };
        let sms = match &self.sms {
            SmsChoice::Twilio(twilio) => TextProvider::Twilio(Twilio {
                http: http.clone(),
                api_base: twilio.api_base.clone(),
                account_sid: twilio.account_sid.clone(),
                auth_token: twilio.auth_token.clone(),
                from: twilio.from.clone(),
                status_callback: Some(format!("{}/webhooks/twilio", public_url.trim_end_matches('/'))),
            }),
            SmsChoice::Sandbox => TextProvider::Sandbox("sandbox-sms"),
        };
        let whatsapp = match &self.whatsapp {
            WhatsAppChoice::Cloud(whatsapp) => TextProvider::WhatsApp(WhatsAppCloud {
                http: http.clone(),
                api_base: whatsapp.api_base.clone(),
                phone_number_id: whatsapp.phone_number_id.clone(),
                access_token: whatsapp.access_token.clone(),
            }),
            WhatsAppChoice::Sandbox => TextProvider::Sandbox("sandbox-whatsapp"),
        };
        Ok(Providers { email, sms, whatsapp })
    }

    /// A credential set for a provider that no channel uses is a mistake to report, not to
    /// ignore: whoever set it believes messages go there.
    fn refuse_unused_credentials(&self, env: &impl Env) -> Result<(), ConfigError> {
        let unused: [(&[&str], bool, &str, &str); 4] = [
            (
                SMTP_VARIABLES,
                !matches!(self.email, EmailChoice::Smtp(_)),
                EMAIL_PROVIDER,
                "smtp",
            ),
            (
                SENDGRID_VARIABLES,
                !matches!(self.email, EmailChoice::SendGrid(_)),
                EMAIL_PROVIDER,
                "sendgrid",
            ),
            (
                TWILIO_VARIABLES,
                matches!(self.sms, SmsChoice::Sandbox),
                SMS_PROVIDER,
                "twilio",
            ),
            (
                WHATSAPP_VARIABLES,
                matches!(self.whatsapp, WhatsAppChoice::Sandbox),
                WHATSAPP_PROVIDER,
                "whatsapp-cloud",
            ),
        ];
        for (variables, not_chosen, setting, provider) in unused {
            if !not_chosen {
                continue;
            }
            for name in variables {
                if env.get(name).is_some_and(|value| !value.trim().is_empty()) {
                    return Err(ConfigError::Invalid {
                        name: name.to_string(),
                        value: "(not shown)".into(),
                        reason: format!(
                            "is set, but {setting} is {:?}: remove it, or choose {provider}",
                            env.or(setting, "")
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The provider a channel setting names: required, and one of `known`.
fn choice(env: &impl Env, setting: &str, known: &[&'static str]) -> Result<&'static str, ConfigError> {
    let value = env.get(setting).unwrap_or_default();
    let options = known.join(", ");
    if value.trim().is_empty() {
        return Err(ConfigError::Invalid {
            name: setting.into(),
            value,
            reason: format!(
                "is required: one of {options} (the sandbox sends nothing: for local runs and tests)"
            ),
        });
    }
    known
        .iter()
        .find(|name| **name == value.trim())
        .copied()
        .ok_or_else(|| ConfigError::Invalid {
            name: setting.into(),
            value: value.clone(),
            reason: format!("one of {options}"),
        })
}

/// A provider variable we do not read is most likely a misspelled one we do (a typo in
/// `TWILIO_AUTH_TOKEN` must not leave SMS without its credential). Its value is never shown.
fn refuse_unknown_variables(env: &impl Env) -> Result<(), ConfigError> {
    let mut names = env.names();
    names.sort();
    for name in names {
        for (prefix, known) in PROVIDER_PREFIXES {
            if name.starts_with(prefix) && !known.contains(&name.as_str()) {
                return Err(ConfigError::Invalid {
                    name,
                    value: "(not shown)".into(),
                    reason: format!(
                        "is not a setting channels knows (misspelled?); the {prefix} settings are {}",
                        known.join(", ")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// SMTP submission, always over TLS.
fn smtp(env: &impl Env) -> Result<SmtpSettings, ConfigError> {
    let host = env.required("SMTP_HOST")?;
    let tls = env.or("SMTP_TLS", "starttls");
    let implicit_tls = match tls.as_str() {
        "starttls" => false,
        "implicit" => true,
        _ => {
            return Err(ConfigError::Invalid {
                name: "SMTP_TLS".into(),
                value: tls,
                reason: "starttls (port 587) or implicit (port 465); mail never goes unencrypted".into(),
            });
        }
    };
    let extra_root_pem = match env.path("SMTP_CA_FILE") {
        Some(path) => Some(std::fs::read(&path).map_err(|err| ConfigError::Invalid {
            name: "SMTP_CA_FILE".into(),
            value: path.display().to_string(),
            reason: err.to_string(),
        })?),
        None => None,
    };
    Ok(SmtpSettings {
        host,
        port: env.parse_or("SMTP_PORT", if implicit_tls { 465 } else { 587 })?,
        implicit_tls,
        username: env.or("SMTP_USERNAME", ""),
        password: Secret::new(env.or("SMTP_PASSWORD", "")),
        from: env.required("SMTP_FROM")?,
        extra_root_pem,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The three channels on the sandbox and a keys file, then `pairs` (which override).
    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let keys = std::env::temp_dir().join(format!("recobro-unsubscribe-{}", uuid::Uuid::new_v4()));
        std::fs::write(&keys, "k".repeat(40)).expect("write");
        let mut env: HashMap<String, String> = [
            (EMAIL_PROVIDER, "sandbox"),
            (SMS_PROVIDER, "sandbox"),
            (WHATSAPP_PROVIDER, "sandbox"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.insert(
            crate::unsubscribe::KEYS_FILE_SETTING.into(),
            keys.display().to_string(),
        );
        for (name, value) in pairs {
            env.insert(name.to_string(), value.to_string());
        }
        env
    }

    fn refused(env: &HashMap<String, String>) -> String {
        ProviderSettings::from_env(env)
            .err()
            .expect("refused")
            .to_string()
    }

    #[test]
    fn the_sandbox_is_used_only_when_chosen() {
        let settings = ProviderSettings::from_env(&env(&[])).expect("explicit sandbox");
        assert!(settings.uses_sandbox());
        let mut unset = env(&[]);
        unset.remove(SMS_PROVIDER);
        let err = refused(&unset);
        assert!(
            err.contains(SMS_PROVIDER) && err.contains("twilio, sandbox") && err.contains("required"),
            "{err}"
        );
        let err = refused(&env(&[(EMAIL_PROVIDER, "mailgun")]));
        assert!(
            err.contains(EMAIL_PROVIDER) && err.contains("smtp, sendgrid, sandbox"),
            "{err}"
        );
    }

    #[test]
    fn a_chosen_provider_without_a_credential_stops_the_service_naming_it() {
        let twilio = [
            (SMS_PROVIDER, "twilio"),
            ("TWILIO_ACCOUNT_SID", "AC0000"),
            ("TWILIO_AUTH_TOKEN", "token"),
            ("TWILIO_FROM", "+15005550006"),
        ];
        let settings = ProviderSettings::from_env(&env(&twilio)).expect("complete");
        assert!(matches!(settings.sms, SmsChoice::Twilio(_)));
        let err = refused(&env(&twilio[..3]));
        assert!(err.contains("TWILIO_FROM"), "{err}");
        let err = refused(&env(&[
            (WHATSAPP_PROVIDER, "whatsapp-cloud"),
            ("WHATSAPP_ACCESS_TOKEN", "EAAG"),
        ]));
        assert!(err.contains("WHATSAPP_PHONE_NUMBER_ID"), "{err}");
        let err = refused(&env(&[
            (EMAIL_PROVIDER, "sendgrid"),
            ("SENDGRID_FROM", "a@b.example"),
        ]));
        assert!(err.contains("SENDGRID_API_KEY"), "{err}");
    }

    #[test]
    fn a_misspelled_provider_variable_stops_the_service_without_showing_its_value() {
        let err = refused(&env(&[
            (SMS_PROVIDER, "twilio"),
            ("TWILIO_ACCOUNT_SID", "AC0000"),
            ("TWILIO_AUTH_TOKN", "secret-token-value"),
            ("TWILIO_FROM", "+15005550006"),
        ]));
        assert!(err.contains("TWILIO_AUTH_TOKN"), "{err}");
        assert!(!err.contains("secret-token-value"), "{err}");
        let err = refused(&env(&[("SMTP_HOSTNAME", "smtp.acme.example")]));
        assert!(err.contains("SMTP_HOSTNAME"), "{err}");
    }

    #[test]
    fn a_credential_of_a_provider_no_channel_uses_is_refused() {
        let err = refused(&env(&[("TWILIO_AUTH_TOKEN", "secret-token-value")]));
        assert!(
            err.contains("TWILIO_AUTH_TOKEN")
                && err.contains(SMS_PROVIDER)
                && !err.contains("secret-token-value"),
            "{err}"
        );
        let both = [
            (EMAIL_PROVIDER, "smtp"),
            ("SMTP_HOST", "smtp.acme.example"),
            ("SMTP_FROM", "cobranza@acme.example"),
            ("SENDGRID_API_KEY", "SG.key"),
        ];
        let err = refused(&env(&both));
        assert!(err.contains("SENDGRID_API_KEY"), "{err}");
    }

    #[test]
    fn smtp_submission_defaults_to_starttls_on_587_and_never_goes_unencrypted() {
        let relay = [
            (EMAIL_PROVIDER, "smtp"),
            ("SMTP_HOST", "smtp.acme.example"),
            ("SMTP_FROM", "cobranza@acme.example"),
        ];
        let smtp =
            |pairs: &[(&str, &str)]| match ProviderSettings::from_env(&env(pairs)).expect("settings").email {
                EmailChoice::Smtp(smtp) => (smtp.port, smtp.implicit_tls),
                _ => panic!("smtp chosen"),
            };
        assert_eq!(smtp(&relay), (587, false));
        assert_eq!(
            smtp(&[relay[0], relay[1], relay[2], ("SMTP_TLS", "implicit")]),
            (465, true)
        );
        let err = refused(&env(&[relay[0], relay[1], relay[2], ("SMTP_TLS", "none")]));
        assert!(err.contains("SMTP_TLS"), "{err}");
        let err = refused(&env(&relay[..2]));
        assert!(err.contains("SMTP_FROM"), "{err}");
    }

    #[test]
    fn unsubscribe_keys_are_required() {
        let mut env = env(&[]);
        env.insert(
            crate::unsubscribe::KEYS_FILE_SETTING.into(),
            "/nonexistent/recobro/unsubscribe-keys".into(),
        );
        let err = refused(&env);
        assert!(err.contains(crate::unsubscribe::KEYS_FILE_SETTING), "{err}");
    }
}
