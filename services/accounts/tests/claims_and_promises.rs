//! Against PostgreSQL: a claimed-paid hold nobody resolves ends by itself after its days (and
//! the invoice is marked so its reminders acknowledge the claim), and a
//! broken promise queues a work item for a collector, once. Each change is published (queued in
//! the outbox as the invoice's new state).

use std::time::Duration;

use chrono::NaiveDate;
use prost::Message as _;
use recobro_accounts::promises::PromiseJudge;
use recobro_common::config::Config;
use recobro_proto::v1 as pb;
use uuid::Uuid;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, d).expect("date")
}

/// The states of `invoice_id` queued for accounts.events.v1, oldest first.
async fn published(pool: &sqlx::PgPool, invoice_id: Uuid) -> Vec<pb::Invoice> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("outbox");
    payloads
        .iter()
        .filter_map(
            |payload| match pb::AccountEvent::decode(payload.as_slice()).ok()?.change? {
                pb::account_event::Change::InvoiceChanged(changed) => changed.invoice,
                _ => None,
            },
        )
        .filter(|invoice| invoice.invoice_id == invoice_id.to_string())
        .collect()
}

#[tokio::test]
async fn an_unconfirmed_claim_ends_after_its_days_and_a_broken_promise_queues_one_item() {
    let id = Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[("RECOBRO_DB_SCHEMA", format!("claims_{id}"))]);
    let config = Config::from_env(&env, "accounts", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_accounts::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    let debtor = Uuid::new_v4();
    let (claimed, promised) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query("INSERT INTO tenants (tenant_id) VALUES ('acme')")
        .execute(&pool)
        .await
        .expect("tenant");
    sqlx::query(
        "INSERT INTO debtors (debtor_id, tenant_id, external_id, name, kind, time_zone, locale, country)
         VALUES ($1, 'acme', 'C-1', 'Ferretería', 'company', 'America/Bogota', 'es-CO', 'CO')",
    )
    .bind(debtor)
    .execute(&pool)
    .await
    .expect("debtor");
    for (invoice, number, claimed_until) in [(claimed, "FE-1", Some(day(9))), (promised, "FE-2", None)] {
        sqlx::query(
            "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, external_id, number, amount_minor, currency,
                 issue_date, due_date, status, version, claimed_paid_until)
             VALUES ($1, 'acme', $2, $3, $3, 100000, 'COP', '2026-11-01', '2026-11-30', 'open', 1, $4)",
        )
        .bind(invoice)
        .bind(debtor)
        .bind(number)
        .bind(claimed_until)
        .execute(&pool)
        .await
        .expect("invoice");
    }
    let promise = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO promises (promise_id, tenant_id, invoice_id, promised_date, amount_minor, currency, made_on,
             grace_days, state)
         VALUES ($1, 'acme', $2, '2026-12-04', 100000, 'COP', '2026-12-01', 2, 'open')",
    )
    .bind(promise)
    .bind(promised)
    .execute(&pool)
    .await
    .expect("promise");
    let judge = PromiseJudge {
        pool: pool.clone(),
        account_events_topic: "accounts.events.v1".into(),
        every: Duration::from_secs(300),
        broken_promise_sla: Duration::from_secs(24 * 3600),
    };

    // Held through the 9th: still held on the 9th, lifted on the 10th, and published.
    assert_eq!(judge.lift_expired_claims(day(9)).await.expect("lift"), 0);
    assert_eq!(judge.lift_expired_claims(day(10)).await.expect("lift"), 1);
    let states = published(&pool, claimed).await;
    let last = states.last().expect("the lifted hold is published");
    assert_eq!(last.claimed_paid_until, None);
    assert!(
        last.claim_unconfirmed,
        "its reminders acknowledge the claim: {last:?}"
    );
    assert!(last.revision > 1, "{last:?}");
    assert_eq!(judge.lift_expired_claims(day(11)).await.expect("lift"), 0, "once");

    // Promised for the 4th with two days of grace, unpaid on the 7th: broken, one item.
    assert_eq!(judge.judge_due(day(7)).await.expect("judge"), 1);
    assert_eq!(judge.judge_due(day(8)).await.expect("judge"), 0);
    let items: Vec<(String, String, Vec<Uuid>, Option<Uuid>)> =
        sqlx::query_as("SELECT kind, state, invoice_ids, promise_id FROM work_items")
            .fetch_all(&pool)
            .await
            .expect("work items");
    assert_eq!(
        items,
        [(
            "broken_promise".to_string(),
            "open".to_string(),
            vec![promised],
            Some(promise)
        )]
    );
    assert_eq!(
        published(&pool, promised)
            .await
            .last()
            .map(|i| i.promised_date.is_none()),
        Some(true),
        "the broken promise no longer holds the ladder"
    );
    sqlx::query(&format!("DROP SCHEMA claims_{id} CASCADE"))
        .execute(&pool)
        .await
        .expect("clean up");
}

/// "Le pago 1.500 el 20": a promise for the 20th of 1,500 pesos, spread over the oldest
/// invoice first; the invoice it does not reach gets no promise and its ladder goes on. "La
/// mitad" promises half of what each owes.
#[tokio::test]
async fn a_promise_with_an_amount_covers_that_much_oldest_first() {
    use recobro_accounts::listening::{self, Applied, ListeningSettings, Reply, ReplyIntent, WorkSla};

    let id = Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[("RECOBRO_DB_SCHEMA", format!("amounts_{id}"))]);
    let config = Config::from_env(&env, "accounts", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_accounts::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    let debtor = Uuid::new_v4();
    let (older, newer, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    sqlx::query("INSERT INTO tenants (tenant_id) VALUES ('acme')")
        .execute(&pool)
        .await
        .expect("tenant");
    sqlx::query(
        "INSERT INTO debtors (debtor_id, tenant_id, external_id, name, kind, time_zone, locale, country)
         VALUES ($1, 'acme', 'C-1', 'Ferretería', 'company', 'America/Mexico_City', 'es-MX', 'MX')",
    )
    .bind(debtor)
    .execute(&pool)
    .await
    .expect("debtor");
    // 1,000.00 MXN each; the older due first.
    for (invoice, number, due) in [
        (newer, "FE-2", "2026-11-20"),
        (older, "FE-1", "2026-11-01"),
        (other, "FE-3", "2026-11-25"),
    ] {
        sqlx::query(
            "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, external_id, number, amount_minor, currency,
                 issue_date, due_date, status, version)
             VALUES ($1, 'acme', $2, $3, $3, 100000, 'MXN', '2026-10-01', $4::date, 'open', 1)",
        )
        .bind(invoice)
        .bind(debtor)
        .bind(number)
        .bind(due)
        .execute(&pool)
        .await
        .expect("invoice");
    }
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let settings = ListeningSettings {
        claim_days: 5,
        promise_horizon_days: 45,
        promise_grace_days: 2,
        sla: WorkSla {
            claimed_paid: hours(24),
            unclear_promise: hours(24),
            dispute: hours(48),
            reply: hours(72),
            broken_promise: hours(24),
            collector: hours(48),
            unsure_opt_out: hours(24),
            payment_mismatch: hours(24),
            payment_reversed: hours(24),
        },
    };
    let received_at = chrono::DateTime::parse_from_rfc3339("2026-12-07T15:00:00Z")
        .expect("time")
        .to_utc();
    let reply = |response_id: &str, invoice_ids: Vec<Uuid>, text: &str| Reply {
        response_id: response_id.into(),
        tenant_id: "acme".into(),
        debtor_id: debtor,
        invoice_ids,
        intent: ReplyIntent::PromiseToPay,
        text: text.into(),
        received_at,
    };
    let mut tx = pool.begin().await.expect("tx");
    let mut applied = Applied { changed: Vec::new() };
    for reply in [
        reply("r-1", vec![newer, older], "Le pago $1.500 el 20"),
        reply("r-2", vec![other], "el viernes le pago la mitad"),
    ] {
        listening::apply(&mut tx, &settings, &reply, &mut applied)
            .await
            .expect("apply")
            .expect("accepted");
    }
    tx.commit().await.expect("commit");
    let promises: Vec<(Uuid, NaiveDate, i64, String)> = sqlx::query_as(
        "SELECT invoice_id, promised_date, amount_minor, currency FROM promises ORDER BY promised_date, amount_minor DESC",
    )
    .fetch_all(&pool)
    .await
    .expect("promises");
    assert_eq!(
        promises,
        [
            // Friday the 11th, half of what FE-3 owes.
            (other, day(11), 50_000, "MXN".to_string()),
            // The 20th: FE-1 (older) in full, FE-2 the 500 left.
            (older, day(20), 100_000, "MXN".to_string()),
            (newer, day(20), 50_000, "MXN".to_string()),
        ]
    );
    sqlx::query(&format!("DROP SCHEMA amounts_{id} CASCADE"))
        .execute(&pool)
        .await
        .expect("clean up");
}
