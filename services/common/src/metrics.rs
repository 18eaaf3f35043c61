//! Prometheus metrics: one registry per process, served as text on `GET /metrics` at
//! `RECOBRO_METRICS_ADDR` (see `serve`). Every label takes a bounded set of values (a gRPC
//! method Recobro defines, a status code, a channel, a provider, a topic, a partition, a rule of
//! a pack); never a debtor, an address, an amount or a free-text reason.

mod grpc_layer;

use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use grpc_layer::MetricsLayer;

/// Label names and values of one series.
pub type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Seconds, from half a millisecond to about 16 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Seconds late, from 10 ms to about 20 min.
fn lateness() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 18))
}

/// Messages in a batch, from 1 to 4,096.
fn batch_sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// Every series a Recobro service may export. A process registers them all; those its service
/// never touches export no sample.
pub struct Metrics {
    registry: Registry,
    /// gRPC calls by `method` (the full path, or "unknown" for one Recobro does not define) and
    /// `code` (the gRPC status code as a number).
    pub grpc_requests: Family<Labels, Counter>,
    /// gRPC call latency by `method`, from the request to the response headers.
    pub grpc_seconds: Histograms,
    /// Messages per batch handed to a consumer's handler, by consumer `group`.
    pub kafka_batch_messages: Histograms,
    /// How long a consumer took to apply a batch (parking included), by `group`.
    pub kafka_batch_seconds: Histograms,
    /// Messages a consumer has yet to read, by `group`, `topic` and `partition` (from librdkafka's
    /// statistics, every `RECOBRO_KAFKA_STATS_SECONDS`).
    pub kafka_consumer_lag: Family<Labels, Gauge>,
    /// Messages parked in the dead-letter topic, by `service` and the `topic` they came from.
    /// Each parked message carries its reason in a header; reasons are free text, so not labels.
    pub dead_letters: Family<Labels, Counter>,
    /// Publishes that failed (the caller retries or parks), by `topic`.
    pub kafka_producer_errors: Family<Labels, Counter>,
    /// Rows of this service's outbox not yet published, and the age of the oldest, in seconds.
    pub outbox_backlog: Family<Labels, Gauge>,
    pub outbox_oldest_seconds: Family<Labels, Gauge>,
    /// accounts: ERP events applied to the ledger, by `kind` (created, updated, paid...).
    pub erp_events: Family<Labels, Counter>,
    /// scheduling: reminders whose time has come and that no replica has fired yet.
    pub timers_due: Family<Labels, Gauge>,
    /// scheduling: how late a reminder fired (fire time minus due time), by `kind`
    /// (reminder, statement, escalation).
    pub timer_lateness_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// channels: delivery records by `channel`, `provider` and `status`.
    pub sends: Family<Labels, Counter>,
    /// channels: reminders the contact rules deferred or suppressed, by `decision`, `pack` and
    /// `rule`.
    pub rule_decisions: Family<Labels, Counter>,
    /// channels: how long the contact budget (Redis) took to decide.
    pub budget_seconds: Histograms,
    /// channels: provider calls by `provider`, and how long they took.
    pub provider_seconds: Histograms,
    /// channels: sends whose outcome the provider left unknown (timeouts after the request
    /// went out), by `provider`.
    pub outcome_unknown: Family<Labels, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        let histograms = || Histograms::new_with_constructor(latency as fn() -> Histogram);
        let metrics = Metrics {
            registry: Registry::with_prefix("recobro"),
            grpc_requests: Family::default(),
            grpc_seconds: histograms(),
            kafka_batch_messages: Histograms::new_with_constructor(batch_sizes),
            kafka_batch_seconds: histograms(),
            kafka_consumer_lag: Family::default(),
            dead_letters: Family::default(),
            kafka_producer_errors: Family::default(),
            outbox_backlog: Family::default(),
            outbox_oldest_seconds: Family::default(),
            erp_events: Family::default(),
            timers_due: Family::default(),
            timer_lateness_seconds: Family::new_with_constructor(lateness),
            sends: Family::default(),
            rule_decisions: Family::default(),
            budget_seconds: histograms(),
            provider_seconds: histograms(),
            outcome_unknown: Family::default(),
        };
        let mut registry = metrics.registry;
        registry.register(
            "grpc_requests",
            "gRPC calls by method and status code",
            metrics.grpc_requests.clone(),
        );
        registry.register(
            "grpc_request_seconds",
            "gRPC call latency by method",
            metrics.grpc_seconds.clone(),
        );
        registry.register(
            "kafka_batch_messages",
            "Messages per consumed batch",
            metrics.kafka_batch_messages.clone(),
        );
        registry.register(
            "kafka_batch_seconds",
            "Time to apply a consumed batch",
            metrics.kafka_batch_seconds.clone(),
        );
        registry.register(
            "kafka_consumer_lag_messages",
            "Messages not yet read, per partition",
            metrics.kafka_consumer_lag.clone(),
        );
        registry.register(
            "dead_letters",
            "Messages parked in the dead-letter topic",
            metrics.dead_letters.clone(),
        );
        registry.register(
            "kafka_producer_errors",
            "Failed publishes",
            metrics.kafka_producer_errors.clone(),
        );
        registry.register(
            "outbox_backlog_rows",
            "Outbox rows not yet published",
            metrics.outbox_backlog.clone(),
        );
        registry.register(
            "outbox_oldest_seconds",
            "Age of the oldest unpublished outbox row",
            metrics.outbox_oldest_seconds.clone(),
        );
        registry.register(
            "erp_events",
            "ERP events applied to the ledger",
            metrics.erp_events.clone(),
        );
        registry.register(
            "timers_due",
            "Reminders due and not yet fired",
            metrics.timers_due.clone(),
        );
        registry.register(
            "timer_lateness_seconds",
            "Fire time minus due time",
            metrics.timer_lateness_seconds.clone(),
        );
        registry.register(
            "sends",
            "Delivery records by channel, provider and status",
            metrics.sends.clone(),
        );
        registry.register(
            "rule_decisions",
            "Reminders deferred or suppressed by a contact rule",
            metrics.rule_decisions.clone(),
        );
        registry.register(
            "contact_budget_seconds",
            "Contact budget decision latency",
            metrics.budget_seconds.clone(),
        );
        registry.register(
            "provider_call_seconds",
            "Provider call latency",
            metrics.provider_seconds.clone(),
        );
        registry.register(
            "send_outcome_unknown",
            "Sends whose outcome the provider left unknown",
            metrics.outcome_unknown.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// One label.
pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}

/// Serves `GET /metrics` on `listener` until `shutdown`. Plaintext, like the health port: the
/// series carry no personal data, and Prometheus scrapes from inside the cluster (the network
/// policy admits only the monitoring namespace).
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                metrics().render(),
            )
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text a scrape gets, read back by a real Prometheus text-format parser.
    fn scrape() -> prometheus_parse::Scrape {
        let text = metrics().render();
        prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("parses")
    }

    fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|sample| {
                sample.metric == name
                    && labels
                        .iter()
                        .all(|(key, value)| sample.labels.get(key) == Some(*value))
            })
            .map(|sample| match &sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map(|bucket| bucket.count).unwrap_or_default()
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            })
    }

    #[test]
    fn counters_gauges_and_histograms_render_as_prometheus_text() {
        let m = metrics();
        m.sends
            .get_or_create(&vec![
                ("channel", "email".to_string()),
                ("provider", "sandbox".to_string()),
                ("status", "sent".to_string()),
            ])
            .inc_by(3);
        m.outbox_backlog.get_or_create(&label("table", "outbox")).set(7);
        m.budget_seconds.get_or_create(&Vec::new()).observe(0.002);
        let scrape = scrape();
        assert_eq!(
            value(
                &scrape,
                "recobro_sends_total",
                &[("channel", "email"), ("status", "sent")]
            ),
            Some(3.0)
        );
        assert_eq!(
            value(&scrape, "recobro_outbox_backlog_rows", &[("table", "outbox")]),
            Some(7.0)
        );
        assert_eq!(value(&scrape, "recobro_contact_budget_seconds", &[]), Some(1.0));
    }
}
