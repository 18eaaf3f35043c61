//! SQL for the ledger. Every query is scoped by tenant. Batches use `UNNEST` so a few statements
//! carry hundreds of ERP events. One file per part of the ledger (debtors, consent, legal
//! holds, invoices, cases, the portfolio the KPIs read); here, what they share: tenants, event
//! ids, revisions, the outbox, and reading a state column strictly.
//!
//! A batch's rows are looked up with `IN (SELECT unnest($1::uuid[]))`, not `= ANY($1)`: a plan
//! PostgreSQL cached while a table was small scans it and compares every row with every id of
//! the array, one by one (thousands by thousands per ERP batch); a join on the unnested ids
//! stays linear whatever the plan (docs/benchmarks.md, "Speed").

mod cases;
mod consent;
mod debtor_view;
mod debtors;
mod handoffs;
mod holds;
mod invoices;
mod portfolio;
mod work_items;

pub use cases::*;
pub use consent::*;
pub use debtor_view::*;
pub use debtors::*;
pub use handoffs::*;
pub use holds::*;
pub use invoices::*;
pub use portfolio::*;
pub use work_items::*;

use recobro_common::outbox::Queued;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::states::TenantRole;

pub type Tx<'a> = Transaction<'a, Postgres>;

/// A read-only transaction that sees one snapshot: a view built from several queries never
/// mixes rows from before and after a change that commits while it is read. (A view read in
/// one statement, as `debtor_view`, needs none: a statement sees one snapshot.)
pub async fn snapshot(pool: &PgPool) -> Result<Tx<'static>, sqlx::Error> {
    pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
}

/// The event ids not seen before; the others were applied already and have no second effect.
pub async fn first_time_seen(
    tx: &mut Tx<'_>,
    events: &[(String, String)],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let tenants: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    let ids: Vec<&str> = events.iter().map(|(_, e)| e.as_str()).collect();
    sqlx::query_as(
        "INSERT INTO ingested_events (tenant_id, event_id) SELECT * FROM UNNEST($1::text[], $2::text[])
         ON CONFLICT DO NOTHING RETURNING tenant_id, event_id",
    )
    .bind(&tenants)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await
}

/// Which of `tenant_ids` exist. Tenants are created only with `UpsertTenant`, never by an event.
pub async fn known_tenants(pool: &PgPool, tenant_ids: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE tenant_id = ANY($1::text[])")
        .bind(tenant_ids)
        .fetch_all(pool)
        .await
}

pub async fn tenant_exists(pool: &PgPool, tenant_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(String,)> = sqlx::query_as("SELECT tenant_id FROM tenants WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

pub async fn upsert_tenant(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    name: &str,
    role: TenantRole,
) -> Result<(), sqlx::Error> {
    // Its role is published in the same transaction (`events::publish_tenant_change`).
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, role, role_published) VALUES ($1, $2, $3, true)
         ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role, role_published = true",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(role.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Up to `limit` tenants whose role was never published, locked for this transaction (other
/// replicas skip them), with their roles as stored.
pub async fn unpublished_tenants(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, role FROM tenants WHERE NOT role_published
         ORDER BY tenant_id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

pub async fn mark_tenants_published(tx: &mut Tx<'_>, tenant_ids: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET role_published = true WHERE tenant_id = ANY($1::text[])")
        .bind(tenant_ids)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Up to `limit` debtors whose record was never published (revision 0: every publication bumps
/// it), locked for this transaction.
pub async fn unpublished_debtors(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT debtor_id FROM debtors WHERE revision = 0
         ORDER BY debtor_id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// A new revision of each invoice, for a change the batch upsert did not already count.
pub async fn bump_revisions(tx: &mut Tx<'_>, invoice_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invoices SET revision = revision + 1, updated_at = now() WHERE invoice_id IN (SELECT unnest($1::uuid[]))")
        .bind(invoice_ids)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Queues already-encoded events in the caller's transaction: they are published if and only
/// if the change they describe commits.
pub async fn enqueue_events(tx: &mut Tx<'_>, queued: &[Queued]) -> Result<(), sqlx::Error> {
    recobro_common::outbox::enqueue_many(tx, queued).await
}
