//! Legal holds: at most one stands per debtor (a unique index says so); lifted ones are kept
//! with when, why and on whose word.

use uuid::Uuid;

use crate::domain::LegalHold;

use super::Tx;

/// The hold standing on a debtor, if any.
pub async fn standing_hold(tx: &mut Tx<'_>, debtor_id: Uuid) -> Result<Option<LegalHold>, sqlx::Error> {
    let row: Option<(String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT reason, source, placed_at FROM legal_holds WHERE debtor_id = $1 AND lifted_at IS NULL",
    )
    .bind(debtor_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(reason, source, since)| LegalHold {
        reason,
        source,
        since,
    }))
}

/// Places a hold on a debtor none stands on (the caller holds the debtor's lock and checked).
pub async fn place_hold(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    debtor_id: Uuid,
    reason: &str,
    source: &str,
) -> Result<LegalHold, sqlx::Error> {
    let (reason, source, since): (String, String, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "INSERT INTO legal_holds (hold_id, tenant_id, debtor_id, reason, source) VALUES ($1, $2, $3, $4, $5)
         RETURNING reason, source, placed_at",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(debtor_id)
    .bind(reason)
    .bind(source)
    .fetch_one(&mut **tx)
    .await?;
    Ok(LegalHold {
        reason,
        source,
        since,
    })
}

/// Lifts the hold standing on a debtor, recording why and on whose word; false if none stood.
pub async fn lift_hold(
    tx: &mut Tx<'_>,
    debtor_id: Uuid,
    reason: &str,
    source: &str,
) -> Result<bool, sqlx::Error> {
    let lifted = sqlx::query(
        "UPDATE legal_holds SET lifted_at = now(), lift_reason = $2, lift_source = $3
         WHERE debtor_id = $1 AND lifted_at IS NULL",
    )
    .bind(debtor_id)
    .bind(reason)
    .bind(source)
    .execute(&mut **tx)
    .await?;
    Ok(lifted.rows_affected() > 0)
}
