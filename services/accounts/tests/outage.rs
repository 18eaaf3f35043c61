//! A consumer waiting out an outage keeps its place in its group. Against a real broker: the
//! handler fails (as it would with PostgreSQL down) for longer than `max.poll.interval.ms`; the
//! consumer stays a member of its group all along, and once the outage ends the message it held
//! and one published meanwhile are handled, in order.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use recobro_common::config::Config;
use recobro_common::kafka::{self, BatchHandler, Batching, Failure};
use tokio_util::sync::CancellationToken;

/// Fails like a database that is down until `until`, then records what it handles.
struct Outage {
    until: Instant,
    handled: Arc<Mutex<Vec<String>>>,
}

impl BatchHandler for Outage {
    async fn handle_batch(&self, messages: &[BorrowedMessage<'_>]) -> Result<Vec<(usize, String)>, Failure> {
        if Instant::now() < self.until {
            return Err(Failure::Retry("database: connection refused".into()));
        }
        let mut handled = self.handled.lock().expect("lock");
        for message in messages {
            handled.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        }
        Ok(Vec::new())
    }
}

fn members(config: &Config, group: &str) -> usize {
    let admin: BaseConsumer = config.kafka.client_config().create().expect("client");
    let groups = admin
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .expect("group list");
    groups.groups().iter().map(|g| g.members().len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_waiting_out_an_outage_longer_than_the_poll_interval_stays_in_its_group() {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let env = recobro_testkit::env_with(&[("RECOBRO_TOPIC_PREFIX", format!("outage{id}."))]);
    let config = Config::from_env(&env, "accounts", 0).expect("config (deploy/local/env.sh)");
    let topic = config.topics.erp_invoices_of("acme");
    recobro_testkit::create_topics(&config.kafka, &[(&topic, 1), (&config.topics.dead_letter, 1)])
        .await
        .expect("topics");
    let group = format!("outage-{id}");
    // As services consume, with the poll interval as short as librdkafka allows beside a 6 s
    // session, so that the outage below outlasts it.
    let consumer: kafka::KafkaConsumer = config
        .kafka
        .client_config()
        .set("group.id", &group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "7000")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(kafka::LagContext { group: group.clone() })
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let producer = kafka::producer(&config.kafka).expect("producer");
    let publish = |payload: &'static str| {
        let (producer, topic) = (producer.clone(), topic.clone());
        async move {
            kafka::publish(&producer, &topic, "k", payload.as_bytes(), Default::default())
                .await
                .expect("publish")
        }
    };
    publish("first").await;

    let handled = Arc::new(Mutex::new(Vec::new()));
    let outage = Duration::from_secs(12);
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(kafka::run_batch_consumer(
        consumer,
        Outage {
            until: Instant::now() + outage,
            handled: handled.clone(),
        },
        producer.clone(),
        config.topics.dead_letter.clone(),
        "accounts",
        Batching {
            max_batch: 10,
            linger: Duration::from_millis(10),
        },
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    publish("second").await;
    // Past the poll interval (7 s) with the handler failing all along.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(handled.lock().expect("lock").is_empty(), "still in the outage");
    let config_for_check = config.clone();
    let group_for_check = group.clone();
    let during = tokio::task::spawn_blocking(move || members(&config_for_check, &group_for_check))
        .await
        .expect("check");
    assert_eq!(
        during, 1,
        "not evicted from its group while waiting out the outage"
    );

    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if handled.lock().expect("lock").len() >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "handled after the outage: {:?}",
        handled.lock().expect("lock")
    );
    assert_eq!(*handled.lock().expect("lock"), ["first", "second"]);
    shutdown.cancel();
    consuming.await.expect("consumer ends");
}
