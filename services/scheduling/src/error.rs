//! Everything that can go wrong in scheduling, and the one place it becomes a gRPC status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

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
            SchedulingError::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                format!("{field} {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            SchedulingError::NotFound { what } => Status::not_found(format!("{what} not found")),
            err @ (SchedulingError::Database(_) | SchedulingError::Snapshot(_)) => {
                tracing::error!(error = %err, "request failed");
                Status::unavailable("the scheduler is unavailable, try again")
            }
        }
    }
}
