//! Everything that can go wrong in accounts, and the one place it becomes a gRPC status.

use recobro_common::db;
use recobro_common::grpc::{self, Refusal};
use recobro_common::kafka::Failure;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event encoding: {0}")]
    Encode(#[from] prost::EncodeError),
}

impl AccountsError {
    /// What a consumer does about it: retried if it may pass, else the event is rejected (a
    /// batch is split until the event behind it is parked).
    pub fn failure(&self) -> Failure {
        match self {
            AccountsError::Database(err) => db::failure(err),
            AccountsError::Refused(_) | AccountsError::Encode(_) => Failure::Reject(self.to_string()),
        }
    }
}

impl From<AccountsError> for Status {
    fn from(err: AccountsError) -> Status {
        match err {
            AccountsError::Refused(refusal) => refusal.into(),
            AccountsError::Database(err) => grpc::database(&err, "the ledger is unavailable, try again"),
            err @ AccountsError::Encode(_) => {
                tracing::error!(error = %err, "request failed for good");
                Status::internal("the change could not be encoded; retrying it will not help")
            }
        }
    }
}
