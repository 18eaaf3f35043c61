//! What every Recobro service really shares: configuration, telemetry, Kafka, Redis and
//! PostgreSQL clients, the transactional outbox, gRPC bootstrap and graceful shutdown.

pub mod cli;
pub mod config;
pub mod db;
pub mod env;
pub mod grpc;
pub mod identity;
pub mod ids;
pub mod kafka;
pub mod metrics;
pub mod names;
pub mod outbox;
pub mod page;
#[cfg(feature = "redis")]
pub mod redis_client;
pub mod secret;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;
pub mod text;
pub mod time;

pub use config::{Config, ConfigError, Env};
pub mod money;

/// The channels debtors are contacted through: the contact rules' vocabulary, shared by every
/// service (unknown names are errors, never guesses).
pub use recobro_rules::{Channel, UnknownChannel};
