//! Everything that can go wrong in channels, and the one place it becomes a gRPC status.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ChannelsError {
    #[error("{field} {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("contact budget (redis): {0}")]
    Redis(#[from] redis::RedisError),
}

impl From<ChannelsError> for Status {
    fn from(err: ChannelsError) -> Status {
        match err {
            ChannelsError::InvalidArgument { field, reason } => {
                recobro_common::grpc::invalid_argument(field, reason)
            }
            ChannelsError::NotFound { what } => Status::not_found(format!("{what} not found")),
            err @ (ChannelsError::Database(_) | ChannelsError::Redis(_)) => {
                tracing::error!(error = %err, "request failed");
                Status::unavailable("channels are unavailable, try again")
            }
        }
    }
}
