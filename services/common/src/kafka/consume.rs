//! The consumer loops: an offset is stored only after the work is durably done, a message
//! that can never be processed is parked in the dead-letter topic with its reason, and a
//! failure that may pass is retried in place.

use std::time::Duration;

use crate::kafka::KafkaConsumer;
use opentelemetry::trace::TraceContextExt as _;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, error::KafkaError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::trace::trace_context;
use super::{DLQ_REASON, Held};

/// Why a message was not handled.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The message can never be processed (undecodable, invalid): park it in the dead-letter
    /// topic with this reason and move on.
    #[error("rejected: {0}")]
    Reject(String),
    /// A dependency failed (database, Redis, broker): try the same message again later.
    #[error("retry: {0}")]
    Retry(String),
}

/// Handles one message; the offset is stored only after this returns `Ok` or `Reject`.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        message: &BorrowedMessage<'_>,
    ) -> impl std::future::Future<Output = Result<(), Failure>> + Send;
}

/// Consumes until `shutdown`, one message at a time per consumer (so one debtor's events keep
/// their order), then commits what was stored. While a message is handled, retried through an
/// outage or parked, the consumer keeps polling (see [`Held`]).
pub async fn run_consumer<H: Handler>(
    consumer: KafkaConsumer,
    handler: H,
    producer: FutureProducer,
    dead_letter_topic: String,
    service: &'static str,
    shutdown: CancellationToken,
) {
    let mut held = Held::new(&consumer);
    let mut pending = std::collections::VecDeque::new();
    loop {
        pending.extend(held.release());
        let message = match pending.pop_front() {
            Some(message) => message,
            None => {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    message = consumer.recv() => message,
                };
                match received {
                    Ok(message) => message,
                    Err(err) => {
                        tracing::warn!(error = %err, "kafka receive failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                }
            }
        };
        let span = tracing::info_span!(
            "kafka.consume",
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation = "process",
            messaging.destination.name = message.topic(),
            messaging.kafka.partition = message.partition(),
            messaging.kafka.offset = message.offset(),
        );
        let _ = span.set_parent(trace_context(message.headers()));
        let work = handle_until_done(&handler, &message, &span, &producer, &dead_letter_topic, service);
        tokio::select! {
            _ = held.polling(work) => {}
            _ = shutdown.cancelled() => {
                // Not stored: the next owner of the partition processes it again.
                commit(&consumer);
                return;
            }
        }
        if let Err(err) = consumer.store_offset_from_message(&message) {
            tracing::warn!(error = %err, "storing the offset failed; the message may be seen again");
        }
    }
    commit(&consumer);
}

/// Handles one message until it is applied or parked, retrying what may pass with a backoff
/// (from 200 ms, doubling up to 10 s, jittered).
async fn handle_until_done<H: Handler>(
    handler: &H,
    message: &BorrowedMessage<'_>,
    span: &tracing::Span,
    producer: &FutureProducer,
    dead_letter_topic: &str,
    service: &str,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match handler.handle(message).instrument(span.clone()).await {
            Ok(()) => return,
            Err(Failure::Reject(reason)) => {
                span.in_scope(
                    || tracing::warn!(%reason, "message rejected, parking it in the dead-letter topic"),
                );
                park(producer, dead_letter_topic, message, &reason, service).await;
                return;
            }
            Err(Failure::Retry(reason)) => {
                span.in_scope(|| tracing::warn!(%reason, retry_in_ms = backoff.as_millis() as u64, "message will be retried"));
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

fn commit(consumer: &KafkaConsumer) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(err) => tracing::warn!(error = %err, "final offset commit failed"),
    }
}

/// 80-120% of `backoff`, so that workers retrying the same outage do not all come back at once.
fn jittered(backoff: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    backoff.mul_f64(0.8 + f64::from(nanos % 400) / 1000.0)
}

/// Copies a message to the dead-letter topic with why and where it came from. Retries until the
/// broker takes it: a message is never dropped silently.
async fn park(
    producer: &FutureProducer,
    dead_letter_topic: &str,
    message: &BorrowedMessage<'_>,
    reason: &str,
    service: &str,
) {
    loop {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(header);
            }
        }
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        headers = headers
            .insert(Header {
                key: DLQ_REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: "recobro-dlq-topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "recobro-dlq-partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "recobro-dlq-offset",
                value: Some(&offset),
            })
            .insert(Header {
                key: "recobro-dlq-service",
                value: Some(service),
            });
        let mut record = FutureRecord::<[u8], [u8]>::to(dead_letter_topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => {
                crate::metrics::metrics()
                    .dead_letters
                    .get_or_create(&vec![
                        ("service", service.to_string()),
                        ("topic", message.topic().to_string()),
                    ])
                    .inc();
                return;
            }
            Err((err, _)) => {
                tracing::error!(error = %err, "dead-letter publish failed, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Handles a batch of messages at once (one transaction for many events is what makes
/// ingestion fast). Returns the messages to park in the dead-letter topic, by index, with the
/// reason. `Failure::Retry`: the same batch is tried again later, so handling must be
/// idempotent. `Failure::Reject`: something in the batch can never be applied (the database
/// refused it for good): the batch is split in halves, and halves again, until the message
/// behind it is alone; that one is parked with the reason and the rest are applied.
pub trait BatchHandler: Send + Sync + 'static {
    fn handle_batch(
        &self,
        messages: &[BorrowedMessage<'_>],
    ) -> impl std::future::Future<Output = Result<Vec<(usize, String)>, Failure>> + Send;
}

/// How many messages a batch may hold, and how long to wait for more after the first.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub max_batch: usize,
    pub linger: Duration,
}

/// The links a batch span keeps: the OpenTelemetry SDK's default `max_links_per_span`.
const LINKS_PER_BATCH: usize = 128;

/// Like [`run_consumer`], but hands the handler up to `max_batch` messages at a time: as many as
/// arrive while the first is being collected, never waiting more than `linger` for more.
pub async fn run_batch_consumer<H: BatchHandler>(
    consumer: KafkaConsumer,
    handler: H,
    producer: FutureProducer,
    dead_letter_topic: String,
    service: &'static str,
    batching: Batching,
    shutdown: CancellationToken,
) {
    let Batching { max_batch, linger } = batching;
    let mut held = Held::new(&consumer);
    loop {
        let mut batch = held.release();
        if batch.is_empty() {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                message = consumer.recv() => message,
            };
            match first {
                Ok(message) => batch.push(message),
                Err(err) => {
                    tracing::warn!(error = %err, "kafka receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        }
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max_batch {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => batch.push(message),
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "kafka receive failed");
                    break;
                }
                Err(_elapsed) => break,
            }
        }
        let span = tracing::info_span!(
            "kafka.consume_batch",
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation = "process",
            messaging.batch.message_count = batch.len(),
        );
        // One span cannot have each message's trace as its parent: it links to them (the SDK
        // keeps the first 128, so later ones are not even read), so a trace followed from an ERP
        // event or a reminder reaches it.
        for message in batch.iter().take(LINKS_PER_BATCH) {
            let context = trace_context(message.headers());
            let linked = context.span().span_context().clone();
            if linked.is_valid() {
                span.add_link(linked);
            }
        }
        // The batch applied (its poison isolated and parked), while the consumer keeps polling.
        let started = std::time::Instant::now();
        let work = async {
            let parked = isolate(batch.len(), |range| {
                handler.handle_batch(&batch[range]).instrument(span.clone())
            })
            .await;
            for (index, reason) in parked {
                if let Some(message) = batch.get(index) {
                    span.in_scope(
                        || tracing::warn!(%reason, "message rejected, parking it in the dead-letter topic"),
                    );
                    park(&producer, &dead_letter_topic, message, &reason, service).await;
                }
            }
        };
        tokio::select! {
            _ = held.polling(work) => {}
            _ = shutdown.cancelled() => {
                // Not stored: the next owner of the partition processes the batch again.
                commit(&consumer);
                return;
            }
        }
        let group = crate::metrics::label("group", consumer.context().group.clone());
        let metrics = crate::metrics::metrics();
        metrics
            .kafka_batch_messages
            .get_or_create(&group)
            .observe(batch.len() as f64);
        metrics
            .kafka_batch_seconds
            .get_or_create(&group)
            .observe(started.elapsed().as_secs_f64());
        for message in &batch {
            if let Err(err) = consumer.store_offset_from_message(message) {
                tracing::warn!(error = %err, "storing the offset failed; the message may be seen again");
            }
        }
    }
    commit(&consumer);
}

/// Handles `len` messages by ranges, starting with all of them, and returns the ones to park by
/// index, with why. A range that fails for good is split in halves (left first, so order holds)
/// until the message behind the failure is alone: that one is parked, every other message is
/// applied. A range that fails for a reason that may pass is tried again after a backoff (from
/// 200 ms, doubling up to 10 s, jittered) until it succeeds; cancel the future to stop.
pub async fn isolate<F, Fut>(len: usize, mut handle: F) -> Vec<(usize, String)>
where
    F: FnMut(std::ops::Range<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(usize, String)>, Failure>>,
{
    let mut parked = Vec::new();
    // The ranges still to handle, the next one last.
    let mut ranges = Vec::new();
    ranges.push(0..len);
    let mut backoff = Duration::from_millis(200);
    while let Some(range) = ranges.pop() {
        if range.is_empty() {
            continue;
        }
        match handle(range.clone()).await {
            Ok(rejected) => {
                parked.extend(rejected.into_iter().map(|(i, reason)| (range.start + i, reason)));
                backoff = Duration::from_millis(200);
            }
            Err(Failure::Reject(reason)) if range.len() == 1 => parked.push((range.start, reason)),
            Err(Failure::Reject(reason)) => {
                tracing::warn!(%reason, messages = range.len(), "batch refused for good, splitting it to find the message behind it");
                let middle = range.start + range.len() / 2;
                ranges.push(middle..range.end);
                ranges.push(range.start..middle);
            }
            Err(Failure::Retry(reason)) => {
                tracing::warn!(%reason, retry_in_ms = backoff.as_millis() as u64, "batch will be retried");
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                ranges.push(range);
            }
        }
    }
    parked.sort_by_key(|(index, _)| *index);
    parked
}

/// A handler shared with other parts of a service (e.g. gRPC) handles batches just the same.
impl<T: BatchHandler> BatchHandler for std::sync::Arc<T> {
    fn handle_batch(
        &self,
        messages: &[BorrowedMessage<'_>],
    ) -> impl std::future::Future<Output = Result<Vec<(usize, String)>, Failure>> + Send {
        T::handle_batch(self, messages)
    }
}
