//! What Recobro's tests and benchmarks share, and nothing a service runs: a number from the
//! environment, a connection to the local stack's Redis, and Kafka topics made for one run.

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// A whole number from the environment (a benchmark's size, say), else `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// `REDIS_URL`, else the local stack's Redis (deploy/local/up.sh).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:16379".into())
}

/// A connection to the Redis of `redis_url()`.
pub async fn redis() -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(redis_url())?;
    Ok(client.get_connection_manager().await?)
}

/// Creates each (topic, partitions) on `brokers`, with one replica: a run's own topics.
pub async fn create_topics(brokers: &str, topics: &[(&str, i32)]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await? {
        result.map_err(|(topic, err)| anyhow::anyhow!("create {topic}: {err}"))?;
    }
    Ok(())
}

/// Deletes a run's topics when it is done.
pub async fn delete_topics(brokers: &str, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    admin.delete_topics(topics, &AdminOptions::new()).await?;
    Ok(())
}
