//! The token in a payment link: the tenant and the invoice, sealed (crate::link_keys: encrypted
//! and authenticated) with the keys in `payment-link-keys` (`RECOBRO_PAYMENT_LINK_KEYS_FILE`), so
//! it reveals neither, cannot be guessed or made for another invoice, and a key is rotated the
//! way unsubscribe keys are.
//!
//! Token: URL-safe base64 of `version 2 | key id (4) | nonce (12) | sealed (invoice id (16) |
//! tenant id) | tag (16)`.

use recobro_common::config::{ConfigError, Env};
use uuid::Uuid;

use crate::link_keys::LinkKeys;

const VERSION: u8 = 2;
pub const KEYS_FILE_SETTING: &str = "RECOBRO_PAYMENT_LINK_KEYS_FILE";
const KEYS_FILE_NAME: &str = "payment-link-keys";
const PURPOSE: &str = "payment link";

/// What a payment link is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub tenant_id: String,
    pub invoice_id: Uuid,
}

pub struct PaymentLinks {
    public_url: String,
    keys: LinkKeys,
    /// A statement's link is this followed by the statement's id: nothing serves it yet (a
    /// statement cannot be paid in one checkout; each of its invoice lines has its own link).
    statement_base: String,
}

impl PaymentLinks {
    pub fn from_env(env: &impl Env, public_url: &str) -> Result<PaymentLinks, ConfigError> {
        Ok(PaymentLinks {
            public_url: public_url.trim_end_matches('/').to_string(),
            keys: LinkKeys::from_env(env, KEYS_FILE_SETTING, KEYS_FILE_NAME, PURPOSE)?,
            statement_base: env.or("RECOBRO_STATEMENT_LINK_BASE", "https://pay.recobro.example/s/"),
        })
    }

    pub fn new(public_url: &str, keys: &str) -> Result<PaymentLinks, String> {
        Ok(PaymentLinks {
            public_url: public_url.trim_end_matches('/').to_string(),
            keys: LinkKeys::parse(keys, PURPOSE)?,
            statement_base: "https://pay.recobro.example/s/".into(),
        })
    }

    /// Links signed with a key nobody knows (benchmarks and tests that never follow them).
    pub fn ephemeral(public_url: &str) -> PaymentLinks {
        PaymentLinks {
            public_url: public_url.trim_end_matches('/').to_string(),
            keys: LinkKeys::ephemeral(PURPOSE),
            statement_base: "https://pay.recobro.example/s/".into(),
        }
    }

    /// A statement's link (not served yet, see `statement_base`).
    pub fn statement_url(&self, statement_id: Uuid) -> String {
        format!("{}{statement_id}", self.statement_base)
    }

    /// `<public URL>/pay/<token>`.
    pub fn url(&self, tenant_id: &str, invoice_id: Uuid) -> String {
        let mut body = Vec::with_capacity(16 + tenant_id.len());
        body.extend_from_slice(invoice_id.as_bytes());
        body.extend_from_slice(tenant_id.as_bytes());
        format!(
            "{}/pay/{}",
            self.public_url,
            self.keys.seal_private(VERSION, &body)
        )
    }

    /// What `token` is bound to, if we signed it; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Bound> {
        let body = self.keys.open_private(VERSION, token)?;
        if body.len() <= 16 {
            return None;
        }
        Some(Bound {
            invoice_id: Uuid::from_slice(&body[..16]).ok()?,
            tenant_id: String::from_utf8(body[16..].to_vec()).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "payment-key-0123456789abcdefghijklmnopqrstuv";

    fn token_of(url: &str) -> &str {
        url.rsplit('/').next().expect("token")
    }

    #[test]
    fn a_link_names_neither_invoice_nor_tenant_and_verifies_only_unchanged() {
        let links = PaymentLinks::new("https://collect.example.com/", KEY).expect("keys");
        let invoice_id = Uuid::from_u128(0xABCDEF);
        let url = links.url("acme", invoice_id);
        assert!(url.starts_with("https://collect.example.com/pay/"), "{url}");
        assert!(
            !url.contains(&invoice_id.to_string()) && !url.contains("acme"),
            "{url}"
        );
        assert_eq!(
            links.verify(token_of(&url)),
            Some(Bound {
                tenant_id: "acme".into(),
                invoice_id
            })
        );
        // One character changed, another key, or an unsubscribe token: refused.
        let token = token_of(&url).to_string();
        let mut forged = token.clone().into_bytes();
        let at = forged.len() / 2;
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        assert_eq!(links.verify(&String::from_utf8(forged).expect("ascii")), None);
        assert_eq!(
            links.verify(token_of(&PaymentLinks::ephemeral("x").url("acme", invoice_id))),
            None
        );
        let unsubscribe = crate::unsubscribe::UnsubscribeKeys::parse(KEY).expect("keys");
        let other_kind = unsubscribe.mint(&crate::unsubscribe::Link {
            reminder_id: invoice_id,
            point_id: invoice_id,
            channel: recobro_common::Channel::Email,
        });
        assert_eq!(
            links.verify(&other_kind),
            None,
            "the same key, another kind of link"
        );
        assert_eq!(links.verify(""), None);
    }
}
