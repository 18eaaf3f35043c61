//! Kafka clients with the settings all services agree on, and publishing. Trace context in
//! headers is in `trace`, the consumer loops and the dead-letter topic in `consume`.

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::env::{ConfigError, Env};
use crate::secret::Secret;

mod consume;
mod held;
mod lag;
mod trace;

pub use consume::{BatchHandler, Batching, Failure, Handler, isolate, run_batch_consumer, run_consumer};
pub use held::{Held, POLL_EVERY};
pub use trace::{
    context_from_traceparent, link_to_traceparent, message_traceparent, trace_context, trace_headers,
    traceparent,
};

pub use lag::LagContext;

/// Every Recobro consumer: it reports its lag per partition (`lag`).
pub type KafkaConsumer = StreamConsumer<LagContext>;

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
    /// How often a consumer reports its lag per partition (`RECOBRO_KAFKA_STATS_SECONDS`, 15).
    pub stats_interval: Duration,
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
            stats_interval: Duration::from_secs(env.parse_or("RECOBRO_KAFKA_STATS_SECONDS", 15)?),
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
pub fn consumer(kafka: &KafkaSettings, group: &str, topics: &[&str]) -> Result<KafkaConsumer, KafkaError> {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set(
            "statistics.interval.ms",
            kafka.stats_interval.as_millis().max(1).to_string(),
        );
    if topics.iter().any(|topic| topic.starts_with('^')) {
        config.set(
            "topic.metadata.refresh.interval.ms",
            PATTERN_REFRESH.as_millis().to_string(),
        );
    }
    let consumer: KafkaConsumer = config.create_with_context(LagContext {
        group: group.to_string(),
    })?;
    consumer.subscribe(topics)?;
    Ok(consumer)
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
        Ok(Err((err, _))) => {
            count_producer_error(&err);
            Err(err)
        }
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
        .map_err(|(err, _)| {
            count_producer_error(&err);
            err
        })
}

/// A failed publish, by librdkafka's error code (a bounded set).
fn count_producer_error(err: &KafkaError) {
    let code = err
        .rdkafka_error_code()
        .map(|code| format!("{code:?}"))
        .unwrap_or_else(|| "other".to_string());
    crate::metrics::metrics()
        .kafka_producer_errors
        .get_or_create(&crate::metrics::label("code", code))
        .inc();
}

#[cfg(test)]
mod tests;
