//! What debtors answer (opt-outs withdrawing their contact point), and when they last wrote
//! (WhatsApp's window).

use chrono::{DateTime, Utc};
use prost::Message as _;
use recobro_common::{Channel, outbox};
use recobro_proto::v1::{self as pb};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Handling, stored_name};

/// A STOP sent to one of our numbers: carriers expect it to hold for that sender whoever uses
/// it, so it is kept by (channel, our sender, their address), not by tenant.
pub struct SenderStop<'a> {
    pub channel: Channel,
    pub sender: &'a str,
    pub address: &'a str,
}

/// Records a debtor's response and publishes it, as part of `handling`. An opt-out names the
/// contact point it withdraws (`point_id`, with its `source`): that point is withdrawn here at
/// once, before accounts has heard of it; `sender_stop` also stops our sender writing there.
pub async fn record_response(
    handling: &mut Handling,
    response: &pb::DebtorResponse,
    sender_stop: Option<SenderStop<'_>>,
    topic: &str,
) -> Result<(), sqlx::Error> {
    let tx = handling.tx();
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
    .execute(&mut **tx)
    .await?;
    if response.intent() == pb::ResponseIntent::OptOut && !response.point_id.is_empty() {
        // The latest opt-out counts: a consent accounts recorded after an earlier one is
        // outranked again by this one.
        sqlx::query(
            "INSERT INTO point_withdrawals (tenant_id, point_id, source) VALUES ($1, $2::uuid, $3)
             ON CONFLICT (tenant_id, point_id) DO UPDATE SET source = EXCLUDED.source, withdrawn_at = now()",
        )
        .bind(&response.tenant_id)
        .bind(&response.point_id)
        .bind(&response.source)
        .execute(&mut **tx)
        .await?;
    }
    if let Some(stop) = sender_stop {
        sqlx::query(
            "INSERT INTO sender_opt_outs (channel, sender, address) VALUES ($1, $2, $3)
             ON CONFLICT (channel, sender, address) DO UPDATE SET opted_out_at = now()",
        )
        .bind(stop.channel.as_str())
        .bind(stop.sender)
        .bind(stop.address)
        .execute(&mut **tx)
        .await?;
    }
    outbox::enqueue(tx, topic, &response.debtor_id, &response.encode_to_vec()).await
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
    /// The delivery's reminder id or the reply's response id: with `at` and `inbound`, where
    /// a page of the conversation ends.
    pub id: Uuid,
}

/// Where a page of a conversation starts: after this (at, inbound, id).
pub type ConversationKey = (DateTime<Utc>, bool, Uuid);

/// Up to `limit` of a debtor's messages and replies, oldest first, after `after`.
pub async fn conversation(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
    after: Option<&ConversationKey>,
    limit: i64,
) -> Result<Vec<ConversationEntry>, sqlx::Error> {
    sqlx::query_as(
        // A templated message shows its subject; free-form text, the text itself.
        "SELECT * FROM (
             SELECT created_at AS at, channel, false AS inbound, COALESCE(NULLIF(subject, ''), body) AS text,
                    status, reminder_id, reminder_id AS id FROM deliveries
             WHERE tenant_id = $1 AND debtor_id = $2
             UNION ALL
             SELECT received_at, channel, true, text, intent, reminder_id, response_id FROM responses
             WHERE tenant_id = $1 AND debtor_id = $2) c
         WHERE $3::timestamptz IS NULL OR (c.at, c.inbound, c.id) > ($3, $4, $5)
         ORDER BY c.at, c.inbound, c.id
         LIMIT $6",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(after.map(|key| key.0))
    .bind(after.map(|key| key.1))
    .bind(after.map(|key| key.2))
    .bind(limit)
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
