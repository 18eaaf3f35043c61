//! What debtors answer, and when they last wrote (WhatsApp's window).

use chrono::{DateTime, Utc};
use prost::Message as _;
use recobro_common::{Channel, outbox};
use recobro_proto::v1::{self as pb};
use sqlx::PgPool;
use uuid::Uuid;

use super::stored_name;

pub async fn record_response(
    pool: &PgPool,
    response: &pb::DebtorResponse,
    topic: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO responses (response_id, tenant_id, debtor_id, channel, reminder_id, text, intent, sender)
         VALUES ($1::uuid, $2, $3::uuid, $4, $5::uuid, $6, $7, $8)",
    )
    .bind(&response.response_id)
    .bind(&response.tenant_id)
    .bind(&response.debtor_id)
    .bind(stored_name(response.channel()))
    .bind(Some(&response.reminder_id).filter(|id| !id.is_empty()))
    .bind(&response.text)
    .bind(response.intent().as_str_name())
    .bind(&response.sender)
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
        .bind(stored_name(response.channel()))
        .execute(&mut *tx)
        .await?;
    }
    outbox::enqueue(&mut tx, topic, &response.debtor_id, &response.encode_to_vec()).await?;
    tx.commit().await
}

/// One message to or from a debtor.
#[derive(sqlx::FromRow)]
pub struct ConversationEntry {
    pub at: DateTime<Utc>,
    pub channel: String,
    pub inbound: bool,
    pub text: String,
    /// A delivery's status, or a reply's intent.
    pub status: String,
    pub reminder_id: Option<Uuid>,
}

/// A debtor's messages and replies, oldest first.
pub async fn conversation(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Vec<ConversationEntry>, sqlx::Error> {
    sqlx::query_as(
        // A templated message shows its subject; free-form text, the text itself.
        "SELECT created_at AS at, channel, false AS inbound, COALESCE(NULLIF(subject, ''), body) AS text,
                status, reminder_id FROM deliveries
         WHERE tenant_id = $1 AND debtor_id = $2
         UNION ALL
         SELECT received_at, channel, true, text, intent, reminder_id FROM responses
         WHERE tenant_id = $1 AND debtor_id = $2
         ORDER BY 1",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_all(pool)
    .await
}

/// When the debtor last wrote to us on a channel from `sender` (WhatsApp's 24-hour window
/// starts there, for that number).
pub async fn last_inbound(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
    channel: Channel,
    sender: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let (at,): (Option<DateTime<Utc>>,) = sqlx::query_as(
        "SELECT max(received_at) FROM responses
         WHERE tenant_id = $1 AND debtor_id = $2 AND channel = $3 AND sender = $4",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(channel.as_str())
    .bind(sender)
    .fetch_one(pool)
    .await?;
    Ok(at)
}
