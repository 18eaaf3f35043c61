//! What GetDebtor (and the debtor writes that answer with it) shows: a debtor with every
//! contact, point and standing hold, and what it owes per currency, read in **one statement**.
//! One statement sees one snapshot, so the parts never mix rows from before and after a change,
//! without a transaction's BEGIN and COMMIT round trips. The five round trips this replaced
//! (snapshot, debtor, contacts, points, invoices) bounded GetDebtor's rate
//! (docs/benchmarks.md, "GetDebtor").

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::debtors::{DEBTOR_COLUMNS, DEBTOR_FROM, DebtorRow, PointRow};
use crate::domain::{Contact, Debtor, Point};
use recobro_common::db::decoded;

/// A debtor and what it owes: per currency (ISO 4217 code, sorted), in minor units, the open
/// invoices' amounts less what settled them, never below zero per invoice.
pub struct DebtorView {
    pub debtor: Debtor,
    pub balance: Vec<(String, i64)>,
}

/// One of the debtor's points (or a contact without points, or a debtor without contacts),
/// with the debtor's columns and balance repeated on every row.
#[derive(sqlx::FromRow)]
struct ViewRow {
    #[sqlx(flatten)]
    debtor: DebtorRow,
    contact_id: Option<Uuid>,
    contact_name: Option<String>,
    role: Option<String>,
    point_id: Option<Uuid>,
    channel: Option<String>,
    address: Option<String>,
    consent: Option<String>,
    consent_source: Option<String>,
    consent_at: Option<DateTime<Utc>>,
    preferred: Option<bool>,
    retired_at: Option<DateTime<Utc>>,
    retired_reason: Option<String>,
    currencies: Vec<String>,
    owed: Vec<i64>,
}

/// The tenant's debtor as GetDebtor shows it; `None` when the tenant has no such debtor.
pub async fn debtor_view(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Option<DebtorView>, sqlx::Error> {
    let rows: Vec<ViewRow> = sqlx::query_as(&format!(
        "WITH owed AS (
             SELECT currency, sum(greatest(amount_minor - settled_minor, 0))::bigint AS amount_minor
             FROM invoices WHERE tenant_id = $1 AND debtor_id = $2 AND status = 'open'
             GROUP BY currency)
         SELECT {DEBTOR_COLUMNS},
             c.contact_id, c.name AS contact_name, c.role,
             p.point_id, p.channel, p.address, p.consent, p.consent_source, p.consent_at,
             p.preferred, p.retired_at, p.retired_reason,
             ARRAY(SELECT currency FROM owed ORDER BY currency COLLATE \"C\") AS currencies,
             ARRAY(SELECT amount_minor FROM owed ORDER BY currency COLLATE \"C\") AS owed
         FROM {DEBTOR_FROM}
             LEFT JOIN contacts c ON c.debtor_id = d.debtor_id
             LEFT JOIN contact_points p ON p.debtor_id = d.debtor_id AND p.contact_id = c.contact_id
         WHERE d.tenant_id = $1 AND d.debtor_id = $2
         ORDER BY c.name, c.contact_id, p.channel, p.address"
    ))
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_all(pool)
    .await?;
    let mut view: Option<DebtorView> = None;
    for row in rows {
        let ViewRow {
            debtor,
            contact_id,
            contact_name,
            role,
            point_id,
            channel,
            address,
            consent,
            consent_source,
            consent_at,
            preferred,
            retired_at,
            retired_reason,
            currencies,
            owed,
        } = row;
        // The debtor's columns and balance are the same on every row: the first row's are kept.
        let view = match &mut view {
            Some(view) => view,
            None => view.insert(DebtorView {
                debtor: Debtor::try_from(debtor)?,
                balance: currencies.into_iter().zip(owed).collect(),
            }),
        };
        let Some(contact_id) = contact_id else {
            continue;
        };
        let contacts = &mut view.debtor.contacts;
        // Rows come ordered by contact, so a contact's points are consecutive.
        if contacts.last().map(|c| c.contact_id) != Some(contact_id) {
            contacts.push(Contact {
                contact_id,
                name: contact_name.unwrap_or_default(),
                role: decoded("role", role.unwrap_or_default().parse())?,
                points: Vec::new(),
            });
        }
        // A point's columns are NOT NULL: with its id, the join found it and they are all set.
        let (
            Some(point_id),
            Some(channel),
            Some(address),
            Some(consent),
            Some(consent_source),
            Some(consent_at),
            Some(preferred),
            Some(retired_reason),
        ) = (
            point_id,
            channel,
            address,
            consent,
            consent_source,
            consent_at,
            preferred,
            retired_reason,
        )
        else {
            continue;
        };
        let point = Point::try_from(PointRow {
            point_id,
            contact_id,
            channel,
            address,
            consent,
            consent_source,
            consent_at,
            preferred,
            retired_at,
            retired_reason,
        })?;
        if let Some(contact) = contacts.last_mut() {
            contact.points.push(point);
        }
    }
    Ok(view)
}
