//! Channels' settings, read from the environment once at start; anything wrong stops it there.

use std::net::SocketAddr;

use recobro_common::Config;
use recobro_common::config::{ConfigError, Env};
use recobro_common::identity::IdentitySettings;
use recobro_common::redis_client::RedisSettings;

use crate::provider::ProviderSettings;

pub struct Settings {
    pub common: Config,
    /// Where contact budgets and send claims live: channels' own Redis user, over TLS.
    pub redis: RedisSettings,
    /// What every Redis key starts with. The Redis ACL lets channels' user touch only keys
    /// under `channels:` (deploy/local/up.sh), so this must start with `channels`.
    pub redis_prefix: String,
    /// TLS, tokens and the health port.
    pub identity: IdentitySettings,
    /// Where provider webhooks arrive.
    pub http_addr: SocketAddr,
    /// Sign every reminder's payment link (`payment-link-keys`).
    pub payment_links: crate::payments::PaymentLinks,
    /// Each tenant's payment provider per currency (`RECOBRO_PAYMENT_PROVIDERS_FILE`).
    pub payment_providers: crate::payments::PaymentProviders,
    /// Our base URL as providers reach it (webhook signatures, callbacks and unsubscribe links
    /// use it).
    pub public_url: String,
    /// Transient provider failures tolerated per reminder before it is recorded as failed.
    pub max_attempts: u32,
    /// Crash-test failpoint: exit abruptly after this many sends (never set in production).
    pub exit_after_sends: Option<u64>,
    /// Reminders handled per batch (one database transaction) at most.
    pub delivery_batch: usize,
    /// Debtors whose reminders are checked at once (budget and claims share Redis round trips).
    pub debtors_at_once: usize,
    /// Provider calls in flight at once per worker (see `Dispatcher::provider_turns`).
    pub provider_calls_at_once: usize,
    /// Each channel's provider, chosen explicitly, with its credentials, and the keys of the
    /// one-click unsubscribe links.
    pub providers: ProviderSettings,
}

/// The defaults of the settings below, also used by the benchmarks that run channels' loops
/// in their own process.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_DELIVERY_BATCH: usize = 2000;
pub const DEFAULT_DEBTORS_AT_ONCE: usize = 64;
pub const DEFAULT_PROVIDER_CALLS_AT_ONCE: usize = 1;

impl Settings {
    pub fn from_env(env: &impl Env) -> Result<Settings, ConfigError> {
        let common = Config::from_env(env, "channels", 50053)?;
        let http_addr = env.parse_or("RECOBRO_HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?;
        let redis_prefix = env.or("RECOBRO_REDIS_PREFIX", "channels");
        if redis_prefix != "channels" && !redis_prefix.starts_with("channels:") {
            return Err(ConfigError::Invalid {
                name: "RECOBRO_REDIS_PREFIX".into(),
                value: redis_prefix,
                reason: "channels' keys live under `channels` (its Redis user may touch nothing else)".into(),
            });
        }
        let public_url = env.or("RECOBRO_PUBLIC_URL", "http://localhost:8080");
        Ok(Settings {
            common,
            redis: RedisSettings::from_env(env, "channels")?,
            redis_prefix,
            identity: IdentitySettings::from_env(env, 50053)?,
            http_addr,
            payment_links: crate::payments::PaymentLinks::from_env(env, &public_url)?,
            payment_providers: crate::payments::PaymentProviders::from_env(env)?,
            public_url,
            max_attempts: env.parse_or("RECOBRO_MAX_SEND_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)?,
            exit_after_sends: env
                .get("RECOBRO_FAILPOINT_EXIT_AFTER_SENDS")
                .and_then(|n| n.parse().ok()),
            delivery_batch: env.count_or("RECOBRO_DELIVERY_BATCH", DEFAULT_DELIVERY_BATCH)?,
            debtors_at_once: env.count_or("RECOBRO_DEBTORS_AT_ONCE", DEFAULT_DEBTORS_AT_ONCE)?,
            provider_calls_at_once: env
                .count_or("RECOBRO_PROVIDER_CALLS_AT_ONCE", DEFAULT_PROVIDER_CALLS_AT_ONCE)?,
            providers: ProviderSettings::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::Settings;
    use crate::provider::{EMAIL_PROVIDER, SMS_PROVIDER, WHATSAPP_PROVIDER};

    /// `pairs` on top of the identity settings, credential files every service needs and the
    /// sandbox chosen for every channel.
    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let secrets = std::env::temp_dir().join(format!("recobro-channels-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&secrets).expect("dir");
        for file in ["kafka-password", "postgres-password", "redis-password"] {
            std::fs::write(secrets.join(file), "pw").expect("write");
        }
        std::fs::write(secrets.join("unsubscribe-keys"), "k".repeat(40)).expect("write");
        std::fs::write(secrets.join("payment-link-keys"), "p".repeat(40)).expect("write");
        let secrets = secrets.display().to_string();
        let identity = [
            ("RECOBRO_SECRETS_DIR", secrets.as_str()),
            ("RECOBRO_TLS_CERT", "/tls/server.pem"),
            ("RECOBRO_TLS_KEY", "/tls/server.key"),
            ("RECOBRO_JWKS", "/keys/jwks.json"),
            ("RECOBRO_TOKEN_ISSUER", "https://issuer.example"),
            ("RECOBRO_TOKEN_AUDIENCE", "recobro"),
            (EMAIL_PROVIDER, "sandbox"),
            (SMS_PROVIDER, "sandbox"),
            (WHATSAPP_PROVIDER, "sandbox"),
        ];
        identity
            .iter()
            .chain(pairs)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn redis_keys_stay_under_channels_where_its_redis_user_may_write() {
        assert_eq!(
            Settings::from_env(&env(&[])).expect("settings").redis_prefix,
            "channels"
        );
        let e2e = Settings::from_env(&env(&[("RECOBRO_REDIS_PREFIX", "channels:e2e1")])).expect("settings");
        assert_eq!(e2e.redis_prefix, "channels:e2e1");
        let Err(err) = Settings::from_env(&env(&[("RECOBRO_REDIS_PREFIX", "recobro")])) else {
            panic!("a prefix outside channels: must be refused");
        };
        assert!(err.to_string().contains("RECOBRO_REDIS_PREFIX"), "{err}");
    }

    #[test]
    fn batches_and_turns_of_none_are_refused_naming_the_variable() {
        for name in [
            "RECOBRO_DELIVERY_BATCH",
            "RECOBRO_DEBTORS_AT_ONCE",
            "RECOBRO_PROVIDER_CALLS_AT_ONCE",
        ] {
            let Err(err) = Settings::from_env(&env(&[(name, "0")])) else {
                panic!("{name}=0 must be refused");
            };
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let four = Settings::from_env(&env(&[("RECOBRO_PROVIDER_CALLS_AT_ONCE", "4")])).expect("settings");
        assert_eq!(four.provider_calls_at_once, 4);
    }

    #[test]
    fn the_unsubscribe_keys_come_from_the_secrets_folder() {
        let settings = Settings::from_env(&env(&[])).expect("settings");
        assert!(settings.providers.uses_sandbox());
        let missing = env(&[]);
        let secrets = std::path::Path::new(&missing["RECOBRO_SECRETS_DIR"]).join("unsubscribe-keys");
        std::fs::remove_file(secrets).expect("remove");
        let Err(err) = Settings::from_env(&missing) else {
            panic!("no unsubscribe keys, no start");
        };
        assert!(err.to_string().contains("RECOBRO_UNSUBSCRIBE_KEYS_FILE"), "{err}");
    }
}
