//! Debtors, their contacts and contact points (with consent), as the ledger stores them.

use std::collections::HashMap;

use recobro_common::db::decoded;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{Contact, Debtor, Point};
use crate::states::Consent;

use super::Tx;

/// Writes debtors with their contacts and points. A consent already on file is kept: an ERP
/// re-sync never re-grants what a debtor withdrew. Each debtor's primary email and phone are
/// then recomputed from the points that may be used.
pub async fn upsert_debtors(tx: &mut Tx<'_>, debtors: &[&Debtor]) -> Result<(), sqlx::Error> {
    // One row per debtor per statement: the last version in the batch wins.
    let mut latest: HashMap<Uuid, &Debtor> = HashMap::new();
    for debtor in debtors {
        latest.insert(debtor.debtor_id, debtor);
    }
    let debtors: Vec<&Debtor> = latest.into_values().collect();
    let tenants: Vec<&str> = debtors.iter().map(|d| d.tenant_id.as_str()).collect();
    sqlx::query(
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
                EXCLUDED.region, EXCLUDED.segment, EXCLUDED.risk_score)",
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
    .execute(&mut **tx)
    .await?;
    let contacts: Vec<(&Debtor, &Contact)> = debtors
        .iter()
        .flat_map(|d| d.contacts.iter().map(move |c| (*d, c)))
        .collect();
    sqlx::query(
        "INSERT INTO contacts (contact_id, tenant_id, debtor_id, name, role)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[])
         ON CONFLICT (contact_id) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role
         WHERE (contacts.name, contacts.role) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.role)",
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
    .execute(&mut **tx)
    .await?;
    let points: Vec<(&Debtor, &Contact, &Point)> = contacts
        .iter()
        .flat_map(|(d, c)| c.points.iter().map(move |p| (*d, *c, p)))
        .collect();
    let touched: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO contact_points (point_id, tenant_id, debtor_id, contact_id, channel, address, consent, consent_source, preferred)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[])
         ON CONFLICT (point_id) DO UPDATE SET preferred = EXCLUDED.preferred
         WHERE contact_points.preferred IS DISTINCT FROM EXCLUDED.preferred
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
    let mut ids: Vec<Uuid> = touched.into_iter().map(|(id,)| id).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    refresh_primary_points(tx, &ids).await
}

/// The email and phone reminders use: a preferred point whose consent stands, else any such.
pub async fn refresh_primary_points(tx: &mut Tx<'_>, debtor_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    // One pass over the debtors' points, and only debtors whose addresses changed are written.
    sqlx::query(
        "UPDATE debtors d SET email = p.email, phone = p.phone
         FROM (SELECT debtor_id,
                  (array_agg(address ORDER BY preferred DESC, address)
                      FILTER (WHERE channel = 'email' AND consent = 'granted'))[1] AS email,
                  (array_agg(address ORDER BY preferred DESC, channel, address)
                      FILTER (WHERE channel IN ('sms', 'whatsapp') AND consent = 'granted'))[1] AS phone
               FROM contact_points WHERE debtor_id = ANY($1) GROUP BY debtor_id) p
         WHERE d.debtor_id = p.debtor_id AND (d.email IS DISTINCT FROM p.email OR d.phone IS DISTINCT FROM p.phone)",
    )
    .bind(debtor_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A debtor as `DEBTOR_SELECT` reads it, without contacts.
#[derive(sqlx::FromRow)]
struct DebtorRow {
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
}

const DEBTOR_SELECT: &str =
    "SELECT debtor_id, tenant_id, external_id, name, kind, time_zone, locale, country, email, phone,
        region, segment, risk_score FROM debtors";

impl TryFrom<DebtorRow> for Debtor {
    type Error = sqlx::Error;

    fn try_from(r: DebtorRow) -> Result<Debtor, sqlx::Error> {
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
        })
    }
}

/// A usable contact point with its contact, for snapshots.
#[derive(sqlx::FromRow)]
struct UsablePointRow {
    debtor_id: Uuid,
    contact_id: Uuid,
    name: String,
    role: String,
    point_id: Uuid,
    channel: String,
    address: String,
    preferred: bool,
}

/// A contact point as `debtor` reads it.
#[derive(sqlx::FromRow)]
struct PointRow {
    point_id: Uuid,
    contact_id: Uuid,
    channel: String,
    address: String,
    consent: String,
    consent_source: String,
    preferred: bool,
}

/// Debtors with the contact points that may be used now, for snapshots.
pub async fn debtors_by_id(tx: &mut Tx<'_>, ids: &[Uuid]) -> Result<HashMap<Uuid, Debtor>, sqlx::Error> {
    let rows: Vec<DebtorRow> = sqlx::query_as(&format!("{DEBTOR_SELECT} WHERE debtor_id = ANY($1)"))
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
    let mut debtors = HashMap::with_capacity(rows.len());
    for row in rows {
        debtors.insert(row.debtor_id, Debtor::try_from(row)?);
    }
    let points: Vec<UsablePointRow> = sqlx::query_as(
        "SELECT p.debtor_id, c.contact_id, c.name, c.role, p.point_id, p.channel, p.address, p.preferred
         FROM contact_points p JOIN contacts c ON c.contact_id = p.contact_id
         WHERE p.debtor_id = ANY($1) AND p.consent = 'granted' ORDER BY c.name, p.channel, p.address",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    for row in points {
        let Some(debtor) = debtors.get_mut(&row.debtor_id) else {
            continue;
        };
        let point = Point {
            point_id: row.point_id,
            channel: decoded("channel", row.channel.parse())?,
            address: row.address,
            consent: Consent::Granted,
            source: String::new(),
            preferred: row.preferred,
        };
        match debtor
            .contacts
            .iter_mut()
            .find(|c| c.contact_id == row.contact_id)
        {
            Some(contact) => contact.points.push(point),
            None => debtor.contacts.push(Contact {
                contact_id: row.contact_id,
                name: row.name,
                role: decoded("role", row.role.parse())?,
                points: vec![point],
            }),
        }
    }
    Ok(debtors)
}

/// A debtor of a tenant with its contacts and points.
pub async fn debtor(pool: &PgPool, tenant_id: &str, debtor_id: Uuid) -> Result<Option<Debtor>, sqlx::Error> {
    let row: Option<DebtorRow> = sqlx::query_as(&format!(
        "{DEBTOR_SELECT} WHERE tenant_id = $1 AND debtor_id = $2"
    ))
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut debtor = Debtor::try_from(row)?;
    let contacts: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT contact_id, name, role FROM contacts WHERE tenant_id = $1 AND debtor_id = $2 ORDER BY name",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_all(pool)
    .await?;
    let points: Vec<PointRow> = sqlx::query_as(
        "SELECT point_id, contact_id, channel, address, consent, consent_source, preferred FROM contact_points
         WHERE tenant_id = $1 AND debtor_id = $2 ORDER BY channel, address",
    )
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_all(pool)
    .await?;
    for (contact_id, name, role) in contacts {
        let points = points
            .iter()
            .filter(|p| p.contact_id == contact_id)
            .map(|p| {
                Ok(Point {
                    point_id: p.point_id,
                    channel: decoded("channel", p.channel.parse())?,
                    address: p.address.clone(),
                    consent: decoded("consent", p.consent.parse())?,
                    source: p.consent_source.clone(),
                    preferred: p.preferred,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        debtor.contacts.push(Contact {
            contact_id,
            name,
            role: decoded("role", role.parse())?,
            points,
        });
    }
    Ok(Some(debtor))
}

/// Sets one point's consent; returns the debtor's id or `None` if the tenant has no such point.
pub async fn set_consent(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    point_id: Uuid,
    consent: Consent,
    source: &str,
) -> Result<Option<(Uuid, Point)>, sqlx::Error> {
    let row: Option<(Uuid, String, String, bool)> = sqlx::query_as(
        "UPDATE contact_points SET consent = $3, consent_source = $4, consent_at = now()
         WHERE tenant_id = $1 AND point_id = $2 RETURNING debtor_id, channel, address, preferred",
    )
    .bind(tenant_id)
    .bind(point_id)
    .bind(consent.as_str())
    .bind(source)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((debtor_id, channel, address, preferred)) = row else {
        return Ok(None);
    };
    refresh_primary_points(tx, &[debtor_id]).await?;
    let point = Point {
        point_id,
        channel: decoded("channel", channel.parse())?,
        address,
        consent,
        source: source.to_string(),
        preferred,
    };
    Ok(Some((debtor_id, point)))
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
