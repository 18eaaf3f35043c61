//! channels: delivers due reminders through providers within each debtor's contact budget,
//! and brings back what debtors answer.

pub mod budget;
mod compose;
mod decision;
pub mod delivery;
mod error;
mod grpc;
pub mod ledger;
mod link_keys;
mod locale;
pub mod payments;
pub mod provider;
mod recheck;
mod recipient;
mod redis_keys;
mod reminder;
pub mod replies;
pub mod send_claim;
mod settings;
mod signatures;
mod store;
mod templates;
pub mod unsubscribe;
mod webhooks;

use recobro_common::identity::Security;
use recobro_common::{Config, db, grpc as serve, kafka, outbox, tasks};
use recobro_proto::v1::channels_service_server::ChannelsServiceServer;
use recobro_rules::Rulebook;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::ChannelsError;
pub use settings::{
    DEFAULT_DEBTORS_AT_ONCE, DEFAULT_DELIVERY_BATCH, DEFAULT_MAX_ATTEMPTS, DEFAULT_PROVIDER_CALLS_AT_ONCE,
    Settings,
};

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
    db::Step {
        version: 7,
        description: "ledger view",
        sql: include_str!("../migrations/0006_ledger_view.sql"),
    },
    db::Step {
        version: 8,
        description: "parked outbox rows",
        sql: outbox::PARKED_MIGRATION,
    },
    db::Step {
        version: 9,
        description: "statements",
        sql: include_str!("../migrations/0007_statements.sql"),
    },
    db::Step {
        version: 10,
        description: "decision covered",
        sql: include_str!("../migrations/0008_decision_covered.sql"),
    },
    db::Step {
        version: 11,
        description: "delivery trace",
        sql: include_str!("../migrations/0009_delivery_trace.sql"),
    },
    db::Step {
        version: 12,
        description: "payment links",
        sql: include_str!("../migrations/0010_payment_links.sql"),
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
            metrics: Some(TcpListener::bind(settings.identity.metrics_addr).await?),
            limits: config.grpc_limits,
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
        // Channels' view of the ledger: whom it may contact, kept from accounts' events.
        let ledger_consumer = kafka::consumer(
            &config.kafka,
            &format!("{}-ledger", config.topics.consumer_group("channels")),
            &[&config.topics.account_events],
        )?;
        let payment_links = std::sync::Arc::new(settings.payment_links);
        let dispatcher = std::sync::Arc::new(delivery::Dispatcher {
            pool: pool.clone(),
            ledger: ledger::LedgerFence::new(pool.clone(), &config.kafka, &config.topics.account_events)?,
            eligibility: recobro_rules::Eligibility::shipped()?,
            budget: budget::ContactBudget::new(redis.clone(), &settings.redis_prefix),
            claims: send_claim::SendClaims::new(redis.clone(), &settings.redis_prefix),
            rulebook: rulebook.clone(),
            providers: settings
                .providers
                .build(&http_client, &settings.public_url)
                .map_err(anyhow::Error::msg)?,
            deliveries_topic: config.topics.deliveries.clone(),
            payment_links: payment_links.clone(),
            max_attempts: settings.max_attempts,
            sends: std::sync::atomic::AtomicU64::new(0),
            exit_after_sends: settings.exit_after_sends,
            provider_turns: tokio::sync::Semaphore::new(settings.provider_calls_at_once),
            debtors_at_once: settings.debtors_at_once,
        });
        let mut tasks = tasks::Supervisor::new(&shutdown);
        tasks.spawn(
            "reminder consumer",
            kafka::run_batch_consumer(
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
            ),
        );
        tasks.spawn(
            "ledger consumer",
            kafka::run_batch_consumer(
                ledger_consumer,
                ledger::LedgerView { pool: pool.clone() },
                producer.clone(),
                config.topics.dead_letter.clone(),
                "channels",
                kafka::Batching {
                    max_batch: 1000,
                    linger: std::time::Duration::from_millis(5),
                },
                shutdown.clone(),
            ),
        );
        tasks.spawn(
            "outbox relay",
            outbox::relay(pool.clone(), producer, 5000, shutdown.clone()),
        );
        let webhooks = webhooks::router(webhooks::Webhooks::new(
            pool.clone(),
            &config.topics,
            &settings.public_url,
            &settings.providers,
        ))
        .merge(payments::router(payments::Payments {
            pool: pool.clone(),
            links: payment_links,
            providers: std::sync::Arc::new(settings.payment_providers),
            http: http_client.clone(),
            payments_topic: config.topics.payments.clone(),
            public_url: settings.public_url.trim_end_matches('/').to_string(),
        }));
        tracing::info!(grpc = %grpc.grpc.local_addr()?, http = %http.local_addr()?, "channels serving");
        let http_shutdown = shutdown.clone();
        tasks.spawn("webhook server", async move {
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
        tasks.join().await?;
        Ok(())
    }
}
