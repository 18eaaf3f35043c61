//! Tracing for every service: logs to stdout always, spans exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace context for propagation.
//!
//! Export is over TLS only: the endpoint must be `https://`; the collector's certificate is
//! checked against `OTEL_EXPORTER_OTLP_CERTIFICATE` (a PEM CA file) or else the webpki roots,
//! and `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`/`_CLIENT_KEY` present a client certificate.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_otlp::WithTonicConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::env::{Env, ProcessEnv};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[error("{name}: {reason}")]
    Setting { name: &'static str, reason: String },
}

/// Flushes spans when dropped at the end of `main`.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("flushing spans failed: {err}");
        }
    }
}

/// Installs the global subscriber and propagator. Log level from `RUST_LOG` (default `info`).
pub fn init(service: &'static str) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut builder =
        SdkTracerProvider::builder().with_resource(Resource::builder().with_service_name(service).build());
    // Without an endpoint spans still get ids, so trace context still crosses Kafka and gRPC.
    if let Some(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_tls_config(otlp_tls(&endpoint, &ProcessEnv)?)
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider.clone());
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()?;
    Ok(Telemetry { provider })
}

/// The TLS settings of the OTLP exporter; a plaintext endpoint is refused.
fn otlp_tls(endpoint: &str, env: &impl Env) -> Result<ClientTlsConfig, TelemetryError> {
    if !endpoint.starts_with("https://") {
        return Err(TelemetryError::Setting {
            name: "OTEL_EXPORTER_OTLP_ENDPOINT",
            reason: "spans are exported over TLS only: use an https:// endpoint".into(),
        });
    }
    if env
        .get("OTEL_EXPORTER_OTLP_INSECURE")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Err(TelemetryError::Setting {
            name: "OTEL_EXPORTER_OTLP_INSECURE",
            reason: "plaintext export is not supported".into(),
        });
    }
    let read = |name: &'static str| -> Result<Option<Vec<u8>>, TelemetryError> {
        match env.get(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(path) => std::fs::read(path.trim())
                .map(Some)
                .map_err(|err| TelemetryError::Setting {
                    name,
                    reason: format!("cannot read {}: {err}", path.trim()),
                }),
        }
    };
    let mut tls = ClientTlsConfig::new();
    tls = match read("OTEL_EXPORTER_OTLP_CERTIFICATE")? {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
        None => tls.with_webpki_roots(),
    };
    match (
        read("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")?,
        read("OTEL_EXPORTER_OTLP_CLIENT_KEY")?,
    ) {
        (Some(cert), Some(key)) => tls = tls.identity(Identity::from_pem(cert, key)),
        (None, None) => {}
        _ => {
            return Err(TelemetryError::Setting {
                name: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                reason: "a client certificate needs its key (OTEL_EXPORTER_OTLP_CLIENT_KEY), and the other way round"
                    .into(),
            });
        }
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn plaintext_export_is_refused() {
        let env = HashMap::new();
        let err = otlp_tls("http://collector:4317", &env).expect_err("plaintext endpoint");
        assert!(err.to_string().contains("https://"), "{err}");
        let insecure = HashMap::from([("OTEL_EXPORTER_OTLP_INSECURE".to_string(), "true".to_string())]);
        assert!(otlp_tls("https://collector:4317", &insecure).is_err());
        assert!(otlp_tls("https://collector:4317", &env).is_ok());
    }

    #[test]
    fn a_missing_ca_file_names_the_setting() {
        let env = HashMap::from([(
            "OTEL_EXPORTER_OTLP_CERTIFICATE".to_string(),
            "/nonexistent/ca.pem".to_string(),
        )]);
        let err = otlp_tls("https://collector:4317", &env).expect_err("missing CA");
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_CERTIFICATE"),
            "{err}"
        );
    }
}
