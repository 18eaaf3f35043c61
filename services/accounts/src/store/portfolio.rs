//! A tenant's receivables, settlements and promises, as the KPIs read them.

use std::collections::HashMap;

use chrono::NaiveDate;
use recobro_common::db::decoded;
use sqlx::PgPool;
use uuid::Uuid;

use crate::states::InvoiceStatus;

/// An invoice as the KPIs read it.
#[derive(sqlx::FromRow)]
struct ReceivableRow {
    invoice_id: Uuid,
    currency: String,
    amount_minor: i64,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    status: String,
    segment: String,
}

/// Everything the KPIs need for a tenant (and segment): receivables with their settlements,
/// and promises with their outcome.
pub async fn portfolio(
    pool: &PgPool,
    tenant_id: &str,
    segment: Option<&str>,
) -> Result<(Vec<crate::kpi::Receivable>, Vec<crate::kpi::PromiseOutcome>), sqlx::Error> {
    let rows: Vec<ReceivableRow> = sqlx::query_as(
        "SELECT i.invoice_id, i.currency, i.amount_minor, i.issue_date, i.due_date, i.status, d.segment
         FROM invoices i JOIN debtors d ON d.debtor_id = i.debtor_id
         WHERE i.tenant_id = $1 AND ($2::text IS NULL OR d.segment = $2)",
    )
    .bind(tenant_id)
    .bind(segment)
    .fetch_all(pool)
    .await?;
    let settlements: Vec<(Uuid, String, i64, NaiveDate)> = sqlx::query_as(
        "SELECT s.invoice_id, s.kind, s.amount_minor - s.reversed_minor, s.on_date FROM settlements s
         WHERE s.tenant_id = $1 AND s.amount_minor > s.reversed_minor",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    let mut by_invoice: HashMap<Uuid, Vec<crate::kpi::Settlement>> = HashMap::new();
    for (invoice_id, kind, amount_minor, on) in settlements {
        by_invoice
            .entry(invoice_id)
            .or_default()
            .push(crate::kpi::Settlement {
                on,
                amount_minor,
                kind: decoded("kind", kind.parse())?,
            });
    }
    let receivables = rows
        .into_iter()
        .map(|row| {
            let status: InvoiceStatus = decoded("status", row.status.parse())?;
            Ok(crate::kpi::Receivable {
                currency: row.currency,
                amount_minor: row.amount_minor,
                issue_date: row.issue_date,
                due_date: row.due_date,
                cancelled: status == InvoiceStatus::Cancelled,
                segment: row.segment,
                settlements: by_invoice.remove(&row.invoice_id).unwrap_or_default(),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let promises: Vec<(NaiveDate, String)> = sqlx::query_as(
        "SELECT p.promised_date, p.state FROM promises p
         JOIN invoices i ON i.invoice_id = p.invoice_id JOIN debtors d ON d.debtor_id = i.debtor_id
         WHERE p.tenant_id = $1 AND ($2::text IS NULL OR d.segment = $2)",
    )
    .bind(tenant_id)
    .bind(segment)
    .fetch_all(pool)
    .await?;
    let promises = promises
        .into_iter()
        .map(|(promised_date, state)| {
            Ok(crate::kpi::PromiseOutcome {
                promised_date,
                state: decoded("state", state.parse())?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((receivables, promises))
}
