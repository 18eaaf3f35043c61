//! Everything that can go wrong in scheduling, and the one place it becomes a gRPC status.

use recobro_common::grpc::{self, Refusal};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored snapshot: {0}")]
    Snapshot(#[from] prost::DecodeError),
}

impl From<SchedulingError> for Status {
    fn from(err: SchedulingError) -> Status {
        match err {
            SchedulingError::Refused(refusal) => refusal.into(),
            SchedulingError::Database(err) => grpc::database(&err, "the scheduler is unavailable, try again"),
            err @ SchedulingError::Snapshot(_) => {
                // A stored snapshot this version cannot read: retrying will not change it.
                tracing::error!(error = %err, "request failed for good");
                Status::internal("a stored record could not be read; retrying will not help")
            }
        }
    }
}
