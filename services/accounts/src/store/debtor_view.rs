//! What GetDebtor (and UpsertDebtor, which answers with it) shows: a debtor with every
//! contact, point and standing hold, and what it owes per currency, read in **one statement**.
//! One statement sees one snapshot, so the parts never mix rows from before and after a change,
//! without a transaction's BEGIN and COMMIT round trips. The five round trips this replaced
//! (snapshot, debtor, contacts, points, invoices) bounded GetDebtor's rate
//! (docs/benchmarks.md, "GetDebtor").

use sqlx::{FromRow, PgPool, Row};
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

/// The tenant's debtor as GetDebtor shows it; `None` when the tenant has no such debtor.
pub async fn debtor_view(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Option<DebtorView>, sqlx::Error> {
    // One row per point (or per contact without points, or one for a debtor without contacts),
    // with the debtor's columns and balance repeated on every row.
    let rows = sqlx::query(&format!(
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
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let currencies: Vec<String> = first.try_get("currencies")?;
    let owed: Vec<i64> = first.try_get("owed")?;
    let mut debtor = Debtor::try_from(DebtorRow::from_row(first)?)?;
    for row in &rows {
        let Some(contact_id) = row.try_get::<Option<Uuid>, _>("contact_id")? else {
            continue;
        };
        // Rows come ordered by contact, so a contact's points are consecutive.
        if debtor.contacts.last().map(|c| c.contact_id) != Some(contact_id) {
            debtor.contacts.push(Contact {
                contact_id,
                name: row.try_get("contact_name")?,
                role: decoded("role", row.try_get::<String, _>("role")?.parse())?,
                points: Vec::new(),
            });
        }
        // A point's columns are NOT NULL: when the join found a point, `PointRow` reads them all.
        if row.try_get::<Option<Uuid>, _>("point_id")?.is_some()
            && let Some(contact) = debtor.contacts.last_mut()
        {
            contact.points.push(Point::try_from(PointRow::from_row(row)?)?);
        }
    }
    Ok(Some(DebtorView {
        debtor,
        balance: currencies.into_iter().zip(owed).collect(),
    }))
}
