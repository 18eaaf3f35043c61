//! The guard in front of every gRPC route: a verified token, the scope the method needs, and
//! the caller handed to the handler. Health stays open (probes); everything else, reflection
//! included, needs a token.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::CertificateDer;
use tonic::Status;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::{Caller, Scope, Verifier};

/// The scope each method of a service needs, by gRPC path ("/recobro.v1.X/Method"). A method
/// missing from the table is refused to everyone: nothing is open by omission.
#[derive(Debug, Clone, Default)]
pub struct MethodScopes(HashMap<String, Scope>);

impl MethodScopes {
    pub fn new(service: &str, methods: &[(&str, Scope)]) -> MethodScopes {
        MethodScopes(
            methods
                .iter()
                .map(|(method, scope)| (format!("/{service}/{method}"), *scope))
                .collect(),
        )
    }

    pub fn merged(mut self, other: MethodScopes) -> MethodScopes {
        self.0.extend(other.0);
        self
    }

    pub fn scope(&self, path: &str) -> Option<Scope> {
        self.0.get(path).copied()
    }

    /// Every path in the table, for tests that hold it against the service's descriptor.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// What the guard needs; shared by every connection.
pub struct Guard {
    pub verifier: Verifier,
    pub methods: MethodScopes,
}

/// What the guard reads off a request, taken before the request waits for anything.
struct Presented {
    path: String,
    authorization: Option<String>,
    certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

impl Presented {
    fn of<B>(request: &http::Request<B>) -> Presented {
        Presented {
            path: request.uri().path().to_string(),
            authorization: request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string),
            certs: request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(TlsConnectInfo::peer_certs),
        }
    }
}

impl Guard {
    /// The caller of a request, or why it is refused. `Ok(None)` for health checks.
    async fn admit(&self, presented: Presented) -> Result<Option<Caller>, Status> {
        let path = presented.path.as_str();
        if path.starts_with("/grpc.health.v1.Health/") {
            return Ok(None);
        }
        let client_cert = presented.certs.as_ref().and_then(|certs| certs.first());
        let caller = self
            .verifier
            .verify(presented.authorization.as_deref(), client_cert)
            .await?;
        if path.starts_with("/grpc.reflection.") {
            // Reading the API's shape needs a valid token, whatever its scopes.
            return Ok(Some(caller));
        }
        let Some(needed) = self.methods.scope(path) else {
            return Err(Status::permission_denied("no scope grants this method"));
        };
        if !caller.scopes.contains(&needed) {
            return Err(Status::permission_denied(format!(
                "the token lacks the scope {needed}"
            )));
        }
        Ok(Some(caller))
    }
}

#[derive(Clone)]
pub struct AuthLayer {
    guard: Arc<Guard>,
}

impl AuthLayer {
    pub fn new(guard: Arc<Guard>) -> AuthLayer {
        AuthLayer { guard }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            guard: self.guard.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    guard: Arc<Guard>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, R> tower_service::Service<http::Request<B>> for AuthService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The service that was polled ready serves this call; a fresh clone waits for the next.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let guard = self.guard.clone();
        let presented = Presented::of(&request);
        Box::pin(async move {
            match guard.admit(presented).await {
                Ok(Some(caller)) => {
                    request.extensions_mut().insert(caller);
                }
                Ok(None) => {}
                Err(status) => return Ok(status.into_http()),
            }
            inner.call(request).await
        })
    }
}

/// Every call acts as this caller, with no TLS and no token: only `Security::Plaintext`, which
/// only the benchmark that measures what TLS and tokens cost uses.
#[derive(Clone)]
pub struct AsCaller(pub Caller);

impl<S> tower_layer::Layer<S> for AsCaller {
    type Service = AsCallerService<S>;

    fn layer(&self, inner: S) -> AsCallerService<S> {
        AsCallerService {
            inner,
            caller: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AsCallerService<S> {
    inner: S,
    caller: Caller,
}

impl<S, B> tower_service::Service<http::Request<B>> for AsCallerService<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> S::Future {
        request.extensions_mut().insert(self.caller.clone());
        self.inner.call(request)
    }
}
