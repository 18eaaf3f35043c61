//! Which payment provider each tenant uses, per currency, with its credentials: the accounts
//! in `RECOBRO_PAYMENT_PROVIDERS_FILE` (TOML), each credential a file of its own like every other
//! secret. Without an account for an invoice's tenant and currency its link says that paying
//! online is not available; the sandbox is used only where chosen, since its "pay" button
//! settles an invoice without moving money. `tenant_id = "*"` (every tenant) is accepted for the
//! sandbox only, as the local stack's demo uses it.
//!
//! ```toml
//! [[account]]
//! name = "acme-stripe"            # in the webhook URL: /webhooks/payments/stripe/acme-stripe
//! tenant_id = "acme"
//! currencies = ["USD", "EUR"]
//! provider = "stripe"             # stripe, mercadopago or sandbox
//! secret_key_file = "/var/run/secrets/recobro/payments/acme-stripe/secret-key"
//! webhook_secret_file = "/var/run/secrets/recobro/payments/acme-stripe/webhook-secret"
//! # api_base = "https://api.stripe.com"
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use recobro_common::config::{ConfigError, Env};
use recobro_common::secret::Secret;
use serde::Deserialize;

pub const PROVIDERS_FILE_SETTING: &str = "RECOBRO_PAYMENT_PROVIDERS_FILE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Sandbox,
    Stripe,
    MercadoPago,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Sandbox => "sandbox",
            ProviderKind::Stripe => "stripe",
            ProviderKind::MercadoPago => "mercadopago",
        }
    }
}

/// One tenant's account at one provider.
pub struct Account {
    pub name: String,
    pub tenant_id: String,
    pub kind: ProviderKind,
    /// Stripe's secret key, or Mercado Pago's access token.
    pub api_key: Option<Secret>,
    /// Stripe's endpoint signing secret (`whsec_...`), or Mercado Pago's webhook secret.
    pub webhook_secret: Option<Secret>,
    pub api_base: String,
}

#[derive(Default)]
pub struct PaymentProviders {
    by_currency: HashMap<(String, String), Arc<Account>>,
    by_name: HashMap<String, Arc<Account>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    account: Vec<AccountEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    name: String,
    tenant_id: String,
    currencies: Vec<String>,
    provider: String,
    secret_key_file: Option<String>,
    access_token_file: Option<String>,
    webhook_secret_file: Option<String>,
    api_base: Option<String>,
}

impl PaymentProviders {
    /// The accounts of `RECOBRO_PAYMENT_PROVIDERS_FILE`; none when it is unset. Anything wrong in
    /// the file stops the service at start, naming the account and field.
    pub fn from_env(env: &impl Env) -> Result<PaymentProviders, ConfigError> {
        let Some(path) = env.get(PROVIDERS_FILE_SETTING).filter(|p| !p.trim().is_empty()) else {
            return Ok(PaymentProviders::default());
        };
        let invalid = |reason: String| ConfigError::Invalid {
            name: PROVIDERS_FILE_SETTING.into(),
            value: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|err| invalid(format!("cannot be read: {err}")))?;
        PaymentProviders::parse(&text, &|file| std::fs::read_to_string(file)).map_err(invalid)
    }

    /// Parses the file's text; `read` reads a credential file.
    pub fn parse(
        text: &str,
        read: &dyn Fn(&str) -> std::io::Result<String>,
    ) -> Result<PaymentProviders, String> {
        let file: File = toml::from_str(text).map_err(|err| err.to_string())?;
        let mut providers = PaymentProviders::default();
        for entry in file.account {
            let name = entry.name.trim().to_string();
            let at = |field: &str| format!("account {name:?}: {field}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(at(
                    "name must be letters, digits, '-' and '_' (it is part of the webhook URL)",
                ));
            }
            let kind = match entry.provider.as_str() {
                "stripe" => ProviderKind::Stripe,
                "mercadopago" => ProviderKind::MercadoPago,
                "sandbox" => ProviderKind::Sandbox,
                other => {
                    return Err(at(&format!(
                        "provider {other:?} is not stripe, mercadopago or sandbox"
                    )));
                }
            };
            let secret = |field: &str, file: &Option<String>| -> Result<Option<Secret>, String> {
                let Some(file) = file else {
                    return Err(at(&format!("{field} is required for {}", kind.as_str())));
                };
                let value = read(file).map_err(|err| at(&format!("{field} cannot be read: {err}")))?;
                let value = value.trim();
                if value.is_empty() {
                    return Err(at(&format!("{field} is empty")));
                }
                Ok(Some(Secret::new(value)))
            };
            let (api_key, webhook_secret, default_base) = match kind {
                ProviderKind::Stripe => (
                    secret("secret_key_file", &entry.secret_key_file)?,
                    secret("webhook_secret_file", &entry.webhook_secret_file)?,
                    "https://api.stripe.com",
                ),
                ProviderKind::MercadoPago => (
                    secret("access_token_file", &entry.access_token_file)?,
                    secret("webhook_secret_file", &entry.webhook_secret_file)?,
                    "https://api.mercadopago.com",
                ),
                ProviderKind::Sandbox => (None, None, ""),
            };
            // Every tenant ("*"): only for the sandbox, on a local stack or a demo, since a real
            // account's money belongs to one tenant.
            if entry.tenant_id.trim() == "*" && kind != ProviderKind::Sandbox {
                return Err(at("tenant_id \"*\" (every tenant) is for the sandbox only"));
            }
            let api_base = entry.api_base.unwrap_or_else(|| default_base.to_string());
            if kind != ProviderKind::Sandbox
                && !api_base.starts_with("https://")
                && !api_base.starts_with("http://127.0.0.1")
            {
                return Err(at(
                    "api_base must be https:// (http only to 127.0.0.1, for stand-ins)",
                ));
            }
            let account = Arc::new(Account {
                name: name.clone(),
                tenant_id: entry.tenant_id.trim().to_string(),
                kind,
                api_key,
                webhook_secret,
                api_base: api_base.trim_end_matches('/').to_string(),
            });
            if entry.currencies.is_empty() {
                return Err(at("currencies must name at least one ISO 4217 code"));
            }
            for currency in entry.currencies {
                if recobro_common::money::minor_unit_digits(&currency).is_none() {
                    return Err(at(&format!("currency {currency:?} is not an ISO 4217 code")));
                }
                let key = (account.tenant_id.clone(), currency.clone());
                if providers.by_currency.insert(key, account.clone()).is_some() {
                    return Err(at(&format!(
                        "tenant {} has another account for {currency}",
                        account.tenant_id
                    )));
                }
            }
            if providers.by_name.insert(name.clone(), account).is_some() {
                return Err(at("name is used twice"));
            }
        }
        Ok(providers)
    }

    /// The account that takes `tenant_id`'s payments in `currency` (the tenant's own, else a
    /// sandbox for every tenant where one is configured).
    pub fn for_payment(&self, tenant_id: &str, currency: &str) -> Option<Arc<Account>> {
        self.by_currency
            .get(&(tenant_id.to_string(), currency.to_string()))
            .or_else(|| self.by_currency.get(&("*".to_string(), currency.to_string())))
            .cloned()
    }

    /// The account a webhook URL names.
    pub fn named(&self, name: &str) -> Option<Arc<Account>> {
        self.by_name.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(file: &str) -> std::io::Result<String> {
        match file {
            "/s/key" => Ok("sk_test_1\n".into()),
            "/s/hook" => Ok("whsec_1".into()),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")),
        }
    }

    #[test]
    fn each_tenant_and_currency_has_its_account() {
        let providers = PaymentProviders::parse(
            r#"
            [[account]]
            name = "acme-stripe"
            tenant_id = "acme"
            currencies = ["USD", "EUR"]
            provider = "stripe"
            secret_key_file = "/s/key"
            webhook_secret_file = "/s/hook"

            [[account]]
            name = "acme-mp"
            tenant_id = "acme"
            currencies = ["COP"]
            provider = "mercadopago"
            access_token_file = "/s/key"
            webhook_secret_file = "/s/hook"
            "#,
            &read,
        )
        .expect("valid");
        let usd = providers.for_payment("acme", "USD").expect("USD");
        assert_eq!(usd.kind, ProviderKind::Stripe);
        assert_eq!(usd.api_base, "https://api.stripe.com");
        assert_eq!(usd.api_key.as_ref().map(|k| k.expose()), Some("sk_test_1"));
        assert_eq!(
            providers.for_payment("acme", "COP").expect("COP").kind,
            ProviderKind::MercadoPago
        );
        assert!(providers.for_payment("acme", "BRL").is_none());
        assert!(providers.for_payment("globex", "USD").is_none());
        assert_eq!(providers.named("acme-mp").expect("named").tenant_id, "acme");
    }

    #[test]
    fn a_wrong_account_stops_the_service_naming_it() {
        let cases = [
            ("provider = \"paypal\"", "paypal"),
            (
                "provider = \"stripe\"\nwebhook_secret_file = \"/s/hook\"",
                "secret_key_file",
            ),
            (
                "provider = \"stripe\"\nsecret_key_file = \"/s/missing\"\nwebhook_secret_file = \"/s/hook\"",
                "cannot be read",
            ),
            ("provider = \"sandbox\"\ncolour = \"red\"", "colour"),
        ];
        for (fields, expected) in cases {
            let text = format!(
                "[[account]]\nname = \"a\"\ntenant_id = \"acme\"\ncurrencies = [\"USD\"]\n{fields}\n"
            );
            let err = PaymentProviders::parse(&text, &read).err().expect(expected);
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let every = "[[account]]\nname = \"a\"\ntenant_id = \"*\"\ncurrencies = [\"USD\"]\nprovider = \"stripe\"\n\
                     secret_key_file = \"/s/key\"\nwebhook_secret_file = \"/s/hook\"\n";
        assert!(
            PaymentProviders::parse(every, &read)
                .err()
                .expect("every")
                .contains("sandbox only")
        );
        let sandbox =
            "[[account]]\nname = \"a\"\ntenant_id = \"*\"\ncurrencies = [\"USD\"]\nprovider = \"sandbox\"\n";
        let providers = PaymentProviders::parse(sandbox, &read).expect("a sandbox for every tenant");
        assert_eq!(
            providers.for_payment("anyone", "USD").expect("USD").kind,
            ProviderKind::Sandbox
        );
        assert!(providers.for_payment("anyone", "EUR").is_none());
        let twice = "[[account]]\nname = \"a\"\ntenant_id = \"acme\"\ncurrencies = [\"USD\"]\nprovider = \"sandbox\"\n\
                     [[account]]\nname = \"b\"\ntenant_id = \"acme\"\ncurrencies = [\"USD\"]\nprovider = \"sandbox\"\n";
        assert!(
            PaymentProviders::parse(twice, &read)
                .err()
                .expect("twice")
                .contains("another account")
        );
    }
}
