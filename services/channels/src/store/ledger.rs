//! Channels' view of the ledger: each debtor's latest contact record, each tenant's role and
//! each invoice's latest snapshot, as accounts published them; the opt-outs channels itself
//! received; and how far the view has read accounts' topic.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message as _;
use recobro_proto::v1 as pb;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// One change to the view, as read from accounts.events.v1.
pub enum LedgerChange {
    Debtor {
        tenant_id: String,
        debtor_id: Uuid,
        revision: i64,
        time_zone: String,
        country: String,
        region: String,
        snapshot: pb::DebtorChanged,
    },
    Tenant {
        tenant_id: String,
        role: &'static str,
    },
    Invoice {
        tenant_id: String,
        invoice_id: Uuid,
        debtor_id: Uuid,
        revision: i64,
        snapshot: pb::Invoice,
    },
}

/// Applies a batch of changes and the offsets it reached, in one transaction: a snapshot only
/// replaces an older one (revisions), so redelivery and reordering change nothing.
pub async fn apply_ledger(
    pool: &PgPool,
    changes: &[LedgerChange],
    offsets: &[(String, i32, i64)],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for change in changes {
        apply_one(&mut tx, change).await?;
    }
    sqlx::query(
        "INSERT INTO ledger_offsets (topic, partition, next_offset)
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[])
         ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset
         WHERE ledger_offsets.next_offset < EXCLUDED.next_offset",
    )
    .bind(offsets.iter().map(|o| o.0.as_str()).collect::<Vec<_>>())
    .bind(offsets.iter().map(|o| o.1).collect::<Vec<_>>())
    .bind(offsets.iter().map(|o| o.2).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

async fn apply_one(tx: &mut Transaction<'_, Postgres>, change: &LedgerChange) -> Result<(), sqlx::Error> {
    match change {
        LedgerChange::Debtor {
            tenant_id,
            debtor_id,
            revision,
            time_zone,
            country,
            region,
            snapshot,
        } => {
            sqlx::query(
                "INSERT INTO ledger_debtors (tenant_id, debtor_id, revision, time_zone, country, region, snapshot)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id, debtor_id) DO UPDATE SET revision = EXCLUDED.revision,
                    time_zone = EXCLUDED.time_zone, country = EXCLUDED.country, region = EXCLUDED.region,
                    snapshot = EXCLUDED.snapshot, updated_at = now()
                 WHERE ledger_debtors.revision < EXCLUDED.revision",
            )
            .bind(tenant_id)
            .bind(debtor_id)
            .bind(revision)
            .bind(time_zone)
            .bind(country)
            .bind(region)
            .bind(snapshot.encode_to_vec())
            .execute(&mut **tx)
            .await?;
        }
        LedgerChange::Tenant { tenant_id, role } => {
            sqlx::query(
                "INSERT INTO ledger_tenants (tenant_id, role) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()",
            )
            .bind(tenant_id)
            .bind(role)
            .execute(&mut **tx)
            .await?;
        }
        LedgerChange::Invoice {
            tenant_id,
            invoice_id,
            debtor_id,
            revision,
            snapshot,
        } => {
            sqlx::query(
                "INSERT INTO ledger_invoices (tenant_id, invoice_id, debtor_id, revision, snapshot)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, invoice_id) DO UPDATE SET revision = EXCLUDED.revision,
                    debtor_id = EXCLUDED.debtor_id, snapshot = EXCLUDED.snapshot
                 WHERE ledger_invoices.revision < EXCLUDED.revision",
            )
            .bind(tenant_id)
            .bind(invoice_id)
            .bind(debtor_id)
            .bind(revision)
            .bind(snapshot.encode_to_vec())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// How far the view has read each partition of `topic` (the next offset it will read).
pub async fn ledger_offsets(pool: &PgPool, topic: &str) -> Result<HashMap<i32, i64>, sqlx::Error> {
    let rows: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, next_offset FROM ledger_offsets WHERE topic = $1")
            .bind(topic)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The latest contact records of the (tenant, debtor) pairs among `keys` the view holds.
pub async fn debtors_among(
    pool: &PgPool,
    keys: &[(String, Uuid)],
) -> Result<HashMap<(String, Uuid), pb::DebtorChanged>, sqlx::Error> {
    let rows: Vec<(String, Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT d.tenant_id, d.debtor_id, d.snapshot
         FROM ledger_debtors d JOIN UNNEST($1::text[], $2::uuid[]) AS k(tenant_id, debtor_id)
           ON d.tenant_id = k.tenant_id AND d.debtor_id = k.debtor_id",
    )
    .bind(keys.iter().map(|k| k.0.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for (tenant_id, debtor_id, snapshot) in rows {
        let snapshot = pb::DebtorChanged::decode(snapshot.as_slice())
            .map_err(|err| sqlx::Error::Decode(format!("ledger_debtors.snapshot: {err}").into()))?;
        found.insert((tenant_id, debtor_id), snapshot);
    }
    Ok(found)
}

/// (time zone, country, region) of a debtor the view holds, for the contact-budget view.
pub async fn debtor_place(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT time_zone, country, region FROM ledger_debtors WHERE tenant_id = $1 AND debtor_id = $2",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_optional(pool)
    .await
}

/// The roles ("creditor" or "agency") of the tenants among `tenants` the view holds.
pub async fn tenant_roles(pool: &PgPool, tenants: &[String]) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT tenant_id, role FROM ledger_tenants WHERE tenant_id = ANY($1)")
            .bind(tenants)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// An invoice of a tenant's debtor, as accounts last published it.
pub async fn invoice(
    pool: &PgPool,
    tenant_id: &str,
    invoice_id: Uuid,
) -> Result<Option<(Uuid, pb::Invoice)>, sqlx::Error> {
    let row: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT debtor_id, snapshot FROM ledger_invoices WHERE tenant_id = $1 AND invoice_id = $2",
    )
    .bind(tenant_id)
    .bind(invoice_id)
    .fetch_optional(pool)
    .await?;
    row.map(|(debtor_id, snapshot)| {
        pb::Invoice::decode(snapshot.as_slice())
            .map(|invoice| (debtor_id, invoice))
            .map_err(|err| sqlx::Error::Decode(format!("ledger_invoices.snapshot: {err}").into()))
    })
    .transpose()
}

/// The invoices among `keys` (tenant, invoice) the view holds, as accounts last published them:
/// what a statement's invoices are checked against right before it goes.
pub async fn invoices_among(
    pool: &PgPool,
    keys: &[(String, Uuid)],
) -> Result<HashMap<(String, Uuid), pb::Invoice>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT i.tenant_id, i.invoice_id, i.snapshot
         FROM ledger_invoices i JOIN UNNEST($1::text[], $2::uuid[]) AS k(tenant_id, invoice_id)
           ON i.tenant_id = k.tenant_id AND i.invoice_id = k.invoice_id",
    )
    .bind(keys.iter().map(|k| k.0.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(tenant_id, invoice_id, snapshot)| {
            pb::Invoice::decode(snapshot.as_slice())
                .map(|invoice| ((tenant_id, invoice_id), invoice))
                .map_err(|err| sqlx::Error::Decode(format!("ledger_invoices.snapshot: {err}").into()))
        })
        .collect()
}

/// When and why channels received an opt-out for each (tenant, point) among `keys` that has one.
pub async fn withdrawals_among(
    pool: &PgPool,
    keys: &[(String, Uuid)],
) -> Result<HashMap<(String, Uuid), (String, DateTime<Utc>)>, sqlx::Error> {
    let rows: Vec<(String, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT w.tenant_id, w.point_id, w.source, w.withdrawn_at
         FROM point_withdrawals w JOIN UNNEST($1::text[], $2::uuid[]) AS k(tenant_id, point_id)
           ON w.tenant_id = k.tenant_id AND w.point_id = k.point_id",
    )
    .bind(keys.iter().map(|k| k.0.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, point, source, at)| ((tenant, point), (source, at)))
        .collect())
}

/// When each (channel, our sender, their address) among `keys` sent STOP to that sender.
pub async fn sender_opt_outs_among(
    pool: &PgPool,
    keys: &[(String, String, String)],
) -> Result<HashMap<(String, String, String), DateTime<Utc>>, sqlx::Error> {
    let rows: Vec<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT s.channel, s.sender, s.address, s.opted_out_at
         FROM sender_opt_outs s JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(channel, sender, address)
           ON s.channel = k.channel AND s.sender = k.sender AND s.address = k.address",
    )
    .bind(keys.iter().map(|k| k.0.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.2.as_str()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(channel, sender, address, at)| ((channel, sender, address), at))
        .collect())
}
