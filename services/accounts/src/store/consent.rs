//! Consent of one contact point: set through the API, or withdrawn by an opt-out that channels
//! received (each response applied once).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Point;
use crate::states::Consent;

use super::Tx;
use super::debtors::{POINT_COLUMNS, PointRow, refresh_primary_points};

/// Locks the debtor whose contact point this is (`None`: the tenant has no such point). The
/// debtor is locked before its point is changed, like every change to a debtor's record, so
/// changes to one debtor commit (and publish their revisions) one after another.
pub async fn lock_debtor_of_point(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    point_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    let found: Option<(Uuid,)> = sqlx::query_as(
        "SELECT d.debtor_id FROM contact_points p JOIN debtors d ON d.debtor_id = p.debtor_id
         WHERE p.tenant_id = $1 AND p.point_id = $2 FOR UPDATE OF d",
    )
    .bind(tenant_id)
    .bind(point_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.map(|(id,)| id))
}

/// Sets one point's consent; returns the debtor's id and the point, or `None` if the tenant has
/// no such point.
pub async fn set_consent(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    point_id: Uuid,
    consent: Consent,
    source: &str,
) -> Result<Option<(Uuid, Point)>, sqlx::Error> {
    let Some(debtor_id) = lock_debtor_of_point(tx, tenant_id, point_id).await? else {
        return Ok(None);
    };
    let row: PointRow = sqlx::query_as(&format!(
        "UPDATE contact_points SET consent = $3, consent_source = $4, consent_at = now()
         WHERE tenant_id = $1 AND point_id = $2 RETURNING {POINT_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(point_id)
    .bind(consent.as_str())
    .bind(source)
    .fetch_one(&mut **tx)
    .await?;
    refresh_primary_points(tx, &[debtor_id]).await?;
    Ok(Some((debtor_id, Point::try_from(row)?)))
}

/// Withdraws a point's consent as of `at`, from `source`. A consent recorded after `at` stands
/// (the debtor granted it again after opting out), and a point withdrawn already keeps when and
/// why it was. Returns whether the point changed.
pub async fn withdraw_as_of(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    point_id: Uuid,
    source: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let changed: Option<(Uuid,)> = sqlx::query_as(
        "UPDATE contact_points SET consent = 'withdrawn', consent_source = $3, consent_at = $4
         WHERE tenant_id = $1 AND point_id = $2 AND consent = 'granted' AND consent_at < $4
         RETURNING debtor_id",
    )
    .bind(tenant_id)
    .bind(point_id)
    .bind(source)
    .bind(at)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((debtor_id,)) = changed else {
        return Ok(false);
    };
    refresh_primary_points(tx, &[debtor_id]).await?;
    Ok(true)
}

/// Records a debtor response as applied; false if it was applied before.
pub async fn first_time_response(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    response_id: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO consumed_responses (tenant_id, response_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(response_id)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
