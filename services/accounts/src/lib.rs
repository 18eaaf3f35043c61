//! accounts: the receivables ledger. Ingests ERP invoice events, answers who owes what, and
//! publishes every change to `accounts.events.v1` through its outbox.

mod domain;
mod error;
mod grpc;
mod ingest;
mod store;

use recobro_common::{Config, db, grpc as serve, kafka, outbox};
use recobro_proto::v1::accounts_service_server::AccountsServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::AccountsError;

const MIGRATIONS: &[db::Step] = &[
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
];

pub struct Application {
    config: Config,
    listener: TcpListener,
    pool: sqlx::PgPool,
}

impl Application {
    /// Connects to PostgreSQL (applying migrations) and binds the gRPC port.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let pool = db::connect(&config.database_url, &config.database_schema, MIGRATIONS).await?;
        let listener = TcpListener::bind(config.grpc_addr).await?;
        Ok(Application {
            config,
            listener,
            pool,
        })
    }

    pub fn grpc_port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|addr| addr.port())
            .unwrap_or_default()
    }

    /// Serves gRPC, ingests ERP events and relays the outbox until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            config,
            listener,
            pool,
        } = self;
        let producer = kafka::producer(&config.kafka_brokers)?;
        let group = format!("{}recobro-accounts", topic_prefix(&config));
        let consumer = kafka::consumer(&config.kafka_brokers, &group, &[&config.topics.erp_invoices])?;
        let ingest = ingest::InvoiceIngest {
            pool: pool.clone(),
            account_events_topic: config.topics.account_events.clone(),
        };
        let consuming = tokio::spawn(kafka::run_consumer(
            consumer,
            ingest,
            producer.clone(),
            config.topics.dead_letter.clone(),
            "accounts",
            shutdown.clone(),
        ));
        let relaying = tokio::spawn(outbox::relay(pool.clone(), producer, 500, shutdown.clone()));
        tracing::info!(addr = %listener.local_addr()?, "accounts serving gRPC");
        let routes = tonic::service::Routes::new(AccountsServiceServer::new(grpc::Accounts { pool }));
        serve::serve(listener, routes, &["recobro.v1.AccountsService"], shutdown).await?;
        consuming.await?;
        relaying.await?;
        Ok(())
    }
}

/// The topic prefix doubles as the consumer-group prefix, so isolated environments never share
/// a group.
fn topic_prefix(config: &Config) -> &str {
    config
        .topics
        .erp_invoices
        .strip_suffix("erp.invoices.v1")
        .unwrap_or_default()
}
