//! What Recobro's tests, benchmarks and local scripts share, and nothing a service runs: a
//! number from the environment, the local stack's administrator credentials (Kafka, Redis),
//! topics and ACLs made for one run.

pub mod acl;
pub mod kafka_admin;

use recobro_common::config::ProcessEnv;
use recobro_common::env::Env as _;
use recobro_common::kafka::KafkaSettings;
use recobro_common::redis_client::RedisSettings;

pub use kafka_admin::{create_topics, delete_topics, grant};

/// A whole number from the environment (a benchmark's size, say), else `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A count from the environment (consumers, loops, a rate), else `default`, by the services'
/// own rule (`Env::count_or`): at least one, so a run asked for none fails at once instead of
/// waiting out its deadline, and a value that is not a number fails naming the variable.
pub fn count(name: &str, default: usize) -> anyhow::Result<usize> {
    Ok(ProcessEnv.count_or(name, default)?)
}

/// This process's peak resident memory in MiB (Linux's `VmHWM`), for a benchmark's memory
/// figure: the service's code, the benchmark's own producer and data together, so an upper
/// bound of what the service alone would hold under that load.
pub fn peak_resident_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))?;
    Ok(kib / 1024.0)
}

/// The broker as the environment says (`deploy/local/env.sh` makes that the local stack's
/// `admin` principal, which may create topics and grant ACLs).
pub fn kafka() -> anyhow::Result<KafkaSettings> {
    Ok(KafkaSettings::from_env(&ProcessEnv, "admin")?)
}

/// Redis as the environment says (`deploy/local/env.sh`: the local stack's `admin` user).
pub fn redis_settings() -> anyhow::Result<RedisSettings> {
    Ok(RedisSettings::from_env(&ProcessEnv, "admin")?)
}

/// A connection to that Redis.
pub async fn redis() -> anyhow::Result<redis::aio::ConnectionManager> {
    Ok(redis_settings()?.client()?.get_connection_manager().await?)
}

/// The process environment with `overrides` on top: what a benchmark or test hands to a
/// service's `from_env` (credentials and addresses from `deploy/local/env.sh`, its own topic
/// prefix and schema).
pub fn env_with(overrides: &[(&str, String)]) -> std::collections::HashMap<String, String> {
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    for (name, value) in overrides {
        env.insert(name.to_string(), value.clone());
    }
    env
}

/// Deletes a run's Redis keys (everything under `prefix:`): a benchmark's contact budgets and
/// send claims would outlive it by weeks and slow the next runs.
pub async fn forget_redis_prefix(prefix: &str) -> anyhow::Result<()> {
    let mut redis = redis_settings()?
        .client()?
        .get_multiplexed_async_connection()
        .await?;
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut redis)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut redis)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
