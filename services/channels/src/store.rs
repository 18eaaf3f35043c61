//! SQL for deliveries and responses, each written with its event in one transaction.

use chrono::{DateTime, Utc};
use prost::Message as _;
use recobro_common::{channel_from_name, outbox, time};
use recobro_proto::v1::{self as pb, DeliveryStatus};
use sqlx::PgPool;
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
    pub at: DateTime<Utc>,
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Read => "read",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Suppressed | DeliveryStatus::Unspecified => "suppressed",
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
        }
    }
}

/// Stores the outcome and queues its `DeliveryRecord`; a second outcome for the same reminder
/// is ignored.
pub async fn record_delivery(pool: &PgPool, delivery: &Delivery, topic: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO deliveries (reminder_id, tenant_id, debtor_id, invoice_id, channel, provider, status,
                                 reason, provider_message_id, subject, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
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
        at: r.11,
    }
}

const DELIVERY_COLUMNS: &str = "reminder_id, tenant_id, debtor_id, invoice_id, channel, provider, status, reason, provider_message_id, subject, body, created_at";

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
    outbox::enqueue(&mut tx, topic, &response.debtor_id, &response.encode_to_vec()).await?;
    tx.commit().await
}
