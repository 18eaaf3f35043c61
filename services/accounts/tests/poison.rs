//! One event the database refuses for good never stops ingestion. Against real Kafka and
//! PostgreSQL: the batch holding it is split until it is alone, it is parked in the dead-letter
//! topic with the reason, and every other event is applied.

use std::time::Duration;

use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message as _};
use recobro_accounts::ingest::InvoiceIngest;
use recobro_common::config::Config;
use recobro_common::kafka::{self, Batching, DLQ_REASON};
use recobro_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

const POISON: usize = 7;

fn erp_event(n: usize) -> pb::InvoiceEvent {
    let date = |day| pb::Date {
        year: 2026,
        month: 10,
        day,
    };
    pb::InvoiceEvent {
        event_id: format!("evt-{n}"),
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
            external_id: format!("F-{n}"),
            number: if n == POISON {
                "FE-POISON".into()
            } else {
                format!("FE-{n}")
            },
            amount: Some(pb::Money {
                amount_minor: 125_000_00,
                currency: "COP".into(),
            }),
            issue_date: Some(date(1)),
            due_date: Some(date(31)),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_is_parked_and_the_rest_of_its_batch_applied() {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[
        ("RECOBRO_TOPIC_PREFIX", format!("poison{id}.")),
        ("RECOBRO_DB_SCHEMA", format!("poison_{id}")),
    ]);
    let config = Config::from_env(&env, "accounts", 0).expect("config (deploy/local/env.sh)");
    let erp_topic = config.topics.erp_invoices_of("acme");
    recobro_testkit::create_topics(
        &config.kafka,
        &[
            (&erp_topic, 1),
            (&config.topics.account_events, 1),
            (&config.topics.dead_letter, 1),
        ],
    )
    .await
    .expect("topics");
    let pool = recobro_accounts::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    sqlx::query("INSERT INTO tenants (tenant_id) VALUES ('acme')")
        .execute(&pool)
        .await
        .expect("tenant");
    // Stands in for any value PostgreSQL will never store (a constraint: SQLSTATE class 23).
    sqlx::query("ALTER TABLE invoices ADD CONSTRAINT no_poison CHECK (number <> 'FE-POISON')")
        .execute(&pool)
        .await
        .expect("constraint");

    let producer = kafka::producer(&config.kafka).expect("producer");
    for n in 0..20 {
        kafka::publish(
            &producer,
            &erp_topic,
            "C-1",
            &erp_event(n).encode_to_vec(),
            rdkafka::message::OwnedHeaders::new(),
        )
        .await
        .expect("publish");
    }
    let consumer = kafka::consumer(&config.kafka, &format!("poison-{id}"), &[&erp_topic]).expect("consumer");
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(kafka::run_batch_consumer(
        consumer,
        InvoiceIngest {
            pool: pool.clone(),
            account_events_topic: config.topics.account_events.clone(),
            topics: config.topics.clone(),
        },
        producer,
        config.topics.dead_letter.clone(),
        "accounts",
        Batching {
            max_batch: 100,
            linger: Duration::from_millis(500),
        },
        shutdown.clone(),
    ));

    let dead_letters: StreamConsumer = config
        .kafka
        .client_config()
        .set("group.id", format!("dlq-{id}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    dead_letters
        .subscribe(&[&config.topics.dead_letter])
        .expect("subscribe");
    let parked = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match dead_letters.recv().await {
                Ok(message) => return message.detach(),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .expect("the poison event is parked");
    let event = pb::InvoiceEvent::decode(parked.payload().unwrap_or_default()).expect("an InvoiceEvent");
    assert_eq!(event.event_id, format!("evt-{POISON}"));
    let reason = parked
        .headers()
        .and_then(|headers| headers.iter().find(|h| h.key == DLQ_REASON))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("a reason");
    assert!(
        reason.contains("refused") && reason.contains("no_poison"),
        "{reason}"
    );
    assert!(
        !reason.contains("FE-POISON"),
        "the reason names no value: {reason}"
    );

    let applied = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let numbers: Vec<String> = sqlx::query_scalar("SELECT number FROM invoices ORDER BY external_id")
                .fetch_all(&pool)
                .await
                .expect("invoices");
            if numbers.len() >= 19 {
                return numbers;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the other events are applied");
    assert_eq!(applied.len(), 19, "{applied:?}");
    assert!(!applied.iter().any(|n| n == "FE-POISON"));
    shutdown.cancel();
    consuming.await.expect("consumer ends");
}

#[tokio::test]
async fn a_statement_running_longer_than_the_timeout_is_cancelled_and_retried_not_parked() {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[
        ("RECOBRO_DB_SCHEMA", format!("timeout_{id}")),
        ("RECOBRO_DB_STATEMENT_TIMEOUT_MS", "200".into()),
    ]);
    let config = Config::from_env(&env, "accounts", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_accounts::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    let started = std::time::Instant::now();
    let err = sqlx::query("SELECT pg_sleep(5)")
        .execute(&pool)
        .await
        .expect_err("cancelled by statement_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let code = err
        .as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("57014"), "query_canceled: {err}");
    assert!(
        matches!(recobro_common::db::failure(&err), kafka::Failure::Retry(_)),
        "a slow database may recover: retried, never parked"
    );
}
