//! ERP invoice events ingested from Kafka into PostgreSQL, per second: the real consumer loop
//! and batch handler, against the local stack's broker and database.
//!
//! cargo bench -p recobro-accounts --bench ingest
//! (BENCH_EVENTS, BENCH_DEBTORS, KAFKA_BROKERS and DATABASE_URL override the defaults.)

use std::time::{Duration, Instant};

use chrono::Utc;
use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use recobro_accounts::ingest::InvoiceIngest;
use recobro_common::config::Config;
use recobro_common::kafka::{self, Batching};
use recobro_common::time;
use recobro_proto::v1 as pb;
use recobro_testkit::setting;
use tokio_util::sync::CancellationToken;

fn event(index: usize, debtors: usize, tenant: &str) -> pb::InvoiceEvent {
    let debtor = index % debtors;
    let today = Utc::now().date_naive();
    pb::InvoiceEvent {
        event_id: format!("evt-{index}"),
        tenant_id: tenant.to_string(),
        kind: pb::InvoiceEventKind::Issued as i32,
        version: 1,
        occurred_at: Some(time::timestamp(Utc::now())),
        debtor: Some(pb::DebtorRecord {
            external_id: format!("D-{debtor}"),
            name: format!("Cliente {debtor} SAS"),
            kind: pb::DebtorKind::Company as i32,
            time_zone: "America/Bogota".into(),
            locale: "es-CO".into(),
            country: "CO".into(),
            email: format!("cartera{debtor}@cliente.example"),
            ..Default::default()
        }),
        invoice: Some(pb::InvoiceRecord {
            external_id: format!("F-{index}"),
            number: format!("FE-{index}"),
            amount: Some(pb::Money {
                amount_minor: 1_000_00 + (index as i64 % 997) * 100,
                currency: "COP".into(),
            }),
            issue_date: Some(time::date(today - chrono::Duration::days(30))),
            due_date: Some(time::date(today + chrono::Duration::days((index % 60) as i64))),
        }),
        credit_note: None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total = setting("BENCH_EVENTS", 200_000);
    let debtors = setting("BENCH_DEBTORS", 20_000);
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[
        ("RECOBRO_TOPIC_PREFIX", format!("bench{id}.")),
        ("RECOBRO_DB_SCHEMA", format!("bench_{id}")),
    ]);
    let config = Config::from_env(&env, "accounts", 0)?;
    let tenant = format!("bench-{id}");
    let erp_topic = config.topics.erp_invoices_of(&tenant);

    let topics = &config.topics;
    recobro_testkit::create_topics(&config.kafka, &[(&erp_topic, 6), (&topics.dead_letter, 1)]).await?;
    let pool = recobro_accounts::migrate_and_connect(&config).await?;
    // Events never create tenants: the tenant exists first, as UpsertTenant would make it.
    sqlx::query("INSERT INTO tenants (tenant_id) VALUES ($1)")
        .bind(&tenant)
        .execute(&pool)
        .await?;

    // Publish the portfolio first: the figure is ingestion, not the ERP's publishing.
    let producer = kafka::producer(&config.kafka)?;
    let publishing = Instant::now();
    let mut pending = Vec::with_capacity(10_000);
    for index in 0..total {
        let event = event(index, debtors, &tenant);
        let key = format!("D-{}", index % debtors);
        pending.push(kafka::enqueue(
            &producer,
            &erp_topic,
            &key,
            &event.encode_to_vec(),
            OwnedHeaders::new(),
        )?);
        if pending.len() == 10_000 {
            for delivery in pending.drain(..) {
                kafka::acknowledged(delivery).await?;
            }
        }
    }
    for delivery in pending.drain(..) {
        kafka::acknowledged(delivery).await?;
    }
    println!(
        "published {total} events in {:.1} s",
        publishing.elapsed().as_secs_f64()
    );

    let shutdown = CancellationToken::new();
    let consumer = kafka::consumer(
        &config.kafka,
        &format!("bench{id}.accounts"),
        &[&config.topics.erp_invoices_pattern()],
    )?;
    let ingest = InvoiceIngest {
        pool: pool.clone(),
        account_events_topic: config.topics.account_events.clone(),
        topics: config.topics.clone(),
    };
    let started = Instant::now();
    let consuming = tokio::spawn(kafka::run_batch_consumer(
        consumer,
        ingest,
        producer.clone(),
        config.topics.dead_letter.clone(),
        "bench",
        Batching {
            max_batch: setting("BENCH_BATCH", 2000),
            linger: Duration::from_millis(5),
        },
        shutdown.clone(),
    ));
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (done,): (i64,) = sqlx::query_as("SELECT count(*) FROM ingested_events")
            .fetch_one(&pool)
            .await?;
        if done as usize >= total {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {done} of {total} ingested in 10 minutes"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    consuming.await?;
    let (invoices,): (i64,) = sqlx::query_as("SELECT count(*) FROM invoices")
        .fetch_one(&pool)
        .await?;
    let (queued,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await?;
    // One InvoiceChanged per event, and one DebtorChanged per debtor: when it is new (its
    // later events repeat it unchanged and publish nothing for it).
    let expected = total + total.min(debtors);
    anyhow::ensure!(
        invoices as usize == total && queued as usize == expected,
        "{invoices} invoices, {queued} events queued ({expected} expected)"
    );
    println!(
        "{total} events, {debtors} debtors, {invoices} invoices and {queued} account events written in {seconds:.1} s"
    );
    println!("invoice events ingested, events/s: {:.0}", total as f64 / seconds);

    sqlx::query(&format!("DROP SCHEMA {} CASCADE", config.database_schema))
        .execute(&pool)
        .await?;
    recobro_testkit::delete_topics(&config.kafka, &[&erp_topic, &config.topics.dead_letter]).await?;
    Ok(())
}
