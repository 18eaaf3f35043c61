//! The contact budget in Redis: at most `daily_cap` contacts per debtor per local calendar
//! day, across all invoices and channels. Check and reserve happen in one Lua script, so
//! concurrent workers can never exceed the cap, and a retried reminder never counts twice.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use redis::aio::ConnectionManager;
use uuid::Uuid;

const RESERVE: &str = r#"
-- KEYS[1]: this reminder's reservation, KEYS[2]: the debtor's counter for the local day.
-- ARGV[1]: cap, ARGV[2]: counter TTL, ARGV[3]: reservation TTL (seconds).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= tonumber(ARGV[1]) then
  return 0
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[3])
return 1
"#;

/// Longer than any redelivery window, so a redelivered reminder is still recognised.
const RESERVATION_TTL_SECONDS: u64 = 30 * 24 * 3600;
const DAY_COUNTER_TTL_SECONDS: u64 = 3 * 24 * 3600;

pub struct ContactBudget {
    redis: ConnectionManager,
    script: redis::Script,
    prefix: String,
    pub daily_cap: u32,
}

#[derive(Debug, PartialEq)]
pub enum Decision {
    Allowed,
    /// The debtor already had every contact the day allows.
    Exhausted {
        local_day: String,
    },
}

impl ContactBudget {
    pub fn new(redis: ConnectionManager, prefix: &str, daily_cap: u32) -> ContactBudget {
        ContactBudget {
            redis,
            script: redis::Script::new(RESERVE),
            prefix: prefix.to_string(),
            daily_cap,
        }
    }

    /// Every key of one debtor shares the `{d:<id>}` hash tag, so the script runs on Redis Cluster.
    pub fn day_key(&self, debtor_id: Uuid, local_day: &str) -> String {
        format!("{}:{{d:{debtor_id}}}:day:{local_day}", self.prefix)
    }

    fn reservation_key(&self, debtor_id: Uuid, reminder_id: Uuid) -> String {
        format!("{}:{{d:{debtor_id}}}:reminder:{reminder_id}", self.prefix)
    }

    pub async fn reserve(
        &self,
        debtor_id: Uuid,
        reminder_id: Uuid,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<Decision, redis::RedisError> {
        let local_day = now.with_timezone(&tz).date_naive().to_string();
        let mut redis = self.redis.clone();
        let allowed: i64 = self
            .script
            .key(self.reservation_key(debtor_id, reminder_id))
            .key(self.day_key(debtor_id, &local_day))
            .arg(self.daily_cap)
            .arg(DAY_COUNTER_TTL_SECONDS)
            .arg(RESERVATION_TTL_SECONDS)
            .invoke_async(&mut redis)
            .await?;
        Ok(if allowed == 1 {
            Decision::Allowed
        } else {
            Decision::Exhausted { local_day }
        })
    }
}
