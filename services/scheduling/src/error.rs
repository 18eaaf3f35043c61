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
            err @ (SchedulingError::Database(_) | SchedulingError::Snapshot(_)) => {
                grpc::unavailable(&err, "the scheduler is unavailable, try again")
            }
        }
    }
}
