//! Deliveries: one final outcome per reminder, its record in the outbox, and the statuses
//! providers report later.

use chrono::{DateTime, Utc};
use prost::Message as _;
use recobro_common::{Channel, outbox, time};
use recobro_proto::v1::{self as pb, DeliveryStatus};
use sqlx::PgPool;
use uuid::Uuid;

use crate::budget::PastContact;

use super::{Handling, status_from_name, status_name, stored_channel};

pub struct Delivery {
    pub reminder_id: Uuid,
    pub tenant_id: String,
    pub debtor_id: Uuid,
    pub invoice_id: Option<Uuid>,
    pub channel: Channel,
    pub provider: String,
    pub status: DeliveryStatus,
    pub reason: String,
    pub provider_message_id: String,
    pub subject: String,
    pub body: String,
    /// Where it went: an email address or an E.164 number (replies are matched on it).
    pub recipient: String,
    /// The debtor's contact point it went to (from channels' view of the ledger).
    pub point_id: Option<Uuid>,
    /// Our own address or number it went from (a reply is matched on recipient and sender).
    pub sender: String,
    pub at: DateTime<Utc>,
    /// The rule and pack that decided a suppressed or deferred outcome.
    pub rule: String,
    pub pack: String,
    pub not_before: Option<DateTime<Utc>>,
    /// The strategy and arm that planned it, carried so KPIs can compare them.
    pub strategy_id: String,
    pub arm: String,
    /// For a statement: the reminders it covers, each delivered through it.
    pub covered: Vec<Uuid>,
}

impl Delivery {
    pub fn record(&self) -> pb::DeliveryRecord {
        pb::DeliveryRecord {
            reminder_id: self.reminder_id.to_string(),
            tenant_id: self.tenant_id.clone(),
            debtor_id: self.debtor_id.to_string(),
            channel: pb::Channel::from(self.channel) as i32,
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
            covered_reminder_ids: self.covered.iter().map(Uuid::to_string).collect(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    reminder_id: Uuid,
    tenant_id: String,
    debtor_id: Uuid,
    invoice_id: Option<Uuid>,
    channel: String,
    provider: String,
    status: String,
    reason: String,
    provider_message_id: String,
    subject: String,
    body: String,
    created_at: DateTime<Utc>,
    rule: String,
    pack: String,
    recipient: String,
    point_id: Option<Uuid>,
    sender: String,
    covered: Vec<Uuid>,
}

fn from_row(r: DeliveryRow) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        reminder_id: r.reminder_id,
        tenant_id: r.tenant_id,
        debtor_id: r.debtor_id,
        invoice_id: r.invoice_id,
        channel: stored_channel(&r.channel)?,
        provider: r.provider,
        status: status_from_name(&r.status)?,
        reason: r.reason,
        provider_message_id: r.provider_message_id,
        subject: r.subject,
        body: r.body,
        recipient: r.recipient,
        point_id: r.point_id,
        sender: r.sender,
        at: r.created_at,
        rule: r.rule,
        pack: r.pack,
        not_before: None,
        strategy_id: String::new(),
        arm: String::new(),
        covered: r.covered,
    })
}

const DELIVERY_COLUMNS: &str = "reminder_id, tenant_id, debtor_id, invoice_id, channel, provider, status, reason, provider_message_id, subject, body, created_at, rule, pack, recipient, point_id, sender, covered";

pub async fn delivery(pool: &PgPool, reminder_id: Uuid) -> Result<Option<Delivery>, sqlx::Error> {
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE reminder_id = $1"
    ))
    .bind(reminder_id)
    .fetch_optional(pool)
    .await?;
    row.map(from_row).transpose()
}

/// The trace a delivery's record continued (none for deliveries recorded before traces were
/// stored, or sent without one).
pub async fn delivery_traceparent(pool: &PgPool, reminder_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT traceparent FROM deliveries WHERE reminder_id = $1")
        .bind(reminder_id)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
}

/// The invoices of the reminders a statement covered (each delivered through it): what a reply
/// to the statement is about.
pub async fn invoices_of_reminders(pool: &PgPool, reminder_ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    if reminder_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "SELECT DISTINCT invoice_id FROM deliveries WHERE reminder_id = ANY($1) AND invoice_id IS NOT NULL
         ORDER BY invoice_id",
    )
    .bind(reminder_ids)
    .fetch_all(pool)
    .await
}

pub async fn deliveries(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant_id = $1 AND debtor_id = $2
           AND ($3::timestamptz IS NULL OR (created_at, reminder_id) > ($3, $4))
         ORDER BY created_at, reminder_id LIMIT $5"
    ))
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(after.map(|key| key.0))
    .bind(after.map(|key| key.1))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// The latest message sent on `channel` from our `sender` to an address or number: whom a
/// reply from there to that sender belongs to. Tenants sharing a sender number each get the
/// replies to their own latest message only; another sender's messages never match.
pub async fn latest_delivery_to(
    pool: &PgPool,
    channel: Channel,
    sender: &str,
    recipient: &str,
) -> Result<Option<Delivery>, sqlx::Error> {
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE recipient = $1 AND channel = $2 AND sender = $3
         ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(recipient)
    .bind(channel.as_str())
    .bind(sender)
    .fetch_optional(pool)
    .await?;
    row.map(from_row).transpose()
}

/// A provider's news about a message it took: delivered, read or failed. Statuses arrive out
/// of order, so one never goes back (read is not undone by a late "delivered"); each change is
/// published as a `DeliveryRecord`, as part of `handling`.
pub async fn update_status(
    handling: &mut Handling,
    provider_message_id: &str,
    status: DeliveryStatus,
    reason: &str,
    topic: &str,
) -> Result<bool, sqlx::Error> {
    update_status_where(
        handling,
        "provider_message_id = $1",
        provider_message_id,
        status,
        reason,
        topic,
    )
    .await
}

/// The same, for a provider that reports our reminder id back (SendGrid's custom args).
pub async fn update_status_of_reminder(
    handling: &mut Handling,
    reminder_id: Uuid,
    status: DeliveryStatus,
    reason: &str,
    topic: &str,
) -> Result<bool, sqlx::Error> {
    update_status_where(
        handling,
        "reminder_id = $1::uuid",
        &reminder_id.to_string(),
        status,
        reason,
        topic,
    )
    .await
}

async fn update_status_where(
    handling: &mut Handling,
    condition: &str,
    key: &str,
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
    let tx = handling.tx();
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {condition} FOR UPDATE"
    ))
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let mut delivery = from_row(row)?;
    let new = status_name(status);
    if rank(new) <= rank(status_name(delivery.status)) {
        return Ok(false);
    }
    sqlx::query("UPDATE deliveries SET status = $2, reason = CASE WHEN $3 = '' THEN reason ELSE $3 END WHERE reminder_id = $1")
        .bind(delivery.reminder_id)
        .bind(new)
        .bind(reason)
        .execute(&mut **tx)
        .await?;
    delivery.status = status;
    delivery.at = chrono::Utc::now();
    if !reason.is_empty() {
        delivery.reason = reason.to_string();
    }
    outbox::enqueue(
        tx,
        topic,
        &delivery.debtor_id.to_string(),
        &delivery.record().encode_to_vec(),
    )
    .await?;
    Ok(true)
}

/// The reminders among `ids` that already have a final outcome: never sent again.
pub async fn delivered_among(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as("SELECT reminder_id FROM deliveries WHERE reminder_id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// How a failed delivery's reason starts when a worker stopped during its provider call: the
/// message may have reached the debtor, so it counts against their contact budget.
pub const OUTCOME_UNKNOWN: &str = "outcome unknown";

/// The contacts made to these debtors since `since`: sent (and later delivered or read) and
/// those whose outcome is unknown. What a lost contact budget is rebuilt from.
pub async fn contacts_since(
    pool: &PgPool,
    debtors: &[(String, Uuid)],
    since: DateTime<Utc>,
) -> Result<std::collections::HashMap<Uuid, Vec<PastContact>>, sqlx::Error> {
    let (tenants, ids): (Vec<&str>, Vec<Uuid>) = debtors.iter().map(|(t, d)| (t.as_str(), *d)).unzip();
    let rows: Vec<(Uuid, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT d.debtor_id, d.reminder_id, d.channel, d.created_at
         FROM UNNEST($1::text[], $2::uuid[]) AS wanted(tenant_id, debtor_id)
         JOIN deliveries d ON d.tenant_id = wanted.tenant_id AND d.debtor_id = wanted.debtor_id
         WHERE d.created_at > $3
           AND (d.status IN ('sent', 'delivered', 'read')
                OR (d.status = 'failed' AND starts_with(d.reason, $4)))",
    )
    .bind(&tenants)
    .bind(&ids)
    .bind(since)
    .bind(OUTCOME_UNKNOWN)
    .fetch_all(pool)
    .await?;
    let mut contacts: std::collections::HashMap<Uuid, Vec<PastContact>> = std::collections::HashMap::new();
    for (debtor_id, reminder_id, channel, at) in rows {
        contacts.entry(debtor_id).or_default().push(PastContact {
            reminder_id,
            channel: stored_channel(&channel)?,
            at,
        });
    }
    Ok(contacts)
}

/// One reminder's outcome, with the rules' verdict behind it (for the audit) if any.
pub struct Recorded {
    pub delivery: Delivery,
    pub verdict: Option<&'static str>,
    /// The trace its record continues.
    pub traceparent: Option<String>,
}

/// A row's covered ids, comma-joined: UNNEST cannot take ragged arrays.
fn covered_text(delivery: &Delivery) -> String {
    delivery
        .covered
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Stores a batch of outcomes in one transaction: final ones as deliveries (a second outcome
/// for the same reminder is ignored), every rule decision in the audit, and their records in
/// the outbox. A deferral has no delivery row: it is not final, scheduling fires it again.
pub async fn record_outcomes(pool: &PgPool, outcomes: &[Recorded], topic: &str) -> Result<(), sqlx::Error> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    let final_outcomes: Vec<&Recorded> = outcomes
        .iter()
        .filter(|o| o.delivery.status != DeliveryStatus::Deferred)
        .collect();
    let finals: Vec<&Delivery> = final_outcomes.iter().map(|o| &o.delivery).collect();
    let inserted: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO deliveries (reminder_id, tenant_id, debtor_id, invoice_id, channel, provider, status, reason,
                                 provider_message_id, subject, body, created_at, rule, pack, recipient, point_id, sender,
                                 covered, traceparent)
         SELECT r, t, d, i, ch, pr, st, re, pm, su, bo, ca, ru, pa, rc, pt, se,
                -- One row's covered ids travel comma-joined: UNNEST cannot take ragged arrays.
                COALESCE(string_to_array(NULLIF(cv, ''), ',')::uuid[], '{}'), tp
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::text[],
                     $14::text[], $15::text[], $16::uuid[], $17::text[], $18::text[], $19::text[])
              AS x(r, t, d, i, ch, pr, st, re, pm, su, bo, ca, ru, pa, rc, pt, se, cv, tp)
         ON CONFLICT (reminder_id) DO NOTHING
         RETURNING reminder_id",
    )
    .bind(finals.iter().map(|d| d.reminder_id).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.tenant_id.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.debtor_id).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.invoice_id).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.channel.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.provider.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| status_name(d.status)).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.reason.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.provider_message_id.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.subject.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.body.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.at).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.rule.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.pack.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.recipient.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.point_id).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| d.sender.as_str()).collect::<Vec<_>>())
    .bind(finals.iter().map(|d| covered_text(d)).collect::<Vec<_>>())
    .bind(final_outcomes.iter().map(|o| o.traceparent.clone()).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?;
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().map(|(id,)| id).collect();
    let kept: Vec<&Recorded> = outcomes
        .iter()
        .filter(|o| {
            o.delivery.status == DeliveryStatus::Deferred || inserted.contains(&o.delivery.reminder_id)
        })
        .collect();
    let decided: Vec<&Recorded> = kept.iter().copied().filter(|o| o.verdict.is_some()).collect();
    sqlx::query(
        "INSERT INTO contact_decisions (tenant_id, debtor_id, reminder_id, channel, verdict, not_before, rule, pack, reason,
                                        covered)
         SELECT t, d, r, ch, v, nb, ru, pa, re, COALESCE(string_to_array(NULLIF(cv, ''), ',')::uuid[], '{}')
         FROM UNNEST($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[],
                     $7::text[], $8::text[], $9::text[], $10::text[])
              AS x(t, d, r, ch, v, nb, ru, pa, re, cv)",
    )
    .bind(decided.iter().map(|o| o.delivery.tenant_id.as_str()).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| o.delivery.debtor_id).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| o.delivery.reminder_id).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| o.delivery.channel.as_str()).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| o.verdict.unwrap_or_default()).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| o.delivery.not_before).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| o.delivery.rule.as_str()).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| o.delivery.pack.as_str()).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| o.delivery.reason.as_str()).collect::<Vec<_>>())
    .bind(decided.iter().map(|o| covered_text(&o.delivery)).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    let queued: Vec<outbox::Queued> = kept
        .iter()
        .map(|o| {
            (
                topic.to_string(),
                o.delivery.debtor_id.to_string(),
                o.delivery.record().encode_to_vec(),
                o.traceparent.clone(),
            )
        })
        .collect();
    outbox::enqueue_many(&mut tx, &queued).await?;
    tx.commit().await?;
    count(&kept);
    Ok(())
}

/// A status as the metrics name it (a deferral is stored under no status of its own).
fn metric_status(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Deferred => "deferred",
        other => status_name(other),
    }
}

/// The stored outcomes in the metrics: every one by channel, provider and status, and those a
/// contact rule deferred or suppressed by pack and rule (both bounded: the packs' own names).
fn count(kept: &[&Recorded]) {
    let metrics = recobro_common::metrics::metrics();
    for outcome in kept {
        let delivery = &outcome.delivery;
        metrics
            .sends
            .get_or_create(&vec![
                ("channel", delivery.channel.as_str().to_string()),
                ("provider", delivery.provider.clone()),
                ("status", metric_status(delivery.status).to_string()),
            ])
            .inc();
        if matches!(
            delivery.status,
            DeliveryStatus::Deferred | DeliveryStatus::Suppressed
        ) {
            metrics
                .rule_decisions
                .get_or_create(&vec![
                    ("decision", metric_status(delivery.status).to_string()),
                    ("pack", delivery.pack.clone()),
                    ("rule", delivery.rule.clone()),
                ])
                .inc();
        }
    }
}
