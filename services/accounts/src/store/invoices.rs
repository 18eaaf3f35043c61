//! Invoices, what settles them (payments, credit notes, write-offs) and their instalments.

use std::collections::HashMap;

use chrono::NaiveDate;
use recobro_common::db::decoded;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Instalment, Invoice, InvoiceState};
use crate::states::SettlementKind;

use super::Tx;

/// Writes invoices unless what is stored is as new or newer; returns the ids that changed. An
/// invoice already settled stays paid when the ERP resends it open.
pub async fn upsert_invoices(tx: &mut Tx<'_>, invoices: &[&Invoice]) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut latest: HashMap<Uuid, &Invoice> = HashMap::new();
    for invoice in invoices {
        let keep = latest
            .get(&invoice.invoice_id)
            .is_none_or(|held| held.version < invoice.version);
        if keep {
            latest.insert(invoice.invoice_id, invoice);
        }
    }
    let invoices: Vec<&Invoice> = latest.into_values().collect();
    let changed: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, external_id, number, amount_minor, currency,
                               issue_date, due_date, status, version)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::int8[], $7::text[],
                              $8::date[], $9::date[], $10::text[], $11::int8[])
         ON CONFLICT (invoice_id) DO UPDATE SET
            debtor_id = EXCLUDED.debtor_id, number = EXCLUDED.number, amount_minor = EXCLUDED.amount_minor,
            currency = EXCLUDED.currency, issue_date = EXCLUDED.issue_date, due_date = EXCLUDED.due_date,
            status = CASE WHEN EXCLUDED.status = 'open' AND invoices.settled_minor >= EXCLUDED.amount_minor
                          THEN 'paid' ELSE EXCLUDED.status END,
            version = EXCLUDED.version, revision = invoices.revision + 1, updated_at = now()
         WHERE invoices.version < EXCLUDED.version
         RETURNING invoice_id",
    )
    .bind(invoices.iter().map(|i| i.invoice_id).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.tenant_id.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.debtor_id).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.external_id.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.number.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.amount_minor).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.currency.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.issue_date).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.due_date).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.status.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.version).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    Ok(changed.into_iter().map(|(id,)| id).collect())
}

/// A payment, credit note or write-off to record.
#[derive(Debug, Clone, Copy)]
pub struct NewSettlement<'a> {
    pub kind: SettlementKind,
    pub external_id: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub on: NaiveDate,
}

/// Records a settlement (once per external id) and what it leaves owing; the invoice closes as
/// paid when nothing is left. Returns false when this settlement was recorded before.
pub async fn settle(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    invoice_id: Uuid,
    s: &NewSettlement<'_>,
) -> Result<bool, sqlx::Error> {
    let NewSettlement {
        kind,
        external_id,
        amount_minor,
        currency,
        on,
    } = *s;
    let inserted = sqlx::query(
        "INSERT INTO settlements (settlement_id, tenant_id, invoice_id, kind, external_id, amount_minor, currency, on_date)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, kind, external_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(invoice_id)
    .bind(kind.as_str())
    .bind(external_id)
    .bind(amount_minor)
    .bind(currency)
    .bind(on)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE invoices SET settled_minor = settled_minor + $2,
            status = CASE WHEN status = 'open' AND settled_minor + $2 >= amount_minor THEN 'paid' ELSE status END,
            -- Paid in full: a claimed-paid hold has nothing left to wait for.
            claimed_paid_until = CASE WHEN settled_minor + $2 >= amount_minor THEN NULL ELSE claimed_paid_until END,
            -- A payment answers a claim nobody confirmed: reminders stop acknowledging it.
            claim_unconfirmed = false
         WHERE invoice_id = $1",
    )
    .bind(invoice_id)
    .bind(amount_minor)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// Whether a settlement of this kind and external id is recorded for the tenant.
pub async fn settlement_exists(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    kind: SettlementKind,
    external_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM settlements WHERE tenant_id = $1 AND kind = $2 AND external_id = $3)",
    )
    .bind(tenant_id)
    .bind(kind.as_str())
    .bind(external_id)
    .fetch_one(&mut **tx)
    .await
}

/// Whether this reversal (by its external id) was applied already.
pub async fn reversal_exists(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    external_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM settlement_reversals WHERE tenant_id = $1 AND external_id = $2)",
    )
    .bind(tenant_id)
    .bind(external_id)
    .fetch_one(&mut **tx)
    .await
}

/// What a reversal did: the invoice it reopened (or reduced) and by how much.
pub struct Reversed {
    pub invoice_id: Uuid,
    pub amount_minor: i64,
}

/// Gives back `amount_minor` of the payment settled as `payment_external_id` (at most what is
/// left of it), once per `reversal_external_id`: the invoice owes it again, and a paid invoice
/// reopens. `None` when that payment was never settled, or this reversal was applied already.
pub async fn reverse_payment(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    payment_external_id: &str,
    reversal_external_id: &str,
    amount_minor: i64,
) -> Result<Option<Reversed>, sqlx::Error> {
    let settlement: Option<(Uuid, Uuid, i64)> = sqlx::query_as(
        "SELECT settlement_id, invoice_id, amount_minor - reversed_minor FROM settlements
         WHERE tenant_id = $1 AND kind = 'payment' AND external_id = $2 FOR UPDATE",
    )
    .bind(tenant_id)
    .bind(payment_external_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((settlement_id, invoice_id, left)) = settlement else {
        return Ok(None);
    };
    let amount = amount_minor.min(left);
    if amount <= 0 {
        return Ok(None);
    }
    let inserted = sqlx::query(
        "INSERT INTO settlement_reversals (tenant_id, external_id, settlement_id, amount_minor)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(reversal_external_id)
    .bind(settlement_id)
    .bind(amount)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query("UPDATE settlements SET reversed_minor = reversed_minor + $2 WHERE settlement_id = $1")
        .bind(settlement_id)
        .bind(amount)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE invoices SET settled_minor = settled_minor - $2,
            status = CASE WHEN status = 'paid' AND settled_minor - $2 < amount_minor THEN 'open' ELSE status END
         WHERE invoice_id = $1",
    )
    .bind(invoice_id)
    .bind(amount)
    .execute(&mut **tx)
    .await?;
    Ok(Some(Reversed {
        invoice_id,
        amount_minor: amount,
    }))
}

/// An invoice as `STATE_SELECT` reads it.
#[derive(sqlx::FromRow)]
struct StateRow {
    invoice_id: Uuid,
    debtor_id: Uuid,
    tenant_id: String,
    external_id: String,
    number: String,
    amount_minor: i64,
    currency: String,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    status: String,
    version: i64,
    revision: i64,
    settled_minor: i64,
    plan_id: Option<Uuid>,
    disputed: bool,
    promised_date: Option<NaiveDate>,
    claimed_paid_until: Option<NaiveDate>,
    claim_unconfirmed: bool,
}

const STATE_SELECT: &str =
    "SELECT i.invoice_id, i.debtor_id, i.tenant_id, i.external_id, i.number, i.amount_minor, i.currency,
        i.issue_date, i.due_date, i.status, i.version, i.revision, i.settled_minor, i.plan_id,
        i.claimed_paid_until, i.claim_unconfirmed,
        EXISTS (SELECT 1 FROM disputes x WHERE x.invoice_id = i.invoice_id AND x.resolved_at IS NULL) AS disputed,
        (SELECT min(p.promised_date) FROM promises p WHERE p.invoice_id = i.invoice_id AND p.state = 'open')
            AS promised_date
     FROM invoices i";

impl StateRow {
    fn into_state(self, segment: String) -> Result<InvoiceState, sqlx::Error> {
        Ok(InvoiceState {
            invoice: Invoice {
                invoice_id: self.invoice_id,
                debtor_id: self.debtor_id,
                tenant_id: self.tenant_id,
                external_id: self.external_id,
                number: self.number,
                amount_minor: self.amount_minor,
                currency: self.currency,
                issue_date: self.issue_date,
                due_date: self.due_date,
                status: decoded("status", self.status.parse())?,
                version: self.version,
            },
            revision: self.revision,
            settled_minor: self.settled_minor,
            plan_id: self.plan_id,
            disputed: self.disputed,
            promised_date: self.promised_date,
            claimed_paid_until: self.claimed_paid_until,
            claim_unconfirmed: self.claim_unconfirmed,
            segment,
        })
    }
}

/// Invoices by id (of one tenant, when given).
pub async fn invoice_states(
    executor: &mut Tx<'_>,
    tenant_id: Option<&str>,
    ids: &[Uuid],
) -> Result<Vec<InvoiceState>, sqlx::Error> {
    let rows: Vec<StateRow> = sqlx::query_as(&format!(
        "{STATE_SELECT} WHERE i.invoice_id IN (SELECT unnest($1::uuid[])) AND ($2::text IS NULL OR i.tenant_id = $2) ORDER BY i.invoice_id"
    ))
    .bind(ids)
    .bind(tenant_id)
    .fetch_all(&mut **executor)
    .await?;
    rows.into_iter()
        .map(|row| row.into_state(String::new()))
        .collect()
}

/// Locks one invoice of a tenant for a change; `None` if the tenant has no such invoice.
pub async fn lock_invoice(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    invoice_id: Uuid,
) -> Result<Option<InvoiceState>, sqlx::Error> {
    let locked: Option<(Uuid,)> =
        sqlx::query_as("SELECT invoice_id FROM invoices WHERE tenant_id = $1 AND invoice_id = $2 FOR UPDATE")
            .bind(tenant_id)
            .bind(invoice_id)
            .fetch_optional(&mut **tx)
            .await?;
    if locked.is_none() {
        return Ok(None);
    }
    Ok(invoice_states(tx, Some(tenant_id), &[invoice_id])
        .await?
        .into_iter()
        .next())
}

/// Where a page of a debtor's invoices starts: after this (due date, number, id).
pub type InvoiceKey = (NaiveDate, String, Uuid);

/// Up to `limit` of a debtor's invoices by due date, after `after`.
pub async fn invoices_page(
    conn: &mut PgConnection,
    tenant_id: &str,
    debtor_id: Uuid,
    after: Option<&InvoiceKey>,
    limit: i64,
) -> Result<Vec<InvoiceState>, sqlx::Error> {
    let rows: Vec<StateRow> = sqlx::query_as(&format!(
        "{STATE_SELECT} WHERE i.tenant_id = $1 AND i.debtor_id = $2
           AND ($3::date IS NULL OR (i.due_date, i.number, i.invoice_id) > ($3, $4, $5))
         ORDER BY i.due_date, i.number, i.invoice_id LIMIT $6"
    ))
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(after.map(|key| key.0))
    .bind(after.map(|key| key.1.as_str()))
    .bind(after.map(|key| key.2))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| row.into_state(String::new()))
        .collect()
}

/// An invoice's settlements as the KPI code reads them.
pub async fn settlements_of(
    tx: &mut Tx<'_>,
    invoice_id: Uuid,
) -> Result<Vec<crate::kpi::Settlement>, sqlx::Error> {
    let rows: Vec<(String, i64, NaiveDate)> = sqlx::query_as(
        // A reversed payment counts for what was kept of it.
        "SELECT kind, amount_minor - reversed_minor, on_date FROM settlements
         WHERE invoice_id = $1 AND amount_minor > reversed_minor ORDER BY on_date",
    )
    .bind(invoice_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(kind, amount_minor, on)| {
            Ok(crate::kpi::Settlement {
                on,
                amount_minor,
                kind: decoded("kind", kind.parse())?,
            })
        })
        .collect()
}

/// Each plan's instalments, in order.
pub async fn instalments_of(
    tx: &mut Tx<'_>,
    plan_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Instalment>>, sqlx::Error> {
    let mut by_plan: HashMap<Uuid, Vec<Instalment>> = HashMap::new();
    if plan_ids.is_empty() {
        return Ok(by_plan);
    }
    let rows: Vec<(Uuid, NaiveDate, i64, String)> = sqlx::query_as(
        "SELECT plan_id, due_date, amount_minor, currency FROM plan_instalments WHERE plan_id IN (SELECT unnest($1::uuid[])) ORDER BY plan_id, seq",
    )
    .bind(plan_ids)
    .fetch_all(&mut **tx)
    .await?;
    for (plan_id, due_date, amount_minor, currency) in rows {
        by_plan.entry(plan_id).or_default().push(Instalment {
            due_date,
            amount_minor,
            currency,
        });
    }
    Ok(by_plan)
}
