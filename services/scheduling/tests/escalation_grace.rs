//! An escalation waits for the grace after its invoice's last message, at fire time, against a
//! real PostgreSQL: due together with a message, the message goes and the escalation waits;
//! one day after the message it still waits; once the grace has passed it is emitted.

use chrono::{DateTime, Duration, Utc};
use prost::Message as _;
use recobro_common::config::Config;
use recobro_proto::v1 as pb;
use recobro_scheduling::timers::Timers;
use uuid::Uuid;

mod seed;
use seed::seed;

/// What the outbox holds, taken out of it: (reminders due, escalations).
async fn emitted(pool: &sqlx::PgPool) -> (Vec<pb::ReminderDue>, Vec<pb::Escalation>) {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("WITH taken AS (DELETE FROM outbox RETURNING id, topic, payload) SELECT topic, payload FROM taken ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("outbox");
    let mut reminders = Vec::new();
    let mut escalations = Vec::new();
    for (topic, payload) in rows {
        match topic.as_str() {
            "reminders" => {
                reminders.push(pb::ReminderDue::decode(payload.as_slice()).expect("a ReminderDue"))
            }
            "escalations" => {
                escalations.push(pb::Escalation::decode(payload.as_slice()).expect("an Escalation"))
            }
            other => panic!("unexpected topic {other}"),
        }
    }
    (reminders, escalations)
}

async fn escalation_row(pool: &sqlx::PgPool, id: Uuid) -> (String, DateTime<Utc>) {
    sqlx::query_as("SELECT state, fire_at FROM reminders WHERE reminder_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("escalation")
}

#[tokio::test]
async fn an_escalation_waits_the_grace_after_the_invoices_last_message() {
    let id = Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[("RECOBRO_DB_SCHEMA", format!("grace_{id}"))]);
    let config = Config::from_env(&env, "scheduling", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_scheduling::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    // One invoice with a message due now, and its collector escalation due at the same moment.
    seed(&pool, 1, 1).await;
    let (invoice_id, message_due): (Uuid, DateTime<Utc>) =
        sqlx::query_as("SELECT invoice_id, fire_at FROM reminders")
            .fetch_one(&pool)
            .await
            .expect("seeded");
    let escalation = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO reminders (reminder_id, tenant_id, debtor_id, invoice_id, step, channel, template_id, fire_at,
                                state, strategy_id, arm, action, escalation_grace_days)
         SELECT $1, tenant_id, debtor_id, invoice_id, 'collector-20', '', '', fire_at, 'pending', 'standard',
                'champion', 'escalate:collector', 3
         FROM reminders WHERE invoice_id = $2",
    )
    .bind(escalation)
    .bind(invoice_id)
    .execute(&pool)
    .await
    .expect("escalation");
    let timers = Timers {
        pool: pool.clone(),
        reminders_topic: "reminders".into(),
        escalations_topic: "escalations".into(),
        batch: 50,
        statement_gather: chrono::Duration::seconds(30),
    };

    // Due together: the message goes, the escalation waits three days after it.
    assert_eq!(timers.fire_due().await.expect("fire"), 2);
    let (reminders, escalations) = emitted(&pool).await;
    assert_eq!((reminders.len(), escalations.len()), (1, 0), "never together");
    let (state, fire_at) = escalation_row(&pool, escalation).await;
    assert_eq!(
        (state.as_str(), fire_at),
        ("pending", message_due + Duration::days(3))
    );
    assert_eq!(timers.fire_due().await.expect("fire"), 0, "nothing due now");

    // Due again one day after the message left (as after a replan): it waits two more days.
    let sent_at = Utc::now() - Duration::days(1);
    let adjust = |emitted_at: DateTime<Utc>| {
        let pool = pool.clone();
        async move {
            sqlx::query("UPDATE reminders SET emitted_at = $1 WHERE action = 'message'")
                .bind(emitted_at)
                .execute(&pool)
                .await
                .expect("emitted_at");
            sqlx::query("UPDATE reminders SET fire_at = now() - interval '1 minute' WHERE reminder_id = $1")
                .bind(escalation)
                .execute(&pool)
                .await
                .expect("due");
        }
    };
    adjust(sent_at).await;
    assert_eq!(timers.fire_due().await.expect("fire"), 1);
    assert_eq!(emitted(&pool).await.1.len(), 0);
    let (state, fire_at) = escalation_row(&pool, escalation).await;
    // PostgreSQL keeps microseconds.
    let expected = sent_at + Duration::days(3);
    assert_eq!(state, "pending");
    assert!(
        (fire_at - expected).num_milliseconds().abs() < 1,
        "{fire_at} vs {expected}"
    );

    // Four days after the message: the case is handed on.
    adjust(Utc::now() - Duration::days(4)).await;
    assert_eq!(timers.fire_due().await.expect("fire"), 1);
    let (_, escalations) = emitted(&pool).await;
    assert_eq!(escalations.len(), 1);
    assert_eq!(
        (escalations[0].kind.as_str(), escalations[0].step.as_str()),
        ("collector", "collector-20")
    );
    assert_eq!(escalation_row(&pool, escalation).await.0, "emitted");
    sqlx::query(&format!("DROP SCHEMA {} CASCADE", config.database_schema))
        .execute(&pool)
        .await
        .expect("drop");
}
