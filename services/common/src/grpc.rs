//! gRPC bootstrap: health (for Kubernetes probes), reflection, a span per call that continues
//! the caller's trace, and graceful shutdown.

use opentelemetry::propagation::Extractor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `routes` (the service's own gRPC services) plus health and reflection on `listener`
/// until `shutdown`, letting in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        health.set_service_status(*name, ServingStatus::Serving).await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(recobro_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = routes.add_service(health_service).add_service(reflection);
    let names: Vec<String> = service_names.iter().map(|name| name.to_string()).collect();
    tonic::transport::Server::builder()
        .trace_fn(call_span)
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
            shutdown.cancelled().await;
            // Probes see NOT_SERVING while in-flight calls finish.
            for name in names {
                health.set_service_status(name, ServingStatus::NotServing).await;
            }
        })
        .await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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
