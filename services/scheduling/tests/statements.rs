//! Statements at fire time, against a real PostgreSQL: a company debtor's reminders due the
//! same local day go out as one ReminderDue covering every invoice still open and unheld; a
//! debtor whose strategy does not consolidate gets one per invoice, as before.

use chrono::{DateTime, Duration, Utc};
use prost::Message as _;
use recobro_common::config::Config;
use recobro_proto::v1 as pb;
use recobro_scheduling::timers::Timers;
use uuid::Uuid;

/// A zone where it is around noon now, so "later today" stays today for the test.
fn noon_zone(now: DateTime<Utc>) -> String {
    use chrono::Timelike as _;
    let offset = 12 - i64::from(now.hour());
    match offset {
        0 => "Etc/GMT".into(),
        // Etc/GMT-5 is five hours ahead of UTC (POSIX signs).
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

struct Seeded {
    reminder_id: Uuid,
    invoice_id: Uuid,
}

/// One open invoice of `debtor` with one overdue message reminder at `fire_at`.
#[allow(clippy::too_many_arguments)]
async fn invoice(
    pool: &sqlx::PgPool,
    debtor: Uuid,
    zone: &str,
    number: &str,
    fire_at: DateTime<Utc>,
    consolidate: bool,
    status: &str,
    disputed: bool,
) -> Seeded {
    let invoice_id = Uuid::new_v4();
    let snapshot = pb::InvoiceChanged {
        invoice: Some(pb::Invoice {
            invoice_id: invoice_id.to_string(),
            tenant_id: "statements".into(),
            debtor_id: debtor.to_string(),
            number: number.into(),
            status: pb::InvoiceStatus::Open as i32,
            disputed,
            ..Default::default()
        }),
        debtor: Some(pb::Debtor {
            debtor_id: debtor.to_string(),
            email: "ap@example.com".into(),
            time_zone: zone.into(),
            ..Default::default()
        }),
        reason: "erp".into(),
    };
    sqlx::query(
        "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, status, version, snapshot)
         VALUES ($1, 'statements', $2, $3, 1, $4)",
    )
    .bind(invoice_id)
    .bind(debtor)
    .bind(status)
    .bind(snapshot.encode_to_vec())
    .execute(pool)
    .await
    .expect("invoice");
    let reminder_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO reminders (reminder_id, tenant_id, debtor_id, invoice_id, step, channel, template_id, fire_at,
                                state, strategy_id, arm, action, channels, roles, consolidate)
         VALUES ($1, 'statements', $2, $3, 'overdue-1', 'email', 'overdue', $4, 'pending', 'standard', 'champion',
                 'message', '{email}', '{}', $5)",
    )
    .bind(reminder_id)
    .bind(debtor)
    .bind(invoice_id)
    .bind(fire_at)
    .bind(consolidate)
    .execute(pool)
    .await
    .expect("reminder");
    Seeded {
        reminder_id,
        invoice_id,
    }
}

/// The ReminderDue rows in the outbox, taken out of it.
async fn emitted(pool: &sqlx::PgPool) -> Vec<pb::ReminderDue> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "WITH taken AS (DELETE FROM outbox RETURNING id, payload) SELECT payload FROM taken ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("outbox");
    rows.iter()
        .map(|(payload,)| pb::ReminderDue::decode(payload.as_slice()).expect("a ReminderDue"))
        .collect()
}

async fn state(pool: &sqlx::PgPool, reminder_id: Uuid) -> String {
    let (state,): (String,) = sqlx::query_as("SELECT state FROM reminders WHERE reminder_id = $1")
        .bind(reminder_id)
        .fetch_one(pool)
        .await
        .expect("reminder");
    state
}

#[tokio::test]
async fn a_companys_reminders_due_the_same_day_go_as_one_statement_of_the_invoices_still_owed() {
    let id = Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[("RECOBRO_DB_SCHEMA", format!("statements_{id}"))]);
    let config = Config::from_env(&env, "scheduling", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_scheduling::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    let now = Utc::now();
    let zone = noon_zone(now);
    let company = Uuid::new_v4();
    let due = now - Duration::minutes(1);
    // Six invoices due together; one paid and one disputed since they were planned.
    let mut six = Vec::new();
    for n in 1..=6 {
        let (status, disputed) = match n {
            2 => ("paid", false),
            5 => ("open", true),
            _ => ("open", false),
        };
        six.push(
            invoice(
                &pool,
                company,
                &zone,
                &format!("FE-{n}"),
                due,
                true,
                status,
                disputed,
            )
            .await,
        );
    }
    // Later today: it joins the statement. Tomorrow: it keeps its own day.
    let later_today = invoice(
        &pool,
        company,
        &zone,
        "FE-7",
        now + Duration::hours(2),
        true,
        "open",
        false,
    )
    .await;
    let tomorrow = invoice(
        &pool,
        company,
        &zone,
        "FE-8",
        now + Duration::hours(30),
        true,
        "open",
        false,
    )
    .await;
    // A consumer whose strategy does not consolidate: one message per invoice, as before.
    let consumer = Uuid::new_v4();
    let mut theirs = Vec::new();
    for n in 1..=3 {
        theirs.push(
            invoice(
                &pool,
                consumer,
                &zone,
                &format!("C-{n}"),
                due,
                false,
                "open",
                false,
            )
            .await,
        );
    }

    let timers = Timers {
        pool: pool.clone(),
        reminders_topic: "reminders".into(),
        escalations_topic: "escalations".into(),
        batch: 50,
        statement_gather: Duration::zero(),
    };
    timers.fire_due().await.expect("fired");
    let out = emitted(&pool).await;

    let statements: Vec<&pb::ReminderDue> = out.iter().filter(|r| !r.covered.is_empty()).collect();
    assert_eq!(statements.len(), 1, "one statement for the company: {out:#?}");
    let statement = statements[0];
    assert_eq!(statement.debtor_id, company.to_string());
    assert_eq!(statement.invoice_id, "", "a statement is no single invoice's");
    let numbers: Vec<&str> = statement
        .covered
        .iter()
        .map(|c| c.invoice.as_ref().map(|i| i.number.as_str()).unwrap_or_default())
        .collect();
    assert_eq!(
        numbers,
        ["FE-1", "FE-3", "FE-4", "FE-6", "FE-7"],
        "paid FE-2 and disputed FE-5 left out"
    );
    let covered: Vec<Uuid> = statement
        .covered
        .iter()
        .map(|c| c.reminder_id.parse().expect("uuid"))
        .collect();
    assert_eq!(
        statement.reminder_id,
        recobro_scheduling::statement::statement_id(&covered).to_string(),
        "its id comes from what it covers"
    );
    for id in &covered {
        assert_eq!(state(&pool, *id).await, "emitted");
    }
    assert_eq!(state(&pool, six[1].reminder_id).await, "cancelled", "paid");
    assert_eq!(state(&pool, six[4].reminder_id).await, "paused", "disputed");
    assert_eq!(
        state(&pool, tomorrow.reminder_id).await,
        "pending",
        "tomorrow is another day"
    );
    assert!(covered.contains(&later_today.reminder_id));

    let singles: Vec<&pb::ReminderDue> = out.iter().filter(|r| r.covered.is_empty()).collect();
    let mut single_invoices: Vec<String> = singles.iter().map(|r| r.invoice_id.clone()).collect();
    single_invoices.sort();
    let mut consumer_invoices: Vec<String> = theirs.iter().map(|s| s.invoice_id.to_string()).collect();
    consumer_invoices.sort();
    assert_eq!(
        single_invoices, consumer_invoices,
        "the consumer gets one message per invoice"
    );
    for single in singles {
        assert_eq!(single.debtor_id, consumer.to_string());
    }

    // Just due: it waits the gather for the rest of its debtor's import, then goes.
    let another = Uuid::new_v4();
    let fresh = invoice(
        &pool,
        another,
        &zone,
        "FE-9",
        now - Duration::seconds(1),
        true,
        "open",
        false,
    )
    .await;
    let gathering = Timers {
        statement_gather: Duration::seconds(30),
        ..timers
    };
    gathering.fire_due().await.expect("fired");
    assert!(
        emitted(&pool).await.is_empty(),
        "waits for the rest of the import"
    );
    assert_eq!(state(&pool, fresh.reminder_id).await, "pending");
    let gathered = Timers {
        statement_gather: Duration::zero(),
        ..gathering
    };
    gathered.fire_due().await.expect("fired");
    assert_eq!(emitted(&pool).await.len(), 1);
    assert_eq!(state(&pool, fresh.reminder_id).await, "emitted");
}

#[tokio::test]
async fn a_strategys_wider_window_takes_in_the_next_days_reminders_early() {
    let id = Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[("RECOBRO_DB_SCHEMA", format!("window_{id}"))]);
    let config = Config::from_env(&env, "scheduling", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_scheduling::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    let now = Utc::now();
    // Around noon for the debtor: a three-day window from today ends about 60 hours from now.
    let zone = noon_zone(now);
    let company = Uuid::new_v4();
    let mut seeded = Vec::new();
    for (number, fire_at) in [
        ("FE-1", now - Duration::minutes(1)),
        ("FE-2", now + Duration::hours(30)),
        ("FE-3", now + Duration::hours(50)),
        ("FE-4", now + Duration::hours(80)),
    ] {
        seeded.push(invoice(&pool, company, &zone, number, fire_at, true, "open", false).await);
    }
    sqlx::query("UPDATE reminders SET statement_days = 3 WHERE debtor_id = $1")
        .bind(company)
        .execute(&pool)
        .await
        .expect("a three-day window");
    let timers = Timers {
        pool: pool.clone(),
        reminders_topic: "reminders".into(),
        escalations_topic: "escalations".into(),
        batch: 50,
        statement_gather: Duration::zero(),
    };
    timers.fire_due().await.expect("fired");
    let out = emitted(&pool).await;
    assert_eq!(out.len(), 1, "{out:#?}");
    let numbers: Vec<&str> = out[0]
        .covered
        .iter()
        .map(|c| c.invoice.as_ref().map(|i| i.number.as_str()).unwrap_or_default())
        .collect();
    assert_eq!(
        numbers,
        ["FE-1", "FE-2", "FE-3"],
        "the window's three days, not the fourth"
    );
    assert_eq!(state(&pool, seeded[3].reminder_id).await, "pending");
}

#[tokio::test]
async fn while_one_replica_forms_a_debtors_statement_another_takes_none_of_it() {
    let id = Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[("RECOBRO_DB_SCHEMA", format!("race_statements_{id}"))]);
    let config = Config::from_env(&env, "scheduling", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_scheduling::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    let now = Utc::now();
    let zone = noon_zone(now);
    let debtor = Uuid::new_v4();
    for n in 1..=10 {
        let fire_at = now - Duration::minutes(n);
        invoice(
            &pool,
            debtor,
            &zone,
            &format!("FE-{n}"),
            fire_at,
            true,
            "open",
            false,
        )
        .await;
    }
    // Another replica mid-claim: it holds the debtor's statement lock and three of the rows.
    let mut other = pool.begin().await.expect("transaction");
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(recobro_scheduling::statement::LOCK_KEY)
        .bind(debtor)
        .execute(&mut *other)
        .await
        .expect("the statement lock");
    sqlx::query("SELECT reminder_id FROM reminders WHERE debtor_id = $1 ORDER BY fire_at LIMIT 3 FOR UPDATE")
        .bind(debtor)
        .execute(&mut *other)
        .await
        .expect("three rows");
    let timers = Timers {
        pool: pool.clone(),
        reminders_topic: "reminders".into(),
        escalations_topic: "escalations".into(),
        batch: 50,
        statement_gather: Duration::zero(),
    };
    timers.fire_due().await.expect("fired");
    assert!(
        emitted(&pool).await.is_empty(),
        "no part of the debtor's statement goes from this replica"
    );
    // The other replica went away without emitting: the whole day goes as one statement.
    other.rollback().await.expect("rollback");
    timers.fire_due().await.expect("fired");
    let out = emitted(&pool).await;
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].covered.len(), 10);
    sqlx::query(&format!("DROP SCHEMA {} CASCADE", config.database_schema))
        .execute(&pool)
        .await
        .expect("drop");
}
