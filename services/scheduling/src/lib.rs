//! scheduling: plans each open invoice's collection ladder as durable timers and emits
//! `ReminderDue` events when a step falls due in the debtor's contact window.

pub mod change;
mod deferrals;
mod error;
mod grpc;
pub mod ladder;
pub mod planner;
pub mod statement;
mod store;
pub mod stored;
pub mod strategy;
pub mod timers;

use recobro_common::config::{ConfigError, Env};
use recobro_common::identity::{IdentitySettings, Security};
use recobro_common::{Config, db, grpc as serve, kafka, outbox, tasks};
use recobro_proto::v1::scheduling_service_server::SchedulingServiceServer;
use recobro_rules::Rulebook;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::SchedulingError;
use ladder::ContactWindow;

/// This service's schema, step by step (applied by `recobro-scheduling migrate`).
pub const MIGRATIONS: &[db::Step] = &[
    db::Step {
        version: 1,
        description: "reminders",
        sql: include_str!("../migrations/0001_reminders.sql"),
    },
    db::Step {
        version: 2,
        description: "outbox",
        sql: outbox::MIGRATION,
    },
    db::Step {
        version: 3,
        description: "paused reminders",
        sql: include_str!("../migrations/0002_paused.sql"),
    },
    db::Step {
        version: 4,
        description: "strategies",
        sql: include_str!("../migrations/0003_strategies.sql"),
    },
    db::Step {
        version: 5,
        description: "instalments",
        sql: include_str!("../migrations/0004_instalments.sql"),
    },
    db::Step {
        version: 6,
        description: "parked outbox rows",
        sql: outbox::PARKED_MIGRATION,
    },
    db::Step {
        version: 7,
        description: "escalation grace",
        sql: include_str!("../migrations/0005_escalation_grace.sql"),
    },
    db::Step {
        version: 8,
        description: "statements",
        sql: include_str!("../migrations/0006_statements.sql"),
    },
    db::Step {
        version: 9,
        description: "statement window",
        sql: include_str!("../migrations/0007_statement_window.sql"),
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

/// Scheduling's own settings on top of the shared ones.
/// Timer loops per worker by default: two keep a 2-core box's database busy while each waits
/// on its round trips (docs/benchmarks.md, "Speed").
pub const DEFAULT_TIMER_LOOPS: usize = 2;
/// Reminders claimed per timer-loop transaction by default.
pub const DEFAULT_FIRE_BATCH: usize = 2000;
/// How long a reminder that may join a statement waits after its moment by default (see
/// `Timers::statement_gather`).
pub const DEFAULT_STATEMENT_GATHER_SECONDS: i64 = 30;

pub struct Settings {
    pub common: Config,
    /// TLS, tokens and the health port.
    pub identity: IdentitySettings,
    /// The operator's own window, in the debtor's local time, on top of the rule packs.
    pub window: ContactWindow,
    /// A folder of the operator's strategies (`*.toml`), added to the shipped ones.
    pub strategies_dir: Option<std::path::PathBuf>,
    /// Due reminders claimed per transaction.
    pub fire_batch: i64,
    /// Timer loops firing at once: each claims its own due reminders (SKIP LOCKED), in a
    /// transaction of its own.
    pub timer_loops: usize,
    /// How long a reminder that may join a statement waits after its moment for the debtor's
    /// other invoices of the same ERP import to be planned (see `timers`).
    pub statement_gather: chrono::Duration,
}

/// The longest a statement may wait for the rest of an import: ten minutes.
const MAX_STATEMENT_GATHER_SECONDS: i64 = 600;

impl Settings {
    pub fn from_env(env: &impl Env) -> Result<Settings, ConfigError> {
        let common = Config::from_env(env, "scheduling", 50052)?;
        let days = env.or("RECOBRO_CONTACT_DAYS", "mon-fri");
        let hours = env.or("RECOBRO_CONTACT_HOURS", "09:00-18:00");
        let window = ContactWindow::parse(&days, &hours).map_err(|err| ConfigError::Invalid {
            name: "RECOBRO_CONTACT_DAYS/RECOBRO_CONTACT_HOURS".into(),
            value: format!("{days} {hours}"),
            reason: err.to_string(),
        })?;
        Ok(Settings {
            common,
            identity: IdentitySettings::from_env(env, 50052)?,
            window,
            strategies_dir: env
                .get("RECOBRO_STRATEGIES_DIR")
                .filter(|d| !d.trim().is_empty())
                .map(Into::into),
            fire_batch: env.count_or("RECOBRO_FIRE_BATCH", DEFAULT_FIRE_BATCH)? as i64,
            timer_loops: env.count_or("RECOBRO_TIMER_LOOPS", DEFAULT_TIMER_LOOPS)?,
            statement_gather: {
                let seconds: i64 = env.parse_or(
                    "RECOBRO_STATEMENT_GATHER_SECONDS",
                    DEFAULT_STATEMENT_GATHER_SECONDS,
                )?;
                if !(0..=MAX_STATEMENT_GATHER_SECONDS).contains(&seconds) {
                    return Err(ConfigError::Invalid {
                        name: "RECOBRO_STATEMENT_GATHER_SECONDS".into(),
                        value: seconds.to_string(),
                        reason: format!("must be between 0 and {MAX_STATEMENT_GATHER_SECONDS}"),
                    });
                }
                chrono::Duration::seconds(seconds)
            },
        })
    }
}

pub struct Application {
    settings: Settings,
    listeners: serve::Listeners,
    security: Security,
    pool: sqlx::PgPool,
    rulebook: Rulebook,
    strategies: strategy::Strategies,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let config = &settings.common;
        // A pack that does not parse stops the service at start, not at the first invoice.
        let rulebook = Rulebook::load(config.tenant_rules_dir.as_deref())?;
        let strategies = strategy::Strategies::load(settings.strategies_dir.as_deref())?;
        let security = Security::guarded(&settings.identity, grpc::method_scopes()).await?;
        let pool = connect(config).await?;
        let listeners = serve::Listeners {
            grpc: TcpListener::bind(config.grpc_addr).await?,
            health: Some(TcpListener::bind(settings.identity.health_addr).await?),
            metrics: Some(TcpListener::bind(settings.identity.metrics_addr).await?),
            limits: config.grpc_limits,
        };
        Ok(Application {
            settings,
            listeners,
            security,
            pool,
            rulebook,
            strategies,
        })
    }

    pub fn grpc_port(&self) -> u16 {
        self.listeners
            .grpc
            .local_addr()
            .map(|addr| addr.port())
            .unwrap_or_default()
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            settings,
            listeners,
            security,
            pool,
            rulebook,
            strategies,
        } = self;
        let config = settings.common;
        let producer = kafka::producer(&config.kafka)?;
        let consumer = kafka::consumer(
            &config.kafka,
            &config.topics.consumer_group("scheduling"),
            &[&config.topics.account_events],
        )?;
        let planner = planner::Planner {
            pool: pool.clone(),
            window: settings.window.clone(),
            rulebook: rulebook.clone(),
            strategies: strategies.clone(),
        };
        let mut tasks = tasks::Supervisor::new(&shutdown);
        tasks.spawn(
            "account event consumer",
            kafka::run_consumer(
                consumer,
                planner,
                producer.clone(),
                config.topics.dead_letter.clone(),
                "scheduling",
                shutdown.clone(),
            ),
        );
        let deferral_consumer = kafka::consumer(
            &config.kafka,
            &config.topics.consumer_group("scheduling-deferrals"),
            &[&config.topics.deliveries],
        )?;
        tasks.spawn(
            "deferral consumer",
            kafka::run_consumer(
                deferral_consumer,
                deferrals::Deferrals { pool: pool.clone() },
                producer.clone(),
                config.topics.dead_letter.clone(),
                "scheduling",
                shutdown.clone(),
            ),
        );
        let timers = timers::Timers {
            pool: pool.clone(),
            reminders_topic: config.topics.reminders_due.clone(),
            escalations_topic: config.topics.escalations.clone(),
            batch: settings.fire_batch,
            statement_gather: settings.statement_gather,
        };
        // Several loops, as several replicas would run them: one batch's round trips to
        // PostgreSQL overlap another's work.
        for _ in 0..settings.timer_loops {
            tasks.spawn("timer loop", timers.clone().run(shutdown.clone()));
        }
        tasks.spawn(
            "outbox relay",
            outbox::relay(pool.clone(), producer, 5000, shutdown.clone()),
        );
        tracing::info!(addr = %listeners.grpc.local_addr()?, "scheduling serving gRPC");
        let routes = tonic::service::Routes::new(SchedulingServiceServer::new(grpc::Scheduling {
            pool,
            strategies,
            rulebook,
            window: settings.window,
        }));
        serve::serve(
            listeners,
            routes,
            &["recobro.v1.SchedulingService"],
            security,
            shutdown,
        )
        .await?;
        tasks.join().await?;
        Ok(())
    }
}
