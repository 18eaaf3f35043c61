//! ERP invoice events ingested from Kafka into PostgreSQL, per second: the real consumer loop
//! and batch handler, against the local stack's broker and database.
//!
//! cargo bench -p recobro-accounts --bench ingest
//! (BENCH_EVENTS, BENCH_DEBTORS, BENCH_BATCH, BENCH_CONSUMERS, KAFKA_BROKERS and DATABASE_URL override
//! the defaults.)

use std::collections::HashMap;
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
    // The last event of each partition: when those are in, every event is (a partition is
    // applied in order), which is much cheaper to watch for than counting every row.
    let mut last_of_partition: HashMap<i32, String> = HashMap::new();
    let mut pending = Vec::with_capacity(10_000);
    for index in 0..total {
        let event = event(index, debtors, &tenant);
        let key = format!("D-{}", index % debtors);
        pending.push((
            event.event_id.clone(),
            kafka::enqueue(
                &producer,
                &erp_topic,
                &key,
                &event.encode_to_vec(),
                OwnedHeaders::new(),
            )?,
        ));
        if pending.len() == 10_000 || index + 1 == total {
            for (event_id, delivery) in pending.drain(..) {
                match delivery.await {
                    Ok(Ok(delivered)) => {
                        last_of_partition.insert(delivered.partition, event_id);
                    }
                    Ok(Err((err, _))) => anyhow::bail!("publishing failed: {err}"),
                    Err(_) => anyhow::bail!("publishing was cancelled"),
                }
            }
        }
    }
    let last_events: Vec<String> = last_of_partition.into_values().collect();
    println!(
        "published {total} events in {:.1} s",
        publishing.elapsed().as_secs_f64()
    );

    let shutdown = CancellationToken::new();
    // As accounts runs it: its number of consumers in one group, sharing the partitions.
    let started = Instant::now();
    let mut consuming = Vec::new();
    for _ in 0..recobro_testkit::count("BENCH_CONSUMERS", recobro_accounts::DEFAULT_INGEST_CONSUMERS)? {
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
        consuming.push(tokio::spawn(kafka::run_batch_consumer(
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
        )));
    }
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (done,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM ingested_events
                 WHERE tenant_id = $1 AND event_id IN (SELECT unnest($2::text[]))",
        )
        .bind(&tenant)
        .bind(&last_events)
        .fetch_one(&pool)
        .await?;
        if done as usize == last_events.len() {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not every event ingested in 10 minutes"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    for consumer in consuming {
        consumer.await?;
    }
    let (ingested,): (i64,) = sqlx::query_as("SELECT count(*) FROM ingested_events")
        .fetch_one(&pool)
        .await?;
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
        ingested as usize == total && invoices as usize == total && queued as usize == expected,
        "{ingested} events ingested, {invoices} invoices, {queued} events queued ({expected} expected)"
    );
    println!(
        "{total} events, {debtors} debtors, {invoices} invoices and {queued} account events written in {seconds:.1} s"
    );
    println!("invoice events ingested, events/s: {:.0}", total as f64 / seconds);
    println!(
        "ingest benchmark peak resident memory, MiB: {:.0}",
        recobro_testkit::peak_resident_mib()?
    );

    sqlx::query(&format!("DROP SCHEMA {} CASCADE", config.database_schema))
        .execute(&pool)
        .await?;
    recobro_testkit::delete_topics(&config.kafka, &[&erp_topic, &config.topics.dead_letter]).await?;
    Ok(())
}
