//! Everything that can go wrong in accounts, and the one place it becomes a gRPC status.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("{field} {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request is valid but the ledger's state does not allow it now.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event encoding: {0}")]
    Encode(#[from] prost::EncodeError),
}

impl From<AccountsError> for Status {
    fn from(err: AccountsError) -> Status {
        match err {
            AccountsError::InvalidArgument { field, reason } => {
                recobro_common::grpc::invalid_argument(field, reason)
            }
            AccountsError::NotFound { what } => Status::not_found(format!("{what} not found")),
            AccountsError::FailedPrecondition(why) => Status::failed_precondition(why),
            // Internal detail stays in our logs, not in the caller's hands.
            err @ (AccountsError::Database(_) | AccountsError::Encode(_)) => {
                tracing::error!(error = %err, "request failed");
                Status::unavailable("the ledger is unavailable, try again")
            }
        }
    }
}
