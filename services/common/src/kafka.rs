//! Kafka clients with the settings all services agree on, trace context in headers,
//! a consumer loop that stores an offset only after the work is durably done, and the
//! dead-letter topic for messages that can never be processed.

use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Message, error::KafkaError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::{ConfigError, Env};
use crate::secret::Secret;

mod held;

pub use held::{Held, POLL_EVERY};

pub const TRACEPARENT: &str = "traceparent";
pub const DLQ_REASON: &str = "recobro-dlq-reason";

/// How a service reaches the brokers: always SASL_SSL with SCRAM-SHA-512 (there is no plaintext
/// mode), as its own principal, so the broker's ACLs decide what it may read and write.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub username: String,
    pub password: Secret,
    /// PEM file of the CA that signed the brokers' certificates; the system's roots if unset.
    pub ca: Option<PathBuf>,
}

impl KafkaSettings {
    /// `KAFKA_BROKERS`, `RECOBRO_KAFKA_USERNAME` (default `default_username`, the service's
    /// name), the password in `RECOBRO_KAFKA_PASSWORD_FILE` (default `kafka-password` in
    /// `RECOBRO_SECRETS_DIR`) and `RECOBRO_KAFKA_CA`.
    pub fn from_env(env: &impl Env, default_username: &str) -> Result<KafkaSettings, ConfigError> {
        Ok(KafkaSettings {
            brokers: env.or("KAFKA_BROKERS", "127.0.0.1:19092"),
            username: env.or("RECOBRO_KAFKA_USERNAME", default_username),
            password: Secret::from_file(env, "RECOBRO_KAFKA_PASSWORD_FILE", "kafka-password")?,
            ca: env.path("RECOBRO_KAFKA_CA"),
        })
    }

    /// A client configuration with the brokers and the credentials; the broker's certificate is
    /// checked against its host name (librdkafka's `ssl.endpoint.identification.algorithm=https`).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", &self.username)
            .set("sasl.password", self.password.expose())
            .set("ssl.endpoint.identification.algorithm", "https");
        if let Some(ca) = &self.ca {
            config.set("ssl.ca.location", ca.display().to_string());
        }
        config
    }
}

/// A producer that keys like the Java client (`murmur2_random`), so ERP connectors written in
/// Java and our services agree on a debtor's partition; idempotent, so retries never duplicate.
pub fn producer(kafka: &KafkaSettings) -> Result<FutureProducer, KafkaError> {
    kafka
        .client_config()
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
}

/// How often a consumer that subscribes by pattern (a topic starting with `^`) looks for new
/// topics that match: a tenant's ERP topic created while accounts runs is read within this time.
pub const PATTERN_REFRESH: Duration = Duration::from_secs(10);

/// A consumer in `group` that commits only offsets we stored explicitly. A topic starting with
/// `^` is a regular expression (librdkafka's pattern subscription).
pub fn consumer(kafka: &KafkaSettings, group: &str, topics: &[&str]) -> Result<StreamConsumer, KafkaError> {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("partition.assignment.strategy", "cooperative-sticky");
    if topics.iter().any(|topic| topic.starts_with('^')) {
        config.set(
            "topic.metadata.refresh.interval.ms",
            PATTERN_REFRESH.as_millis().to_string(),
        );
    }
    let consumer: StreamConsumer = config.create()?;
    consumer.subscribe(topics)?;
    Ok(consumer)
}

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

/// Hands a message to the producer's queue without waiting; await it with [`acknowledged`].
pub fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: OwnedHeaders,
) -> Result<DeliveryFuture, KafkaError> {
    let record = FutureRecord::to(topic).key(key).payload(payload).headers(headers);
    producer.send_result(record).map_err(|(err, _)| err)
}

/// Waits until the broker has the message.
pub async fn acknowledged(delivery: DeliveryFuture) -> Result<(), KafkaError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((err, _))) => Err(err),
        Err(_cancelled) => Err(KafkaError::Canceled),
    }
}

/// Why the broker will never take a message, when that is so: it is larger than allowed, its
/// topic or partition does not exist, or this service may not write to it. `None` for errors
/// that may pass (the broker is down, a timeout, a full queue): those are retried.
pub fn never_publishable(err: &KafkaError) -> Option<String> {
    use rdkafka::types::RDKafkaErrorCode as Code;
    let KafkaError::MessageProduction(code) = err else {
        return None;
    };
    match code {
        Code::MessageSizeTooLarge
        | Code::InvalidMessageSize
        | Code::MessageBatchTooLarge
        | Code::InvalidMessage
        | Code::InvalidRecord
        | Code::PolicyViolation
        | Code::UnknownTopic
        | Code::UnknownTopicOrPartition
        | Code::UnknownPartition
        | Code::InvalidTopic
        | Code::TopicAuthorizationFailed => Some(format!("the broker refuses it for good: {code}")),
        _ => None,
    }
}

/// Publishes and waits for the broker's acknowledgement.
pub async fn publish(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: OwnedHeaders,
) -> Result<(), KafkaError> {
    let record = FutureRecord::to(topic).key(key).payload(payload).headers(headers);
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(err, _)| err)
}

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
    consumer: StreamConsumer,
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

fn commit(consumer: &StreamConsumer) {
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
            Ok(_) => return,
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

/// Like [`run_consumer`], but hands the handler up to `max_batch` messages at a time: as many as
/// arrive while the first is being collected, never waiting more than `linger` for more.
pub async fn run_batch_consumer<H: BatchHandler>(
    consumer: StreamConsumer,
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
        // The batch applied (its poison isolated and parked), while the consumer keeps polling.
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

/// A handler shared with other parts of a service (e.g. gRPC) handles batches just the same.
impl<T: BatchHandler> BatchHandler for std::sync::Arc<T> {
    fn handle_batch(
        &self,
        messages: &[BorrowedMessage<'_>],
    ) -> impl std::future::Future<Output = Result<Vec<(usize, String)>, Failure>> + Send {
        T::handle_batch(self, messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode as Code;

    #[test]
    fn a_message_too_large_or_without_a_topic_is_never_publishable_and_an_outage_passes() {
        for code in [
            Code::MessageSizeTooLarge,
            Code::UnknownTopic,
            Code::TopicAuthorizationFailed,
        ] {
            let reason = never_publishable(&KafkaError::MessageProduction(code));
            assert!(reason.is_some(), "{code:?}");
        }
        for code in [
            Code::MessageTimedOut,
            Code::QueueFull,
            Code::BrokerNotAvailable,
            Code::AllBrokersDown,
            Code::NotLeaderForPartition,
        ] {
            assert_eq!(
                never_publishable(&KafkaError::MessageProduction(code)),
                None,
                "{code:?}"
            );
        }
        assert_eq!(never_publishable(&KafkaError::Canceled), None);
    }

    /// A stand-in for a handler that applies a batch in one transaction: it fails for good
    /// if the range holds a poison message, else "applies" it (records the indexes).
    fn applying(
        poison: &'static [usize],
        applied: &std::sync::Mutex<Vec<usize>>,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<(usize, String)>, Failure> {
        if let Some(bad) = range.clone().find(|i| poison.contains(i)) {
            return Err(Failure::Reject(format!("value {bad} out of range")));
        }
        applied.lock().expect("lock").extend(range);
        Ok(Vec::new())
    }

    #[tokio::test]
    async fn a_batch_refused_for_good_is_split_until_each_poison_message_is_alone() {
        let applied = std::sync::Mutex::new(Vec::new());
        let parked = isolate(10, |range| {
            let result = applying(&[3, 7], &applied, range);
            async move { result }
        })
        .await;
        assert_eq!(
            parked,
            vec![
                (3, "value 3 out of range".to_string()),
                (7, "value 7 out of range".to_string())
            ]
        );
        let applied = applied.into_inner().expect("lock");
        assert_eq!(
            applied,
            vec![0, 1, 2, 4, 5, 6, 8, 9],
            "every other message, in order"
        );
    }

    #[tokio::test]
    async fn rejections_inside_a_half_keep_their_place_in_the_whole_batch() {
        let parked = isolate(6, |range| {
            let result = if range.contains(&0) {
                Err(Failure::Reject("poison".into()))
            } else {
                // The handler refuses the second message of whatever range it is given.
                Ok(if range.len() > 1 {
                    vec![(1, "undecodable".to_string())]
                } else {
                    Vec::new()
                })
            };
            async move { result }
        })
        .await;
        assert_eq!(
            parked,
            vec![
                (0, "poison".to_string()),
                (2, "undecodable".to_string()),
                (4, "undecodable".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn a_failure_that_may_pass_is_retried_in_place_and_nothing_is_parked() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let parked = isolate(4, |range| {
            let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let result = if call < 3 {
                Err(Failure::Retry("database: connection refused".into()))
            } else {
                assert_eq!(range, 0..4, "the whole batch again, not split");
                Ok(Vec::new())
            };
            async move { result }
        })
        .await;
        assert!(parked.is_empty());
        assert_eq!(calls.into_inner(), 4);
    }
}
