//! Everything that can go wrong in scheduling, and the one place it becomes a gRPC status.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    #[error("{field} {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored snapshot: {0}")]
    Snapshot(#[from] prost::DecodeError),
}

impl From<SchedulingError> for Status {
    fn from(err: SchedulingError) -> Status {
        match err {
            SchedulingError::InvalidArgument { field, reason } => {
                recobro_common::grpc::invalid_argument(field, reason)
            }
            SchedulingError::NotFound { what } => Status::not_found(format!("{what} not found")),
            err @ (SchedulingError::Database(_) | SchedulingError::Snapshot(_)) => {
                tracing::error!(error = %err, "request failed");
                Status::unavailable("the scheduler is unavailable, try again")
            }
        }
    }
}
