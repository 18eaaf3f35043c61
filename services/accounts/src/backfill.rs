//! Records for what was stored before accounts published them. Channels decides only on
//! debtors' records (`DebtorChanged`) and tenants' roles (`TenantChanged`); a debtor or tenant
//! stored before those existed has none, so channels would suppress every message to them. At
//! start, accounts publishes each of them once, in small transactions through the outbox.
//! Replicas starting together share the work (`FOR UPDATE SKIP LOCKED`), and a run cut short
//! is finished by the next start.

use std::collections::HashMap;

use sqlx::PgPool;

use crate::events::{self, DebtorChange};
use crate::states::TenantRole;
use crate::store;

/// Tenants or debtors published per transaction.
const CHUNK: i64 = 500;

/// What one run published.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Backfilled {
    pub tenants: usize,
    pub debtors: usize,
}

/// Publishes every tenant's role and every debtor's record that was never published.
pub async fn publish_missing_records(pool: &PgPool, topic: &str) -> Result<Backfilled, sqlx::Error> {
    let mut done = Backfilled::default();
    loop {
        let mut tx = pool.begin().await?;
        let tenants = store::unpublished_tenants(&mut tx, CHUNK).await?;
        if tenants.is_empty() {
            break;
        }
        for (tenant_id, role) in &tenants {
            // The table's CHECK admits only known roles; one it did not would stop here, loudly.
            let role: TenantRole = role.parse().map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
            events::publish_tenant_change(&mut tx, tenant_id, role, topic).await?;
        }
        let ids: Vec<String> = tenants.into_iter().map(|(id, _)| id).collect();
        store::mark_tenants_published(&mut tx, &ids).await?;
        tx.commit().await?;
        done.tenants += ids.len();
    }
    loop {
        let mut tx = pool.begin().await?;
        let debtors = store::unpublished_debtors(&mut tx, CHUNK).await?;
        if debtors.is_empty() {
            break;
        }
        events::publish_debtor_changes(&mut tx, &debtors, DebtorChange::Backfill, topic, &HashMap::new())
            .await?;
        tx.commit().await?;
        done.debtors += debtors.len();
    }
    if done != Backfilled::default() {
        tracing::info!(
            tenants = done.tenants,
            debtors = done.debtors,
            "published the records of tenants and debtors stored before records were published"
        );
    }
    Ok(done)
}
