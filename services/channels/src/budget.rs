//! The contact budget in Redis: every cap of every pack that applies to a debtor, checked and
//! reserved in one Lua script. Either every cap has room and all are reserved, or nothing is
//! consumed. A retried reminder is recognised by its reservation and never counts twice; a
//! reservation whose delivery fails before reaching the provider is released.
//!
//! Every key of a debtor shares the `{d:<debtor id>}` hash tag, so the scripts run on Redis
//! Cluster.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use recobro_common::rules::{Applied, Cap, CapKind, Pack, Window};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

const RESERVE: &str = r#"
-- KEYS[1]: this reminder's reservation; KEYS[1 + i]: the state of cap i.
-- ARGV[1]: now (ms), ARGV[2]: reservation TTL (s), ARGV[3]: channel, ARGV[4]: reminder id,
-- then per cap: kind ('c' counter, 'r' rolling window, 'd' distinct channels), max, span
-- (TTL in seconds for 'c' and 'd'; window length in ms for 'r').
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {1, 0, 0}
end
local now = tonumber(ARGV[1])
local channel = ARGV[3]
local member = ARGV[4]
local caps = #KEYS - 1
for i = 1, caps do
  local kind, max, span = ARGV[2 + 3 * i], tonumber(ARGV[3 + 3 * i]), tonumber(ARGV[4 + 3 * i])
  local key = KEYS[1 + i]
  if kind == 'c' then
    if tonumber(redis.call('GET', key) or '0') >= max then
      return {0, i, 0}
    end
  elseif kind == 'r' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
    local used = redis.call('ZCARD', key)
    if used >= max then
      -- Room returns when the entry that keeps the count at max leaves the window.
      local entry = redis.call('ZRANGE', key, used - max, used - max, 'WITHSCORES')
      return {0, i, tonumber(entry[2]) + span}
    end
  elseif kind == 'd' then
    if redis.call('SISMEMBER', key, channel) == 0 and redis.call('SCARD', key) >= max then
      return {0, i, 0}
    end
  end
end
local undo = {}
for i = 1, caps do
  local kind, span = ARGV[2 + 3 * i], tonumber(ARGV[4 + 3 * i])
  local key = KEYS[1 + i]
  if kind == 'c' then
    -- A counter lives for its calendar period: its TTL is set once, when the period starts.
    if redis.call('INCR', key) == 1 then
      redis.call('EXPIRE', key, span)
    end
    table.insert(undo, 'c' .. key)
  elseif kind == 'r' then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, span)
    table.insert(undo, 'r' .. key)
  elseif kind == 'd' then
    if redis.call('SADD', key, channel) == 1 then
      redis.call('EXPIRE', key, span)
      table.insert(undo, 'd' .. key)
    end
  end
end
-- The reservation remembers its channel and what to undo, one line each.
table.insert(undo, 1, channel)
redis.call('SET', KEYS[1], table.concat(undo, '\n'), 'EX', ARGV[2])
return {1, 0, 0}
"#;

const RELEASE: &str = r#"
-- KEYS[1]: the reservation; KEYS[2..]: the keys it changed, each with its kind in ARGV.
-- ARGV[1]: reminder id, ARGV[2]: channel, ARGV[1 + i]: kind of KEYS[1 + i].
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
for i = 2, #KEYS do
  local kind = ARGV[1 + i]
  if kind == 'c' then
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
      redis.call('DECR', KEYS[i])
    end
  elseif kind == 'r' then
    redis.call('ZREM', KEYS[i], ARGV[1])
  elseif kind == 'd' then
    redis.call('SREM', KEYS[i], ARGV[2])
  end
end
redis.call('DEL', KEYS[1])
return 1
"#;

const CLAIM: &str = r#"
-- KEYS[1]: the reminder's "sent" mark, KEYS[2]: its send claim.
-- ARGV[1]: this claim's token, ARGV[2]: claim TTL (s), ARGV[3]: a call this old (ms) has ended.
local sent = redis.call('GET', KEYS[1])
if sent then
  return {'sent', sent}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {'mine', ''}
end
local holder = redis.call('GET', KEYS[2]) or ''
local began = string.match(holder, '^calling:[^:]*:(%d+)$')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if began and now - tonumber(began) > tonumber(ARGV[3]) then
  return {'unknown', began}
end
return {'busy', ''}
"#;

const BEGIN_CALL: &str = r#"
-- KEYS[1]: the reminder's "sent" mark, KEYS[2]: its send claim; ARGV[1]: the claim's token,
-- ARGV[2]: how long a calling claim is kept (s). Returns 1 when the call may begin: the claim
-- turns into "calling since <Redis time>", kept as long as a sent mark would be. A claim that
-- lapsed while waiting is taken again unless another worker holds it (0) or sent it (2).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 2
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] and string.find(holder, 'calling:' .. ARGV[1] .. ':', 1, true) ~= 1 then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('SET', KEYS[2], 'calling:' .. ARGV[1] .. ':' .. now, 'EX', ARGV[2])
return 1
"#;

const UNCLAIM: &str = r#"
-- KEYS[1]: the send claim; ARGV[1]: its token. Only the holder gives it up.
local holder = redis.call('GET', KEYS[1])
if holder and (holder == ARGV[1] or string.find(holder, 'calling:' .. ARGV[1] .. ':', 1, true) == 1) then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// A provider call lasts at most its 10 s timeout (an SMTP session a few of them): a claim
/// still "calling" after this long belongs to a worker that stopped mid-call.
const CALL_ENDED_MS: i64 = 60_000;

/// Longer than any redelivery or deferral: a reminder seen again is still recognised.
const RESERVATION_TTL: Duration = Duration::days(45);

/// A send claim outlives its usual wait for the provider turn (one that lapses first is given
/// up, see `begin_call`); after a crash, a claim that never reached a provider frees up this soon.
const SEND_CLAIM_TTL_SECONDS: i64 = 60;

pub struct ContactBudget {
    redis: ConnectionManager,
    reserve: redis::Script,
    release: redis::Script,
    claim: redis::Script,
    unclaim: redis::Script,
    prefix: String,
    ordered: mpsc::UnboundedSender<Queued>,
}

/// What goes to Redis in order: "sent" marks and the starts of provider calls.
enum Ordered {
    Mark {
        sent: String,
        sending: String,
        provider_id: String,
    },
    BeginCall {
        sent: String,
        sending: String,
        token: String,
    },
}

/// An ordered write, and who waits for its reply.
struct Queued {
    write: Ordered,
    reply: oneshot::Sender<Result<redis::Value, redis::RedisError>>,
}

/// Writes marks and call starts in the order they were queued, all that wait in one round trip
/// (retried twice on an error: each write may run again safely). When a call start is
/// acknowledged, every mark queued before it is in Redis: so with one provider turn a crash
/// leaves at most one call whose outcome is unknown.
async fn write_in_order(mut redis: ConnectionManager, mut queue: mpsc::UnboundedReceiver<Queued>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 1024).await > 0 {
        let mut pipe = redis::pipe();
        for queued in &batch {
            // One reply per write.
            match &queued.write {
                Ordered::Mark {
                    sent,
                    sending,
                    provider_id,
                } => {
                    pipe.cmd("SET")
                        .arg(sent)
                        .arg(provider_id)
                        .arg("EX")
                        .arg(RESERVATION_TTL.num_seconds())
                        .ignore()
                        .del(sending);
                }
                Ordered::BeginCall { sent, sending, token } => {
                    pipe.cmd("EVAL")
                        .arg(BEGIN_CALL)
                        .arg(2)
                        .arg(sent)
                        .arg(sending)
                        .arg(token)
                        .arg(RESERVATION_TTL.num_seconds());
                }
            }
        }
        let mut attempt = 0;
        let written: Result<Vec<redis::Value>, redis::RedisError> = loop {
            match pipe.query_async(&mut redis).await {
                Err(err) if attempt < 2 => {
                    attempt += 1;
                    tracing::warn!(error = %err, attempt, "ordered Redis writes failed, trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                other => break other,
            }
        };
        match written {
            Ok(values) => {
                for (queued, value) in batch.drain(..).zip(values) {
                    let _ = queued.reply.send(Ok(value));
                }
            }
            Err(err) => {
                for queued in batch.drain(..) {
                    let _ = queued.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum SendClaim {
    /// This worker may call the provider; the claim is known by this token.
    Mine(String),
    /// Already sent, with this provider id: record it, do not send again.
    Sent(String),
    /// Another worker is sending it now.
    Busy,
    /// A worker stopped while a provider call for it was in flight (it began at `since`):
    /// whether the provider took the message is unknown, so it is never sent again.
    Unknown { since: DateTime<Utc> },
}

#[derive(Debug, PartialEq)]
pub enum Decision {
    Allowed,
    /// A cap is full; `room_at` is when it has room again (for the rolling or calendar window).
    Full {
        pack: String,
        cap: String,
        window: String,
        max: u32,
        room_at: DateTime<Utc>,
    },
}

/// One cap's key and what the script needs to know about it.
struct CapKey<'a> {
    pack: &'a Pack,
    cap: &'a Cap,
    key: String,
    /// When the calendar period ends (None for rolling windows).
    period_end: Option<DateTime<Utc>>,
}

impl ContactBudget {
    /// Must be called within the Tokio runtime: it starts the task that writes "sent" marks.
    pub fn new(redis: ConnectionManager, prefix: &str) -> ContactBudget {
        let (ordered, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_in_order(redis.clone(), queue));
        ContactBudget {
            ordered,
            redis,
            reserve: redis::Script::new(RESERVE),
            release: redis::Script::new(RELEASE),
            claim: redis::Script::new(CLAIM),
            unclaim: redis::Script::new(UNCLAIM),
            prefix: prefix.to_string(),
        }
    }

    fn debtor_key(&self, debtor_id: Uuid, rest: &str) -> String {
        format!("{}:{{d:{debtor_id}}}:{rest}", self.prefix)
    }

    /// A reminder's "sent" mark: the provider's message id.
    fn sent_key(&self, debtor_id: Uuid, reminder_id: Uuid) -> String {
        self.debtor_key(debtor_id, &format!("sent:{reminder_id}"))
    }

    /// A reminder's send claim: a token, or "calling:<token>:<ms>" once its call began.
    fn claim_key(&self, debtor_id: Uuid, reminder_id: Uuid) -> String {
        self.debtor_key(debtor_id, &format!("sending:{reminder_id}"))
    }

    fn cap_keys<'a>(
        &self,
        rules: &'a Applied<'a>,
        debtor_id: Uuid,
        channel: &'a str,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Vec<CapKey<'a>> {
        let mut keys = Vec::new();
        for (pack, cap) in rules.caps_for(channel) {
            let period = cap.window.period(now, tz);
            let period_name = period
                .as_ref()
                .map(|(name, _)| name.as_str())
                .unwrap_or("rolling");
            let key = self.debtor_key(debtor_id, &format!("cap:{}:{}:{}", pack.id, cap.id, period_name));
            keys.push(CapKey {
                pack,
                cap,
                key,
                period_end: period.map(|(_, end)| end),
            });
        }
        keys
    }

    /// Checks every cap for a contact on `channel` now and reserves them all, or none.
    pub async fn reserve(
        &self,
        rules: &Applied<'_>,
        debtor_id: Uuid,
        reminder_id: Uuid,
        channel: &str,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<Decision, redis::RedisError> {
        let caps = self.cap_keys(rules, debtor_id, channel, tz, now);
        let mut invocation = self.reserve.prepare_invoke();
        invocation
            .key(self.debtor_key(debtor_id, &format!("reminder:{reminder_id}")))
            .arg(now.timestamp_millis())
            .arg(RESERVATION_TTL.num_seconds())
            .arg(channel)
            .arg(reminder_id.to_string());
        for cap in &caps {
            invocation.key(&cap.key);
            let (kind, span) = match (cap.cap.kind, cap.cap.window) {
                (_, Window::Rolling(span)) => ("r", span.num_milliseconds()),
                (kind, _) => {
                    // Keep a calendar counter a day past its period, then let Redis drop it.
                    let end = cap.period_end.unwrap_or(now);
                    let ttl = (end - now).num_seconds().max(1) + 86_400;
                    (
                        if kind == CapKind::DistinctChannels {
                            "d"
                        } else {
                            "c"
                        },
                        ttl,
                    )
                }
            };
            invocation.arg(kind).arg(cap.cap.max).arg(span);
        }
        let mut redis = self.redis.clone();
        let (allowed, index, room_ms): (i64, usize, i64) = invocation.invoke_async(&mut redis).await?;
        if allowed == 1 {
            return Ok(Decision::Allowed);
        }
        let full = &caps[index.saturating_sub(1).min(caps.len().saturating_sub(1))];
        let room_at = match full.period_end {
            Some(end) => end,
            None => DateTime::from_timestamp_millis(room_ms).unwrap_or(now),
        };
        Ok(Decision::Full {
            pack: full.pack.label(),
            cap: full.cap.id.clone(),
            window: full.cap.window.name(),
            max: full.cap.max,
            room_at,
        })
    }

    /// Gives back what a reminder reserved, when its delivery failed before reaching the
    /// provider. Returns whether there was anything to release.
    pub async fn release(&self, debtor_id: Uuid, reminder_id: Uuid) -> Result<bool, redis::RedisError> {
        let reservation = self.debtor_key(debtor_id, &format!("reminder:{reminder_id}"));
        let mut redis = self.redis.clone();
        let stored: Option<String> = redis::cmd("GET")
            .arg(&reservation)
            .query_async(&mut redis)
            .await?;
        let Some(stored) = stored else { return Ok(false) };
        let mut lines = stored.lines();
        let channel = lines.next().unwrap_or_default();
        let mut invocation = self.release.prepare_invoke();
        invocation
            .key(&reservation)
            .arg(reminder_id.to_string())
            .arg(channel);
        for entry in lines {
            if entry.len() > 1 {
                let (kind, key) = entry.split_at(1);
                invocation.key(key).arg(kind);
            }
        }
        let released: i64 = invocation.invoke_async(&mut redis).await?;
        Ok(released == 1)
    }

    /// Before calling a provider: a reminder already sent gives back its provider id and is not
    /// sent again (a crash between "provider accepted" and "recorded" must not send twice);
    /// one being sent right now by another worker (a rebalance) is `Busy`; one whose worker
    /// stopped during the provider call is `Unknown`.
    pub async fn claim_send(
        &self,
        debtor_id: Uuid,
        reminder_id: Uuid,
    ) -> Result<SendClaim, redis::RedisError> {
        let token = Uuid::new_v4().simple().to_string();
        let mut redis = self.redis.clone();
        let (state, value): (String, String) = self
            .claim
            .key(self.sent_key(debtor_id, reminder_id))
            .key(self.claim_key(debtor_id, reminder_id))
            .arg(&token)
            .arg(SEND_CLAIM_TTL_SECONDS)
            .arg(CALL_ENDED_MS)
            .invoke_async(&mut redis)
            .await?;
        Ok(match state.as_str() {
            "sent" => SendClaim::Sent(value),
            "mine" => SendClaim::Mine(token),
            "unknown" => SendClaim::Unknown {
                since: value
                    .parse()
                    .ok()
                    .and_then(DateTime::from_timestamp_millis)
                    .unwrap_or_default(),
            },
            _ => SendClaim::Busy,
        })
    }

    /// Queues an ordered write; the future ends with its reply.
    fn in_order(
        &self,
        write: Ordered,
    ) -> impl Future<Output = Result<redis::Value, redis::RedisError>> + use<> {
        let (reply, replied) = oneshot::channel();
        let queued = self.ordered.send(Queued { write, reply });
        async move {
            let gone = || redis::RedisError::from((redis::ErrorKind::Io, "the ordered Redis writer stopped"));
            queued.map_err(|_| gone())?;
            replied.await.unwrap_or_else(|_| Err(gone()))
        }
    }

    /// Right before a call that reaches outside this process: the claim records that the call
    /// began, and outlives a crash during it (see `SendClaim::Unknown`). False when another
    /// worker holds the claim or sent the reminder: this one must not call.
    pub async fn begin_call(
        &self,
        debtor_id: Uuid,
        reminder_id: Uuid,
        token: &str,
    ) -> Result<bool, redis::RedisError> {
        let began = self
            .in_order(Ordered::BeginCall {
                sent: self.sent_key(debtor_id, reminder_id),
                sending: self.claim_key(debtor_id, reminder_id),
                token: token.to_string(),
            })
            .await?;
        Ok(redis::from_redis_value::<i64>(began)? == 1)
    }

    /// Right after the provider accepted: the mark is queued at once, and the returned future
    /// ends when Redis has it (remembered longer than any redelivery window). Queued writes go
    /// in order, so the next provider call need not wait for this one's round trip.
    pub fn mark_sent(
        &self,
        debtor_id: Uuid,
        reminder_id: Uuid,
        provider_id: &str,
    ) -> impl Future<Output = Result<(), redis::RedisError>> + use<> {
        let written = self.in_order(Ordered::Mark {
            sent: self.sent_key(debtor_id, reminder_id),
            sending: self.claim_key(debtor_id, reminder_id),
            provider_id: provider_id.to_string(),
        });
        async move { written.await.map(|_| ()) }
    }

    /// The provider refused or failed: another attempt may claim the send. Only the holder of
    /// the claim (its token) gives it up.
    pub async fn unclaim_send(
        &self,
        debtor_id: Uuid,
        reminder_id: Uuid,
        token: &str,
    ) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        self.unclaim
            .key(self.claim_key(debtor_id, reminder_id))
            .arg(token)
            .invoke_async::<i64>(&mut redis)
            .await?;
        Ok(())
    }

    /// A new channel starts its own count of attempts.
    pub async fn reset_attempts(&self, debtor_id: Uuid, reminder_id: Uuid) -> Result<(), redis::RedisError> {
        let key = self.debtor_key(debtor_id, &format!("attempts:{reminder_id}"));
        let mut redis = self.redis.clone();
        redis::cmd("DEL").arg(&key).query_async::<()>(&mut redis).await
    }

    /// Counts one more attempt to send a reminder through its provider; the count lives a day.
    pub async fn attempt(&self, debtor_id: Uuid, reminder_id: Uuid) -> Result<u32, redis::RedisError> {
        let key = self.debtor_key(debtor_id, &format!("attempts:{reminder_id}"));
        let mut redis = self.redis.clone();
        let (count,): (u32,) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .ignore()
            .expire(&key, 86_400)
            .ignore()
            .get(&key)
            .query_async(&mut redis)
            .await?;
        Ok(count)
    }

    /// Each cap's use right now, for the gRPC view of a debtor's remaining budget.
    pub async fn usage(
        &self,
        rules: &Applied<'_>,
        debtor_id: Uuid,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Cap, i64)>, redis::RedisError> {
        let mut redis = self.redis.clone();
        let mut usage = Vec::new();
        for pack in rules.packs() {
            for cap in &pack.caps {
                let period = cap.window.period(now, tz);
                let period_name = period
                    .as_ref()
                    .map(|(name, _)| name.as_str())
                    .unwrap_or("rolling");
                let key = self.debtor_key(debtor_id, &format!("cap:{}:{}:{}", pack.id, cap.id, period_name));
                let used: i64 = match (cap.kind, cap.window) {
                    (_, Window::Rolling(span)) => {
                        redis::cmd("ZCOUNT")
                            .arg(&key)
                            .arg((now - span).timestamp_millis())
                            .arg("+inf")
                            .query_async(&mut redis)
                            .await?
                    }
                    (CapKind::DistinctChannels, _) => {
                        redis::cmd("SCARD").arg(&key).query_async(&mut redis).await?
                    }
                    (CapKind::Contacts, _) => {
                        let value: Option<i64> = redis::cmd("GET").arg(&key).query_async(&mut redis).await?;
                        value.unwrap_or(0)
                    }
                };
                usage.push((pack.label(), cap.clone(), used));
            }
        }
        Ok(usage)
    }
}
