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
