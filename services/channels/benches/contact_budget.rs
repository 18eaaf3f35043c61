//! Contact-budget decisions per second against a real Redis, next to what `redis-benchmark`
//! gets from the same Redis for a trivial script at the same concurrency.
//!
//! cargo bench -p recobro-channels --bench contact_budget
//! (REDIS_URL, BENCH_DECISIONS and BENCH_CONCURRENCY override the defaults.)

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use recobro_channels::budget::{ContactBudget, Decision};
use recobro_rules::{Channel, Rulebook};
use recobro_testkit::setting;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The local stack's admin user over TLS (deploy/local/env.sh), as the services use Redis.
    let settings = recobro_testkit::redis_settings()?;
    let url = settings.url.clone();
    let (host, port) = url
        .trim_start_matches("rediss://")
        .trim_end_matches('/')
        .split_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap_or_else(|| ("127.0.0.1".into(), "6379".into()));
    let total = setting("BENCH_DECISIONS", 200_000);
    let concurrency = setting("BENCH_CONCURRENCY", 50);
    let debtors = 20_000;

    let client = settings.client()?;
    let prefix = format!("channels:bench-{}", Uuid::new_v4().simple());
    let budget = Arc::new(ContactBudget::new(
        client.get_connection_manager().await?,
        &prefix,
    ));
    let book = Arc::new(Rulebook::shipped()?);
    let debtor_ids: Arc<Vec<Uuid>> = Arc::new((0..debtors).map(|_| Uuid::new_v4()).collect());
    let now = Utc::now();

    // Colombia: the baseline's caps plus Colombia's, so each decision checks 7 windows.
    let caps = book
        .for_debtor("bench", "CO", None)
        .caps_for(Channel::Email)
        .count();
    // Every debtor's budget is known to Redis (restored, empty), as the dispatcher leaves it.
    {
        let rules = book.for_debtor("bench", "CO", None);
        for debtor in debtor_ids.iter() {
            budget
                .restore(&rules, *debtor, chrono_tz::America::Bogota, &[], now)
                .await?;
        }
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (budget, book, debtor_ids) = (budget.clone(), book.clone(), debtor_ids.clone());
        workers.push(tokio::spawn(async move {
            let rules = book.for_debtor("bench", "CO", None);
            let mut allowed = 0usize;
            for i in (worker..total).step_by(concurrency) {
                let debtor = debtor_ids[i % debtors];
                let decision = budget
                    .reserve(
                        &rules,
                        debtor,
                        Uuid::new_v4(),
                        Channel::Email,
                        chrono_tz::America::Bogota,
                        now,
                    )
                    .await
                    .expect("redis answers");
                allowed += usize::from(decision == Decision::Allowed);
            }
            allowed
        }));
    }
    let mut allowed = 0;
    for worker in workers {
        allowed += worker.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let ours = total as f64 / seconds;

    // The same connection for the reference: TLS, and the same user.
    let mut tls = vec!["--tls".to_string()];
    if let Some(ca) = &settings.ca {
        tls.extend(["--cacert".to_string(), ca.display().to_string()]);
    }
    let output = std::process::Command::new("redis-benchmark")
        .args(&tls)
        .args(["--user", &settings.username, "-a", settings.password.expose()])
        .args([
            "-h",
            &host,
            "-p",
            &port,
            "-n",
            &total.to_string(),
            "-c",
            &concurrency.to_string(),
        ])
        .args(["-q", "EVAL", "return 1", "0"])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let raw: f64 = text
        .rsplit(':')
        .flat_map(|part| part.split_whitespace())
        .find_map(|word| word.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot read redis-benchmark's output: {text}"))?;

    println!(
        "decisions: {total} over {debtors} debtors, {concurrency} concurrent, {caps} caps each, {allowed} allowed"
    );
    println!("contact budget decisions/s: {ours:.0}");
    println!("redis-benchmark trivial script (EVAL \"return 1\" 0), requests/s: {raw:.0}");
    println!("ratio of budget decisions to trivial script: {:.2}", ours / raw);

    // Leave nothing behind in a shared Redis.
    recobro_testkit::forget_redis_prefix(&prefix).await?;
    Ok(())
}
