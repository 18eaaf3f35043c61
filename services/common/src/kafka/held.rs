//! While a consumer works on what it received (a slow batch, an outage it waits out), it keeps
//! polling the broker. librdkafka counts the time between the application's polls, and a
//! consumer that does not poll within `max.poll.interval.ms` is evicted from its group: its
//! partitions move to another member and its offsets are refused. A message that arrives while
//! the work goes on is held and its partition paused, so nothing more is fetched from there
//! until the work is done; held messages are handled next, in the order they came.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::kafka::KafkaConsumer;
use futures_util::Stream;
use rdkafka::Message;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;

/// Far below librdkafka's default `max.poll.interval.ms` (300 s) and any value worth setting.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// Messages that arrived while work went on, and the partitions paused because of them.
pub struct Held<'c> {
    consumer: &'c KafkaConsumer,
    messages: Vec<BorrowedMessage<'c>>,
    paused: Vec<(String, i32)>,
}

impl<'c> Held<'c> {
    pub fn new(consumer: &'c KafkaConsumer) -> Held<'c> {
        Held {
            consumer,
            messages: Vec::new(),
            paused: Vec::new(),
        }
    }

    /// Runs `work` to its end, polling the broker every [`POLL_EVERY`] meanwhile.
    pub async fn polling<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = pin!(work);
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is at once
        loop {
            tokio::select! {
                biased;
                done = &mut work => return done,
                _ = tick.tick() => self.poll_once(),
            }
        }
    }

    /// One poll that does not wait: it is what resets librdkafka's poll timer (rebalances are
    /// served by it too). A message it returns is held, and its partition paused.
    fn poll_once(&mut self) {
        let mut stream = pin!(self.consumer.stream());
        let mut context = Context::from_waker(Waker::noop());
        match stream.as_mut().poll_next(&mut context) {
            Poll::Ready(Some(Ok(message))) => self.hold(message),
            Poll::Ready(Some(Err(err))) => tracing::warn!(error = %err, "kafka receive failed"),
            Poll::Ready(None) | Poll::Pending => {}
        }
    }

    fn hold(&mut self, message: BorrowedMessage<'c>) {
        let partition = (message.topic().to_string(), message.partition());
        if !self.paused.contains(&partition) {
            let mut list = TopicPartitionList::new();
            list.add_partition(&partition.0, partition.1);
            // Paused, librdkafka fetches from there again at the next message after this one.
            if let Err(err) = self.consumer.pause(&list) {
                tracing::warn!(error = %err, topic = %partition.0, partition = partition.1, "pausing a partition failed");
            }
            self.paused.push(partition);
        }
        self.messages.push(message);
    }

    /// Whether messages wait to be handled.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The held messages, in the order they came; their partitions are resumed, so what is
    /// fetched next comes after them.
    pub fn release(&mut self) -> Vec<BorrowedMessage<'c>> {
        if !self.paused.is_empty() {
            let mut list = TopicPartitionList::new();
            for (topic, partition) in self.paused.drain(..) {
                list.add_partition(&topic, partition);
            }
            // A partition revoked meanwhile cannot be resumed; its new owner reads it.
            if let Err(err) = self.consumer.resume(&list) {
                tracing::warn!(error = %err, "resuming partitions failed");
            }
        }
        std::mem::take(&mut self.messages)
    }
}
