//! W3C trace context carried in Kafka headers, so one reminder's trace spans every service.

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::TRACEPARENT;

/// Headers carrying the W3C trace context of `span`.
pub fn trace_headers(span: &tracing::Span) -> OwnedHeaders {
    let mut carrier = HeaderInjector(OwnedHeaders::new());
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&span.context(), &mut carrier)
    });
    carrier.0
}

/// The W3C `traceparent` of `span`, for storing beside a row that will be published later.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let headers = trace_headers(span);
    headers
        .iter()
        .find(|h| h.key == TRACEPARENT)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string)
}

/// The trace context a message carries, if any.
pub fn trace_context<H: Headers>(headers: Option<&H>) -> opentelemetry::Context {
    let Some(headers) = headers else {
        return opentelemetry::Context::new();
    };
    let carrier = HeaderExtractor(
        headers
            .iter()
            .filter_map(|h| Some((h.key.to_string(), std::str::from_utf8(h.value?).ok()?.to_string())))
            .collect(),
    );
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier))
}

/// The context described by a stored `traceparent` string.
pub fn context_from_traceparent(traceparent: &str) -> opentelemetry::Context {
    let carrier = HeaderExtractor(vec![(TRACEPARENT.to_string(), traceparent.to_string())]);
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier))
}

/// Links `span` to the trace a stored `traceparent` names: a debtor's reply starts a trace of its
/// own, linked to the delivery it answers (a reply can come days later, so it is no child).
pub fn link_to_traceparent(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::trace::TraceContextExt as _;
    let linked = context_from_traceparent(traceparent)
        .span()
        .span_context()
        .clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

struct HeaderInjector(OwnedHeaders);

impl Injector for HeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        let headers = std::mem::replace(&mut self.0, OwnedHeaders::new());
        self.0 = headers.insert(Header {
            key,
            value: Some(&value),
        });
    }
}

struct HeaderExtractor(Vec<(String, String)>);

impl Extractor for HeaderExtractor {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// The `traceparent` header a message carries, if any: a batch keeps each event in its own trace.
pub fn message_traceparent(message: &BorrowedMessage<'_>) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == TRACEPARENT)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string)
}
