//! What every Recobro service really shares: configuration, telemetry, Kafka, Redis and
//! PostgreSQL clients, the transactional outbox, gRPC bootstrap and graceful shutdown.

pub mod config;
pub mod db;
pub mod grpc;
pub mod ids;
pub mod kafka;
pub mod outbox;
pub mod shutdown;
pub mod telemetry;
pub mod time;

pub use config::{Config, ConfigError, Env};
pub mod money;

use recobro_proto::v1::Channel;

/// The name a channel has in our tables and logs.
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Whatsapp => "whatsapp",
        Channel::Unspecified => "unspecified",
    }
}

pub fn channel_from_name(name: &str) -> Channel {
    match name {
        "email" => Channel::Email,
        "sms" => Channel::Sms,
        "whatsapp" => Channel::Whatsapp,
        _ => Channel::Unspecified,
    }
}
pub mod rules;
