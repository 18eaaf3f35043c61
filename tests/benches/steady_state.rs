//! Steady state: reminders falling due at a constant rate (2,000 a second for 60 s by default)
//! through both services' real loops, and how late each one reaches its provider. Scheduling's
//! timer loops claim them in PostgreSQL and emit them through the outbox to Kafka; channels
//! catches its ledger view up, decides, claims the send in Redis and calls SendGrid's Mail Send
//! API, here a stand-in on loopback that checks the request and notes when each call arrived.
//!
//! The latency of a reminder is from the moment it fell due (its `fire_at`, written before the
//! run) to its provider call. The load is open: every due moment is fixed before the clock
//! starts, so a slow stretch delays the reminders behind it and they count as late, and none is
//! held back because an earlier one was slow (no coordinated omission). The latencies go into
//! an HDR histogram (microseconds, three significant digits); every reminder must arrive at the
//! provider exactly once.
//!
//! cargo bench -p recobro-tests --bench steady_state
//! (BENCH_RATE reminders a second, default 2,000; BENCH_SECONDS, default 60. Scheduling's timer
//! loops, fire batch and channels' delivery batch are the services' defaults.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use recobro_channels::budget::ContactBudget;
use recobro_channels::delivery::Dispatcher;
use recobro_channels::ledger::{LedgerFence, LedgerView};
use recobro_channels::provider::{EmailProvider, Providers, SendGrid};
use recobro_channels::send_claim::SendClaims;
use recobro_channels::unsubscribe::{UnsubscribeKeys, UnsubscribeLinks};
use recobro_common::config::Config;
use recobro_common::kafka::{self, Batching};
use recobro_common::secret::Secret;
use recobro_common::{outbox, time};
use recobro_proto::v1 as pb;
use recobro_rules::{Eligibility, Rulebook};
use recobro_scheduling::timers::Timers;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[path = "../../services/channels/benches/ledger/mod.rs"]
mod ledger;

const TENANT: &str = "steady";
const API_KEY: &str = "SG.steady-state";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate = recobro_testkit::count("BENCH_RATE", 2000)?;
    let run_seconds = recobro_testkit::count("BENCH_SECONDS", 60)?;
    let calls_at_once = recobro_testkit::count(
        "BENCH_PROVIDER_CALLS",
        recobro_channels::DEFAULT_PROVIDER_CALLS_AT_ONCE,
    )?;
    let total = rate * run_seconds;
    let id = Uuid::new_v4().simple().to_string()[..10].to_string();
    let config_of = |service: &'static str| {
        let env = recobro_testkit::env_with(&[
            ("RECOBRO_TOPIC_PREFIX", format!("bench{id}.")),
            ("RECOBRO_DB_SCHEMA", format!("bench_{id}_{service}")),
        ]);
        Config::from_env(&env, service, 0)
    };
    let scheduling = config_of("scheduling")?;
    let channels = config_of("channels")?;
    anyhow::ensure!(scheduling.topics.reminders_due == channels.topics.reminders_due);
    let topics = &channels.topics;
    let all_topics = [
        topics.reminders_due.as_str(),
        &topics.deliveries,
        &topics.account_events,
        &topics.dead_letter,
        &scheduling.topics.escalations,
    ];
    recobro_testkit::create_topics(
        &channels.kafka,
        &[
            (&topics.reminders_due, 6),
            (&topics.deliveries, 6),
            (&topics.account_events, 6),
            (&topics.dead_letter, 1),
            (&scheduling.topics.escalations, 1),
        ],
    )
    .await?;
    let debtors: Vec<Uuid> = (0..total).map(|_| Uuid::new_v4()).collect();
    let zone = ledger::midday_zone();
    let producer = kafka::producer(&channels.kafka)?;
    publish_ledger(&producer, &channels, &debtors, &zone).await?;

    // Channels: its ledger view caught up first, as it stands in production before reminders
    // fall due, then its reminder consumer, waiting.
    let channels_pool = recobro_channels::migrate_and_connect(&channels).await?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(kafka::run_batch_consumer(
        kafka::consumer(
            &channels.kafka,
            &format!("bench{id}.channels-ledger"),
            &[&topics.account_events],
        )?,
        LedgerView {
            pool: channels_pool.clone(),
        },
        producer.clone(),
        topics.dead_letter.clone(),
        "bench",
        Batching {
            max_batch: 1000,
            linger: Duration::from_millis(5),
        },
        shutdown.clone(),
    )));
    ledger::until_viewed(&channels_pool, total).await?;

    // The reminders' due moments, `rate` a second from a start far enough ahead that the
    // seeding and the consumers' joining are over before the first one.
    let start = Utc::now() + chrono::Duration::seconds(15);
    let due_at = |n: usize| start + chrono::Duration::microseconds((n as i64 * 1_000_000) / rate as i64);
    let reminders: Vec<Uuid> = (0..total).map(|_| Uuid::new_v4()).collect();
    let stand_in = Arc::new(StandIn {
        due: reminders
            .iter()
            .enumerate()
            .map(|(n, reminder)| (*reminder, due_at(n)))
            .collect(),
        calls: Mutex::new(Calls::default()),
    });
    let provider = sendgrid_stand_in(stand_in.clone()).await?;
    let redis = recobro_testkit::redis().await?;
    let redis_prefix = format!("channels:bench{id}");
    let mut providers = Providers::sandbox();
    providers.email = EmailProvider::SendGrid(SendGrid {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        api_base: provider,
        api_key: Secret::new(API_KEY.to_string()),
        from: "cobranza@acme.example".into(),
        unsubscribe: UnsubscribeLinks {
            public_url: "https://collect.example".into(),
            keys: Arc::new(UnsubscribeKeys::ephemeral()),
        },
    });
    let dispatcher = Dispatcher {
        pool: channels_pool.clone(),
        ledger: LedgerFence::new(channels_pool.clone(), &channels.kafka, &topics.account_events)?,
        eligibility: Eligibility::shipped()?,
        budget: ContactBudget::new(redis.clone(), &redis_prefix),
        claims: SendClaims::new(redis, &redis_prefix),
        rulebook: Rulebook::shipped()?,
        providers,
        deliveries_topic: topics.deliveries.clone(),
        payment_links: Arc::new(recobro_channels::payments::PaymentLinks::ephemeral(
            "https://pay.example",
        )),
        max_attempts: recobro_channels::DEFAULT_MAX_ATTEMPTS,
        sends: std::sync::atomic::AtomicU64::new(0),
        exit_after_sends: None,
        provider_turns: tokio::sync::Semaphore::new(calls_at_once),
        debtors_at_once: recobro_channels::DEFAULT_DEBTORS_AT_ONCE,
    };
    tasks.push(tokio::spawn(kafka::run_batch_consumer(
        kafka::consumer(
            &channels.kafka,
            &format!("bench{id}.channels"),
            &[&topics.reminders_due],
        )?,
        dispatcher,
        producer.clone(),
        topics.dead_letter.clone(),
        "bench",
        Batching {
            max_batch: recobro_channels::DEFAULT_DELIVERY_BATCH,
            linger: Duration::from_millis(5),
        },
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(outbox::relay(
        channels_pool.clone(),
        producer.clone(),
        5000,
        shutdown.clone(),
    )));

    // Scheduling: the reminders, written due at their moments.
    let scheduling_pool = recobro_scheduling::migrate_and_connect(&scheduling).await?;
    for chunk in (0..total).collect::<Vec<_>>().chunks(10_000) {
        seed_reminders(&scheduling_pool, chunk, &debtors, &reminders, &due_at).await?;
    }
    sqlx::query("ANALYZE").execute(&scheduling_pool).await?;
    anyhow::ensure!(
        Utc::now() < start,
        "seeding ran past the first due moment; raise the lead"
    );
    let timers = Timers {
        pool: scheduling_pool.clone(),
        reminders_topic: scheduling.topics.reminders_due.clone(),
        escalations_topic: scheduling.topics.escalations.clone(),
        batch: recobro_scheduling::DEFAULT_FIRE_BATCH as i64,
        statement_gather: chrono::Duration::seconds(recobro_scheduling::DEFAULT_STATEMENT_GATHER_SECONDS),
    };
    for _ in 0..recobro_testkit::count("BENCH_LOOPS", recobro_scheduling::DEFAULT_TIMER_LOOPS)? {
        tasks.push(tokio::spawn(timers.clone().run(shutdown.clone())));
    }
    tasks.push(tokio::spawn(outbox::relay(
        scheduling_pool.clone(),
        producer,
        5000,
        shutdown.clone(),
    )));
    let end = due_at(total - 1);
    println!(
        "{total} reminders falling due at {rate}/s for {run_seconds} s, from {}",
        start.format("%H:%M:%S")
    );

    // Every reminder at the provider, however late: a backlog is part of the figure.
    let deadline = end + chrono::Duration::seconds(600);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let arrived = stand_in.calls.lock().expect("calls").arrived.len();
        if arrived >= total {
            break;
        }
        anyhow::ensure!(
            Utc::now() < deadline,
            "{arrived} of {total} reminders reached the provider 10 minutes after the last fell due"
        );
    }
    // Room for a second call of the same reminder to show, had there been one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    shutdown.cancel();
    for task in tasks {
        task.await?;
    }
    let (sent,): (i64,) = sqlx::query_as("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        .fetch_one(&channels_pool)
        .await?;
    // Where the time went: each reminder's record in reminders_due is stamped as scheduling's
    // relay hands it to the producer, which splits its latency into scheduling's part (timer
    // loop, outbox, relay) and the rest (the broker, channels' batch, its checks and its turn).
    let emitted = emitted_at(&scheduling, &format!("bench{id}.emitted"), total).await?;
    let calls = std::mem::take(&mut *stand_in.calls.lock().expect("calls"));
    let due = &stand_in.due;
    anyhow::ensure!(
        calls.refused == 0,
        "{} calls refused by the stand-in",
        calls.refused
    );
    anyhow::ensure!(calls.duplicates == 0, "{} reminders sent twice", calls.duplicates);
    anyhow::ensure!(sent as usize == total, "{sent} of {total} recorded as sent");
    let mut total_path = histogram()?;
    for (reminder, arrived) in &calls.arrived {
        total_path.saturating_record(micros_between(due[reminder], *arrived));
    }
    let mut leaving = histogram()?;
    let mut onward = histogram()?;
    for (reminder, at) in &emitted {
        leaving.saturating_record(micros_between(due[reminder], *at));
        onward.saturating_record(micros_between(*at, calls.arrived[reminder]));
    }
    let span = calls
        .arrived
        .values()
        .max()
        .map(|last| (*last - start).num_milliseconds() as f64 / 1000.0)
        .unwrap_or_default();
    println!("{total} reminders at the provider, each once, the last {span:.1} s after the first fell due");
    let figure = format!(
        "steady state {rate} reminders/s for {run_seconds} s{}",
        if calls_at_once == recobro_channels::DEFAULT_PROVIDER_CALLS_AT_ONCE {
            String::new()
        } else {
            format!(", {calls_at_once} provider calls at once")
        }
    );
    let ms =
        |histogram: &Histogram<u64>, quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "{figure}, due to provider call p50, ms: {:.1}",
        ms(&total_path, 0.5)
    );
    println!(
        "{figure}, due to provider call p99, ms: {:.1}",
        ms(&total_path, 0.99)
    );
    println!(
        "{figure}, due to provider call p99.9, ms: {:.1}",
        ms(&total_path, 0.999)
    );
    println!(
        "{figure}, due to provider call max, ms: {:.1}",
        total_path.max() as f64 / 1000.0
    );
    for (part, histogram) in [
        ("due to emitted to Kafka (scheduling)", &leaving),
        ("emitted to provider call (Kafka and channels)", &onward),
    ] {
        println!("{figure}, {part} p50, ms: {:.1}", ms(histogram, 0.5));
        println!("{figure}, {part} p99, ms: {:.1}", ms(histogram, 0.99));
    }
    println!(
        "steady-state benchmark peak resident memory, MiB: {:.0}",
        recobro_testkit::peak_resident_mib()?
    );

    recobro_testkit::forget_redis_prefix(&redis_prefix).await?;
    for pool in [&scheduling_pool, &channels_pool] {
        let schema: (String,) = sqlx::query_as("SELECT current_schema()").fetch_one(pool).await?;
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", schema.0))
            .execute(pool)
            .await?;
    }
    recobro_testkit::delete_topics(&channels.kafka, &all_topics).await?;
    Ok(())
}

/// The provider stand-in: whom it expects, and what it saw.
struct StandIn {
    /// Each seeded reminder's due moment; a call for any other is refused.
    due: HashMap<Uuid, DateTime<Utc>>,
    calls: Mutex<Calls>,
}

#[derive(Default)]
struct Calls {
    /// When each reminder's first call arrived.
    arrived: HashMap<Uuid, DateTime<Utc>>,
    duplicates: u64,
    /// Calls without the API key or the request's shape, or for a reminder never seeded.
    refused: u64,
}

/// SendGrid's v3 Mail Send on loopback: checks the bearer key and the request's shape, notes
/// when each reminder's call arrived, and answers 202 with a message id as SendGrid does.
async fn sendgrid_stand_in(stand_in: Arc<StandIn>) -> anyhow::Result<String> {
    async fn mail_send(
        State(stand_in): State<Arc<StandIn>>,
        headers: HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> (StatusCode, HeaderMap) {
        let arrived = Utc::now();
        let authorized = headers.get("authorization").and_then(|value| value.to_str().ok())
            == Some(&format!("Bearer {API_KEY}"));
        let shaped = body["personalizations"][0]["to"][0]["email"].is_string()
            && body["from"]["email"].is_string()
            && body["subject"].is_string()
            && body["content"][0]["value"].is_string();
        let reminder = body["custom_args"]["reminder_id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok());
        let mut calls = stand_in.calls.lock().expect("calls");
        let Some(reminder) =
            reminder.filter(|reminder| authorized && shaped && stand_in.due.contains_key(reminder))
        else {
            calls.refused += 1;
            return (StatusCode::BAD_REQUEST, HeaderMap::new());
        };
        if calls.arrived.contains_key(&reminder) {
            calls.duplicates += 1;
            return (StatusCode::BAD_REQUEST, HeaderMap::new());
        }
        calls.arrived.insert(reminder, arrived);
        let mut answer = HeaderMap::new();
        answer.insert(
            "x-message-id",
            format!("sg-{}", reminder.simple()).parse().expect("header"),
        );
        (StatusCode::ACCEPTED, answer)
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/v3/mail/send", axum::routing::post(mail_send))
        .with_state(stand_in);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// Latencies in microseconds up to an hour, to three significant digits.
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

/// From `from` to `to` in whole microseconds, at least one (the histogram's lowest value).
fn micros_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX).max(1) as u64
}

/// When each reminder left scheduling: the timestamp its relay's producer gave its record.
async fn emitted_at(
    config: &Config,
    group: &str,
    total: usize,
) -> anyhow::Result<HashMap<Uuid, DateTime<Utc>>> {
    use rdkafka::Message as _;
    let consumer = kafka::consumer(&config.kafka, group, &[&config.topics.reminders_due])?;
    let mut emitted = HashMap::with_capacity(total);
    while emitted.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .map_err(|_| anyhow::anyhow!("{} of {total} reminders read back from Kafka", emitted.len()))??;
        let reminder = pb::ReminderDue::decode(message.payload().unwrap_or_default())?;
        let at = message
            .timestamp()
            .to_millis()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| anyhow::anyhow!("a record without a timestamp"))?;
        emitted.insert(Uuid::parse_str(&reminder.reminder_id)?, at);
    }
    Ok(emitted)
}

/// The tenant and each debtor as accounts publishes them: one consented email address each.
async fn publish_ledger(
    producer: &rdkafka::producer::FutureProducer,
    config: &Config,
    debtors: &[Uuid],
    zone: &str,
) -> anyhow::Result<()> {
    let topic = &config.topics.account_events;
    let tenant = ledger::tenant_record(TENANT);
    let mut pending = vec![kafka::enqueue(
        producer,
        topic,
        TENANT,
        &tenant.encode_to_vec(),
        OwnedHeaders::new(),
    )?];
    for (n, debtor_id) in debtors.iter().enumerate() {
        let record = ledger::debtor_record(TENANT, &debtor_id.to_string(), n, zone);
        pending.push(kafka::enqueue(
            producer,
            topic,
            &debtor_id.to_string(),
            &record.encode_to_vec(),
            OwnedHeaders::new(),
        )?);
    }
    for delivery in pending {
        kafka::acknowledged(delivery).await?;
    }
    Ok(())
}

/// Scheduling's rows for reminders `chunk`: an open invoice of its debtor, and one email
/// reminder due at its moment.
async fn seed_reminders(
    pool: &sqlx::PgPool,
    chunk: &[usize],
    debtors: &[Uuid],
    reminders: &[Uuid],
    due_at: &impl Fn(usize) -> DateTime<Utc>,
) -> anyhow::Result<()> {
    let today = Utc::now().date_naive();
    let mut invoices = Vec::with_capacity(chunk.len());
    let mut owners = Vec::with_capacity(chunk.len());
    let mut snapshots = Vec::with_capacity(chunk.len());
    let mut ids = Vec::with_capacity(chunk.len());
    let mut moments = Vec::with_capacity(chunk.len());
    for &n in chunk {
        let invoice_id = Uuid::new_v4();
        let debtor_id = debtors[n];
        let snapshot = pb::InvoiceChanged {
            invoice: Some(pb::Invoice {
                invoice_id: invoice_id.to_string(),
                tenant_id: TENANT.into(),
                debtor_id: debtor_id.to_string(),
                number: format!("FE-{n}"),
                status: pb::InvoiceStatus::Open as i32,
                amount: Some(pb::Money {
                    amount_minor: 1_000_00,
                    currency: "USD".into(),
                }),
                due_date: Some(time::date(today - chrono::Duration::days(10))),
                ..Default::default()
            }),
            debtor: Some(pb::Debtor {
                debtor_id: debtor_id.to_string(),
                tenant_id: TENANT.into(),
                ..Default::default()
            }),
            reason: "erp".into(),
        };
        invoices.push(invoice_id);
        owners.push(debtor_id);
        snapshots.push(snapshot.encode_to_vec());
        ids.push(reminders[n]);
        moments.push(due_at(n));
    }
    sqlx::query(
        "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, status, version, snapshot)
         SELECT i, $1, d, 'open', 1, s FROM UNNEST($2::uuid[], $3::uuid[], $4::bytea[]) AS x(i, d, s)",
    )
    .bind(TENANT)
    .bind(&invoices)
    .bind(&owners)
    .bind(&snapshots)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO reminders (reminder_id, tenant_id, debtor_id, invoice_id, step, channel, template_id, fire_at,
                                state, strategy_id, arm, action, channels, roles)
         SELECT r, $1, d, i, 'overdue-7', 'email', 'overdue', f, 'pending', 'standard', 'champion', 'message',
                '{email}', '{}'
         FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[]) AS x(r, d, i, f)",
    )
    .bind(TENANT)
    .bind(&ids)
    .bind(&owners)
    .bind(&invoices)
    .bind(&moments)
    .execute(pool)
    .await?;
    Ok(())
}
