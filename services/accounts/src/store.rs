//! SQL for the ledger. Every query is scoped by tenant.

use chrono::NaiveDate;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{Debtor, Invoice, InvoiceEvent};

/// Records the event id; `false` means it was applied before and must have no second effect.
pub async fn first_time_seen(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO ingested_events (tenant_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(event_id)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn upsert_debtor(tx: &mut Transaction<'_, Postgres>, debtor: &Debtor) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(&debtor.tenant_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO debtors (debtor_id, tenant_id, external_id, name, kind, time_zone, locale, country, email, phone, region)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (debtor_id) DO UPDATE SET
            name = EXCLUDED.name, kind = EXCLUDED.kind, time_zone = EXCLUDED.time_zone,
            locale = EXCLUDED.locale, country = EXCLUDED.country, email = EXCLUDED.email,
            phone = EXCLUDED.phone, region = EXCLUDED.region, updated_at = now()",
    )
    .bind(debtor.debtor_id)
    .bind(&debtor.tenant_id)
    .bind(&debtor.external_id)
    .bind(&debtor.name)
    .bind(debtor.kind)
    .bind(&debtor.time_zone)
    .bind(&debtor.locale)
    .bind(&debtor.country)
    .bind(&debtor.email)
    .bind(&debtor.phone)
    .bind(&debtor.region)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the invoice unless the stored version is as new or newer. Returns whether it changed.
pub async fn apply_invoice(
    tx: &mut Transaction<'_, Postgres>,
    invoice: &Invoice,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, external_id, number, amount_minor,
                               currency, issue_date, due_date, status, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (invoice_id) DO UPDATE SET
            debtor_id = EXCLUDED.debtor_id, number = EXCLUDED.number,
            amount_minor = EXCLUDED.amount_minor, currency = EXCLUDED.currency,
            issue_date = EXCLUDED.issue_date, due_date = EXCLUDED.due_date,
            status = EXCLUDED.status, version = EXCLUDED.version, updated_at = now()
         WHERE invoices.version < EXCLUDED.version",
    )
    .bind(invoice.invoice_id)
    .bind(&invoice.tenant_id)
    .bind(invoice.debtor_id)
    .bind(&invoice.external_id)
    .bind(&invoice.number)
    .bind(invoice.amount_minor)
    .bind(&invoice.currency)
    .bind(invoice.issue_date)
    .bind(invoice.due_date)
    .bind(invoice.status)
    .bind(invoice.version)
    .execute(&mut **tx)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// Stores an ERP event; returns whether anything changed.
pub async fn ingest(tx: &mut Transaction<'_, Postgres>, event: &InvoiceEvent) -> Result<bool, sqlx::Error> {
    if !first_time_seen(tx, &event.tenant_id, &event.event_id).await? {
        return Ok(false);
    }
    upsert_debtor(tx, &event.debtor).await?;
    apply_invoice(tx, &event.invoice).await
}

type DebtorRow = (
    Uuid,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub async fn debtor(pool: &PgPool, tenant_id: &str, debtor_id: Uuid) -> Result<Option<Debtor>, sqlx::Error> {
    let row: Option<DebtorRow> = sqlx::query_as(
        "SELECT debtor_id, tenant_id, external_id, name, kind, time_zone, locale, country, email, phone, region
         FROM debtors WHERE tenant_id = $1 AND debtor_id = $2",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Debtor {
        debtor_id: r.0,
        tenant_id: r.1,
        external_id: r.2,
        name: r.3,
        kind: if r.4 == "company" { "company" } else { "consumer" },
        time_zone: r.5,
        locale: r.6,
        country: r.7,
        email: r.8,
        phone: r.9,
        region: r.10,
    }))
}

type InvoiceRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    i64,
    String,
    NaiveDate,
    NaiveDate,
    String,
    i64,
);

pub async fn invoices(pool: &PgPool, tenant_id: &str, debtor_id: Uuid) -> Result<Vec<Invoice>, sqlx::Error> {
    let rows: Vec<InvoiceRow> = sqlx::query_as(
        "SELECT invoice_id, debtor_id, tenant_id, external_id, number, amount_minor, currency,
                issue_date, due_date, status, version
         FROM invoices WHERE tenant_id = $1 AND debtor_id = $2 ORDER BY due_date, number",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Invoice {
            invoice_id: r.0,
            debtor_id: r.1,
            tenant_id: r.2,
            external_id: r.3,
            number: r.4,
            amount_minor: r.5,
            currency: r.6,
            issue_date: r.7,
            due_date: r.8,
            status: match r.9.as_str() {
                "paid" => "paid",
                "cancelled" => "cancelled",
                _ => "open",
            },
            version: r.10,
        })
        .collect())
}
