//! SQL for deliveries and responses, each written with its event in one transaction.

use chrono::{DateTime, Utc};
use prost::Message as _;
use recobro_common::{channel_from_name, outbox, time};
use recobro_proto::v1::{self as pb, DeliveryStatus};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

pub async fn delivered_before(pool: &PgPool, reminder_id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<(Uuid,)> = sqlx::query_as("SELECT reminder_id FROM deliveries WHERE reminder_id = $1")
        .bind(reminder_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

pub struct Delivery {
    pub reminder_id: Uuid,
    pub tenant_id: String,
    pub debtor_id: Uuid,
    pub invoice_id: Option<Uuid>,
    pub channel: String,
    pub provider: String,
    pub status: DeliveryStatus,
    pub reason: String,
    pub provider_message_id: String,
    pub subject: String,
    pub body: String,
    /// Where it went: an email address or an E.164 number (replies are matched on it).
    pub recipient: String,
    pub at: DateTime<Utc>,
    /// The rule and pack that decided a suppressed or deferred outcome.
    pub rule: String,
    pub pack: String,
    pub not_before: Option<DateTime<Utc>>,
    /// The strategy and arm that planned it, carried so KPIs can compare them.
    pub strategy_id: String,
    pub arm: String,
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Read => "read",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Suppressed | DeliveryStatus::Deferred | DeliveryStatus::Unspecified => "suppressed",
    }
}

fn status_from_name(name: &str) -> DeliveryStatus {
    match name {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => DeliveryStatus::Suppressed,
    }
}

impl Delivery {
    pub fn record(&self) -> pb::DeliveryRecord {
        pb::DeliveryRecord {
            reminder_id: self.reminder_id.to_string(),
            tenant_id: self.tenant_id.clone(),
            debtor_id: self.debtor_id.to_string(),
            channel: channel_from_name(&self.channel) as i32,
            provider: self.provider.clone(),
            status: self.status as i32,
            reason: self.reason.clone(),
            provider_message_id: self.provider_message_id.clone(),
            at: Some(time::timestamp(self.at)),
            not_before: self.not_before.map(time::timestamp),
            rule: self.rule.clone(),
            pack: self.pack.clone(),
            strategy_id: self.strategy_id.clone(),
            arm: self.arm.clone(),
        }
    }
}

/// A rule's verdict on one contact, for the audit trail.
pub struct Decision<'a> {
    pub verdict: &'static str,
    pub rule: &'a str,
    pub pack: &'a str,
    pub reason: &'a str,
    pub not_before: Option<DateTime<Utc>>,
}

async fn record_decision(
    tx: &mut Transaction<'_, Postgres>,
    delivery: &Delivery,
    decision: &Decision<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO contact_decisions (tenant_id, debtor_id, reminder_id, channel, verdict, not_before, rule, pack, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&delivery.tenant_id)
    .bind(delivery.debtor_id)
    .bind(delivery.reminder_id)
    .bind(&delivery.channel)
    .bind(decision.verdict)
    .bind(decision.not_before)
    .bind(decision.rule)
    .bind(decision.pack)
    .bind(decision.reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A contact the rules put off: the decision is recorded and a DEFERRED record published, so
/// scheduling fires the reminder again at `not_before`. No delivery row: it is not final.
pub async fn record_deferral(
    pool: &PgPool,
    delivery: &Delivery,
    decision: &Decision<'_>,
    topic: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    record_decision(&mut tx, delivery, decision).await?;
    outbox::enqueue(
        &mut tx,
        topic,
        &delivery.debtor_id.to_string(),
        &delivery.record().encode_to_vec(),
    )
    .await?;
    tx.commit().await
}

/// Stores the final outcome (with the rule decision behind it, if any) and queues its
/// `DeliveryRecord`; a second outcome for the same reminder is ignored.
pub async fn record_delivery(
    pool: &PgPool,
    delivery: &Delivery,
    decision: Option<&Decision<'_>>,
    topic: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO deliveries (reminder_id, tenant_id, debtor_id, invoice_id, channel, provider, status,
                                 reason, provider_message_id, subject, body, created_at, rule, pack, recipient)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (reminder_id) DO NOTHING",
    )
    .bind(delivery.reminder_id)
    .bind(&delivery.tenant_id)
    .bind(delivery.debtor_id)
    .bind(delivery.invoice_id)
    .bind(&delivery.channel)
    .bind(&delivery.provider)
    .bind(status_name(delivery.status))
    .bind(&delivery.reason)
    .bind(&delivery.provider_message_id)
    .bind(&delivery.subject)
    .bind(&delivery.body)
    .bind(delivery.at)
    .bind(&delivery.rule)
    .bind(&delivery.pack)
    .bind(&delivery.recipient)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        if let Some(decision) = decision {
            record_decision(&mut tx, delivery, decision).await?;
        }
        outbox::enqueue(
            &mut tx,
            topic,
            &delivery.debtor_id.to_string(),
            &delivery.record().encode_to_vec(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(inserted.rows_affected() == 1)
}

type DeliveryRow = (
    Uuid,
    String,
    Uuid,
    Option<Uuid>,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    String,
    String,
    String,
);

fn from_row(r: DeliveryRow) -> Delivery {
    Delivery {
        reminder_id: r.0,
        tenant_id: r.1,
        debtor_id: r.2,
        invoice_id: r.3,
        channel: r.4,
        provider: r.5,
        status: status_from_name(&r.6),
        reason: r.7,
        provider_message_id: r.8,
        subject: r.9,
        body: r.10,
        recipient: r.14,
        at: r.11,
        rule: r.12,
        pack: r.13,
        not_before: None,
        strategy_id: String::new(),
        arm: String::new(),
    }
}

const DELIVERY_COLUMNS: &str = "reminder_id, tenant_id, debtor_id, invoice_id, channel, provider, status, reason, provider_message_id, subject, body, created_at, rule, pack, recipient";

pub async fn delivery(pool: &PgPool, reminder_id: Uuid) -> Result<Option<Delivery>, sqlx::Error> {
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE reminder_id = $1"
    ))
    .bind(reminder_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(from_row))
}

pub async fn deliveries(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant_id = $1 AND debtor_id = $2 ORDER BY created_at"
    ))
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn record_response(
    pool: &PgPool,
    response: &pb::DebtorResponse,
    topic: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO responses (response_id, tenant_id, debtor_id, channel, reminder_id, text, intent)
         VALUES ($1::uuid, $2, $3::uuid, $4, $5::uuid, $6, $7)",
    )
    .bind(&response.response_id)
    .bind(&response.tenant_id)
    .bind(&response.debtor_id)
    .bind(recobro_common::channel_name(response.channel()))
    .bind(Some(&response.reminder_id).filter(|id| !id.is_empty()))
    .bind(&response.text)
    .bind(response.intent().as_str_name())
    .execute(&mut *tx)
    .await?;
    if response.intent() == pb::ResponseIntent::OptOut {
        // Consent for that channel is withdrawn at once, in the same transaction.
        sqlx::query(
            "INSERT INTO opt_outs (tenant_id, debtor_id, channel, source) VALUES ($1, $2::uuid, $3, 'reply')
             ON CONFLICT DO NOTHING",
        )
        .bind(&response.tenant_id)
        .bind(&response.debtor_id)
        .bind(recobro_common::channel_name(response.channel()))
        .execute(&mut *tx)
        .await?;
    }
    outbox::enqueue(&mut tx, topic, &response.debtor_id, &response.encode_to_vec()).await?;
    tx.commit().await
}

/// When the debtor opted out of `channel`, if they did.
pub async fn opted_out(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
    channel: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let row: Option<(DateTime<Utc>,)> = sqlx::query_as(
        "SELECT opted_out_at FROM opt_outs WHERE tenant_id = $1 AND debtor_id = $2 AND channel = $3",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(channel)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(at,)| at))
}

/// Remembers where the debtor is, for the budget view.
pub async fn remember_debtor(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
    time_zone: &str,
    country: &str,
    region: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO debtors (tenant_id, debtor_id, time_zone, country, region) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, debtor_id) DO UPDATE SET time_zone = EXCLUDED.time_zone,
            country = EXCLUDED.country, region = EXCLUDED.region, updated_at = now()",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(time_zone)
    .bind(country)
    .bind(region)
    .execute(pool)
    .await?;
    Ok(())
}

/// (time zone, country, region) of a debtor channels has seen.
pub async fn debtor(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT time_zone, country, region FROM debtors WHERE tenant_id = $1 AND debtor_id = $2")
        .bind(tenant_id)
        .bind(debtor_id)
        .fetch_optional(pool)
        .await
}

pub struct DecisionRow {
    pub reminder_id: Uuid,
    pub channel: String,
    pub verdict: String,
    pub not_before: Option<DateTime<Utc>>,
    pub rule: String,
    pub pack: String,
    pub reason: String,
    pub decided_at: DateTime<Utc>,
}

type DecisionTuple = (
    Uuid,
    String,
    String,
    Option<DateTime<Utc>>,
    String,
    String,
    String,
    DateTime<Utc>,
);

pub async fn decisions(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<DecisionRow>, sqlx::Error> {
    let rows: Vec<DecisionTuple> = sqlx::query_as(
        "SELECT reminder_id, channel, verdict, not_before, rule, pack, reason, decided_at FROM contact_decisions
         WHERE tenant_id = $1 AND debtor_id = $2
           AND ($3::timestamptz IS NULL OR decided_at >= $3) AND ($4::timestamptz IS NULL OR decided_at < $4)
         ORDER BY decided_at, id",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DecisionRow {
            reminder_id: r.0,
            channel: r.1,
            verdict: r.2,
            not_before: r.3,
            rule: r.4,
            pack: r.5,
            reason: r.6,
            decided_at: r.7,
        })
        .collect())
}

/// The latest message sent to an address or number: whom a reply from there belongs to.
pub async fn latest_delivery_to(pool: &PgPool, recipient: &str) -> Result<Option<Delivery>, sqlx::Error> {
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE recipient = $1 ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(recipient)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(from_row))
}

/// A provider's news about a message it took: delivered, read or failed. Statuses arrive out
/// of order, so one never goes back (read is not undone by a late "delivered"); each change is
/// published as a `DeliveryRecord`.
pub async fn update_status(
    pool: &PgPool,
    provider_message_id: &str,
    status: DeliveryStatus,
    reason: &str,
    topic: &str,
) -> Result<bool, sqlx::Error> {
    let rank = |name: &str| match name {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "failed" => 4,
        _ => 0,
    };
    let mut tx = pool.begin().await?;
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE provider_message_id = $1 FOR UPDATE"
    ))
    .bind(provider_message_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let mut delivery = from_row(row);
    let new = status_name(status);
    if rank(new) <= rank(status_name(delivery.status)) {
        return Ok(false);
    }
    sqlx::query("UPDATE deliveries SET status = $2, reason = CASE WHEN $3 = '' THEN reason ELSE $3 END WHERE reminder_id = $1")
        .bind(delivery.reminder_id)
        .bind(new)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
    delivery.status = status;
    delivery.at = chrono::Utc::now();
    if !reason.is_empty() {
        delivery.reason = reason.to_string();
    }
    outbox::enqueue(
        &mut tx,
        topic,
        &delivery.debtor_id.to_string(),
        &delivery.record().encode_to_vec(),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
