//! What pauses or replaces a ladder: promises to pay, disputes, payment plans.

use chrono::NaiveDate;
use recobro_proto::v1 as pb;
use uuid::Uuid;

use crate::states::PromiseState;

use super::Tx;

/// A new open promise; an earlier open promise on the invoice is replaced (cancelled).
pub async fn insert_promise(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    invoice_id: Uuid,
    promised_date: NaiveDate,
    amount: &pb::Money,
    grace_days: i32,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query("UPDATE promises SET state = 'cancelled', decided_at = now() WHERE invoice_id = $1 AND state = 'open'")
        .bind(invoice_id)
        .execute(&mut **tx)
        .await?;
    let promise_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO promises (promise_id, tenant_id, invoice_id, promised_date, amount_minor, currency, made_on, grace_days, state)
         VALUES ($1, $2, $3, $4, $5, $6, CURRENT_DATE, $7, 'open')",
    )
    .bind(promise_id)
    .bind(tenant_id)
    .bind(invoice_id)
    .bind(promised_date)
    .bind(amount.amount_minor)
    .bind(&amount.currency)
    .bind(grace_days)
    .execute(&mut **tx)
    .await?;
    Ok(promise_id)
}

/// An open promise to judge.
#[derive(Debug, sqlx::FromRow)]
pub struct OpenPromise {
    pub promise_id: Uuid,
    pub invoice_id: Uuid,
    pub made_on: NaiveDate,
    pub promised_date: NaiveDate,
    pub amount_minor: i64,
    pub grace_days: i32,
}

/// Open promises whose date has come, locked so two replicas never judge the same one.
pub async fn promises_to_judge(
    tx: &mut Tx<'_>,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<OpenPromise>, sqlx::Error> {
    sqlx::query_as(
        "SELECT promise_id, invoice_id, made_on, promised_date, amount_minor, grace_days FROM promises
         WHERE state = 'open' AND promised_date <= $1 ORDER BY promised_date LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

pub async fn decide_promise(
    tx: &mut Tx<'_>,
    promise_id: Uuid,
    state: PromiseState,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE promises SET state = $2, decided_at = now() WHERE promise_id = $1")
        .bind(promise_id)
        .bind(state.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Opens a dispute; `None` when the invoice already has an open one.
pub async fn open_dispute(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    invoice_id: Uuid,
    reason: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let dispute_id = Uuid::new_v4();
    let inserted = sqlx::query(
        "INSERT INTO disputes (dispute_id, tenant_id, invoice_id, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (invoice_id) WHERE resolved_at IS NULL DO NOTHING",
    )
    .bind(dispute_id)
    .bind(tenant_id)
    .bind(invoice_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok((inserted.rows_affected() == 1).then_some(dispute_id))
}

/// Resolves an open dispute of the tenant; returns (invoice, reason) or `None`.
pub async fn resolve_dispute(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    dispute_id: Uuid,
    resolution: &str,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE disputes SET resolved_at = now(), resolution = $3
         WHERE tenant_id = $1 AND dispute_id = $2 AND resolved_at IS NULL RETURNING invoice_id, reason",
    )
    .bind(tenant_id)
    .bind(dispute_id)
    .bind(resolution)
    .fetch_optional(&mut **tx)
    .await
}

/// Open disputes of these invoices, resolved with `resolution`; returns the invoices.
pub async fn resolve_disputes_of(
    tx: &mut Tx<'_>,
    invoice_ids: &[Uuid],
    resolution: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE disputes SET resolved_at = now(), resolution = $2
         WHERE invoice_id = ANY($1) AND resolved_at IS NULL RETURNING invoice_id",
    )
    .bind(invoice_ids)
    .bind(resolution)
    .fetch_all(&mut **tx)
    .await
}

pub async fn create_plan(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    debtor_id: Uuid,
    invoice_ids: &[Uuid],
    instalments: &[(NaiveDate, i64, String)],
) -> Result<Uuid, sqlx::Error> {
    let plan_id = Uuid::new_v4();
    sqlx::query("INSERT INTO payment_plans (plan_id, tenant_id, debtor_id) VALUES ($1, $2, $3)")
        .bind(plan_id)
        .bind(tenant_id)
        .bind(debtor_id)
        .execute(&mut **tx)
        .await?;
    for (seq, (due_date, amount_minor, currency)) in instalments.iter().enumerate() {
        sqlx::query("INSERT INTO plan_instalments (plan_id, seq, due_date, amount_minor, currency) VALUES ($1, $2, $3, $4, $5)")
            .bind(plan_id)
            .bind(seq as i32)
            .bind(due_date)
            .bind(amount_minor)
            .bind(currency)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("UPDATE invoices SET plan_id = $2 WHERE invoice_id = ANY($1)")
        .bind(invoice_ids)
        .bind(plan_id)
        .execute(&mut **tx)
        .await?;
    Ok(plan_id)
}
