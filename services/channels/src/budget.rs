//! The contact budget in Redis: every cap of every pack that applies to a debtor, checked and
//! reserved in one Lua script. Either every cap has room and all are reserved, or nothing is
//! consumed. A retried reminder is recognised by its reservation and never counts twice; a
//! reservation whose delivery fails before reaching the provider is released.
//!
//! Redis may lose its data (a restart without persistence, a fresh instance after a failover):
//! the law must not reset with it. A debtor's budget counts only while their "budget known" mark
//! is in Redis; without it nothing is reserved (fail closed) until `restore` has replayed the
//! contacts the delivery records (PostgreSQL) hold for the longest window, and written the mark.
//!
//! Keys are named in `redis_keys`; the exactly-once send claim is `send_claim`'s concern.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use recobro_rules::{Applied, Cap, CapKind, Channel, Pack, Window};
use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::redis_keys::DebtorKeys;

/// Longer than any redelivery or deferral: a reminder seen again is still recognised.
pub(crate) const RESERVATION_TTL: Duration = Duration::days(45);

#[derive(Debug, PartialEq)]
pub enum Decision {
    Allowed,
    /// A cap is full; `room_at` is when it has room again (for the rolling or calendar window).
    Full(FullCap),
    /// Redis does not hold this debtor's budget (it lost its data since it was restored):
    /// nothing was reserved; restore it from the delivery records first.
    Unknown,
}

/// A contact the delivery records hold: it counts against the caps of its channel at its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PastContact {
    pub reminder_id: Uuid,
    pub channel: Channel,
    pub at: DateTime<Utc>,
}

/// The cap that said no, and when it has room again.
#[derive(Debug, Clone, PartialEq)]
pub struct FullCap {
    pub pack: String,
    pub cap: String,
    pub window: String,
    pub max: u32,
    pub room_at: DateTime<Utc>,
}

/// One cap's key and what the script needs to know about it.
struct CapKey<'a> {
    pack: &'a Pack,
    cap: &'a Cap,
    key: String,
    /// When the calendar period ends (None for rolling windows).
    period_end: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct ContactBudget {
    redis: ConnectionManager,
    reserve: redis::Script,
    release: redis::Script,
    keys: DebtorKeys,
}

impl ContactBudget {
    pub fn new(redis: ConnectionManager, prefix: &str) -> ContactBudget {
        ContactBudget {
            redis,
            reserve: redis::Script::new(include_str!("lua/reserve.lua")),
            release: redis::Script::new(include_str!("lua/release.lua")),
            keys: DebtorKeys::new(prefix),
        }
    }

    fn cap_keys<'a>(
        &self,
        rules: &'a Applied<'a>,
        debtor_id: Uuid,
        channel: Channel,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Vec<CapKey<'a>> {
        rules
            .caps_for(channel)
            .map(|(pack, cap)| {
                let (key, period_end) = self.keys.cap(debtor_id, pack, cap, tz, now);
                CapKey {
                    pack,
                    cap,
                    key,
                    period_end,
                }
            })
            .collect()
    }

    /// The reserve script's call for a contact; `replay` records one already made (no check),
    /// with TTLs counted from `now`.
    fn invocation<'s>(
        &'s self,
        caps: &[CapKey<'_>],
        debtor_id: Uuid,
        contact: &PastContact,
        now: DateTime<Utc>,
        replay: bool,
    ) -> redis::ScriptInvocation<'s> {
        let PastContact {
            reminder_id,
            channel,
            at,
        } = *contact;
        let mut invocation = self.reserve.prepare_invoke();
        invocation
            .key(self.keys.reservation(debtor_id, reminder_id))
            .key(self.keys.budget_known(debtor_id))
            .arg(at.timestamp_millis())
            .arg(RESERVATION_TTL.num_seconds())
            .arg(channel.as_str())
            .arg(reminder_id.to_string())
            .arg(if replay { "1" } else { "0" });
        for cap in caps {
            invocation.key(&cap.key);
            let (kind, span) = match (cap.cap.kind, cap.cap.window) {
                (_, Window::Rolling(span)) => ("r", span.num_milliseconds()),
                (kind, _) => {
                    // Keep a calendar counter a day past its period, then let Redis drop it.
                    let end = cap.period_end.unwrap_or(now);
                    let ttl = (end - now).num_seconds().max(1) + 86_400;
                    let kind = match kind {
                        CapKind::DistinctChannels => "d",
                        CapKind::Contacts => "c",
                    };
                    (kind, ttl)
                }
            };
            invocation.arg(kind).arg(cap.cap.max).arg(span);
        }
        invocation
    }

    /// Checks every cap for a contact on `channel` now and reserves them all, or none.
    pub async fn reserve(
        &self,
        rules: &Applied<'_>,
        debtor_id: Uuid,
        reminder_id: Uuid,
        channel: Channel,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<Decision, redis::RedisError> {
        let caps = self.cap_keys(rules, debtor_id, channel, tz, now);
        let contact = PastContact {
            reminder_id,
            channel,
            at: now,
        };
        let invocation = self.invocation(&caps, debtor_id, &contact, now, false);
        let mut redis = self.redis.clone();
        let (allowed, index, room_ms): (i64, usize, i64) = invocation.invoke_async(&mut redis).await?;
        match allowed {
            1 => return Ok(Decision::Allowed),
            -1 => return Ok(Decision::Unknown),
            _ => {}
        }
        let full = &caps[index.saturating_sub(1).min(caps.len().saturating_sub(1))];
        let room_at = match full.period_end {
            Some(end) => end,
            None => DateTime::from_timestamp_millis(room_ms).unwrap_or(now),
        };
        Ok(Decision::Full(FullCap {
            pack: full.pack.label(),
            cap: full.cap.id.clone(),
            window: full.cap.window.name(),
            max: full.cap.max,
            room_at,
        }))
    }

    /// Which of these debtors' budgets Redis does not hold (never restored, or lost since).
    pub async fn unknown_among(&self, debtors: &[Uuid]) -> Result<Vec<Uuid>, redis::RedisError> {
        if debtors.is_empty() {
            return Ok(Vec::new());
        }
        // One EXISTS per key (not one over many): each debtor's key lives in its own slot.
        let mut pipe = redis::pipe();
        for debtor_id in debtors {
            pipe.exists(self.keys.budget_known(*debtor_id));
        }
        let mut redis = self.redis.clone();
        let known: Vec<bool> = pipe.query_async(&mut redis).await?;
        Ok(debtors
            .iter()
            .zip(known)
            .filter(|(_, known)| !known)
            .map(|(debtor_id, _)| *debtor_id)
            .collect())
    }

    /// Rebuilds a debtor's budget from the contacts the delivery records hold (within
    /// `RESERVATION_TTL`, longer than any window), then marks it known. Each contact is
    /// recorded under its own reservation, so a replay that runs twice (two workers, a retry)
    /// counts it once; a cap whose period or window has passed is left out.
    pub async fn restore(
        &self,
        rules: &Applied<'_>,
        debtor_id: Uuid,
        tz: Tz,
        contacts: &[PastContact],
        now: DateTime<Utc>,
    ) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        let mut contacts: Vec<&PastContact> = contacts.iter().collect();
        contacts.sort_by_key(|contact| contact.at);
        for contact in contacts {
            let caps: Vec<CapKey<'_>> = self
                .cap_keys(rules, debtor_id, contact.channel, tz, contact.at)
                .into_iter()
                .filter(|cap| match (cap.cap.window, cap.period_end) {
                    (Window::Rolling(span), _) => contact.at + span > now,
                    (_, Some(end)) => end > now,
                    (_, None) => false,
                })
                .collect();
            let invocation = self.invocation(&caps, debtor_id, contact, now, true);
            invocation.invoke_async::<(i64, i64, i64)>(&mut redis).await?;
        }
        self.mark_known(&[debtor_id], now).await
    }

    /// Marks these debtors' budgets known, as they stand: what [`ContactBudget::restore`] ends
    /// with, and all there is to do for debtors the delivery records hold no contact of (the
    /// common case: a debtor new to us, or not contacted in 45 days). One round trip for all.
    pub async fn mark_known(&self, debtors: &[Uuid], now: DateTime<Utc>) -> Result<(), redis::RedisError> {
        if debtors.is_empty() {
            return Ok(());
        }
        // One SET per key, pipelined: each debtor's key lives in its own slot.
        let mut pipe = redis::pipe();
        for debtor_id in debtors {
            pipe.cmd("SET")
                .arg(self.keys.budget_known(*debtor_id))
                .arg(now.timestamp_millis())
                .arg("EX")
                .arg(RESERVATION_TTL.num_seconds())
                .ignore();
        }
        let mut redis = self.redis.clone();
        pipe.query_async::<()>(&mut redis).await
    }

    /// Gives back what a reminder reserved, when its delivery failed before reaching the
    /// provider. Returns whether there was anything to release.
    pub async fn release(&self, debtor_id: Uuid, reminder_id: Uuid) -> Result<bool, redis::RedisError> {
        let reservation = self.keys.reservation(debtor_id, reminder_id);
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
                let (key, _) = self.keys.cap(debtor_id, pack, cap, tz, now);
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
