//! Consumer lag per partition, from librdkafka's own statistics (emitted every
//! `KafkaSettings::stats_interval`): what the consumer has yet to read, without asking the
//! broker for anything more.

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

use crate::metrics::metrics;

/// The context of every Recobro consumer: it knows its group, to label its lag.
pub struct LagContext {
    pub group: String,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        let lag = &metrics().kafka_consumer_lag;
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                // librdkafka lists an internal "unassigned" partition -1, and -1 for a lag it
                // does not know yet.
                if *partition < 0 || stats.consumer_lag < 0 {
                    continue;
                }
                lag.get_or_create(&vec![
                    ("group", self.group.clone()),
                    ("topic", topic.clone()),
                    ("partition", partition.to_string()),
                ])
                .set(stats.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for LagContext {}
