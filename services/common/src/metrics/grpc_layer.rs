//! One tower layer in front of every gRPC route: calls by method and status code, and their
//! latency. The method label is the path only for a method Recobro defines (from the compiled
//! descriptors), "unknown" otherwise, so a client inventing paths cannot grow the series.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use prost::Message as _;
use tonic::codegen::http;

use super::metrics;

/// Every gRPC path a Recobro server may serve: its own services, health and reflection.
static KNOWN_PATHS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut paths = HashSet::new();
    for set in [
        recobro_proto::v1::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(files) = prost_types::FileDescriptorSet::decode(set) else {
            continue;
        };
        for file in files.file {
            for service in &file.service {
                for method in &service.method {
                    paths.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    for reflection in ["grpc.reflection.v1", "grpc.reflection.v1alpha"] {
        paths.insert(format!("/{reflection}.ServerReflection/ServerReflectionInfo"));
    }
    paths
});

/// The method label of a request path.
pub(super) fn method_label(path: &str) -> &'static str {
    KNOWN_PATHS.get(path).map_or("unknown", String::as_str)
}

#[derive(Clone, Default)]
pub struct MetricsLayer;

impl<S> tower_layer::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService { inner }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, R> tower_service::Service<http::Request<B>> for MetricsService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let method = method_label(request.uri().path());
        let started = Instant::now();
        Box::pin(async move {
            let response = inner.call(request).await;
            // A failed unary call is "trailers-only": its status is in the headers. A call that
            // succeeded carries it in the trailers, after the body: 0 (OK) when the headers have
            // none. A streaming call that fails after its first message counts as OK here.
            let code = match &response {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("0")
                    .to_string(),
                Err(_) => "transport".to_string(),
            };
            let metrics = metrics();
            metrics
                .grpc_requests
                .get_or_create(&vec![("method", method.to_string()), ("code", code)])
                .inc();
            metrics
                .grpc_seconds
                .get_or_create(&vec![("method", method.to_string())])
                .observe(started.elapsed().as_secs_f64());
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_recobro_defines_become_labels() {
        assert_eq!(
            method_label("/recobro.v1.AccountsService/GetDebtor"),
            "/recobro.v1.AccountsService/GetDebtor"
        );
        assert_eq!(
            method_label("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health/Check"
        );
        assert_eq!(method_label("/recobro.v1.AccountsService/Invented"), "unknown");
        assert_eq!(method_label("/x.y/z"), "unknown");
    }
}
