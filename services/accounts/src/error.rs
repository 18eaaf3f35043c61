//! Everything that can go wrong in accounts, and the one place it becomes a gRPC status.

use recobro_common::grpc::{self, Refusal};
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

impl From<AccountsError> for Status {
    fn from(err: AccountsError) -> Status {
        match err {
            AccountsError::Refused(refusal) => refusal.into(),
            err @ (AccountsError::Database(_) | AccountsError::Encode(_)) => {
                grpc::unavailable(&err, "the ledger is unavailable, try again")
            }
        }
    }
}
