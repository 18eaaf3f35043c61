//! Exactly one send per reminder, across crashes and rebalances: before a provider call a
//! worker claims the send in Redis; right before a call that leaves the process the claim
//! records that the call began; right after the provider accepted, a "sent" mark holds the
//! provider's id. A worker that dies mid-call leaves a claim that says so, and the reminder is
//! never sent again (`SendClaim::Unknown`).
//!
//! Marks and call starts go to Redis through one ordered writer, so when a call start is
//! acknowledged every earlier mark is in: with one provider turn a crash leaves at most one
//! reminder whose fate is unknown.

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::budget::RESERVATION_TTL;
use crate::redis_keys::DebtorKeys;

const BEGIN_CALL: &str = include_str!("lua/begin_call.lua");

/// A provider call lasts at most its 10 s timeout (an SMTP session a few of them): a claim
/// still "calling" after this long belongs to a worker that stopped mid-call.
const CALL_ENDED_MS: i64 = 60_000;

/// A send claim outlives its usual wait for the provider turn (one that lapses first is given
/// up, see `begin_call`); after a crash, a claim that never reached a provider frees up this soon.
const SEND_CLAIM_TTL_SECONDS: i64 = 60;

/// How long a reminder's count of provider attempts is kept.
const ATTEMPTS_TTL_SECONDS: i64 = 86_400;

pub struct SendClaims {
    redis: ConnectionManager,
    claim: redis::Script,
    unclaim: redis::Script,
    keys: DebtorKeys,
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

impl SendClaims {
    /// Must be called within the Tokio runtime: it starts the task that writes "sent" marks.
    pub fn new(redis: ConnectionManager, prefix: &str) -> SendClaims {
        let (ordered, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_in_order(redis.clone(), queue));
        SendClaims {
            ordered,
            redis,
            claim: redis::Script::new(include_str!("lua/claim_send.lua")),
            unclaim: redis::Script::new(include_str!("lua/unclaim_send.lua")),
            keys: DebtorKeys::new(prefix),
        }
    }

    /// Before calling a provider: a reminder already sent gives back its provider id and is not
    /// sent again (a crash between "provider accepted" and "recorded" must not send twice);
    /// one being sent right now by another worker (a rebalance) is `Busy`; one whose worker
    /// stopped during the provider call is `Unknown`.
    pub async fn claim(&self, debtor_id: Uuid, reminder_id: Uuid) -> Result<SendClaim, redis::RedisError> {
        let token = Uuid::new_v4().simple().to_string();
        let mut redis = self.redis.clone();
        let (state, value): (String, String) = self
            .claim
            .key(self.keys.sent(debtor_id, reminder_id))
            .key(self.keys.claim(debtor_id, reminder_id))
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
                sent: self.keys.sent(debtor_id, reminder_id),
                sending: self.keys.claim(debtor_id, reminder_id),
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
            sent: self.keys.sent(debtor_id, reminder_id),
            sending: self.keys.claim(debtor_id, reminder_id),
            provider_id: provider_id.to_string(),
        });
        async move { written.await.map(|_| ()) }
    }

    /// The provider refused or failed: another attempt may claim the send. Only the holder of
    /// the claim (its token) gives it up.
    pub async fn unclaim(
        &self,
        debtor_id: Uuid,
        reminder_id: Uuid,
        token: &str,
    ) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        self.unclaim
            .key(self.keys.claim(debtor_id, reminder_id))
            .arg(token)
            .invoke_async::<i64>(&mut redis)
            .await?;
        Ok(())
    }

    /// A new channel starts its own count of attempts.
    pub async fn reset_attempts(&self, debtor_id: Uuid, reminder_id: Uuid) -> Result<(), redis::RedisError> {
        let key = self.keys.attempts(debtor_id, reminder_id);
        let mut redis = self.redis.clone();
        redis::cmd("DEL").arg(&key).query_async::<()>(&mut redis).await
    }

    /// Counts one more attempt to send a reminder through its provider; the count lives a day.
    pub async fn attempt(&self, debtor_id: Uuid, reminder_id: Uuid) -> Result<u32, redis::RedisError> {
        let key = self.keys.attempts(debtor_id, reminder_id);
        let mut redis = self.redis.clone();
        let (count,): (u32,) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .ignore()
            .expire(&key, ATTEMPTS_TTL_SECONDS)
            .ignore()
            .get(&key)
            .query_async(&mut redis)
            .await?;
        Ok(count)
    }
}
