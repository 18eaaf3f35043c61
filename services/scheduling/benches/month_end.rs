//! Month end: 1,000,000 reminders due at the same instant. How long the scheduler takes to emit
//! them all to Kafka: the real timer loop (claim, re-check, build, outbox, mark) and the real
//! outbox relay, against the local stack's PostgreSQL and broker.
//!
//! cargo bench -p recobro-scheduling --bench month_end
//! (BENCH_INVOICES x BENCH_STEPS reminders; defaults 250,000 x 4. BENCH_LOOPS: timer loops,
//! default scheduling's own; BENCH_BATCH: reminders claimed per transaction.)

use std::time::{Duration, Instant};

use recobro_common::config::Config;
use recobro_common::{kafka, outbox};
use recobro_scheduling::timers::Timers;
use recobro_testkit::setting;
use tokio_util::sync::CancellationToken;

#[path = "../tests/seed/mod.rs"]
mod seed;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let invoices = setting("BENCH_INVOICES", 250_000);
    let steps = setting("BENCH_STEPS", 4);
    let total = invoices * steps;
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[
        ("RECOBRO_TOPIC_PREFIX", format!("bench{id}.")),
        ("RECOBRO_DB_SCHEMA", format!("bench_{id}")),
    ]);
    let config = Config::from_env(&env, "scheduling", 0)?;
    recobro_testkit::create_topics(&config.kafka, &[(&config.topics.reminders_due, 6)]).await?;
    let pool = recobro_scheduling::migrate_and_connect(&config).await?;
    let seeding = Instant::now();
    for chunk in 0..invoices.div_ceil(10_000) {
        let size = (invoices - chunk * 10_000).min(10_000);
        seed::seed(&pool, size, steps as i32).await;
    }
    sqlx::query("ANALYZE").execute(&pool).await?;
    println!(
        "seeded {total} due reminders in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let producer = kafka::producer(&config.kafka)?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let timers = Timers {
        pool: pool.clone(),
        reminders_topic: config.topics.reminders_due.clone(),
        escalations_topic: config.topics.escalations.clone(),
        batch: setting("BENCH_BATCH", 5000) as i64,
        statement_gather: chrono::Duration::seconds(30),
    };
    // As scheduling runs them: its number of timer loops, each claiming its own batches.
    let firing: Vec<_> = (0..recobro_testkit::count("BENCH_LOOPS", recobro_scheduling::DEFAULT_TIMER_LOOPS)?)
        .map(|_| tokio::spawn(timers.clone().run(shutdown.clone())))
        .collect();
    let relaying = tokio::spawn(outbox::relay(pool.clone(), producer, 5000, shutdown.clone()));
    // Whether anything is left, not how much: counting a million rows every half second took
    // about 7% of PostgreSQL's time during the run it measures.
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (pending, queued): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM reminders WHERE state = 'pending'),
                    EXISTS (SELECT 1 FROM outbox)",
        )
        .fetch_one(&pool)
        .await?;
        if !pending && !queued {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "reminders still pending ({pending}) or queued ({queued}) after 15 minutes"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    for timer_loop in firing {
        timer_loop.await?;
    }
    relaying.await?;
    let (emitted,): (i64,) = sqlx::query_as("SELECT count(*) FROM reminders WHERE state = 'emitted'")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(emitted as usize == total, "{emitted} of {total} emitted");
    println!("{total} reminders due at once, emitted and acknowledged by Kafka in {seconds:.1} s");
    println!("month-end reminders emitted to Kafka, seconds: {seconds:.1}");
    println!(
        "month-end reminders emitted to Kafka, reminders/s: {:.0}",
        total as f64 / seconds
    );
    println!(
        "month-end benchmark peak resident memory, MiB: {:.0}",
        recobro_testkit::peak_resident_mib()?
    );

    sqlx::query(&format!("DROP SCHEMA {} CASCADE", config.database_schema))
        .execute(&pool)
        .await?;
    recobro_testkit::delete_topics(&config.kafka, &[&config.topics.reminders_due]).await?;
    Ok(())
}
