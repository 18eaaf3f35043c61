//! Two scheduler replicas racing over the same due timers, against a real PostgreSQL: every
//! reminder is emitted exactly once.

use std::collections::HashSet;

use prost::Message as _;
use recobro_common::config::Config;
use recobro_proto::v1 as pb;
use recobro_scheduling::timers::Timers;

mod seed;
use seed::seed;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_racing_over_the_same_timers_emit_each_reminder_once() {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[("RECOBRO_DB_SCHEMA", format!("race_{id}"))]);
    let config = Config::from_env(&env, "scheduling", 0).expect("config (deploy/local/env.sh)");
    let pool = recobro_scheduling::migrate_and_connect(&config)
        .await
        .expect("PostgreSQL is up (deploy/local/up.sh)");
    seed(&pool, 400, 3).await;

    let replica = |pool: sqlx::PgPool| Timers {
        pool,
        reminders_topic: "reminders".into(),
        escalations_topic: "escalations".into(),
        batch: 50,
        statement_gather: chrono::Duration::seconds(30),
    };
    let (a, b) = (replica(pool.clone()), replica(pool.clone()));
    let drain = |timers: Timers| async move {
        let mut claimed = 0;
        loop {
            let fired = timers.fire_due().await.expect("fire");
            if fired == 0 {
                return claimed;
            }
            claimed += fired;
        }
    };
    let (claimed_a, claimed_b) = tokio::join!(drain(a), drain(b));
    assert_eq!(claimed_a + claimed_b, 1200, "every reminder claimed once in all");
    assert!(
        claimed_a > 0 && claimed_b > 0,
        "both replicas did work: {claimed_a} and {claimed_b}"
    );

    let payloads: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT payload FROM outbox")
        .fetch_all(&pool)
        .await
        .expect("outbox");
    let ids: HashSet<String> = payloads
        .iter()
        .map(|(payload,)| {
            pb::ReminderDue::decode(payload.as_slice())
                .expect("a ReminderDue")
                .reminder_id
        })
        .collect();
    assert_eq!(
        (payloads.len(), ids.len()),
        (1200, 1200),
        "no reminder emitted twice, none lost"
    );
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM reminders WHERE state <> 'emitted'")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(left, 0);
    sqlx::query(&format!("DROP SCHEMA {} CASCADE", config.database_schema))
        .execute(&pool)
        .await
        .expect("drop");
}
