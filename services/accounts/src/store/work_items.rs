//! The collectors' work queue, and the claimed-paid holds replies place on invoices.

use chrono::{DateTime, NaiveDate, Utc};
use recobro_common::db::decoded;
use uuid::Uuid;

use crate::states::{WorkKind, WorkOutcome, WorkState};

use super::Tx;

/// Places a claimed-paid hold through `until` on those of `invoice_ids` still open; returns
/// the ones held. A standing hold is extended, never shortened.
pub async fn hold_claimed_paid(
    tx: &mut Tx<'_>,
    invoice_ids: &[Uuid],
    until: NaiveDate,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE invoices SET claimed_paid_until = GREATEST(claimed_paid_until, $2), claim_unconfirmed = false
         WHERE invoice_id = ANY($1) AND status = 'open' RETURNING invoice_id",
    )
    .bind(invoice_ids)
    .bind(until)
    .fetch_all(&mut **tx)
    .await
}

/// Lifts the claimed-paid holds on `invoice_ids` (a person decided: nothing is left to
/// acknowledge); returns the invoices that had one.
pub async fn lift_claimed_paid(tx: &mut Tx<'_>, invoice_ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE invoices SET claimed_paid_until = NULL, claim_unconfirmed = false
         WHERE invoice_id = ANY($1) AND claimed_paid_until IS NOT NULL RETURNING invoice_id",
    )
    .bind(invoice_ids)
    .fetch_all(&mut **tx)
    .await
}

/// Lifts the holds that ended before `today` (a batch, locked so replicas take different
/// ones); returns the invoices whose ladder resumes.
pub async fn lift_expired_claims(
    tx: &mut Tx<'_>,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE invoices SET claimed_paid_until = NULL, claim_unconfirmed = true WHERE invoice_id IN (
             SELECT invoice_id FROM invoices WHERE claimed_paid_until < $1
             ORDER BY claimed_paid_until LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING invoice_id",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// A work item to queue.
pub struct NewWorkItem<'a> {
    pub tenant_id: &'a str,
    pub kind: WorkKind,
    pub debtor_id: Uuid,
    pub invoice_ids: &'a [Uuid],
    /// The response, broken promise or escalation it comes from: one item each.
    pub response_id: Option<&'a str>,
    pub promise_id: Option<Uuid>,
    pub escalation_id: Option<&'a str>,
    pub reply_text: &'a str,
    pub reason: &'a str,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
}

/// Queues an item; `None` when its response, promise or escalation already has one.
pub async fn insert_work_item(tx: &mut Tx<'_>, item: &NewWorkItem<'_>) -> Result<Option<Uuid>, sqlx::Error> {
    let work_item_id = Uuid::new_v4();
    let inserted = sqlx::query(
        "INSERT INTO work_items (work_item_id, tenant_id, kind, state, debtor_id, invoice_ids, response_id,
             promise_id, reply_text, reason, created_at, due_at, escalation_id)
         VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
    )
    .bind(work_item_id)
    .bind(item.tenant_id)
    .bind(item.kind.as_str())
    .bind(item.debtor_id)
    .bind(item.invoice_ids)
    .bind(item.response_id)
    .bind(item.promise_id)
    .bind(item.reply_text)
    .bind(item.reason)
    .bind(item.created_at)
    .bind(item.due_at)
    .bind(item.escalation_id)
    .execute(&mut **tx)
    .await?;
    Ok((inserted.rows_affected() == 1).then_some(work_item_id))
}

/// A work item as stored, with its notes (oldest first).
#[derive(Debug, Clone)]
pub struct WorkItemRow {
    pub work_item_id: Uuid,
    pub tenant_id: String,
    pub kind: WorkKind,
    pub state: WorkState,
    pub debtor_id: Uuid,
    pub invoice_ids: Vec<Uuid>,
    pub response_id: Option<String>,
    pub reply_text: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub assignee: String,
    pub outcome: Option<WorkOutcome>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub notes: Vec<NoteRow>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub work_item_id: Uuid,
    pub author: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    work_item_id: Uuid,
    tenant_id: String,
    kind: String,
    state: String,
    debtor_id: Uuid,
    invoice_ids: Vec<Uuid>,
    response_id: Option<String>,
    reply_text: String,
    reason: String,
    created_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    assignee: String,
    outcome: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
}

impl Row {
    fn into_item(self) -> Result<WorkItemRow, sqlx::Error> {
        Ok(WorkItemRow {
            work_item_id: self.work_item_id,
            tenant_id: self.tenant_id,
            kind: decoded("kind", self.kind.parse())?,
            state: decoded("state", self.state.parse())?,
            debtor_id: self.debtor_id,
            invoice_ids: self.invoice_ids,
            response_id: self.response_id,
            reply_text: self.reply_text,
            reason: self.reason,
            created_at: self.created_at,
            due_at: self.due_at,
            assignee: self.assignee,
            outcome: self
                .outcome
                .map(|outcome| decoded("outcome", outcome.parse()))
                .transpose()?,
            resolved_at: self.resolved_at,
            notes: Vec::new(),
        })
    }
}

const SELECT: &str =
    "SELECT work_item_id, tenant_id, kind, state, debtor_id, invoice_ids, response_id, reply_text,
    reason, created_at, due_at, assignee, outcome, resolved_at FROM work_items";

/// What a listing filters on (`None`: anything).
#[derive(Debug, Clone, Default)]
pub struct WorkFilter {
    pub state: Option<WorkState>,
    pub kind: Option<WorkKind>,
    pub assignee: Option<String>,
    pub due_before: Option<DateTime<Utc>>,
    /// The page starts after this item (due time, id).
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// A tenant's items, soonest due first, with their notes.
pub async fn work_items(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    filter: &WorkFilter,
    limit: i64,
) -> Result<Vec<WorkItemRow>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE tenant_id = $1
           AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR kind = $3)
           AND ($4::text IS NULL OR assignee = $4) AND ($5::timestamptz IS NULL OR due_at < $5)
           AND ($6::timestamptz IS NULL OR (due_at, work_item_id) > ($6, $7))
         ORDER BY due_at, work_item_id LIMIT $8"
    ))
    .bind(tenant_id)
    .bind(filter.state.map(|state| state.as_str()))
    .bind(filter.kind.map(|kind| kind.as_str()))
    .bind(filter.assignee.as_deref())
    .bind(filter.due_before)
    .bind(filter.after.map(|(due_at, _)| due_at))
    .bind(filter.after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    with_notes(tx, rows).await
}

/// One item of a tenant, locked for a change (`None`: the tenant has no such item).
pub async fn lock_work_item(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    work_item_id: Uuid,
) -> Result<Option<WorkItemRow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE tenant_id = $1 AND work_item_id = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(work_item_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(with_notes(tx, row.into_iter().collect()).await?.pop())
}

async fn with_notes(tx: &mut Tx<'_>, rows: Vec<Row>) -> Result<Vec<WorkItemRow>, sqlx::Error> {
    let mut items = rows
        .into_iter()
        .map(Row::into_item)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<Uuid> = items.iter().map(|item| item.work_item_id).collect();
    let notes: Vec<NoteRow> = sqlx::query_as(
        "SELECT work_item_id, author, text, at FROM work_item_notes WHERE work_item_id = ANY($1) ORDER BY seq",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    for note in notes {
        if let Some(item) = items
            .iter_mut()
            .find(|item| item.work_item_id == note.work_item_id)
        {
            item.notes.push(note);
        }
    }
    Ok(items)
}

pub async fn claim_work_item(tx: &mut Tx<'_>, work_item_id: Uuid, assignee: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE work_items SET state = 'claimed', assignee = $2 WHERE work_item_id = $1")
        .bind(work_item_id)
        .bind(assignee)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn add_work_item_note(
    tx: &mut Tx<'_>,
    work_item_id: Uuid,
    author: &str,
    text: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO work_item_notes (work_item_id, author, text) VALUES ($1, $2, $3)")
        .bind(work_item_id)
        .bind(author)
        .bind(text)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn resolve_work_item(
    tx: &mut Tx<'_>,
    work_item_id: Uuid,
    outcome: WorkOutcome,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE work_items SET state = 'resolved', outcome = $2, resolved_at = now(), resolved_by = $3,
             assignee = CASE WHEN assignee = '' THEN $3 ELSE assignee END
         WHERE work_item_id = $1",
    )
    .bind(work_item_id)
    .bind(outcome.as_str())
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The debtor's IANA zone name and their open invoices: what a reply is read against.
pub async fn debtor_zone_and_open_invoices(
    tx: &mut Tx<'_>,
    debtor_id: Uuid,
) -> Result<(String, Vec<Uuid>), sqlx::Error> {
    let zone: String = sqlx::query_scalar("SELECT time_zone FROM debtors WHERE debtor_id = $1")
        .bind(debtor_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok((zone, super::open_invoice_ids(tx, debtor_id).await?))
}

/// The tenant and debtor of an invoice (`None`: no such invoice), for a work item about it.
pub async fn debtor_of_invoice(
    tx: &mut Tx<'_>,
    invoice_id: Uuid,
) -> Result<Option<(String, Uuid)>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, debtor_id FROM invoices WHERE invoice_id = $1")
        .bind(invoice_id)
        .fetch_optional(&mut **tx)
        .await
}
