//! Debtors, their contacts and contact points (with consent), as the ledger stores them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use recobro_common::Channel;
use recobro_common::db::decoded;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, Contact, Debtor, LegalHold, Point, Retirement};

use super::Tx;

/// The last version of each debtor in a batch: one row per debtor per statement.
fn latest_per_debtor<'a>(debtors: &[&'a Debtor]) -> Vec<&'a Debtor> {
    let mut latest: HashMap<Uuid, &Debtor> = HashMap::new();
    for debtor in debtors {
        latest.insert(debtor.debtor_id, debtor);
    }
    latest.into_values().collect()
}

/// Writes debtors with their contacts and points; returns the debtors whose stored record
/// changed (new, or a field, contact or point that differs), sorted. A consent already on file
/// is kept: a re-sync never re-grants what a debtor withdrew. A retired point stated again is
/// current again, with the consent it had. Each debtor's primary email and phone are then
/// recomputed from the points that may be used.
pub async fn upsert_debtors(tx: &mut Tx<'_>, debtors: &[&Debtor]) -> Result<Vec<Uuid>, sqlx::Error> {
    let debtors = latest_per_debtor(debtors);
    let tenants: Vec<&str> = debtors.iter().map(|d| d.tenant_id.as_str()).collect();
    let written: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO debtors (debtor_id, tenant_id, external_id, name, kind, time_zone, locale, country, region, segment, risk_score)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::text[], $9::text[], $10::text[], $11::int[])
         ON CONFLICT (debtor_id) DO UPDATE SET
            name = EXCLUDED.name, kind = EXCLUDED.kind, time_zone = EXCLUDED.time_zone, locale = EXCLUDED.locale,
            country = EXCLUDED.country, region = EXCLUDED.region, segment = EXCLUDED.segment,
            risk_score = EXCLUDED.risk_score, updated_at = now()
         -- An unchanged debtor (the common case: one debtor, many invoices) is not rewritten.
         WHERE (debtors.name, debtors.kind, debtors.time_zone, debtors.locale, debtors.country, debtors.region,
                debtors.segment, debtors.risk_score)
           IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.time_zone, EXCLUDED.locale, EXCLUDED.country,
                EXCLUDED.region, EXCLUDED.segment, EXCLUDED.risk_score)
         RETURNING debtor_id",
    )
    .bind(debtors.iter().map(|d| d.debtor_id).collect::<Vec<_>>())
    .bind(&tenants)
    .bind(debtors.iter().map(|d| d.external_id.as_str()).collect::<Vec<_>>())
    .bind(debtors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>())
    .bind(debtors.iter().map(|d| d.kind.as_str()).collect::<Vec<_>>())
    .bind(debtors.iter().map(|d| d.time_zone.as_str()).collect::<Vec<_>>())
    .bind(debtors.iter().map(|d| d.locale.as_str()).collect::<Vec<_>>())
    .bind(debtors.iter().map(|d| d.country.as_str()).collect::<Vec<_>>())
    .bind(debtors.iter().map(|d| d.region.as_deref()).collect::<Vec<_>>())
    .bind(debtors.iter().map(|d| d.segment.as_str()).collect::<Vec<_>>())
    .bind(debtors.iter().map(|d| d.risk_score).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    let contacts: Vec<(&Debtor, &Contact)> = debtors
        .iter()
        .flat_map(|d| d.contacts.iter().map(move |c| (*d, c)))
        .collect();
    let renamed: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO contacts (contact_id, tenant_id, debtor_id, name, role)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[])
         ON CONFLICT (contact_id) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role
         WHERE (contacts.name, contacts.role) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.role)
         RETURNING debtor_id",
    )
    .bind(contacts.iter().map(|(_, c)| c.contact_id).collect::<Vec<_>>())
    .bind(
        contacts
            .iter()
            .map(|(d, _)| d.tenant_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(contacts.iter().map(|(d, _)| d.debtor_id).collect::<Vec<_>>())
    .bind(contacts.iter().map(|(_, c)| c.name.as_str()).collect::<Vec<_>>())
    .bind(contacts.iter().map(|(_, c)| c.role.as_str()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    let points: Vec<(&Debtor, &Contact, &Point)> = contacts
        .iter()
        .flat_map(|(d, c)| c.points.iter().map(move |p| (*d, *c, p)))
        .collect();
    let touched: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO contact_points (point_id, tenant_id, debtor_id, contact_id, channel, address, consent, consent_source, preferred)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[])
         ON CONFLICT (point_id) DO UPDATE SET preferred = EXCLUDED.preferred, retired_at = NULL, retired_reason = ''
         WHERE (contact_points.preferred, contact_points.retired_at IS NULL) IS DISTINCT FROM (EXCLUDED.preferred, true)
         RETURNING debtor_id",
    )
    .bind(points.iter().map(|(_, _, p)| p.point_id).collect::<Vec<_>>())
    .bind(points.iter().map(|(d, _, _)| d.tenant_id.as_str()).collect::<Vec<_>>())
    .bind(points.iter().map(|(d, _, _)| d.debtor_id).collect::<Vec<_>>())
    .bind(points.iter().map(|(_, c, _)| c.contact_id).collect::<Vec<_>>())
    .bind(points.iter().map(|(_, _, p)| p.channel.as_str()).collect::<Vec<_>>())
    .bind(points.iter().map(|(_, _, p)| p.address.as_str()).collect::<Vec<_>>())
    .bind(points.iter().map(|(_, _, p)| p.consent.as_str()).collect::<Vec<_>>())
    .bind(points.iter().map(|(_, _, p)| p.source.as_str()).collect::<Vec<_>>())
    .bind(points.iter().map(|(_, _, p)| p.preferred).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    // Only debtors whose points were added or changed can have new primary addresses.
    let touched = sorted_ids(touched);
    if !touched.is_empty() {
        refresh_primary_points(tx, &touched).await?;
    }
    let mut changed = touched;
    changed.extend(written.into_iter().chain(renamed).map(|(id,)| id));
    changed.sort();
    changed.dedup();
    Ok(changed)
}

/// Why the ERP's debtor record retired an address.
const REPLACED: &str = "replaced by the ERP record";
const REMOVED: &str = "no longer in the ERP record";

/// The ERP's record is authoritative for addresses: an email or phone its primary contact had
/// and the record no longer gives is retired (kept with its consent, never used again), not
/// left beside the new one. Returns the debtors that had a point retired, sorted. Run after
/// [`upsert_debtors`] with the same ERP debtors.
pub async fn retire_replaced_points(
    tx: &mut Tx<'_>,
    erp_debtors: &[&Debtor],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let debtors = latest_per_debtor(erp_debtors);
    let mut tenants = Vec::with_capacity(debtors.len() * 2);
    let mut debtor_ids = Vec::with_capacity(debtors.len() * 2);
    let mut contact_ids = Vec::with_capacity(debtors.len() * 2);
    let mut channels = Vec::with_capacity(debtors.len() * 2);
    let mut addresses = Vec::with_capacity(debtors.len() * 2);
    for debtor in &debtors {
        for (channel, address) in [(Channel::Email, &debtor.email), (Channel::Sms, &debtor.phone)] {
            tenants.push(debtor.tenant_id.as_str());
            debtor_ids.push(debtor.debtor_id);
            contact_ids.push(domain::primary_contact_id(debtor.debtor_id));
            channels.push(channel.as_str());
            addresses.push(address.as_deref());
        }
    }
    let retired: Vec<(Uuid,)> = sqlx::query_as(
        "UPDATE contact_points p
         SET retired_at = now(), preferred = false,
             retired_reason = CASE WHEN e.address IS NULL THEN $6 ELSE $7 END
         FROM UNNEST($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[])
              AS e(tenant_id, debtor_id, contact_id, channel, address)
         WHERE p.tenant_id = e.tenant_id AND p.debtor_id = e.debtor_id AND p.contact_id = e.contact_id
           AND p.channel = e.channel AND p.retired_at IS NULL AND p.address IS DISTINCT FROM e.address
         RETURNING p.debtor_id",
    )
    .bind(&tenants)
    .bind(&debtor_ids)
    .bind(&contact_ids)
    .bind(&channels)
    .bind(&addresses)
    .bind(REMOVED)
    .bind(REPLACED)
    .fetch_all(&mut **tx)
    .await?;
    let retired = sorted_ids(retired);
    if !retired.is_empty() {
        refresh_primary_points(tx, &retired).await?;
    }
    Ok(retired)
}

fn sorted_ids(rows: Vec<(Uuid,)>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = rows.into_iter().map(|(id,)| id).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The email and phone reminders use: a preferred point whose consent stands and that was not
/// retired, else any such.
pub async fn refresh_primary_points(tx: &mut Tx<'_>, debtor_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    // One pass over the debtors' points, and only debtors whose addresses changed are written.
    sqlx::query(
        "UPDATE debtors d SET email = p.email, phone = p.phone
         FROM (SELECT debtor_id,
                  (array_agg(address ORDER BY preferred DESC, address)
                      FILTER (WHERE channel = 'email' AND consent = 'granted' AND retired_at IS NULL))[1] AS email,
                  (array_agg(address ORDER BY preferred DESC, channel, address)
                      FILTER (WHERE channel IN ('sms', 'whatsapp') AND consent = 'granted' AND retired_at IS NULL))[1]
                      AS phone
               FROM contact_points WHERE debtor_id IN (SELECT unnest($1::uuid[])) GROUP BY debtor_id) p
         WHERE d.debtor_id = p.debtor_id AND (d.email IS DISTINCT FROM p.email OR d.phone IS DISTINCT FROM p.phone)",
    )
    .bind(debtor_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A new revision of each debtor's record, for its publication; returns each one's revision.
pub async fn bump_debtor_revisions(
    tx: &mut Tx<'_>,
    debtor_ids: &[Uuid],
) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "UPDATE debtors SET revision = revision + 1, updated_at = now() WHERE debtor_id IN (SELECT unnest($1::uuid[]))
         RETURNING debtor_id, revision",
    )
    .bind(debtor_ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A debtor as `DEBTOR_COLUMNS` reads it, with its standing hold, without contacts.
#[derive(sqlx::FromRow)]
pub(super) struct DebtorRow {
    debtor_id: Uuid,
    tenant_id: String,
    external_id: String,
    name: String,
    kind: String,
    time_zone: String,
    locale: String,
    country: String,
    email: Option<String>,
    phone: Option<String>,
    region: Option<String>,
    segment: String,
    risk_score: Option<i32>,
    hold_reason: Option<String>,
    hold_source: Option<String>,
    hold_since: Option<DateTime<Utc>>,
}

/// What `DebtorRow` selects, from `DEBTOR_FROM`.
pub(super) const DEBTOR_COLUMNS: &str =
    "d.debtor_id, d.tenant_id, d.external_id, d.name, d.kind, d.time_zone,
        d.locale, d.country, d.email, d.phone, d.region, d.segment, d.risk_score,
        h.reason AS hold_reason, h.source AS hold_source, h.placed_at AS hold_since";

/// A debtor with its standing legal hold (at most one: `legal_holds_one_standing`).
pub(super) const DEBTOR_FROM: &str =
    "debtors d LEFT JOIN legal_holds h ON h.debtor_id = d.debtor_id AND h.lifted_at IS NULL";

impl TryFrom<DebtorRow> for Debtor {
    type Error = sqlx::Error;

    fn try_from(r: DebtorRow) -> Result<Debtor, sqlx::Error> {
        let legal_hold = match (r.hold_reason, r.hold_source, r.hold_since) {
            (Some(reason), Some(source), Some(since)) => Some(LegalHold {
                reason,
                source,
                since,
            }),
            _ => None,
        };
        Ok(Debtor {
            debtor_id: r.debtor_id,
            tenant_id: r.tenant_id,
            external_id: r.external_id,
            name: r.name,
            kind: decoded("kind", r.kind.parse())?,
            time_zone: r.time_zone,
            locale: r.locale,
            country: r.country,
            email: r.email,
            phone: r.phone,
            region: r.region,
            segment: r.segment,
            risk_score: r.risk_score,
            contacts: Vec::new(),
            legal_hold,
        })
    }
}

/// A contact as `load` reads it.
#[derive(sqlx::FromRow)]
struct ContactRow {
    debtor_id: Uuid,
    contact_id: Uuid,
    name: String,
    role: String,
}

/// A contact point as `load` reads it.
#[derive(sqlx::FromRow)]
pub(super) struct PointRow {
    pub(super) point_id: Uuid,
    pub(super) contact_id: Uuid,
    pub(super) channel: String,
    pub(super) address: String,
    pub(super) consent: String,
    pub(super) consent_source: String,
    pub(super) consent_at: DateTime<Utc>,
    pub(super) preferred: bool,
    pub(super) retired_at: Option<DateTime<Utc>>,
    pub(super) retired_reason: String,
}

/// What `PointRow` selects from `contact_points`.
pub(super) const POINT_COLUMNS: &str = "point_id, contact_id, channel, address, consent, consent_source, consent_at, preferred, retired_at, retired_reason";

impl TryFrom<PointRow> for Point {
    type Error = sqlx::Error;

    fn try_from(p: PointRow) -> Result<Point, sqlx::Error> {
        Ok(Point {
            point_id: p.point_id,
            channel: decoded("channel", p.channel.parse())?,
            address: p.address,
            consent: decoded("consent", p.consent.parse())?,
            source: p.consent_source,
            consent_at: Some(p.consent_at),
            preferred: p.preferred,
            retired: p.retired_at.map(|at| Retirement {
                at,
                reason: p.retired_reason,
            }),
        })
    }
}

/// Debtors (of one tenant, when given) with every contact and point, withdrawn and retired
/// ones too, and their standing legal hold.
async fn load(
    conn: &mut PgConnection,
    tenant_id: Option<&str>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Debtor>, sqlx::Error> {
    let rows: Vec<DebtorRow> = sqlx::query_as(&format!(
        "SELECT {DEBTOR_COLUMNS} FROM {DEBTOR_FROM} WHERE d.debtor_id IN (SELECT unnest($1::uuid[])) AND ($2::text IS NULL OR d.tenant_id = $2)"
    ))
    .bind(ids)
    .bind(tenant_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut debtors = HashMap::with_capacity(rows.len());
    for row in rows {
        debtors.insert(row.debtor_id, Debtor::try_from(row)?);
    }
    if debtors.is_empty() {
        return Ok(debtors);
    }
    // Only the debtors found: their contacts are the tenant's too.
    let found: Vec<Uuid> = debtors.keys().copied().collect();
    let contacts: Vec<ContactRow> = sqlx::query_as(
        "SELECT debtor_id, contact_id, name, role FROM contacts WHERE debtor_id IN (SELECT unnest($1::uuid[])) ORDER BY name, contact_id",
    )
    .bind(&found)
    .fetch_all(&mut *conn)
    .await?;
    let points: Vec<PointRow> = sqlx::query_as(&format!(
        "SELECT {POINT_COLUMNS} FROM contact_points WHERE debtor_id IN (SELECT unnest($1::uuid[])) ORDER BY channel, address"
    ))
    .bind(&found)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_contact: HashMap<Uuid, Vec<Point>> = HashMap::new();
    for row in points {
        by_contact
            .entry(row.contact_id)
            .or_default()
            .push(Point::try_from(row)?);
    }
    for row in contacts {
        let Some(debtor) = debtors.get_mut(&row.debtor_id) else {
            continue;
        };
        debtor.contacts.push(Contact {
            contact_id: row.contact_id,
            name: row.name,
            role: decoded("role", row.role.parse())?,
            points: by_contact.remove(&row.contact_id).unwrap_or_default(),
        });
    }
    Ok(debtors)
}

/// Debtors with their whole contact record and standing hold, for snapshots. Routes (where a
/// message may go now) leave withdrawn and retired points out (`Debtor::to_proto`).
pub async fn debtors_by_id(tx: &mut Tx<'_>, ids: &[Uuid]) -> Result<HashMap<Uuid, Debtor>, sqlx::Error> {
    load(tx, None, ids).await
}

/// A debtor of a tenant with its contacts, every point and its standing hold.
pub async fn debtor(
    conn: &mut PgConnection,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Option<Debtor>, sqlx::Error> {
    Ok(load(conn, Some(tenant_id), &[debtor_id])
        .await?
        .remove(&debtor_id))
}

/// Open invoices of a debtor: what their events must be republished for after a debtor change.
pub async fn open_invoice_ids(tx: &mut Tx<'_>, debtor_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT invoice_id FROM invoices WHERE debtor_id = $1 AND status = 'open'")
            .bind(debtor_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Whether the tenant has this debtor, inside a transaction.
pub async fn debtor_in_tx(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    let found: Option<(Uuid,)> =
        sqlx::query_as("SELECT debtor_id FROM debtors WHERE tenant_id = $1 AND debtor_id = $2")
            .bind(tenant_id)
            .bind(debtor_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.map(|(id,)| id))
}

/// Locks a debtor of the tenant for a change to its record (`None`: the tenant has no such
/// debtor). Changes to one debtor then commit, and publish their revisions, one after another.
pub async fn lock_debtor(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    let found: Option<(Uuid,)> =
        sqlx::query_as("SELECT debtor_id FROM debtors WHERE tenant_id = $1 AND debtor_id = $2 FOR UPDATE")
            .bind(tenant_id)
            .bind(debtor_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.map(|(id,)| id))
}
