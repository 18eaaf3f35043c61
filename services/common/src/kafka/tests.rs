use super::*;
use rdkafka::types::RDKafkaErrorCode as Code;

#[test]
fn a_message_too_large_or_without_a_topic_is_never_publishable_and_an_outage_passes() {
    for code in [
        Code::MessageSizeTooLarge,
        Code::UnknownTopic,
        Code::TopicAuthorizationFailed,
    ] {
        let reason = never_publishable(&KafkaError::MessageProduction(code));
        assert!(reason.is_some(), "{code:?}");
    }
    for code in [
        Code::MessageTimedOut,
        Code::QueueFull,
        Code::BrokerNotAvailable,
        Code::AllBrokersDown,
        Code::NotLeaderForPartition,
    ] {
        assert_eq!(
            never_publishable(&KafkaError::MessageProduction(code)),
            None,
            "{code:?}"
        );
    }
    assert_eq!(never_publishable(&KafkaError::Canceled), None);
}

/// A stand-in for a handler that applies a batch in one transaction: it fails for good
/// if the range holds a poison message, else "applies" it (records the indexes).
fn applying(
    poison: &'static [usize],
    applied: &std::sync::Mutex<Vec<usize>>,
    range: std::ops::Range<usize>,
) -> Result<Vec<(usize, String)>, Failure> {
    if let Some(bad) = range.clone().find(|i| poison.contains(i)) {
        return Err(Failure::Reject(format!("value {bad} out of range")));
    }
    applied.lock().expect("lock").extend(range);
    Ok(Vec::new())
}

#[tokio::test]
async fn a_batch_refused_for_good_is_split_until_each_poison_message_is_alone() {
    let applied = std::sync::Mutex::new(Vec::new());
    let parked = isolate(10, |range| {
        let result = applying(&[3, 7], &applied, range);
        async move { result }
    })
    .await;
    assert_eq!(
        parked,
        vec![
            (3, "value 3 out of range".to_string()),
            (7, "value 7 out of range".to_string())
        ]
    );
    let applied = applied.into_inner().expect("lock");
    assert_eq!(
        applied,
        vec![0, 1, 2, 4, 5, 6, 8, 9],
        "every other message, in order"
    );
}

#[tokio::test]
async fn rejections_inside_a_half_keep_their_place_in_the_whole_batch() {
    let parked = isolate(6, |range| {
        let result = if range.contains(&0) {
            Err(Failure::Reject("poison".into()))
        } else {
            // The handler refuses the second message of whatever range it is given.
            Ok(if range.len() > 1 {
                vec![(1, "undecodable".to_string())]
            } else {
                Vec::new()
            })
        };
        async move { result }
    })
    .await;
    assert_eq!(
        parked,
        vec![
            (0, "poison".to_string()),
            (2, "undecodable".to_string()),
            (4, "undecodable".to_string())
        ]
    );
}

#[tokio::test]
async fn a_failure_that_may_pass_is_retried_in_place_and_nothing_is_parked() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let parked = isolate(4, |range| {
        let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let result = if call < 3 {
            Err(Failure::Retry("database: connection refused".into()))
        } else {
            assert_eq!(range, 0..4, "the whole batch again, not split");
            Ok(Vec::new())
        };
        async move { result }
    })
    .await;
    assert!(parked.is_empty());
    assert_eq!(calls.into_inner(), 4);
}
