//! channels: delivers due reminders through providers within each debtor's contact budget,
//! and brings back what debtors answer.

pub mod budget;
mod compose;
mod decision;
pub mod delivery;
mod error;
mod grpc;
mod locale;
pub mod provider;
mod redis_keys;
mod reminder;
mod replies;
pub mod send_claim;
mod signatures;
mod store;
mod templates;
mod webhooks;

use std::net::SocketAddr;

use recobro_common::config::{ConfigError, Env};
use recobro_common::identity::{IdentitySettings, Security};
use recobro_common::redis_client::RedisSettings;
use recobro_common::secret::Secret;
use recobro_common::{Config, db, grpc as serve, kafka, outbox};
use recobro_proto::v1::channels_service_server::ChannelsServiceServer;
use recobro_rules::Rulebook;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::ChannelsError;

/// This service's schema, step by step (applied by `recobro-channels migrate`).
pub const MIGRATIONS: &[db::Step] = &[
    db::Step {
        version: 1,
        description: "deliveries",
        sql: include_str!("../migrations/0001_deliveries.sql"),
    },
    db::Step {
        version: 2,
        description: "outbox",
        sql: outbox::MIGRATION,
    },
    db::Step {
        version: 3,
        description: "contact rules",
        sql: include_str!("../migrations/0002_contact_rules.sql"),
    },
    db::Step {
        version: 4,
        description: "recipients",
        sql: include_str!("../migrations/0003_recipients.sql"),
    },
    db::Step {
        version: 5,
        description: "templates",
        sql: include_str!("../migrations/0004_templates.sql"),
    },
    db::Step {
        version: 6,
        description: "response sender",
        sql: include_str!("../migrations/0005_response_sender.sql"),
    },
];

/// Connects as the service's runtime role; the schema must be migrated already.
pub async fn connect(config: &Config) -> Result<sqlx::PgPool, sqlx::Error> {
    db::connect(&config.database, &config.database_schema, MIGRATIONS).await
}

/// Migrates, then connects: for tools, tests and benchmarks that run as the local stack's
/// administrator, never for the service.
pub async fn migrate_and_connect(config: &Config) -> Result<sqlx::PgPool, sqlx::Error> {
    db::migrate_and_connect(&config.database, &config.database_schema, MIGRATIONS).await
}

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
    /// The invoice id is appended to make the debtor's payment link.
    pub payment_link_base: String,
    /// Our base URL as providers reach it (webhook signatures and callbacks use it).
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
    pub twilio: Option<TwilioSettings>,
    /// SendGrid credentials: email goes through the sandbox when neither they nor an SMTP
    /// relay are set.
    pub sendgrid: Option<(Secret, String, String)>,
    pub smtp: Option<provider::SmtpSettings>,
    /// The public key SendGrid signs its event webhook with (base64 DER).
    pub sendgrid_webhook_key: Option<String>,
    pub whatsapp: Option<WhatsAppSettings>,
}

/// Twilio credentials; SMS goes through the sandbox when they are not set.
pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: Secret,
    pub from: String,
    pub api_base: String,
    /// Set when Twilio Webhooks Settings sign our webhooks with their own keys
    /// (comma-separated, several while one is rotated).
    pub webhook_shared_keys: Vec<Secret>,
}

/// WhatsApp Cloud API credentials; WhatsApp goes through the sandbox when they are not set.
pub struct WhatsAppSettings {
    pub access_token: Secret,
    pub phone_number_id: String,
    pub api_base: String,
    pub app_secret: Secret,
    pub verify_token: Secret,
}

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
        Ok(Settings {
            common,
            redis: RedisSettings::from_env(env, "channels")?,
            redis_prefix,
            identity: IdentitySettings::from_env(env, 50053)?,
            http_addr,
            payment_link_base: env.or("RECOBRO_PAYMENT_LINK_BASE", "https://pay.recobro.example/i/"),
            public_url: env.or("RECOBRO_PUBLIC_URL", "http://localhost:8080"),
            max_attempts: env.parse_or("RECOBRO_MAX_SEND_ATTEMPTS", 5)?,
            exit_after_sends: env
                .get("RECOBRO_FAILPOINT_EXIT_AFTER_SENDS")
                .and_then(|n| n.parse().ok()),
            delivery_batch: env.parse_or("RECOBRO_DELIVERY_BATCH", 2000)?,
            debtors_at_once: env.parse_or("RECOBRO_DEBTORS_AT_ONCE", 64)?,
            provider_calls_at_once: env.parse_or("RECOBRO_PROVIDER_CALLS_AT_ONCE", 1)?,
            sendgrid_webhook_key: env.get("SENDGRID_WEBHOOK_PUBLIC_KEY").filter(|k| !k.is_empty()),
            sendgrid: match env.get("SENDGRID_API_KEY").filter(|k| !k.is_empty()) {
                Some(key) => Some((
                    Secret::new(key),
                    env.required("SENDGRID_FROM")?,
                    env.or("SENDGRID_API_BASE", "https://api.sendgrid.com"),
                )),
                None => None,
            },
            smtp: match env.get("SMTP_HOST").filter(|h| !h.is_empty()) {
                Some(host) => {
                    let tls = env.or("SMTP_TLS", "starttls");
                    let implicit_tls = match tls.as_str() {
                        "starttls" => false,
                        "implicit" => true,
                        _ => {
                            return Err(ConfigError::Invalid {
                                name: "SMTP_TLS".into(),
                                value: tls,
                                reason:
                                    "starttls (port 587) or implicit (port 465); mail never goes unencrypted"
                                        .into(),
                            });
                        }
                    };
                    let extra_root_pem = match env.get("SMTP_CA_FILE").filter(|f| !f.is_empty()) {
                        Some(path) => Some(std::fs::read(&path).map_err(|err| ConfigError::Invalid {
                            name: "SMTP_CA_FILE".into(),
                            value: path.clone(),
                            reason: err.to_string(),
                        })?),
                        None => None,
                    };
                    Some(provider::SmtpSettings {
                        host,
                        port: env.parse_or("SMTP_PORT", if implicit_tls { 465 } else { 587 })?,
                        implicit_tls,
                        username: env.or("SMTP_USERNAME", ""),
                        password: Secret::new(env.or("SMTP_PASSWORD", "")),
                        from: env.required("SMTP_FROM")?,
                        extra_root_pem,
                    })
                }
                None => None,
            },
            twilio: match (env.get("TWILIO_ACCOUNT_SID"), env.get("TWILIO_AUTH_TOKEN")) {
                (Some(account_sid), Some(auth_token))
                    if !account_sid.is_empty() && !auth_token.is_empty() =>
                {
                    Some(TwilioSettings {
                        account_sid,
                        auth_token: Secret::new(auth_token),
                        from: env.required("TWILIO_FROM")?,
                        api_base: env.or("TWILIO_API_BASE", "https://api.twilio.com"),
                        webhook_shared_keys: env
                            .or("TWILIO_WEBHOOK_SHARED_KEY", "")
                            .split(',')
                            .map(|key| key.trim().to_string())
                            .filter(|key| !key.is_empty())
                            .map(Secret::new)
                            .collect(),
                    })
                }
                _ => None,
            },
            whatsapp: match env.get("WHATSAPP_ACCESS_TOKEN").filter(|t| !t.is_empty()) {
                Some(access_token) => Some(WhatsAppSettings {
                    access_token: Secret::new(access_token),
                    phone_number_id: env.required("WHATSAPP_PHONE_NUMBER_ID")?,
                    api_base: env.or("WHATSAPP_API_BASE", "https://graph.facebook.com/v21.0"),
                    app_secret: Secret::new(env.required("WHATSAPP_APP_SECRET")?),
                    verify_token: Secret::new(env.required("WHATSAPP_VERIFY_TOKEN")?),
                }),
                None => None,
            },
        })
    }
}

pub struct Application {
    settings: Settings,
    grpc: serve::Listeners,
    security: Security,
    http: TcpListener,
    pool: sqlx::PgPool,
    redis: redis::aio::ConnectionManager,
    rulebook: Rulebook,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let config = &settings.common;
        // A pack that does not parse stops the service at start, not at the first reminder.
        let rulebook = Rulebook::load(config.tenant_rules_dir.as_deref())?;
        let pool = connect(config).await?;
        let redis = settings.redis.client()?.get_connection_manager().await?;
        let security = Security::guarded(&settings.identity, grpc::method_scopes()).await?;
        let grpc = serve::Listeners {
            grpc: TcpListener::bind(config.grpc_addr).await?,
            health: Some(TcpListener::bind(settings.identity.health_addr).await?),
        };
        let http = TcpListener::bind(settings.http_addr).await?;
        Ok(Application {
            settings,
            grpc,
            security,
            http,
            pool,
            redis,
            rulebook,
        })
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc
            .grpc
            .local_addr()
            .map(|addr| addr.port())
            .unwrap_or_default()
    }

    pub fn http_port(&self) -> u16 {
        self.http.local_addr().map(|addr| addr.port()).unwrap_or_default()
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            settings,
            grpc,
            security,
            http,
            pool,
            redis,
            rulebook,
        } = self;
        let config = settings.common;
        let producer = kafka::producer(&config.kafka)?;
        let consumer = kafka::consumer(
            &config.kafka,
            &config.topics.consumer_group("channels"),
            &[&config.topics.reminders_due],
        )?;
        // Providers must answer within 10 s; a slower call is retried as transient.
        let http_client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let dispatcher = std::sync::Arc::new(delivery::Dispatcher {
            pool: pool.clone(),
            budget: budget::ContactBudget::new(redis.clone(), &settings.redis_prefix),
            claims: send_claim::SendClaims::new(redis.clone(), &settings.redis_prefix),
            rulebook: rulebook.clone(),
            providers: provider::Providers {
                email: match (&settings.smtp, &settings.sendgrid) {
                    (Some(_), Some(_)) => {
                        anyhow::bail!(
                            "both SMTP_HOST and SENDGRID_API_KEY are set: choose one email provider"
                        )
                    }
                    (Some(smtp), None) => provider::EmailProvider::Smtp(
                        provider::Smtp::new(smtp, &settings.public_url).map_err(anyhow::Error::msg)?,
                    ),
                    (None, Some((api_key, from, api_base))) => {
                        provider::EmailProvider::SendGrid(provider::SendGrid {
                            http: http_client.clone(),
                            api_base: api_base.clone(),
                            api_key: api_key.clone(),
                            from: from.clone(),
                            public_url: settings.public_url.clone(),
                        })
                    }
                    (None, None) => provider::EmailProvider::Sandbox,
                },
                sms: match &settings.twilio {
                    Some(t) => provider::TextProvider::Twilio(provider::Twilio {
                        http: http_client.clone(),
                        api_base: t.api_base.clone(),
                        account_sid: t.account_sid.clone(),
                        auth_token: t.auth_token.clone(),
                        from: t.from.clone(),
                        status_callback: Some(format!(
                            "{}/webhooks/twilio",
                            settings.public_url.trim_end_matches('/')
                        )),
                    }),
                    None => provider::TextProvider::Sandbox("sandbox-sms"),
                },
                whatsapp: match &settings.whatsapp {
                    Some(w) => provider::TextProvider::WhatsApp(provider::WhatsAppCloud {
                        http: http_client.clone(),
                        api_base: w.api_base.clone(),
                        phone_number_id: w.phone_number_id.clone(),
                        access_token: w.access_token.clone(),
                    }),
                    None => provider::TextProvider::Sandbox("sandbox-whatsapp"),
                },
            },
            deliveries_topic: config.topics.deliveries.clone(),
            payment_link_base: settings.payment_link_base,
            max_attempts: settings.max_attempts,
            sends: std::sync::atomic::AtomicU64::new(0),
            exit_after_sends: settings.exit_after_sends,
            provider_turns: tokio::sync::Semaphore::new(settings.provider_calls_at_once.max(1)),
            debtors_at_once: settings.debtors_at_once,
        });
        let consuming = tokio::spawn(kafka::run_batch_consumer(
            consumer,
            dispatcher.clone(),
            producer.clone(),
            config.topics.dead_letter.clone(),
            "channels",
            kafka::Batching {
                max_batch: settings.delivery_batch,
                linger: std::time::Duration::from_millis(5),
            },
            shutdown.clone(),
        ));
        let relaying = tokio::spawn(outbox::relay(pool.clone(), producer, 5000, shutdown.clone()));
        let webhooks = webhooks::router(webhooks::Webhooks {
            pool: pool.clone(),
            responses_topic: config.topics.responses.clone(),
            deliveries_topic: config.topics.deliveries.clone(),
            public_url: settings.public_url.clone(),
            twilio_auth_token: settings.twilio.as_ref().map(|t| t.auth_token.clone()),
            twilio_shared_keys: settings
                .twilio
                .as_ref()
                .map(|t| t.webhook_shared_keys.clone())
                .unwrap_or_default(),
            whatsapp_app_secret: settings.whatsapp.as_ref().map(|w| w.app_secret.clone()),
            whatsapp_verify_token: settings.whatsapp.as_ref().map(|w| w.verify_token.clone()),
            sendgrid_public_key: settings.sendgrid_webhook_key.clone(),
        });
        tracing::info!(grpc = %grpc.grpc.local_addr()?, http = %http.local_addr()?, "channels serving");
        let http_shutdown = shutdown.clone();
        let serving_http = tokio::spawn(async move {
            axum::serve(http, webhooks)
                .with_graceful_shutdown(http_shutdown.cancelled_owned())
                .await
        });
        let routes = tonic::service::Routes::new(ChannelsServiceServer::new(grpc::Channels {
            dispatcher,
            pool,
            rulebook,
        }));
        serve::serve(grpc, routes, &["recobro.v1.ChannelsService"], security, shutdown).await?;
        serving_http.await??;
        consuming.await?;
        relaying.await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::Settings;

    /// `pairs` on top of the identity settings and credential files every service needs.
    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let secrets = std::env::temp_dir().join(format!("recobro-channels-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&secrets).expect("dir");
        for file in ["kafka-password", "postgres-password", "redis-password"] {
            std::fs::write(secrets.join(file), "pw").expect("write");
        }
        let secrets = secrets.display().to_string();
        let identity = [
            ("RECOBRO_SECRETS_DIR", secrets.as_str()),
            ("RECOBRO_TLS_CERT", "/tls/server.pem"),
            ("RECOBRO_TLS_KEY", "/tls/server.key"),
            ("RECOBRO_JWKS", "/keys/jwks.json"),
            ("RECOBRO_TOKEN_ISSUER", "https://issuer.example"),
            ("RECOBRO_TOKEN_AUDIENCE", "recobro"),
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
    fn smtp_submission_defaults_to_starttls_on_587_and_never_goes_unencrypted() {
        let relay = [
            ("SMTP_HOST", "smtp.acme.example"),
            ("SMTP_FROM", "cobranza@acme.example"),
        ];
        let smtp = Settings::from_env(&env(&relay))
            .expect("settings")
            .smtp
            .expect("smtp");
        assert_eq!((smtp.port, smtp.implicit_tls), (587, false));

        let implicit = [relay[0], relay[1], ("SMTP_TLS", "implicit")];
        let smtp = Settings::from_env(&env(&implicit))
            .expect("settings")
            .smtp
            .expect("smtp");
        assert_eq!((smtp.port, smtp.implicit_tls), (465, true));

        let plain = [relay[0], relay[1], ("SMTP_TLS", "none")];
        let refused = Settings::from_env(&env(&plain))
            .err()
            .expect("refused")
            .to_string();
        assert!(refused.contains("SMTP_TLS"), "{refused}");

        let no_sender = Settings::from_env(&env(&relay[..1]))
            .err()
            .expect("refused")
            .to_string();
        assert!(no_sender.contains("SMTP_FROM"), "{no_sender}");
    }
}
