//! Traces, checked for real: a small OTLP/gRPC collector (the OpenTelemetry trace service
//! protocol, over TLS, as the services insist) receives the spans of one reminder from all three
//! services: accounts' batch links to the ERP event's trace, scheduling's firing links back to
//! it and starts the reminder's trace, and channels' batch links to that trace, which the
//! delivery record carries. The debtor's reply starts a trace of its own in channels, linked to
//! the delivery's, which the published response carries on to accounts. No span attribute
//! carries the debtor's data.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use recobro_proto::v1 as pb;

use crate::helpers::{Stack, encode};
use crate::{HOP, invoice_event};

/// Every span received, with the `service.name` of the process that sent it.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("spans");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
                .map(|value| match value {
                    Value::StringValue(name) => name.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves OTLP over TLS with the test PKI's server certificate (for `localhost`).
    async fn start(&self) -> u16 {
        let pki = crate::pki::pki();
        let identity = tonic::transport::Identity::from_pem(
            std::fs::read(&pki.server_cert).expect("server certificate"),
            std::fs::read(&pki.server_key).expect("server key"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tonic::transport::Server::builder()
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .expect("TLS")
            .add_service(TraceServiceServer::new(self.clone()));
        tokio::spawn(server.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
        port
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().expect("spans").clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a span belongs to `trace`, or links to it (a batch's span links to the trace of each
/// message it applied: one span cannot have several parents).
fn in_or_linked(span: &Span, trace: &str) -> bool {
    hex(&span.trace_id) == trace || span.links.iter().any(|link| hex(&link.trace_id) == trace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reminders_spans_reach_a_collector_from_all_three_services_linked() {
    let collector = Collector::default();
    let port = collector.start().await;
    let stack = Stack::start_with_service_env(
        None,
        Vec::new(),
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("https://localhost:{port}")),
            (
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                crate::pki::pki().ca.display().to_string(),
            ),
            // Export within half a second, not the SDK's default five.
            ("OTEL_BSP_SCHEDULE_DELAY", "500".to_string()),
        ],
    )
    .await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let responses = stack.follow(&stack.topics.responses);

    let erp_trace = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!(
        "00-{erp_trace}-{}-01",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let event = invoice_event(&stack, "evt-t1", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), Some(&traceparent))
        .await;
    let delivery = deliveries.find(HOP, |_| true).await;
    let delivery_trace = delivery
        .trace_id()
        .expect("the delivery record carries its trace")
        .to_string();
    let debtor_id = delivery.decode::<pb::DeliveryRecord>().debtor_id;

    // Spans are exported in batches: wait until each service's have arrived.
    let started = Instant::now();
    let spans = loop {
        let spans = collector.spans();
        let accounts = spans
            .iter()
            .any(|(s, span)| s == "recobro-accounts" && in_or_linked(span, &erp_trace));
        let linked_to_erp = spans.iter().any(|(s, span)| {
            s == "recobro-scheduling" && span.links.iter().any(|link| hex(&link.trace_id) == erp_trace)
        });
        let delivered = spans
            .iter()
            .any(|(s, span)| s == "recobro-channels" && in_or_linked(span, &delivery_trace));
        if accounts && linked_to_erp && delivered {
            break spans;
        }
        assert!(
            started.elapsed() < HOP,
            "spans missing after {HOP:?}: accounts in or linked to the ERP trace {accounts}, scheduling linked {linked_to_erp}, channels in or linked to the delivery's trace {delivered}; received {:?}",
            spans
                .iter()
                .map(|(s, span)| (s.as_str(), span.name.as_str()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // The firing that links to the ERP event starts the trace the delivery continues.
    let firing = spans
        .iter()
        .find(|(s, span)| {
            s == "recobro-scheduling" && span.links.iter().any(|link| hex(&link.trace_id) == erp_trace)
        })
        .expect("scheduling's firing");
    assert_eq!(
        hex(&firing.1.trace_id),
        delivery_trace,
        "the delivery continues the trace of the firing that links to the ERP event"
    );

    // The debtor answers: channels records the reply in a trace of its own, linked to the
    // delivery's; the response carries that trace, and accounts' batch that reads it links to it.
    let reminder_id = delivery.decode::<pb::DeliveryRecord>().reminder_id;
    let (status, body) = crate::helpers::post_json(
        stack.http_port,
        "/webhooks/sandbox/replies",
        &format!(r#"{{"reminder_id": "{reminder_id}", "text": "ya la pagué ayer"}}"#),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let response = responses.find(HOP, |_| true).await;
    let reply_trace = response
        .trace_id()
        .expect("the response carries its trace")
        .to_string();
    assert_ne!(reply_trace, delivery_trace, "a reply starts a trace of its own");
    let started = Instant::now();
    let spans = loop {
        let spans = collector.spans();
        let reply = spans.iter().any(|(s, span)| {
            s == "recobro-channels"
                && hex(&span.trace_id) == reply_trace
                && span
                    .links
                    .iter()
                    .any(|link| hex(&link.trace_id) == delivery_trace)
        });
        let read = spans
            .iter()
            .any(|(s, span)| s == "recobro-accounts" && in_or_linked(span, &reply_trace));
        if reply && read {
            break spans;
        }
        assert!(
            started.elapsed() < HOP,
            "reply spans missing after {HOP:?}: channels' reply linked to the delivery {reply}, accounts in or linked to the reply's trace {read}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // Ids only: no attribute of any span names the debtor, their address or number, or what
    // they wrote.
    for (service, span) in &spans {
        for attribute in &span.attributes {
            let text = format!("{:?}", attribute.value);
            for personal in ["Tornillo", "tesoreria@", "3001234567", "pagué"] {
                assert!(
                    !text.contains(personal),
                    "{service} span {:?} attribute {} carries {personal:?}",
                    span.name,
                    attribute.key
                );
            }
        }
    }
    assert!(!debtor_id.is_empty());
}
