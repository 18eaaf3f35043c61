//! The audit of rule decisions (allowed, deferred, suppressed) and why.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub struct DecisionRow {
    pub reminder_id: Uuid,
    pub channel: String,
    pub verdict: String,
    pub not_before: Option<DateTime<Utc>>,
    pub rule: String,
    pub pack: String,
    pub reason: String,
    pub decided_at: DateTime<Utc>,
    /// A statement's covered reminders (empty for one invoice's reminder).
    pub covered: Vec<Uuid>,
}

pub async fn decisions(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<DecisionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT reminder_id, channel, verdict, not_before, rule, pack, reason, decided_at, covered FROM contact_decisions
         WHERE tenant_id = $1 AND debtor_id = $2
           AND ($3::timestamptz IS NULL OR decided_at >= $3) AND ($4::timestamptz IS NULL OR decided_at < $4)
         ORDER BY decided_at, id",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// The latest rule decision on a reminder, for answering a one-off send that was not final.
pub async fn last_decision(pool: &PgPool, reminder_id: Uuid) -> Result<Option<DecisionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT reminder_id, channel, verdict, not_before, rule, pack, reason, decided_at, covered FROM contact_decisions
         WHERE reminder_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(reminder_id)
    .fetch_optional(pool)
    .await
}
