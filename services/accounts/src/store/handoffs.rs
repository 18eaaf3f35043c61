//! Hand-offs of a case to an agency, a credit bureau or legal, and where each stands.

use chrono::{DateTime, Utc};
use recobro_common::db::decoded;
use uuid::Uuid;

use crate::states::{EscalationKind, HandoffState};

use super::Tx;

/// Records a hand-off once per escalation; returns whether it is new.
pub async fn insert_handoff(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    escalation_id: &str,
    debtor_id: Uuid,
    invoice_id: Uuid,
    target: EscalationKind,
    step: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO handoffs (handoff_id, tenant_id, escalation_id, debtor_id, invoice_id, target, state, step)
         VALUES ($1, $2, $3, $4, $5, $6, 'sent', $7) ON CONFLICT (tenant_id, escalation_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(escalation_id)
    .bind(debtor_id)
    .bind(invoice_id)
    .bind(target.as_str())
    .bind(step)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

#[derive(Debug, Clone)]
pub struct HandoffRow {
    pub handoff_id: Uuid,
    pub tenant_id: String,
    pub escalation_id: String,
    pub debtor_id: Uuid,
    pub invoice_id: Uuid,
    pub target: EscalationKind,
    pub state: HandoffState,
    pub step: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub note: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    handoff_id: Uuid,
    tenant_id: String,
    escalation_id: String,
    debtor_id: Uuid,
    invoice_id: Uuid,
    target: String,
    state: String,
    step: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    updated_by: String,
    note: String,
}

impl Row {
    fn into_handoff(self) -> Result<HandoffRow, sqlx::Error> {
        Ok(HandoffRow {
            handoff_id: self.handoff_id,
            tenant_id: self.tenant_id,
            escalation_id: self.escalation_id,
            debtor_id: self.debtor_id,
            invoice_id: self.invoice_id,
            target: decoded("target", self.target.parse())?,
            state: decoded("state", self.state.parse())?,
            step: self.step,
            created_at: self.created_at,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
            note: self.note,
        })
    }
}

const SELECT: &str =
    "SELECT handoff_id, tenant_id, escalation_id, debtor_id, invoice_id, target, state, step,
    created_at, updated_at, updated_by, note FROM handoffs";

/// A tenant's hand-offs (of one state, when given), oldest first, after `after`.
pub async fn handoffs(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    state: Option<HandoffState>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<HandoffRow>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE tenant_id = $1 AND ($2::text IS NULL OR state = $2)
           AND ($3::timestamptz IS NULL OR (created_at, handoff_id) > ($3, $4))
         ORDER BY created_at, handoff_id LIMIT $5"
    ))
    .bind(tenant_id)
    .bind(state.map(|state| state.as_str()))
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(Row::into_handoff).collect()
}

/// One hand-off of a tenant, locked for a change.
pub async fn lock_handoff(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    handoff_id: Uuid,
) -> Result<Option<HandoffRow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE tenant_id = $1 AND handoff_id = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(handoff_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(Row::into_handoff).transpose()
}

pub async fn set_handoff_state(
    tx: &mut Tx<'_>,
    handoff_id: Uuid,
    state: HandoffState,
    by: &str,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE handoffs SET state = $2, updated_by = $3, note = $4, updated_at = now() WHERE handoff_id = $1")
        .bind(handoff_id)
        .bind(state.as_str())
        .bind(by)
        .bind(note)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
