//! Reminders delivered per second through the sandbox providers, on the full path: Kafka in,
//! the ledger view caught up (the fence) and read, contact rules and budget in Redis, render,
//! the send claim, the delivery recorded in PostgreSQL and its record relayed back to Kafka.
//! The debtors' ledger records are published and applied to the view before the clock starts.
//!
//! cargo bench -p recobro-channels --bench sends
//! (BENCH_REMINDERS overrides the default 200,000: enough that joining the consumer group and
//! the first batches weigh little against the steady state.)
//!
//! BENCH_COVERED=6: each message is a statement covering six invoices' reminders (a company's
//! day), and the figures count statements and the reminders they cover separately.

use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use recobro_channels::budget::ContactBudget;
use recobro_channels::delivery::Dispatcher;
use recobro_channels::ledger::{LedgerFence, LedgerView};
use recobro_channels::provider::Providers;
use recobro_channels::send_claim::SendClaims;
use recobro_common::config::Config;
use recobro_common::kafka::{self, Batching};
use recobro_common::{outbox, time};
use recobro_proto::v1 as pb;
use recobro_rules::{Eligibility, Rulebook};
use tokio_util::sync::CancellationToken;

#[path = "ledger/mod.rs"]
mod ledger;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total = recobro_testkit::setting("BENCH_REMINDERS", 200_000);
    let covered = recobro_testkit::setting("BENCH_COVERED", 0);
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[
        ("RECOBRO_TOPIC_PREFIX", format!("bench{id}.")),
        ("RECOBRO_DB_SCHEMA", format!("bench_{id}")),
    ]);
    let config = Config::from_env(&env, "channels", 0)?;
    let redis_prefix = format!("channels:bench{id}");
    let topics = &config.topics;
    recobro_testkit::create_topics(
        &config.kafka,
        &[
            (&topics.reminders_due, 6),
            (&topics.deliveries, 6),
            (&topics.account_events, 6),
            (&topics.dead_letter, 1),
        ],
    )
    .await?;

    // Reminders for debtors in the United States, in a zone where it is midday: all allowed now.
    let zone = ledger::midday_zone();
    let producer = kafka::producer(&config.kafka)?;
    let today = chrono::Utc::now().date_naive();
    let mut pending = Vec::with_capacity(2 * total + 1);
    let tenant = ledger::tenant_record("bench");
    pending.push(kafka::enqueue(
        &producer,
        &config.topics.account_events,
        "bench",
        &tenant.encode_to_vec(),
        OwnedHeaders::new(),
    )?);
    for n in 0..total {
        let debtor_id = uuid::Uuid::new_v4().to_string();
        let record = ledger::debtor_record("bench", &debtor_id, n, &zone);
        pending.push(kafka::enqueue(
            &producer,
            &config.topics.account_events,
            &debtor_id,
            &record.encode_to_vec(),
            OwnedHeaders::new(),
        )?);
        let invoice = |k: usize| pb::Invoice {
            invoice_id: uuid::Uuid::new_v4().to_string(),
            number: format!("FE-{n}-{k}"),
            amount: Some(pb::Money {
                amount_minor: 1_000_00,
                currency: "USD".into(),
            }),
            due_date: Some(time::date(today - chrono::Duration::days(10))),
            ..Default::default()
        };
        let statement: Vec<pb::CoveredReminder> = (0..covered)
            .map(|k| pb::CoveredReminder {
                reminder_id: uuid::Uuid::new_v4().to_string(),
                step: "overdue-7".into(),
                template_id: "overdue".into(),
                invoice: Some(invoice(k)),
            })
            .collect();
        let reminder = pb::ReminderDue {
            reminder_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: "bench".into(),
            debtor_id: debtor_id.clone(),
            invoice_id: uuid::Uuid::new_v4().to_string(),
            step: "overdue-7".into(),
            channel: pb::Channel::Email as i32,
            template_id: "overdue".into(),
            invoice: statement.is_empty().then(|| invoice(0)),
            covered: statement,
            ..Default::default()
        };
        pending.push(kafka::enqueue(
            &producer,
            &config.topics.reminders_due,
            &debtor_id,
            &reminder.encode_to_vec(),
            OwnedHeaders::new(),
        )?);
    }
    for delivery in pending {
        kafka::acknowledged(delivery).await?;
    }

    let pool = recobro_channels::migrate_and_connect(&config).await?;
    let shutdown = CancellationToken::new();
    // The ledger view first, as it would stand in production before the reminders fall due.
    let ledger_consumer = kafka::consumer(
        &config.kafka,
        &format!("bench{id}.channels-ledger"),
        &[&config.topics.account_events],
    )?;
    let viewing = tokio::spawn(kafka::run_batch_consumer(
        ledger_consumer,
        LedgerView { pool: pool.clone() },
        producer.clone(),
        config.topics.dead_letter.clone(),
        "bench",
        Batching {
            max_batch: 1000,
            linger: Duration::from_millis(5),
        },
        shutdown.clone(),
    ));
    let viewed = ledger::until_viewed(&pool, total).await?;
    println!(
        "ledger view: {total} debtor records applied in {:.1} s",
        viewed.as_secs_f64()
    );
    let redis = recobro_testkit::redis().await?;
    let dispatcher = Dispatcher {
        pool: pool.clone(),
        ledger: LedgerFence::new(pool.clone(), &config.kafka, &config.topics.account_events)?,
        eligibility: Eligibility::shipped()?,
        budget: ContactBudget::new(redis.clone(), &redis_prefix),
        claims: SendClaims::new(redis, &redis_prefix),
        rulebook: Rulebook::shipped()?,
        providers: Providers::sandbox(),
        deliveries_topic: config.topics.deliveries.clone(),
        payment_links: std::sync::Arc::new(recobro_channels::payments::PaymentLinks::ephemeral(
            "https://pay.example",
        )),
        max_attempts: 5,
        sends: std::sync::atomic::AtomicU64::new(0),
        exit_after_sends: None,
        provider_turns: tokio::sync::Semaphore::new(1),
        debtors_at_once: 64,
    };
    let consumer = kafka::consumer(
        &config.kafka,
        &format!("bench{id}.channels"),
        &[&config.topics.reminders_due],
    )?;
    let started = Instant::now();
    let consuming = tokio::spawn(kafka::run_batch_consumer(
        consumer,
        dispatcher,
        producer.clone(),
        config.topics.dead_letter.clone(),
        "bench",
        Batching {
            max_batch: 2000,
            linger: Duration::from_millis(5),
        },
        shutdown.clone(),
    ));
    let relaying = tokio::spawn(outbox::relay(pool.clone(), producer, 5000, shutdown.clone()));
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (done,): (i64,) = sqlx::query_as("SELECT count(*) FROM deliveries")
            .fetch_one(&pool)
            .await?;
        let (queued,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await?;
        if done as usize >= total && queued == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{done} of {total} after 10 minutes"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    consuming.await?;
    viewing.await?;
    relaying.await?;
    let (sent,): (i64,) = sqlx::query_as("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(sent as usize == total, "{sent} of {total} sent");
    if covered == 0 {
        println!("{total} reminders sent through the sandbox and recorded in {seconds:.1} s");
        println!(
            "reminders sent through the sandbox, full path, sends/s: {:.0}",
            total as f64 / seconds
        );
    } else {
        println!(
            "{total} statements of {covered} invoices each sent through the sandbox and recorded in {seconds:.1} s"
        );
        println!(
            "statements sent through the sandbox, full path, statements/s: {:.0}",
            total as f64 / seconds
        );
        println!(
            "reminders covered by those statements, reminders/s: {:.0}",
            (total * covered) as f64 / seconds
        );
    }
    println!(
        "sends benchmark peak resident memory, MiB: {:.0}",
        recobro_testkit::peak_resident_mib()?
    );
    recobro_testkit::forget_redis_prefix(&redis_prefix).await?;
    sqlx::query(&format!("DROP SCHEMA {} CASCADE", config.database_schema))
        .execute(&pool)
        .await?;
    recobro_testkit::delete_topics(
        &config.kafka,
        &[
            &config.topics.reminders_due,
            &config.topics.deliveries,
            &config.topics.account_events,
            &config.topics.dead_letter,
        ],
    )
    .await?;
    Ok(())
}
