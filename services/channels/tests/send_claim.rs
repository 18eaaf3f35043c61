//! Send claims against a real Redis (the local stack's, or REDIS_URL): one worker sends a
//! reminder, a sent reminder is never sent again, a call cut short is never retried.

use recobro_channels::send_claim::{SendClaim, SendClaims};
use uuid::Uuid;

async fn connection() -> redis::aio::ConnectionManager {
    recobro_testkit::redis()
        .await
        .expect("Redis is up (deploy/local/up.sh)")
}

async fn claims_with_prefix(prefix: &str) -> SendClaims {
    SendClaims::new(connection().await, prefix)
}

async fn claims() -> SendClaims {
    // A prefix of its own: tests never see each other's keys.
    claims_with_prefix(&format!("test-{}", Uuid::new_v4().simple())).await
}

#[tokio::test]
async fn a_send_claim_is_held_by_one_worker_and_a_sent_reminder_is_never_claimed_again() {
    let first = claims().await;
    let debtor = Uuid::new_v4();
    let reminder = Uuid::new_v4();
    let SendClaim::Mine(token) = first.claim(debtor, reminder).await.expect("redis") else {
        panic!("the first claim is ours");
    };
    assert_eq!(
        first.claim(debtor, reminder).await.expect("redis"),
        SendClaim::Busy,
        "a second worker must wait"
    );
    assert!(
        !first
            .begin_call(debtor, reminder, "someone-else")
            .await
            .expect("redis"),
        "only the holder may call the provider"
    );
    // Marks are queued without waiting, a few round trips' worth; a call start queued after
    // them is acknowledged only once they are all in.
    let others: Vec<Uuid> = (0..200).map(|_| Uuid::new_v4()).collect();
    let mut marks = Vec::new();
    for other in &others {
        assert!(matches!(
            first.claim(debtor, *other).await.expect("redis"),
            SendClaim::Mine(_)
        ));
        marks.push(first.mark_sent(debtor, *other, &format!("msg-{other}")));
        tokio::task::yield_now().await;
    }
    assert!(first.begin_call(debtor, reminder, &token).await.expect("redis"));
    for other in &others {
        assert_eq!(
            first.claim(debtor, *other).await.expect("redis"),
            SendClaim::Sent(format!("msg-{other}"))
        );
    }
    drop(marks);
    assert_eq!(
        first.claim(debtor, reminder).await.expect("redis"),
        SendClaim::Busy,
        "a call just began: it is still in flight"
    );
    first.mark_sent(debtor, reminder, "msg-1").await.expect("mark");
    assert_eq!(
        first.claim(debtor, reminder).await.expect("redis"),
        SendClaim::Sent("msg-1".into()),
        "a reminder the provider accepted is recorded, never sent again"
    );
    assert!(
        !first.begin_call(debtor, reminder, &token).await.expect("redis"),
        "no call once it is sent"
    );
}

#[tokio::test]
async fn a_worker_that_stopped_mid_call_leaves_the_outcome_unknown_and_nobody_sends_again() {
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let budget = claims_with_prefix(&prefix).await;
    let debtor = Uuid::new_v4();
    let reminder = Uuid::new_v4();
    let SendClaim::Mine(token) = budget.claim(debtor, reminder).await.expect("redis") else {
        panic!("the first claim is ours");
    };
    assert!(budget.begin_call(debtor, reminder, &token).await.expect("redis"));
    // The worker dies here. Two minutes later its call has long ended, one way or the other
    // (the claim's Redis time is set back rather than waiting).
    let two_minutes_ago = chrono::Utc::now().timestamp_millis() - 120_000;
    let mut redis = connection().await;
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:{{d:{debtor}}}:sending:{reminder}"))
        .arg(format!("calling:{token}:{two_minutes_ago}"))
        .query_async(&mut redis)
        .await
        .expect("redis");
    let SendClaim::Unknown { since } = budget.claim(debtor, reminder).await.expect("redis") else {
        panic!("the outcome of a call cut short is unknown");
    };
    assert_eq!(since.timestamp_millis(), two_minutes_ago);
    assert!(
        matches!(
            budget.claim(debtor, reminder).await.expect("redis"),
            SendClaim::Unknown { .. }
        ),
        "and stays so: nobody claims it again"
    );
}
