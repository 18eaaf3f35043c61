//! The contact budget against a real Redis (the local stack's, or REDIS_URL).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use recobro_channels::budget::{ContactBudget, Decision, FullCap, PastContact};
use recobro_rules::{Channel, Rulebook};
use uuid::Uuid;

async fn connection() -> redis::aio::ConnectionManager {
    recobro_testkit::redis()
        .await
        .expect("Redis is up (deploy/local/up.sh)")
}

async fn budget_with_prefix(prefix: &str) -> ContactBudget {
    ContactBudget::new(connection().await, prefix)
}

async fn budget() -> ContactBudget {
    // A prefix of its own: tests never see each other's keys.
    budget_with_prefix(&format!("test-{}", Uuid::new_v4().simple())).await
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().expect("RFC 3339")
}

/// A debtor never contacted, whose (empty) budget Redis holds, as the dispatcher leaves it.
async fn new_debtor(
    budget: &ContactBudget,
    book: &Rulebook,
    country: &str,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Uuid {
    let debtor = Uuid::new_v4();
    let rules = book.for_debtor("acme", country, None);
    budget.restore(&rules, debtor, tz, &[], now).await.expect("redis");
    debtor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_workers_racing_for_one_debtor_never_exceed_the_cap() {
    let budget = Arc::new(budget().await);
    let book = Arc::new(Rulebook::shipped().expect("packs"));
    let now = utc("2026-11-25T15:00:00Z");
    let debtor = new_debtor(&budget, &book, "CO", chrono_tz::America::Bogota, now).await;
    let mut workers = Vec::new();
    for _ in 0..64 {
        let (budget, book) = (budget.clone(), book.clone());
        workers.push(tokio::spawn(async move {
            let rules = book.for_debtor("acme", "CO", None);
            budget
                .reserve(
                    &rules,
                    debtor,
                    Uuid::new_v4(),
                    Channel::Email,
                    chrono_tz::America::Bogota,
                    now,
                )
                .await
        }));
    }
    let mut allowed = 0;
    for worker in workers {
        if worker.await.expect("task").expect("redis") == Decision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 1, "Colombia allows one contact a day");
    let rules = book.for_debtor("acme", "CO", None);
    let usage = budget
        .usage(&rules, debtor, chrono_tz::America::Bogota, now)
        .await
        .expect("redis");
    assert!(
        usage.iter().all(|(_, cap, used)| *used <= i64::from(cap.max)),
        "{usage:?}"
    );
}

#[tokio::test]
async fn a_retried_reminder_is_allowed_again_but_counted_once() {
    let budget = budget().await;
    let book = Rulebook::shipped().expect("packs");
    let rules = book.for_debtor("acme", "CO", None);
    let reminder = Uuid::new_v4();
    let now = utc("2026-11-25T15:00:00Z");
    let tz = chrono_tz::America::Bogota;
    let debtor = new_debtor(&budget, &book, "CO", tz, now).await;
    for _ in 0..3 {
        let decision = budget
            .reserve(&rules, debtor, reminder, Channel::Email, tz, now)
            .await
            .expect("redis");
        assert_eq!(decision, Decision::Allowed);
    }
    let usage = budget.usage(&rules, debtor, tz, now).await.expect("redis");
    let daily = usage
        .iter()
        .filter(|(_, cap, _)| cap.window.name() == "local_day")
        .map(|(_, _, used)| *used);
    assert!(
        daily.clone().count() > 0 && daily.clone().all(|used| used == 1),
        "{usage:?}"
    );
}

#[tokio::test]
async fn a_full_day_defers_to_the_debtors_next_local_midnight_and_nothing_is_consumed() {
    let budget = budget().await;
    let book = Rulebook::shipped().expect("packs");
    let rules = book.for_debtor("acme", "CO", None);
    let tz = chrono_tz::America::Bogota;
    let now = utc("2026-11-25T15:00:00Z");
    let debtor = new_debtor(&budget, &book, "CO", tz, now).await;
    assert_eq!(
        budget
            .reserve(&rules, debtor, Uuid::new_v4(), Channel::Email, tz, now)
            .await
            .expect("redis"),
        Decision::Allowed
    );
    let before = budget.usage(&rules, debtor, tz, now).await.expect("redis");
    let decision = budget
        .reserve(&rules, debtor, Uuid::new_v4(), Channel::Email, tz, now)
        .await
        .expect("redis");
    let Decision::Full(FullCap { window, room_at, .. }) = decision else {
        panic!("expected a full cap, got {decision:?}")
    };
    assert_eq!(window, "local_day");
    assert_eq!(room_at, utc("2026-11-26T05:00:00Z"), "midnight in Bogotá");
    let after = budget.usage(&rules, debtor, tz, now).await.expect("redis");
    assert_eq!(before, after, "a denial consumes nothing");
}

#[tokio::test]
async fn releasing_a_failed_delivery_gives_the_contact_back() {
    let budget = budget().await;
    let book = Rulebook::shipped().expect("packs");
    let rules = book.for_debtor("acme", "CO", None);
    let failed = Uuid::new_v4();
    let tz = chrono_tz::America::Bogota;
    let now = utc("2026-11-25T15:00:00Z");
    let debtor = new_debtor(&budget, &book, "CO", tz, now).await;
    assert_eq!(
        budget
            .reserve(&rules, debtor, failed, Channel::Email, tz, now)
            .await
            .expect("redis"),
        Decision::Allowed
    );
    assert!(budget.release(debtor, failed).await.expect("redis"));
    assert!(
        !budget.release(debtor, failed).await.expect("redis"),
        "releasing twice is harmless"
    );
    let usage = budget.usage(&rules, debtor, tz, now).await.expect("redis");
    assert!(usage.iter().all(|(_, _, used)| *used == 0), "{usage:?}");
    let next = budget
        .reserve(&rules, debtor, Uuid::new_v4(), Channel::Email, tz, now)
        .await
        .expect("redis");
    assert_eq!(next, Decision::Allowed);
}

#[tokio::test]
async fn chile_keeps_two_days_between_messages_on_a_rolling_window() {
    let budget = budget().await;
    let book = Rulebook::shipped().expect("packs");
    let rules = book.for_debtor("acme", "CL", None);
    let tz = chrono_tz::America::Santiago;
    let monday = utc("2026-11-23T14:00:00Z");
    let debtor = new_debtor(&budget, &book, "CL", tz, monday).await;
    assert_eq!(
        budget
            .reserve(&rules, debtor, Uuid::new_v4(), Channel::Sms, tz, monday)
            .await
            .expect("redis"),
        Decision::Allowed
    );
    // Tuesday is a new local day, but not two days later.
    let tuesday = monday + Duration::days(1);
    let decision = budget
        .reserve(&rules, debtor, Uuid::new_v4(), Channel::Sms, tz, tuesday)
        .await
        .expect("redis");
    let Decision::Full(FullCap { window, room_at, .. }) = decision else {
        panic!("expected a full cap, got {decision:?}")
    };
    assert_eq!(window, "rolling:48h");
    assert_eq!(room_at, monday + Duration::hours(48));
    let wednesday = monday + Duration::hours(48);
    assert_eq!(
        budget
            .reserve(&rules, debtor, Uuid::new_v4(), Channel::Sms, tz, wednesday)
            .await
            .expect("redis"),
        Decision::Allowed
    );
}

#[tokio::test]
async fn colombia_one_channel_per_week() {
    let budget = budget().await;
    let book = Rulebook::shipped().expect("packs");
    let rules = book.for_debtor("acme", "CO", None);
    let tz = chrono_tz::America::Bogota;
    let monday = utc("2026-11-23T15:00:00Z");
    let debtor = new_debtor(&budget, &book, "CO", tz, monday).await;
    assert_eq!(
        budget
            .reserve(&rules, debtor, Uuid::new_v4(), Channel::Email, tz, monday)
            .await
            .expect("redis"),
        Decision::Allowed
    );
    let tuesday = monday + Duration::days(1);
    let decision = budget
        .reserve(&rules, debtor, Uuid::new_v4(), Channel::Sms, tz, tuesday)
        .await
        .expect("redis");
    let Decision::Full(FullCap { window, room_at, .. }) = decision else {
        panic!("a second channel in the week, got {decision:?}")
    };
    assert_eq!(window, "local_week");
    assert_eq!(room_at, utc("2026-11-30T05:00:00Z"), "next Monday in Bogotá");
}

#[tokio::test]
async fn a_budget_redis_lost_reserves_nothing_until_restored_from_the_records() {
    let budget = budget().await;
    let book = Rulebook::shipped().expect("packs");
    let rules = book.for_debtor("acme", "CO", None);
    let tz = chrono_tz::America::Bogota;
    let now = utc("2026-11-25T15:00:00Z");
    // Never restored: what Redis shows after losing its data, however many contacts were made.
    let debtor = Uuid::new_v4();
    let decision = budget
        .reserve(&rules, debtor, Uuid::new_v4(), Channel::Email, tz, now)
        .await
        .expect("redis");
    assert_eq!(decision, Decision::Unknown, "fail closed");
    let usage = budget.usage(&rules, debtor, tz, now).await.expect("redis");
    assert!(
        usage.iter().all(|(_, _, used)| *used == 0),
        "nothing reserved: {usage:?}"
    );

    // The records say an email went out this morning (local time); restoring twice counts it once.
    let earlier = PastContact {
        reminder_id: Uuid::new_v4(),
        channel: Channel::Email,
        at: now - Duration::hours(3),
    };
    for _ in 0..2 {
        budget
            .restore(&rules, debtor, tz, std::slice::from_ref(&earlier), now)
            .await
            .expect("redis");
    }
    let usage = budget.usage(&rules, debtor, tz, now).await.expect("redis");
    assert!(
        usage
            .iter()
            .filter(|(_, cap, _)| cap.window.name() == "local_day")
            .all(|(_, _, used)| *used == 1),
        "{usage:?}"
    );
    let decision = budget
        .reserve(&rules, debtor, Uuid::new_v4(), Channel::Email, tz, now)
        .await
        .expect("redis");
    let Decision::Full(FullCap { window, .. }) = decision else {
        panic!("the day's contact was made before Redis lost it: {decision:?}")
    };
    assert_eq!(window, "local_day");
}

#[tokio::test]
async fn a_restored_budget_leaves_out_windows_that_have_passed() {
    let budget = budget().await;
    let book = Rulebook::shipped().expect("packs");
    let rules = book.for_debtor("acme", "CL", None);
    let tz = chrono_tz::America::Santiago;
    let monday = utc("2026-11-23T14:00:00Z");
    let sms_on = |at| PastContact {
        reminder_id: Uuid::new_v4(),
        channel: Channel::Sms,
        at,
    };
    // Chile: two days between messages. A message 49 hours ago no longer counts; one 47 hours
    // ago still does.
    let debtor = Uuid::new_v4();
    let now = monday + Duration::hours(49);
    budget
        .restore(&rules, debtor, tz, &[sms_on(monday)], now)
        .await
        .expect("redis");
    let decision = budget
        .reserve(&rules, debtor, Uuid::new_v4(), Channel::Sms, tz, now)
        .await
        .expect("redis");
    assert_eq!(decision, Decision::Allowed);

    let debtor = Uuid::new_v4();
    let now = monday + Duration::hours(47);
    budget
        .restore(&rules, debtor, tz, &[sms_on(monday)], now)
        .await
        .expect("redis");
    let decision = budget
        .reserve(&rules, debtor, Uuid::new_v4(), Channel::Sms, tz, now)
        .await
        .expect("redis");
    let Decision::Full(FullCap { window, room_at, .. }) = decision else {
        panic!("expected the rolling window to be full, got {decision:?}")
    };
    assert_eq!(window, "rolling:48h");
    assert_eq!(room_at, monday + Duration::hours(48));
}
