//! Chaos: the whole path (ERP events, accounts, scheduling, channels, a SendGrid stand-in) with
//! several replicas of each service in one consumer group, on the real local stack, while a
//! random replica is killed (SIGKILL) and restarted every few seconds, the broker, PostgreSQL
//! and Redis are each restarted once (Redis with its append-only file, as the README recommends
//! for production), and a poison and an oversized ERP event are injected.
//!
//! At the end it checks, from what the provider stand-in received and the delivery records:
//! no reminder lost (each has a final record, or a deferral to a later moment), none sent twice
//! (those recorded as "outcome unknown" are listed, at most one per kill of a channels replica),
//! no contact cap exceeded (recomputed from the stand-in's log, per debtor and per window of
//! every pack that applies), and how long deliveries took to flow again after each fault.
//!
//! It runs alone (its own test binary) because it restarts the shared local stack. `make test`
//! runs a short version (`CHAOS_REMINDERS`, default 3,000); `make chaos` the full one (100,000).

#[allow(dead_code)]
#[path = "../e2e/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../e2e/pki.rs"]
mod pki;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use recobro_proto::v1 as pb;
use recobro_rules::{Channel, Rulebook, Window};

use helpers::{Stack, encode};

/// How big and how long a run is.
struct Settings {
    reminders: usize,
    /// Invoices are published evenly over this long; faults happen meanwhile.
    seconds: u64,
    kill_every: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Settings {
            reminders: number("CHAOS_REMINDERS", 3_000) as usize,
            seconds: number("CHAOS_SECONDS", 150),
            kill_every: Duration::from_secs(number("CHAOS_KILL_EVERY_SECONDS", 6)),
        }
    }
}

/// One email the stand-in took: reminder id, recipient, when.
type Receipt = (String, String, DateTime<Utc>);
type Receipts = Arc<Mutex<Vec<Receipt>>>;

/// SendGrid's Mail Send API as a stand-in that logs every message it accepts.
async fn sendgrid_stand_in() -> (String, Receipts) {
    let receipts: Receipts = Arc::default();
    let router = Router::new()
        .route(
            "/v3/mail/send",
            post(|State(receipts): State<Receipts>, body: Bytes| async move {
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let id = json["custom_args"]["reminder_id"].as_str().unwrap_or_default();
                let to = json["personalizations"][0]["to"][0]["email"]
                    .as_str()
                    .unwrap_or_default();
                receipts
                    .lock()
                    .expect("lock")
                    .push((id.to_string(), to.to_string(), Utc::now()));
                StatusCode::ACCEPTED
            }),
        )
        .with_state(receipts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (format!("http://{addr}"), receipts)
}

fn provider_settings(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("RECOBRO_EMAIL_PROVIDER", "sendgrid".to_string()),
        ("SENDGRID_API_KEY", "SG.chaos".to_string()),
        ("SENDGRID_FROM", "cobranza@acme.example".to_string()),
        ("SENDGRID_API_BASE", base.to_string()),
    ]
}

fn date(day: chrono::NaiveDate) -> pb::Date {
    recobro_common::time::date(day)
}

/// An invoice of debtor `d`, due eight days ago: its ladder's "overdue-7" step is due now.
fn invoice_event(tenant: &str, zone: &str, d: usize, k: usize) -> pb::InvoiceEvent {
    let today = Utc::now().date_naive();
    pb::InvoiceEvent {
        event_id: format!("evt-{d}-{k}"),
        tenant_id: tenant.to_string(),
        kind: pb::InvoiceEventKind::Issued as i32,
        version: 1,
        debtor: Some(pb::DebtorRecord {
            external_id: format!("D-{d}"),
            name: format!("Cliente {d} LLC"),
            kind: debtor_kind(d) as i32,
            time_zone: zone.to_string(),
            locale: "en-US".into(),
            country: "US".into(),
            email: format!("ap{d}@chaos.example"),
            ..Default::default()
        }),
        invoice: Some(pb::InvoiceRecord {
            external_id: format!("F-{d}-{k}"),
            number: format!("INV-{d}-{k}"),
            amount: Some(pb::Money {
                amount_minor: 1_500_00,
                currency: "USD".into(),
            }),
            issue_date: Some(date(today - chrono::Duration::days(38))),
            due_date: Some(date(today - chrono::Duration::days(8))),
        }),
        ..Default::default()
    }
}

/// Debtors are companies, whose invoices due the same day go out as one statement, except one
/// in twenty: a consumer, whose second invoice meets the daily cap its first one used.
fn debtor_kind(d: usize) -> pb::DebtorKind {
    if d.is_multiple_of(20) {
        pb::DebtorKind::Consumer
    } else {
        pb::DebtorKind::Company
    }
}

/// Every (debtor, invoice) of a run: one debtor in ten owes two invoices (a statement for a
/// company, two messages for a consumer).
fn portfolio(reminders: usize) -> Vec<(usize, usize)> {
    let mut invoices = Vec::with_capacity(reminders);
    let mut d = 0;
    while invoices.len() < reminders {
        invoices.push((d, 0));
        if d % 10 == 0 && invoices.len() < reminders {
            invoices.push((d, 1));
        }
        d += 1;
    }
    invoices
}

/// A fault and when it began and ended.
struct Fault {
    what: String,
    began: DateTime<Utc>,
    ended: DateTime<Utc>,
}

/// Stops one part of the local stack and starts it again with the project's scripts.
fn restart_backend(part: &str) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let log =
        std::fs::File::create(std::env::temp_dir().join(format!("chaos-restart-{part}.log"))).expect("log");
    for (script, args) in [("down.sh", vec![part]), ("up.sh", vec![])] {
        let status = std::process::Command::new("bash")
            .arg(repo.join("deploy/local").join(script))
            .args(&args)
            .current_dir(&repo)
            .stdout(log.try_clone().expect("log"))
            .stderr(log.try_clone().expect("log"))
            .status()
            .expect("run the stack script");
        assert!(
            status.success(),
            "{script} {args:?} failed (see the chaos-restart log)"
        );
    }
}

/// A replica: its service name, the label of its log, and the process.
struct Replicas {
    labels: Vec<(&'static str, String)>,
}

/// Kills (SIGKILL) replica `index` of the stack and starts a new one in its place.
async fn kill_and_restart(
    stack: &mut Stack,
    replicas: &Replicas,
    index: usize,
    channels_env: &[(&'static str, String)],
) {
    let (name, label) = &replicas.labels[index];
    let service = &mut stack.services[index];
    let _ = service.child.kill();
    let _ = service.child.wait();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let extra = if *name == "channels" {
        channels_env.to_vec()
    } else {
        Vec::new()
    };
    let (mut fresh, _) = stack.spawn_replica(name, label, extra);
    fresh.wait_until_serving().await;
    stack.services[index] = fresh;
}

/// Seconds from a fault's start until deliveries flowed again at half the rate of the five
/// seconds before it (after the fault ended); `None` when nothing flowed before it.
fn recovery(fault: &Fault, receipts: &[Receipt]) -> Option<f64> {
    let second = |at: DateTime<Utc>| at.timestamp();
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, _, at) in receipts {
        *per_second.entry(second(*at)).or_default() += 1;
    }
    let start = second(fault.began);
    let before: usize = (start - 5..start)
        .map(|s| per_second.get(&s).copied().unwrap_or(0))
        .sum();
    if before == 0 {
        return None;
    }
    let wanted = (before as f64 / 5.0 / 2.0).max(1.0);
    let from = second(fault.ended);
    per_second
        .range(from..)
        .find(|(_, count)| **count as f64 >= wanted)
        .map(|(s, _)| (*s - start) as f64)
}

/// Contacts beyond a cap, recomputed from what the provider received: per debtor, per cap of
/// every pack that applies to email for them, per calendar period or rolling window.
fn cap_violations(book: &Rulebook, tenant: &str, tz: Tz, receipts: &[Receipt]) -> Vec<String> {
    let rules = book.for_debtor(tenant, "US", None);
    let mut by_recipient: HashMap<&str, Vec<DateTime<Utc>>> = HashMap::new();
    for (_, to, at) in receipts {
        by_recipient.entry(to.as_str()).or_default().push(*at);
    }
    let mut violations = Vec::new();
    for (to, mut times) in by_recipient {
        times.sort();
        for (pack, cap) in rules.caps_for(Channel::Email) {
            let max = cap.max as usize;
            let over = match cap.window {
                Window::Rolling(span) => times
                    .iter()
                    .enumerate()
                    .any(|(i, at)| times[..=i].iter().filter(|t| **t > *at - span).count() > max),
                _ => {
                    let mut per_period: HashMap<String, usize> = HashMap::new();
                    for at in &times {
                        let period = cap
                            .window
                            .period(*at, tz)
                            .map(|(name, _)| name)
                            .unwrap_or_default();
                        *per_period.entry(period).or_default() += 1;
                    }
                    // A distinct-channels cap counts channels, and every contact here is email.
                    let limit = match cap.kind {
                        recobro_rules::CapKind::DistinctChannels => usize::MAX,
                        recobro_rules::CapKind::Contacts => max,
                    };
                    per_period.values().any(|count| *count > limit)
                }
            };
            if over {
                let at: Vec<String> = times.iter().map(|t| t.to_rfc3339()).collect();
                violations.push(format!(
                    "{to}: {} {} (max {max} per {}), received at {at:?}",
                    pack.label(),
                    cap.id,
                    cap.window.name()
                ));
            }
        }
    }
    violations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_path_loses_nothing_and_sends_nothing_twice_through_kills_restarts_and_poison() {
    let settings = Settings::from_env();
    let (base, receipts) = sendgrid_stand_in().await;
    let channels_env = provider_settings(&base);
    let mut stack = Stack::start_configured(None, channels_env.clone()).await;
    // One replica of each runs already; in all: 2 accounts, 2 scheduling, 3 channels.
    let mut replicas = Replicas {
        labels: stack
            .services
            .iter()
            .map(|s| (s.name, s.name.to_string()))
            .collect(),
    };
    for (name, n) in [
        ("accounts", 1),
        ("scheduling", 1),
        ("channels", 1),
        ("channels", 2),
    ] {
        let label = format!("{name}-{n}");
        let extra = if name == "channels" {
            channels_env.clone()
        } else {
            Vec::new()
        };
        let (mut service, _) = stack.spawn_replica(name, &label, extra);
        service.wait_until_serving().await;
        stack.services.push(service);
        replicas.labels.push((name, label));
    }

    let tenant = stack.tenant.clone();
    let zone = stack.debtor_zone.clone();
    let invoices = portfolio(settings.reminders);
    let expected: HashSet<String> = invoices
        .iter()
        .map(|(d, k)| {
            let invoice_id = recobro_common::ids::invoice_id(&tenant, &format!("F-{d}-{k}"));
            uuid::Uuid::new_v5(&invoice_id, b"overdue-7").to_string()
        })
        .collect();
    let deliveries = stack.follow(&stack.topics.deliveries);
    let dead_letters = stack.follow(&stack.topics.dead_letter);

    // The ERP publishes evenly over the run; the producer waits out the broker's restart.
    let producer: rdkafka::producer::FutureProducer = helpers::kafka_admin()
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "600000")
        .create()
        .expect("producer");
    let publishing = {
        let (producer, topic, tenant, zone) = (
            producer.clone(),
            stack.erp_topic.clone(),
            tenant.clone(),
            zone.clone(),
        );
        let pause = Duration::from_secs(settings.seconds).div_f64(invoices.len().max(1) as f64);
        let invoices = invoices.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut pending = Vec::with_capacity(invoices.len() + 2);
            for (n, (d, k)) in invoices.iter().enumerate() {
                if n == invoices.len() / 5 {
                    // A poison event (a due date no calendar arithmetic survives) and an
                    // oversized one (a debtor name of 900 KB), in the middle of the flow.
                    let mut poison = invoice_event(&tenant, &zone, 999_999_990, 0);
                    poison.invoice.as_mut().expect("invoice").due_date = Some(pb::Date {
                        year: 262142,
                        month: 12,
                        day: 31,
                    });
                    let mut oversized = invoice_event(&tenant, &zone, 999_999_991, 0);
                    oversized.debtor.as_mut().expect("debtor").name = "x".repeat(900 * 1024);
                    for event in [poison, oversized] {
                        pending.push(
                            recobro_common::kafka::enqueue(
                                &producer,
                                &topic,
                                "poison",
                                &encode(&event),
                                Default::default(),
                            )
                            .expect("enqueue"),
                        );
                    }
                }
                let event = invoice_event(&tenant, &zone, *d, *k);
                pending.push(
                    recobro_common::kafka::enqueue(
                        &producer,
                        &topic,
                        &format!("D-{d}"),
                        &encode(&event),
                        Default::default(),
                    )
                    .expect("enqueue"),
                );
                tokio::time::sleep_until(started + pause.mul_f64(n as f64 + 1.0)).await;
            }
            for delivery in pending {
                recobro_common::kafka::acknowledged(delivery)
                    .await
                    .expect("published");
            }
        })
    };

    // Faults while the ERP publishes: replicas killed every few seconds, and each backend
    // restarted once (at 25%, 55% and 80% of the run).
    let run_started = Utc::now();
    let mut faults: Vec<Fault> = Vec::new();
    let mut backends = vec![(0.25, "kafka"), (0.55, "postgres"), (0.8, "redis")];
    let mut channels_kills = 0;
    let mut kills = 0;
    let mut next_kill = tokio::time::Instant::now() + settings.kill_every;
    let mut victim = 0usize;
    while !publishing.is_finished() {
        let elapsed = (Utc::now() - run_started).num_milliseconds() as f64 / 1000.0;
        if let Some(position) = backends
            .iter()
            .position(|(at, _)| elapsed >= at * settings.seconds as f64)
        {
            let (_, part) = backends.remove(position);
            let began = Utc::now();
            tokio::task::spawn_blocking(move || restart_backend(part))
                .await
                .expect("restart");
            faults.push(Fault {
                what: format!("{part} restart"),
                began,
                ended: Utc::now(),
            });
            continue;
        }
        if tokio::time::Instant::now() >= next_kill {
            // A different replica each time, in a scrambled order.
            victim = (victim + 5) % stack.services.len();
            let began = Utc::now();
            let label = replicas.labels[victim].1.clone();
            if replicas.labels[victim].0 == "channels" {
                channels_kills += 1;
            }
            kill_and_restart(&mut stack, &replicas, victim, &channels_env).await;
            kills += 1;
            faults.push(Fault {
                what: format!("kill -9 {label}"),
                began,
                ended: Utc::now(),
            });
            next_kill = tokio::time::Instant::now() + settings.kill_every;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    publishing.await.expect("publisher");
    // A backend whose turn came after the last invoice was published is restarted now.
    for (_, part) in backends {
        let began = Utc::now();
        tokio::task::spawn_blocking(move || restart_backend(part))
            .await
            .expect("restart");
        faults.push(Fault {
            what: format!("{part} restart"),
            began,
            ended: Utc::now(),
        });
    }

    // Every reminder's record, however long the recovery takes (bounded).
    let mut records: HashMap<String, Vec<pb::DeliveryRecord>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300 + settings.reminders as u64 / 50);
    while !expected.iter().all(|id| records.contains_key(id)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(received) = deliveries.next(left.min(Duration::from_secs(30))).await else {
            if left.is_zero() {
                break;
            }
            continue;
        };
        let record: pb::DeliveryRecord = received.decode();
        // A statement's record is each covered reminder's record too.
        for covered in &record.covered_reminder_ids {
            records.entry(covered.clone()).or_default().push(record.clone());
        }
        records
            .entry(record.reminder_id.clone())
            .or_default()
            .push(record);
    }
    // What arrives late (a duplicate) shows in the stand-in's log, read after a quiet moment.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let receipts = receipts.lock().expect("lock").clone();

    let lost: Vec<&String> = expected.iter().filter(|id| !records.contains_key(*id)).collect();
    // What the provider got, per reminder: a statement's send is a send of each it covers, so
    // a reminder sent alone and again inside a statement counts twice.
    let covers: HashMap<&str, &Vec<String>> = records
        .values()
        .flatten()
        .filter(|r| !r.covered_reminder_ids.is_empty())
        .map(|r| (r.reminder_id.as_str(), &r.covered_reminder_ids))
        .collect();
    let mut received: HashMap<&str, usize> = HashMap::new();
    for (id, _, _) in &receipts {
        match covers.get(id.as_str()) {
            Some(covered) => {
                for reminder in covered.iter() {
                    *received.entry(reminder.as_str()).or_default() += 1;
                }
            }
            None => *received.entry(id.as_str()).or_default() += 1,
        }
    }
    let statements = covers.len();
    let twice: Vec<(&str, usize)> = received
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, count)| (*id, *count))
        .collect();
    let unexpected: Vec<&str> = received
        .keys()
        .filter(|id| !expected.contains(**id))
        .copied()
        .collect();
    let finals = |id: &String| records.get(id).and_then(|r| r.last().cloned());
    let unknown: Vec<&String> = expected
        .iter()
        .filter(|id| {
            finals(id).is_some_and(|r| {
                r.status() == pb::DeliveryStatus::Failed && r.reason.starts_with("outcome unknown")
            })
        })
        .collect();
    let other_failures: Vec<String> = expected
        .iter()
        .filter_map(finals)
        .filter(|r| {
            !matches!(
                r.status(),
                pb::DeliveryStatus::Sent | pb::DeliveryStatus::Deferred
            ) && !r.reason.starts_with("outcome unknown")
        })
        .map(|r| format!("{} {:?}: {}", r.reminder_id, r.status(), r.reason))
        .collect();
    let sent = expected
        .iter()
        .filter(|id| finals(id).is_some_and(|r| r.status() == pb::DeliveryStatus::Sent))
        .count();
    let deferred = expected
        .iter()
        .filter(|id| finals(id).is_some_and(|r| r.status() == pb::DeliveryStatus::Deferred))
        .count();
    let tz: Tz = zone.parse().expect("zone");
    let violations = cap_violations(&Rulebook::shipped().expect("packs"), &tenant, tz, &receipts);

    // The dead-letter follower may still be rejoining its group after the broker's restart.
    let mut parked = Vec::new();
    let mut wait = Duration::from_secs(60);
    while let Some(letter) = dead_letters.next(wait).await {
        parked.push(
            letter
                .header(recobro_common::kafka::DLQ_REASON)
                .unwrap_or_default()
                .to_string(),
        );
        if parked.len() >= 2 {
            wait = Duration::from_secs(5);
        }
    }

    println!(
        "chaos: {} reminders ({} sent, {} of them in {} statements, {} deferred by the daily cap), {} kills ({} of channels), {} backend restarts",
        expected.len(),
        sent,
        covers.values().map(|c| c.len()).sum::<usize>(),
        statements,
        deferred,
        kills,
        channels_kills,
        faults.len() - kills
    );
    println!("chaos: reminders lost: {}", lost.len());
    println!("chaos: reminders sent twice: {}", twice.len());
    println!(
        "chaos: outcome unknown (at most one per channels kill): {} {unknown:?}",
        unknown.len()
    );
    println!("chaos: contact-cap violations: {}", violations.len());
    for fault in &faults {
        match recovery(fault, &receipts) {
            Some(seconds) => println!("chaos: recovery after {}, seconds: {seconds}", fault.what),
            None => println!(
                "chaos: recovery after {}: no deliveries flowing before it",
                fault.what
            ),
        }
    }
    println!("chaos: parked in the dead-letter topic: {parked:?}");
    // When things happened, for reading a run: deliveries per 5 s and the faults.
    let mut timeline: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, _, at) in &receipts {
        *timeline
            .entry((*at - run_started).num_seconds() / 5 * 5)
            .or_default() += 1;
    }
    println!("chaos: deliveries per 5 s from the start: {timeline:?}");
    for fault in &faults {
        println!(
            "chaos: {} from {} s to {} s",
            fault.what,
            (fault.began - run_started).num_seconds(),
            (fault.ended - run_started).num_seconds()
        );
    }

    assert!(lost.is_empty(), "lost: {:?}", &lost[..lost.len().min(20)]);
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    assert!(
        unexpected.is_empty(),
        "sent without being planned: {unexpected:?}"
    );
    assert!(
        unknown.len() <= channels_kills,
        "more outcomes unknown than kills of channels: {unknown:?}"
    );
    assert!(other_failures.is_empty(), "{other_failures:?}");
    assert!(violations.is_empty(), "{violations:?}");
    assert!(
        parked.iter().any(|r| r.contains("invoice.due_date")),
        "the poison event is parked: {parked:?}"
    );
    assert!(
        parked.iter().any(|r| r.contains("debtor.name")),
        "the oversized event is parked: {parked:?}"
    );
}
