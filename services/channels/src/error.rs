//! Everything that can go wrong in channels, and the one place it becomes a gRPC status.

use recobro_common::grpc::{self, Refusal};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ChannelsError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("contact budget (redis): {0}")]
    Redis(#[from] redis::RedisError),
}

impl From<ChannelsError> for Status {
    fn from(err: ChannelsError) -> Status {
        match err {
            ChannelsError::Refused(refusal) => refusal.into(),
            ChannelsError::Database(err) => grpc::database(&err, "channels are unavailable, try again"),
            err @ ChannelsError::Redis(_) => grpc::unavailable(&err, "channels are unavailable, try again"),
        }
    }
}
