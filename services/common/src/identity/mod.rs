//! Who is calling: TLS on every gRPC port (optionally verifying client certificates), OAuth 2.0
//! JWT access tokens (RFC 9068) checked against the issuer's JWKS, the tenant taken from the
//! token, scopes per method, and certificate-bound tokens (RFC 8705). One guard for every
//! service: `grpc::serve` puts it in front of the service's routes.
//!
//! A handler reads the checked `Caller` from its request (`Caller::of`) and takes the tenant
//! from it (`Caller::tenant_for`): a request naming another tenant is refused, and every query
//! is then scoped by the caller's tenant, so another tenant's ids are simply not found.

mod caller;
pub mod client;
mod jwks;
mod layer;
mod settings;
mod tls;
mod token;

pub use caller::{Caller, Scope};
pub use layer::{AsCaller, AuthLayer, Guard, MethodScopes};
pub use settings::{IdentitySettings, KeySource};
pub use tls::{ReloadingTls, accept_tls};
pub use token::{Verifier, certificate_thumbprint};

use std::sync::Arc;

/// How a gRPC port admits calls.
pub enum Security {
    /// TLS with these files and a token checked by this guard: how every service runs.
    Guarded {
        tls: Arc<ReloadingTls>,
        guard: Arc<Guard>,
        reflection: bool,
    },
    /// Plaintext and no tokens, every call acting as this caller. Only for measuring what TLS
    /// and tokens cost (the accounts `grpc_auth` benchmark): no setting selects it.
    Plaintext(Caller),
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Keys(#[from] jwks::JwksError),
}

impl Security {
    /// Loads the certificate and the issuer's keys now: a service that cannot read them does
    /// not start.
    pub async fn guarded(
        settings: &IdentitySettings,
        methods: MethodScopes,
    ) -> Result<Security, IdentityError> {
        Ok(Security::Guarded {
            tls: ReloadingTls::load(settings)?,
            guard: Arc::new(Guard {
                verifier: Verifier::load(settings).await?,
                methods,
            }),
            reflection: settings.reflection,
        })
    }
}
