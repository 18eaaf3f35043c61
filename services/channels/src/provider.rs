//! Delivery providers. The sandbox is the default when no credentials are configured: it
//! accepts every message and keeps it (in the deliveries table) so a newcomer can read what
//! would have been sent. Recipients at `bounce.sandbox.invalid` fail permanently and at
//! `busy.sandbox.invalid` transiently, for trying the failure paths.

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
}

impl EmailProvider {
    pub fn name(&self) -> &'static str {
        match self {
            EmailProvider::Sandbox => "sandbox-email",
        }
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
        }
    }
}
