//! gRPC bootstrap: TLS and the token guard (`identity`), health on a plaintext port of its own
//! (for Kubernetes probes), reflection when asked for, a span per call that continues the
//! caller's trace, and graceful shutdown.

use opentelemetry::propagation::Extractor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::identity::{AsCaller, AuthLayer, Security, accept_tls};
use crate::metrics::MetricsLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("health server: {0}")]
    Health(String),
    #[error("metrics server: {0}")]
    Metrics(String),
}

/// The ports a service listens on: gRPC (TLS and tokens) and plaintext health for probes.
pub struct Listeners {
    pub grpc: TcpListener,
    /// Serves only `grpc.health.v1`, without TLS: kubelet's gRPC probes cannot speak TLS.
    pub health: Option<TcpListener>,
    /// Serves `GET /metrics` (Prometheus text), without TLS like health.
    pub metrics: Option<TcpListener>,
    /// What one call and one connection may take on `grpc`.
    pub limits: Limits,
}

/// Bounds that keep one client from holding a service: a call that runs longer than
/// `deadline` is cancelled (`CANCELLED`, "Timeout expired"; a shorter `grpc-timeout` from the
/// client wins), and a connection with `calls_per_connection` calls in flight is answered
/// `RESOURCE_EXHAUSTED` for the next one, instead of queueing it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub deadline: std::time::Duration,
    pub calls_per_connection: usize,
}

/// Serves `routes` (the service's own gRPC services) with health, and reflection when the
/// settings ask for it, until `shutdown`, letting in-flight calls finish. With
/// `Security::Guarded` every call but health comes over TLS with a token the guard accepts.
pub async fn serve(
    listeners: Listeners,
    routes: Routes,
    service_names: &[&str],
    security: Security,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        health.set_service_status(*name, ServingStatus::Serving).await;
    }
    let health_only = match listeners.health {
        Some(listener) => {
            let routes = Routes::new(health_service.clone());
            let stop = shutdown.clone();
            Some(tokio::spawn(
                tonic::transport::Server::builder()
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop.cancelled_owned()),
            ))
        }
        None => None,
    };
    let metrics_only = listeners
        .metrics
        .map(|listener| tokio::spawn(crate::metrics::serve(listener, shutdown.clone())));
    let names: Vec<String> = service_names.iter().map(|name| name.to_string()).collect();
    let draining = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            // Probes see NOT_SERVING while in-flight calls finish.
            for name in names {
                health.set_service_status(name, ServingStatus::NotServing).await;
            }
        }
    };
    let routes = routes.add_service(health_service);
    match security {
        Security::Guarded {
            tls,
            guard,
            reflection,
        } => {
            let routes = if reflection {
                let (v1, v1alpha) = reflection_services(service_names)?;
                routes.add_service(v1).add_service(v1alpha)
            } else {
                routes
            };
            let incoming = accept_tls(listeners.grpc, tls, shutdown.clone());
            tonic::transport::Server::builder()
                .timeout(listeners.limits.deadline)
                .concurrency_limit_per_connection(listeners.limits.calls_per_connection)
                .load_shed(true)
                .trace_fn(call_span)
                .layer(MetricsLayer)
                .layer(AuthLayer::new(guard))
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, draining)
                .await?;
        }
        Security::Plaintext(caller) => {
            tonic::transport::Server::builder()
                .timeout(listeners.limits.deadline)
                .concurrency_limit_per_connection(listeners.limits.calls_per_connection)
                .load_shed(true)
                .trace_fn(call_span)
                .layer(MetricsLayer)
                .layer(AsCaller(caller))
                .add_routes(routes)
                .serve_with_incoming_shutdown(TcpIncoming::from(listeners.grpc), draining)
                .await?;
        }
    }
    if let Some(health_only) = health_only {
        health_only
            .await
            .map_err(|err| ServeError::Health(err.to_string()))??;
    }
    if let Some(metrics_only) = metrics_only {
        metrics_only
            .await
            .map_err(|err| ServeError::Metrics(err.to_string()))?
            .map_err(|err| ServeError::Metrics(err.to_string()))?;
    }
    Ok(())
}

/// Reflection in both protocol versions (clients such as `ghz` speak only v1alpha), listing
/// only the services this server serves, and describing `google.rpc` error details.
fn reflection_services(
    service_names: &[&str],
) -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    ServeError,
> {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(recobro_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc.Status and its details (BadRequest...), so that a reflection client
            // decodes an error's details without proto files of its own.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
        for name in service_names {
            builder = builder.with_service_name(*name);
        }
        builder.with_service_name("grpc.health.v1.Health")
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

fn call_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.request",
        otel.kind = "server",
        rpc.system = "grpc",
        otel.name = %request.uri().path(),
    );
    let carrier = MetadataExtractor(request.headers());
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    let _ = span.set_parent(parent);
    span
}

struct MetadataExtractor<'a>(&'a http::HeaderMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// `InvalidArgument` naming the field, with a `google.rpc.BadRequest` detail that clients can
/// read field by field.
pub fn invalid_argument(field: String, reason: String) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    tonic::Status::with_error_details(
        tonic::Code::InvalidArgument,
        format!("{field} {reason}"),
        ErrorDetails::with_bad_request_violation(field, reason),
    )
}

/// The caller's mistakes, answered the same way by every service. Each service's error enum
/// wraps them (`#[error(transparent)] Refused(#[from] Refusal)`) beside its own failures.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{field} {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request is valid but the state does not allow it now.
    #[error("{0}")]
    FailedPrecondition(String),
}

impl Refusal {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Refusal {
        Refusal::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Refusal {
        Refusal::NotFound { what: what.into() }
    }
}

impl From<Refusal> for tonic::Status {
    fn from(refusal: Refusal) -> tonic::Status {
        match refusal {
            Refusal::InvalidArgument { field, reason } => invalid_argument(field, reason),
            Refusal::NotFound { what } => tonic::Status::not_found(format!("{what} not found")),
            Refusal::FailedPrecondition(why) => tonic::Status::failed_precondition(why),
        }
    }
}

/// A failure of ours (database, Redis, a stored value we cannot read): logged here, where it
/// is handled, and answered without its detail, which stays out of the caller's hands.
pub fn unavailable(err: &dyn std::fmt::Display, answer: &'static str) -> tonic::Status {
    tracing::error!(error = %err, "request failed");
    tonic::Status::unavailable(answer)
}

/// A database error as the caller should see it: `INTERNAL` when PostgreSQL refused the
/// statement for good (retrying the same request cannot help, and `UNAVAILABLE` would tell
/// clients to retry forever), else `UNAVAILABLE` with `answer`. Logged as `db::described` says
/// (no value PostgreSQL quoted); the caller is told neither the statement nor the values.
pub fn database(err: &sqlx::Error, answer: &'static str) -> tonic::Status {
    let error = crate::db::described(err);
    if crate::db::is_permanent(err) {
        tracing::error!(%error, "request failed for good");
        tonic::Status::internal("the request could not be stored; retrying it will not help")
    } else {
        unavailable(&error, answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_error_that_will_not_pass_is_internal_not_unavailable() {
        let decode = sqlx::Error::Decode("a stored value this version cannot read".into());
        assert_eq!(database(&decode, "try again").code(), tonic::Code::Internal);
        assert_eq!(
            database(&sqlx::Error::PoolTimedOut, "try again").code(),
            tonic::Code::Unavailable
        );
    }

    #[test]
    fn refusals_keep_their_codes_and_name_the_field() {
        let status = tonic::Status::from(Refusal::invalid("debtor.time_zone", "is not an IANA zone"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "debtor.time_zone is not an IANA zone");
        let status = tonic::Status::from(Refusal::not_found("invoice 7"));
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::NotFound, "invoice 7 not found")
        );
        let status = tonic::Status::from(Refusal::FailedPrecondition("the invoice is paid".into()));
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let status = unavailable(&"connection refused", "the ledger is unavailable, try again");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("refused"), "no internal detail");
    }
}
