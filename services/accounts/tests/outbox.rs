//! The outbox against real PostgreSQL and Kafka: what is committed is published even if the
//! process dies before publishing, and a crash after publishing repeats the same event ids.
//! An ERP event for a new debtor queues two: the debtor's record, then the invoice.

use std::time::Duration;

use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use recobro_accounts::InvoiceEvent;
use recobro_accounts::ingest::InvoiceIngest;
use recobro_common::config::Config;
use recobro_common::{kafka, outbox};
use recobro_proto::v1 as pb;

async fn setup() -> (Config, sqlx::PgPool) {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[
        ("RECOBRO_TOPIC_PREFIX", format!("outbox{id}.")),
        ("RECOBRO_DB_SCHEMA", format!("outbox_{id}")),
    ]);
    let config = Config::from_env(&env, "accounts", 0).expect("config (deploy/local/env.sh)");
    recobro_testkit::create_topics(&config.kafka, &[(&config.topics.account_events, 1)])
        .await
        .expect("create topic");
    let pool = recobro_accounts::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    sqlx::query("INSERT INTO tenants (tenant_id) VALUES ('acme')")
        .execute(&pool)
        .await
        .expect("tenant");
    (config, pool)
}

fn erp_event() -> pb::InvoiceEvent {
    pb::InvoiceEvent {
        event_id: "evt-1".into(),
        tenant_id: "acme".into(),
        kind: pb::InvoiceEventKind::Issued as i32,
        version: 1,
        debtor: Some(pb::DebtorRecord {
            external_id: "C-1".into(),
            name: "Ferretería El Tornillo SAS".into(),
            kind: pb::DebtorKind::Company as i32,
            time_zone: "America/Bogota".into(),
            locale: "es-CO".into(),
            country: "CO".into(),
            email: "tesoreria@tornillo.example".into(),
            ..Default::default()
        }),
        invoice: Some(pb::InvoiceRecord {
            external_id: "F-1".into(),
            number: "FE-1".into(),
            amount: Some(pb::Money {
                amount_minor: 125_000_00,
                currency: "COP".into(),
            }),
            issue_date: Some(pb::Date {
                year: 2026,
                month: 10,
                day: 1,
            }),
            due_date: Some(pb::Date {
                year: 2026,
                month: 10,
                day: 31,
            }),
        }),
        ..Default::default()
    }
}

fn follow(config: &Config) -> StreamConsumer {
    let consumer: StreamConsumer = config
        .kafka
        .client_config()
        .set("group.id", format!("follower-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[&config.topics.account_events])
        .expect("subscribe");
    consumer
}

async fn next_event(consumer: &StreamConsumer, wait: Duration) -> Option<pb::AccountEvent> {
    // Errors while the consumer settles (a topic created a moment ago is not in its metadata
    // yet) are passed over until the wait is up.
    let receive = async {
        loop {
            match consumer.recv().await {
                Ok(message) => return message,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    };
    let message = tokio::time::timeout(wait, receive).await.ok()?;
    Some(pb::AccountEvent::decode(message.payload().unwrap_or_default()).expect("an AccountEvent"))
}

async fn queued(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
        .expect("count")
        .0
}

#[tokio::test]
async fn a_change_committed_before_a_crash_is_published_by_the_next_relay() {
    let (config, pool) = setup().await;
    let ingest = InvoiceIngest {
        pool: pool.clone(),
        account_events_topic: config.topics.account_events.clone(),
        topics: config.topics.clone(),
    };
    let event = InvoiceEvent::parse(&erp_event()).expect("valid");
    // The ledger and its events are committed together; the process "dies" before relaying.
    ingest.apply(&[(event, None)]).await.expect("applied");
    assert_eq!(queued(&pool).await, 2);
    let consumer = follow(&config);
    assert!(
        next_event(&consumer, Duration::from_secs(3)).await.is_none(),
        "nothing published yet"
    );

    // After a restart, the relay finds it and publishes it.
    let producer = kafka::producer(&config.kafka).expect("producer");
    assert_eq!(
        outbox::relay_batch(&pool, &producer, 100).await.expect("relay"),
        2
    );
    let debtor = next_event(&consumer, Duration::from_secs(30))
        .await
        .expect("published after restart");
    let Some(pb::account_event::Change::DebtorChanged(record)) = debtor.change else {
        panic!("the debtor's record first")
    };
    assert_eq!((record.revision, record.reason.as_str()), (1, "erp"));
    let invoice = next_event(&consumer, Duration::from_secs(30))
        .await
        .expect("published after restart");
    let Some(pb::account_event::Change::InvoiceChanged(changed)) = invoice.change else {
        panic!("an invoice change")
    };
    assert_eq!(changed.invoice.expect("invoice").number, "FE-1");
    assert_eq!(queued(&pool).await, 0, "published events leave the outbox");
}

#[tokio::test]
async fn a_crash_between_publish_and_commit_repeats_the_same_event_id() {
    let (config, pool) = setup().await;
    let ingest = InvoiceIngest {
        pool: pool.clone(),
        account_events_topic: config.topics.account_events.clone(),
        topics: config.topics.clone(),
    };
    ingest
        .apply(&[(InvoiceEvent::parse(&erp_event()).expect("valid"), None)])
        .await
        .expect("applied");
    let producer = kafka::producer(&config.kafka).expect("producer");

    // Publish what is queued, then "crash" before the delete commits.
    let mut tx = pool.begin().await.expect("tx");
    let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as("SELECT topic, key, payload FROM outbox")
        .fetch_all(&mut *tx)
        .await
        .expect("rows");
    for (topic, key, payload) in &rows {
        kafka::publish(
            &producer,
            topic,
            key,
            payload,
            rdkafka::message::OwnedHeaders::new(),
        )
        .await
        .expect("publish");
    }
    tx.rollback().await.expect("crash");
    assert_eq!(queued(&pool).await, 2, "the events are still queued");
    outbox::relay_batch(&pool, &producer, 100)
        .await
        .expect("relay after restart");

    let consumer = follow(&config);
    let mut ids = Vec::new();
    for copy in 0..4 {
        let event = next_event(&consumer, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("copy {copy}"));
        ids.push(event.event_id);
    }
    let (mut first, mut again) = (ids[..2].to_vec(), ids[2..].to_vec());
    first.sort();
    again.sort();
    assert_eq!(
        first, again,
        "the same events again: consumers dedupe by event id"
    );
    assert!(next_event(&consumer, Duration::from_secs(2)).await.is_none());
}

#[tokio::test]
async fn a_row_the_broker_never_takes_is_parked_and_the_rows_after_it_are_published() {
    let (config, pool) = setup().await;
    let topic = config.topics.account_events.clone();
    let event = |id: &str| {
        pb::AccountEvent {
            event_id: id.into(),
            tenant_id: "acme".into(),
            ..Default::default()
        }
        .encode_to_vec()
    };
    // Larger than the broker takes (1 MB by default), then a topic that does not exist.
    let oversized = vec![7u8; 2 * 1024 * 1024];
    let missing = format!("{topic}.missing");
    let mut tx = pool.begin().await.expect("tx");
    outbox::enqueue_many(
        &mut tx,
        &[
            (topic.clone(), "k".into(), event("before"), None),
            (topic.clone(), "k".into(), oversized, None),
            (missing.clone(), "k".into(), event("lost-topic"), None),
            (topic.clone(), "k".into(), event("after"), None),
        ],
    )
    .await
    .expect("queued");
    tx.commit().await.expect("commit");

    // As services produce, except that a topic missing from the metadata is given up on after
    // 3 s instead of librdkafka's 30 (`topic.metadata.propagation.max.ms`): the same outcome,
    // sooner.
    let producer: rdkafka::producer::FutureProducer = config
        .kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("topic.metadata.propagation.max.ms", "3000")
        .create()
        .expect("producer");
    let relayed = outbox::relay_batch(&pool, &producer, 100)
        .await
        .expect("the batch goes through, the bad rows parked");
    assert_eq!(relayed, 4);
    assert_eq!(queued(&pool).await, 0, "nothing is left to jam the relay");

    let parked: Vec<(String, String)> = sqlx::query_as("SELECT topic, reason FROM outbox_parked ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("parked");
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert_eq!(parked[0].0, topic);
    assert!(
        parked[0].1.contains("size"),
        "the oversized row says why: {}",
        parked[0].1
    );
    assert_eq!(parked[1].0, missing);
    assert!(parked[1].1.to_lowercase().contains("topic"), "{}", parked[1].1);

    let consumer = follow(&config);
    let before = next_event(&consumer, Duration::from_secs(30))
        .await
        .expect("first");
    let after = next_event(&consumer, Duration::from_secs(30))
        .await
        .expect("second");
    assert_eq!(
        (before.event_id.as_str(), after.event_id.as_str()),
        ("before", "after")
    );
    assert!(
        outbox::relay_batch(&pool, &producer, 100).await.expect("relay") == 0,
        "nothing published again"
    );
    assert!(next_event(&consumer, Duration::from_secs(2)).await.is_none());
}
