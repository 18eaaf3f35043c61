//! Each service's Prometheus endpoint, scraped while one reminder travels the e2e path and a
//! bad ERP event is parked: the key series exist and move as the path runs, and no label
//! carries the debtor's data. The text is read with a real Prometheus text-format parser.

use std::time::{Duration, Instant};

use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::{self as pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Stack, encode};
use crate::{HOP, invoice_event};

/// `GET /metrics` on `port`: the body, checked to be served as Prometheus text.
async fn scrape_text(port: u16) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the metrics port");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    body.to_string()
}

async fn scrape(port: u16) -> prometheus_parse::Scrape {
    let text = scrape_text(port).await;
    prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("Prometheus text")
}

/// The sum of the samples of `name` whose labels include `labels` (a histogram counts its
/// observations); `None` when there is no such series.
fn total(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|sample| {
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
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_exports_metrics_that_move_as_a_reminder_travels() {
    let stack = Stack::start().await;
    let [accounts_port, scheduling_port, channels_port] = stack.metrics_ports;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let before = scrape(accounts_port).await;
    assert_eq!(
        total(&before, "recobro_erp_events_total", &[]),
        None,
        "nothing ingested yet"
    );

    // A gRPC call that fails: no such debtor.
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let missing = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("no such debtor");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // A bad event (parked) and an invoice ten days overdue (a reminder goes out now).
    stack
        .publish(&stack.erp_topic, "D-1", b"\xff\xfenot protobuf", None)
        .await;
    let event = invoice_event(&stack, "evt-m1", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let delivery: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    let debtor_id = delivery.debtor_id.clone();

    // Counters are updated after each commit and lag every second: poll until all have moved.
    let started = Instant::now();
    let (accounts, scheduling, channels) = loop {
        let scraped = (
            scrape(accounts_port).await,
            scrape(scheduling_port).await,
            scrape(channels_port).await,
        );
        let (a, s, c) = (&scraped.0, &scraped.1, &scraped.2);
        let moved = total(a, "recobro_erp_events_total", &[("kind", "upsert")]) >= Some(1.0)
            && total(a, "recobro_dead_letters_total", &[("service", "accounts")]) >= Some(1.0)
            && total(s, "recobro_timer_lateness_seconds", &[("action", "message")]) >= Some(1.0)
            && total(c, "recobro_sends_total", &[]) >= Some(1.0)
            && total(a, "recobro_kafka_consumer_lag_messages", &[]).is_some()
            && total(c, "recobro_kafka_consumer_lag_messages", &[]).is_some()
            && total(a, "recobro_outbox_backlog_rows", &[("table", "outbox")]).is_some();
        if moved {
            break scraped;
        }
        assert!(
            started.elapsed() < HOP,
            "the series did not move within {HOP:?}: accounts\n{}\nscheduling\n{}\nchannels\n{}",
            scrape_text(accounts_port).await,
            scrape_text(scheduling_port).await,
            scrape_text(channels_port).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // gRPC: the call, by method and code, and its latency.
    let get_debtor = "/recobro.v1.AccountsService/GetDebtor";
    assert_eq!(
        total(
            &accounts,
            "recobro_grpc_requests_total",
            &[("method", get_debtor), ("code", "5")]
        ),
        Some(1.0)
    );
    assert!(
        total(
            &accounts,
            "recobro_grpc_request_seconds",
            &[("method", get_debtor)]
        ) >= Some(1.0)
    );
    // Kafka: the ERP consumer's batches and its lag per partition of the stack's ERP topic.
    assert!(total(&accounts, "recobro_kafka_batch_messages", &[]) >= Some(1.0));
    assert!(
        accounts
            .samples
            .iter()
            .any(|s| s.metric == "recobro_kafka_consumer_lag_messages"
                && s.labels.get("topic") == Some(stack.erp_topic.as_str())
                && s.labels.get("partition").is_some()),
        "lag per partition of the ERP topic"
    );
    assert_eq!(
        total(
            &accounts,
            "recobro_dead_letters_total",
            &[("service", "accounts"), ("topic", stack.erp_topic.as_str())]
        ),
        Some(1.0)
    );
    // scheduling: the due-but-not-fired gauge is there (and nothing is stuck).
    assert!(total(&scheduling, "recobro_timers_due", &[]).is_some());
    // channels: the send by channel, provider and status; the budget and the provider call.
    let channel = match pb::Channel::try_from(delivery.channel).expect("channel") {
        pb::Channel::Email => "email",
        pb::Channel::Sms => "sms",
        pb::Channel::Whatsapp => "whatsapp",
        pb::Channel::Unspecified => "unspecified",
    };
    assert_eq!(
        total(
            &channels,
            "recobro_sends_total",
            &[
                ("channel", channel),
                ("provider", &format!("sandbox-{channel}")),
                ("status", "sent")
            ]
        ),
        Some(1.0),
        "{:?}",
        channels
            .samples
            .iter()
            .filter(|s| s.metric == "recobro_sends_total")
            .map(|s| &s.labels)
            .collect::<Vec<_>>()
    );
    assert!(total(&channels, "recobro_contact_budget_seconds", &[]) >= Some(1.0));
    assert!(
        total(
            &channels,
            "recobro_provider_call_seconds",
            &[("provider", &format!("sandbox-{channel}"))]
        ) >= Some(1.0)
    );

    // No label anywhere carries the debtor: not their id, name, address or number.
    for port in [accounts_port, scheduling_port, channels_port] {
        let text = scrape_text(port).await;
        for personal in [debtor_id.as_str(), "Tornillo", "tesoreria@", "3001234567"] {
            assert!(
                !text.contains(personal),
                "{personal:?} in the metrics of port {port}"
            );
        }
    }
}
