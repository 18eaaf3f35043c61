//! accounts: the receivables ledger. Ingests ERP invoice events, answers who owes what and who
//! may be contacted how, computes collection KPIs, and publishes every change to
//! `accounts.events.v1` through its outbox.

pub mod backfill;
pub mod csv_import;
mod domain;
mod error;
mod escalations;
mod events;
mod grpc;
mod handoffs;
mod holds;
mod payments;

pub use grpc::method_scopes;
pub mod ingest;
pub mod kpi;
pub mod listening;
pub mod promises;
pub mod responses;
mod states;
mod store;
mod work_queue;

use std::time::Duration;

use recobro_common::config::{ConfigError, Env};
use recobro_common::identity::{IdentitySettings, Security};
use recobro_common::kafka::Batching;
use recobro_common::{Config, db, grpc as serve, kafka, outbox, tasks};
use recobro_proto::v1::accounts_service_server::AccountsServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use domain::InvoiceEvent;
pub use error::AccountsError;

/// This service's schema, step by step (applied by `recobro-accounts migrate`).
pub const MIGRATIONS: &[db::Step] = &[
    db::Step {
        version: 1,
        description: "ledger",
        sql: include_str!("../migrations/0001_ledger.sql"),
    },
    db::Step {
        version: 2,
        description: "outbox",
        sql: outbox::MIGRATION,
    },
    db::Step {
        version: 3,
        description: "debtor region",
        sql: include_str!("../migrations/0002_debtor_region.sql"),
    },
    db::Step {
        version: 4,
        description: "ledger depth",
        sql: include_str!("../migrations/0003_ledger_depth.sql"),
    },
    // Written with the ledger depth step but never listed until now: lookups by debtor alone.
    db::Step {
        version: 5,
        description: "indexes",
        sql: include_str!("../migrations/0004_indexes.sql"),
    },
    db::Step {
        version: 6,
        description: "consent",
        sql: include_str!("../migrations/0005_consent.sql"),
    },
    db::Step {
        version: 7,
        description: "backfill",
        sql: include_str!("../migrations/0006_backfill.sql"),
    },
    db::Step {
        version: 8,
        description: "parked outbox rows",
        sql: outbox::PARKED_MIGRATION,
    },
    db::Step {
        version: 9,
        description: "listening",
        sql: include_str!("../migrations/0007_listening.sql"),
    },
    db::Step {
        version: 10,
        description: "hand-offs",
        sql: include_str!("../migrations/0008_handoffs.sql"),
    },
    db::Step {
        version: 11,
        description: "unconfirmed claims",
        sql: include_str!("../migrations/0009_claim_unconfirmed.sql"),
    },
    db::Step {
        version: 12,
        description: "payment reversals",
        sql: include_str!("../migrations/0010_payment_reversals.sql"),
    },
];

/// Accounts' own settings on top of the shared ones.
/// ERP consumers (and transactions in flight) by default: two keep a 2-core box's database and
/// consumer both busy (docs/benchmarks.md, "Speed").
pub const DEFAULT_INGEST_CONSUMERS: usize = 2;

pub struct Settings {
    pub common: Config,
    /// TLS, tokens and the health port.
    pub identity: IdentitySettings,
    /// Days a promise to pay may run late before it counts as broken.
    pub promise_grace_days: i32,
    /// How often due promises are judged.
    pub promise_check: Duration,
    /// ERP events applied per transaction at most.
    pub ingest_batch: usize,
    /// ERP consumers in the group, each applying its share of the partitions.
    pub ingest_consumers: usize,
    /// What debtors' replies may do, and the work queue's SLAs.
    pub listening: listening::ListeningSettings,
}

impl Settings {
    pub fn from_env(env: &impl Env) -> Result<Settings, ConfigError> {
        Ok(Settings {
            common: Config::from_env(env, "accounts", 50051)?,
            identity: IdentitySettings::from_env(env, 50051)?,
            promise_grace_days: env.parse_or("RECOBRO_PROMISE_GRACE_DAYS", 2)?,
            promise_check: Duration::from_secs(env.parse_or("RECOBRO_PROMISE_CHECK_SECONDS", 300)?),
            ingest_batch: env.parse_or("RECOBRO_INGEST_BATCH", 2000)?,
            ingest_consumers: env.count_or("RECOBRO_INGEST_CONSUMERS", DEFAULT_INGEST_CONSUMERS)?,
            listening: listening::ListeningSettings {
                claim_days: env.parse_or("RECOBRO_CLAIMED_PAID_HOLD_DAYS", 5)?,
                promise_horizon_days: env.parse_or("RECOBRO_REPLY_PROMISE_HORIZON_DAYS", 45)?,
                promise_grace_days: env.parse_or("RECOBRO_PROMISE_GRACE_DAYS", 2)?,
                sla: listening::WorkSla {
                    claimed_paid: hours(env, "RECOBRO_WORK_SLA_CLAIMED_PAID_HOURS", 24)?,
                    unclear_promise: hours(env, "RECOBRO_WORK_SLA_UNCLEAR_PROMISE_HOURS", 24)?,
                    dispute: hours(env, "RECOBRO_WORK_SLA_DISPUTE_HOURS", 48)?,
                    reply: hours(env, "RECOBRO_WORK_SLA_REPLY_HOURS", 72)?,
                    broken_promise: hours(env, "RECOBRO_WORK_SLA_BROKEN_PROMISE_HOURS", 24)?,
                    collector: hours(env, "RECOBRO_WORK_SLA_COLLECTOR_HOURS", 48)?,
                    unsure_opt_out: hours(env, "RECOBRO_WORK_SLA_UNSURE_OPT_OUT_HOURS", 24)?,
                    payment_mismatch: hours(env, "RECOBRO_WORK_SLA_PAYMENT_MISMATCH_HOURS", 24)?,
                    payment_reversed: hours(env, "RECOBRO_WORK_SLA_PAYMENT_REVERSED_HOURS", 24)?,
                },
            },
        })
    }
}

fn hours(env: &impl Env, name: &str, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(
        env.parse_or::<u64>(name, default)?.saturating_mul(3600),
    ))
}

pub struct Application {
    settings: Settings,
    listeners: serve::Listeners,
    security: Security,
    pool: sqlx::PgPool,
}

/// Connects as the service's runtime role; the schema must be migrated already.
pub async fn connect(config: &Config) -> Result<sqlx::PgPool, sqlx::Error> {
    db::connect(&config.database, &config.database_schema, MIGRATIONS).await
}

/// Migrates, then connects: for tools, tests and benchmarks that run as the local stack's
/// administrator, never for the service.
pub async fn migrate_and_connect(config: &Config) -> Result<sqlx::PgPool, sqlx::Error> {
    db::migrate_and_connect(&config.database, &config.database_schema, MIGRATIONS).await
}

impl Application {
    /// Connects to PostgreSQL (applying migrations) and binds the gRPC port.
    /// Loads the TLS certificate and the issuer's keys, connects to PostgreSQL (applying
    /// migrations) and binds the gRPC and health ports.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let security = Security::guarded(&settings.identity, grpc::method_scopes()).await?;
        Application::build_with(settings, security).await
    }

    /// The same with the given security: `Security::Plaintext` only measures what TLS and
    /// tokens cost (the `grpc_auth` benchmark).
    pub async fn build_with(settings: Settings, security: Security) -> anyhow::Result<Application> {
        let pool = connect(&settings.common).await?;
        let listeners = serve::Listeners {
            grpc: TcpListener::bind(settings.common.grpc_addr).await?,
            health: Some(TcpListener::bind(settings.identity.health_addr).await?),
            metrics: Some(TcpListener::bind(settings.identity.metrics_addr).await?),
            limits: settings.common.grpc_limits,
        };
        Ok(Application {
            settings,
            listeners,
            security,
            pool,
        })
    }

    pub fn grpc_port(&self) -> u16 {
        self.listeners
            .grpc
            .local_addr()
            .map(|addr| addr.port())
            .unwrap_or_default()
    }

    /// Serves gRPC, ingests ERP events and opt-outs, judges promises and relays the outbox until
    /// `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            settings,
            listeners,
            security,
            pool,
        } = self;
        let config = &settings.common;
        let producer = kafka::producer(&config.kafka)?;
        let group = config.topics.consumer_group("accounts");
        // Every tenant's ERP topic, by pattern: a tenant onboarded while accounts runs is read
        // within kafka::PATTERN_REFRESH.
        let pattern = config.topics.erp_invoices_pattern();
        let mut tasks = tasks::Supervisor::new(&shutdown);
        // Several consumers in the group: Kafka deals the partitions out between them, each
        // applies its own in order, and their transactions run at once (one at a time leaves
        // the database waiting on the consumer and the other way round).
        for _ in 0..settings.ingest_consumers {
            let consumer = kafka::consumer(&config.kafka, &group, &[&pattern])?;
            let ingest = ingest::InvoiceIngest {
                pool: pool.clone(),
                account_events_topic: config.topics.account_events.clone(),
                topics: config.topics.clone(),
            };
            tasks.spawn(
                "erp consumer",
                kafka::run_batch_consumer(
                    consumer,
                    ingest,
                    producer.clone(),
                    config.topics.dead_letter.clone(),
                    "accounts",
                    Batching {
                        max_batch: settings.ingest_batch,
                        linger: Duration::from_millis(5),
                    },
                    shutdown.clone(),
                ),
            );
        }
        // Opt-outs and replies channels received, in a group of their own (under accounts' prefix, which
        // the broker grants): a slow ERP backlog never delays a withdrawal.
        let responses_group = format!("{group}-responses");
        let responses_consumer =
            kafka::consumer(&config.kafka, &responses_group, &[&config.topics.responses])?;
        let opt_outs = responses::ResponseIngest {
            opt_outs: responses::OptOutIngest {
                pool: pool.clone(),
                account_events_topic: config.topics.account_events.clone(),
                unsure_sla: settings.listening.sla.unsure_opt_out,
            },
            listening: settings.listening.clone(),
        };
        tasks.spawn(
            "response consumer",
            kafka::run_batch_consumer(
                responses_consumer,
                opt_outs,
                producer.clone(),
                config.topics.dead_letter.clone(),
                "accounts",
                Batching {
                    max_batch: 500,
                    linger: Duration::from_millis(5),
                },
                shutdown.clone(),
            ),
        );
        // What debtors paid through their payment links (channels verified the provider):
        // settled in the ledger, or a work item when it cannot be applied as asked.
        let payments_group = format!("{group}-payments");
        let payments_consumer = kafka::consumer(&config.kafka, &payments_group, &[&config.topics.payments])?;
        tasks.spawn(
            "payment consumer",
            kafka::run_batch_consumer(
                payments_consumer,
                payments::PaymentIngest {
                    pool: pool.clone(),
                    account_events_topic: config.topics.account_events.clone(),
                    sla: settings.listening.sla.clone(),
                },
                producer.clone(),
                config.topics.dead_letter.clone(),
                "accounts",
                Batching {
                    max_batch: 200,
                    linger: Duration::from_millis(5),
                },
                shutdown.clone(),
            ),
        );
        // A ladder's escalations: work items for collectors, hand-offs for everyone else.
        let escalations_group = format!("{group}-escalations");
        let escalations_consumer =
            kafka::consumer(&config.kafka, &escalations_group, &[&config.topics.escalations])?;
        tasks.spawn(
            "escalation consumer",
            kafka::run_batch_consumer(
                escalations_consumer,
                escalations::EscalationIngest {
                    pool: pool.clone(),
                    sla: settings.listening.sla.clone(),
                },
                producer.clone(),
                config.topics.dead_letter.clone(),
                "accounts",
                Batching {
                    max_batch: 500,
                    linger: Duration::from_millis(5),
                },
                shutdown.clone(),
            ),
        );
        let judge = promises::PromiseJudge {
            pool: pool.clone(),
            account_events_topic: config.topics.account_events.clone(),
            every: settings.promise_check,
            broken_promise_sla: settings.listening.sla.broken_promise,
        };
        tasks.spawn("promise judge", judge.run(shutdown.clone()));
        // Once per start; the outbox relay below publishes what it queues.
        let backfill_pool = pool.clone();
        let backfill_topic = config.topics.account_events.clone();
        let backfilling = tokio::spawn(async move {
            if let Err(err) = backfill::publish_missing_records(&backfill_pool, &backfill_topic).await {
                // Not fatal: what is left is published at the next start.
                tracing::error!(error = %err, "publishing missing records stopped");
            }
        });
        tasks.spawn(
            "outbox relay",
            outbox::relay(pool.clone(), producer, 2000, shutdown.clone()),
        );
        tracing::info!(addr = %listeners.grpc.local_addr()?, "accounts serving gRPC");
        let accounts = grpc::Accounts {
            pool,
            account_events_topic: config.topics.account_events.clone(),
            promise_grace_days: settings.promise_grace_days,
        };
        let routes = tonic::service::Routes::new(AccountsServiceServer::new(accounts));
        serve::serve(
            listeners,
            routes,
            &["recobro.v1.AccountsService"],
            security,
            shutdown,
        )
        .await?;
        backfilling.await?;
        tasks.join().await?;
        Ok(())
    }
}
