//! The transactional outbox: a service writes its state change and the event describing it in
//! one PostgreSQL transaction, and a relay publishes the event afterwards. The database and the
//! event stream never disagree, even if the process dies between commit and publish; a crash
//! after publish and before delete publishes again, so consumers dedupe by event id.
//!
//! A row the broker can never take (larger than the broker allows, a topic that does not exist
//! or that this service may not write) is moved to `outbox_parked` with the reason, and the
//! relay goes on with the rows after it: one such row never holds up the others.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureProducer;
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;

use crate::kafka;

/// The table every service's migrations create in its own schema.
pub const MIGRATION: &str = r#"
CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     BYTEA NOT NULL,
    traceparent TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
"#;

/// Where rows the broker refused for good wait, with the reason, for an operator: once the
/// cause is fixed, `INSERT INTO outbox (topic, key, payload, traceparent) SELECT topic, key,
/// payload, traceparent FROM outbox_parked WHERE ...` queues them again.
pub const PARKED_MIGRATION: &str = r#"
CREATE TABLE outbox_parked (
    id          BIGINT PRIMARY KEY,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     BYTEA NOT NULL,
    traceparent TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    reason      TEXT NOT NULL,
    parked_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
"#;

/// Queues an event in the caller's transaction, with the current span's trace context.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> Result<(), sqlx::Error> {
    enqueue_with_trace(
        tx,
        topic,
        key,
        payload,
        kafka::traceparent(&tracing::Span::current()),
    )
    .await
}

/// Queues an event that belongs to a given trace (e.g. a reminder's own new trace).
pub async fn enqueue_with_trace(
    tx: &mut Transaction<'_, Postgres>,
    topic: &str,
    key: &str,
    payload: &[u8],
    traceparent: Option<String>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (topic, key, payload, traceparent) VALUES ($1, $2, $3, $4)")
        .bind(topic)
        .bind(key)
        .bind(payload)
        .bind(traceparent)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// id, topic, key, payload, traceparent
type Row = (i64, String, String, Vec<u8>, Option<String>);

/// Publishes queued events in order until `shutdown`, then drains what is left.
pub async fn relay(pool: PgPool, producer: FutureProducer, batch: i64, shutdown: CancellationToken) {
    let mut measured = std::time::Instant::now() - BACKLOG_EVERY;
    loop {
        if measured.elapsed() >= BACKLOG_EVERY {
            measured = std::time::Instant::now();
            measure_backlog(&pool).await;
        }
        match relay_batch(&pool, &producer, batch).await {
            Ok(0) => {
                if shutdown.is_cancelled() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "outbox relay failed, retrying");
                if shutdown.is_cancelled() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// How often the relay measures what waits in the outbox.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// Sets the outbox gauges: rows waiting and the age of the oldest (0 when empty). A failed
/// query leaves them as they were; the relay's own errors are logged where they happen.
async fn measure_backlog(pool: &PgPool) {
    let measured: Result<(i64, f64), sqlx::Error> = sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0) FROM outbox",
    )
    .fetch_one(pool)
    .await;
    if let Ok((rows, oldest)) = measured {
        let metrics = crate::metrics::metrics();
        let table = crate::metrics::label("table", "outbox");
        metrics.outbox_backlog.get_or_create(&table).set(rows);
        metrics
            .outbox_oldest_seconds
            .get_or_create(&table)
            .set(oldest.round() as i64);
    }
}

/// One batch: lock, publish, delete, commit. Returns how many rows left the outbox (published
/// or parked). Rows go in order: at the first one that failed for a reason that may pass (the
/// broker is down, a timeout), the rows before it leave the outbox and the rest are tried again
/// (published again if they were: consumers dedupe by event id), and the error is returned.
pub async fn relay_batch(pool: &PgPool, producer: &FutureProducer, batch: i64) -> Result<usize, RelayError> {
    let mut tx = pool.begin().await?;
    // One relay at a time per schema keeps events in the order they were written.
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox'))")
            .fetch_one(&mut *tx)
            .await?;
    if !locked {
        return Ok(0);
    }
    let rows: Vec<Row> =
        sqlx::query_as("SELECT id, topic, key, payload, traceparent FROM outbox ORDER BY id LIMIT $1")
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    // Enqueue the whole batch first, then wait for the acknowledgements: one round trip per
    // batch, not per event.
    let mut deliveries = Vec::with_capacity(rows.len());
    for (_, topic, key, payload, traceparent) in &rows {
        let mut headers = OwnedHeaders::new();
        if let Some(traceparent) = traceparent {
            headers = headers.insert(Header {
                key: kafka::TRACEPARENT,
                value: Some(traceparent),
            });
        }
        deliveries.push(kafka::enqueue(producer, topic, key, payload, headers));
    }
    let mut done = Vec::with_capacity(rows.len());
    let mut parked: Vec<(i64, String)> = Vec::new();
    let mut transient = None;
    for (row, delivery) in rows.iter().zip(deliveries) {
        let published = match delivery {
            Ok(delivery) => kafka::acknowledged(delivery).await,
            Err(err) => Err(err),
        };
        if transient.is_some() {
            continue; // after a failure that may pass: tried again, in order
        }
        match published {
            Ok(()) => done.push(row.0),
            Err(err) => match kafka::never_publishable(&err) {
                Some(reason) => {
                    tracing::error!(outbox_id = row.0, topic = %row.1, %reason, "outbox row parked: the broker will never take it");
                    done.push(row.0);
                    parked.push((row.0, reason));
                }
                None => transient = Some(err),
            },
        }
    }
    if !parked.is_empty() {
        let (ids, reasons): (Vec<i64>, Vec<String>) = parked.into_iter().unzip();
        sqlx::query(
            "INSERT INTO outbox_parked (id, topic, key, payload, traceparent, created_at, reason)
             SELECT o.id, o.topic, o.key, o.payload, o.traceparent, o.created_at, p.reason
             FROM UNNEST($1::bigint[], $2::text[]) AS p(id, reason) JOIN outbox o ON o.id = p.id",
        )
        .bind(&ids)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(&done)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    match transient {
        Some(err) => Err(RelayError::Kafka(err)),
        None => Ok(done.len()),
    }
}

/// One event to queue: topic, key, payload, traceparent.
pub type Queued = (String, String, Vec<u8>, Option<String>);

/// Queues many events in one statement, in order.
pub async fn enqueue_many(tx: &mut Transaction<'_, Postgres>, events: &[Queued]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut topics = Vec::with_capacity(events.len());
    let mut keys = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut traces = Vec::with_capacity(events.len());
    for (topic, key, payload, traceparent) in events {
        topics.push(topic.as_str());
        keys.push(key.as_str());
        payloads.push(payload.as_slice());
        traces.push(traceparent.as_deref());
    }
    sqlx::query(
        "INSERT INTO outbox (topic, key, payload, traceparent)
         SELECT topic, key, payload, traceparent
         FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::text[]) WITH ORDINALITY AS e(topic, key, payload, traceparent, n)
         ORDER BY n",
    )
    .bind(&topics)
    .bind(&keys)
    .bind(&payloads)
    .bind(&traces)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("outbox publish: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}
