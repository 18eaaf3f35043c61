//! SQL for the ledger. Every query is scoped by tenant. Batches use `UNNEST` so a few statements
//! carry hundreds of ERP events.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::NaiveDate;
use recobro_common::outbox::Queued;
use recobro_proto::v1 as pb;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{Contact, Debtor, Instalment, Invoice, InvoiceState, Point};
use crate::states::{Consent, InvoiceStatus, PromiseState, SettlementKind};

pub type Tx<'a> = Transaction<'a, Postgres>;

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

pub async fn ensure_tenants(tx: &mut Tx<'_>, tenant_ids: &[&str]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tenants (tenant_id) SELECT DISTINCT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn tenant_exists(pool: &PgPool, tenant_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(String,)> = sqlx::query_as("SELECT tenant_id FROM tenants WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

pub async fn upsert_tenant(
    pool: &PgPool,
    tenant_id: &str,
    name: &str,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, role) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(role)
    .execute(pool)
    .await?;
    Ok(())
}

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
    ensure_tenants(tx, &tenants).await?;
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

/// Writes invoices unless what is stored is as new or newer; returns the ids that changed. An
/// invoice already settled stays paid when the ERP resends it open.
pub async fn upsert_invoices(tx: &mut Tx<'_>, invoices: &[&Invoice]) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut latest: HashMap<Uuid, &Invoice> = HashMap::new();
    for invoice in invoices {
        let keep = latest
            .get(&invoice.invoice_id)
            .is_none_or(|held| held.version < invoice.version);
        if keep {
            latest.insert(invoice.invoice_id, invoice);
        }
    }
    let invoices: Vec<&Invoice> = latest.into_values().collect();
    let changed: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, external_id, number, amount_minor, currency,
                               issue_date, due_date, status, version)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::int8[], $7::text[],
                              $8::date[], $9::date[], $10::text[], $11::int8[])
         ON CONFLICT (invoice_id) DO UPDATE SET
            debtor_id = EXCLUDED.debtor_id, number = EXCLUDED.number, amount_minor = EXCLUDED.amount_minor,
            currency = EXCLUDED.currency, issue_date = EXCLUDED.issue_date, due_date = EXCLUDED.due_date,
            status = CASE WHEN EXCLUDED.status = 'open' AND invoices.settled_minor >= EXCLUDED.amount_minor
                          THEN 'paid' ELSE EXCLUDED.status END,
            version = EXCLUDED.version, revision = invoices.revision + 1, updated_at = now()
         WHERE invoices.version < EXCLUDED.version
         RETURNING invoice_id",
    )
    .bind(invoices.iter().map(|i| i.invoice_id).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.tenant_id.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.debtor_id).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.external_id.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.number.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.amount_minor).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.currency.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.issue_date).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.due_date).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.status.as_str()).collect::<Vec<_>>())
    .bind(invoices.iter().map(|i| i.version).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    Ok(changed.into_iter().map(|(id,)| id).collect())
}

/// A payment, credit note or write-off to record.
#[derive(Debug, Clone, Copy)]
pub struct NewSettlement<'a> {
    pub kind: SettlementKind,
    pub external_id: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub on: NaiveDate,
}

/// Records a settlement (once per external id) and what it leaves owing; the invoice closes as
/// paid when nothing is left. Returns false when this settlement was recorded before.
pub async fn settle(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    invoice_id: Uuid,
    s: &NewSettlement<'_>,
) -> Result<bool, sqlx::Error> {
    let NewSettlement {
        kind,
        external_id,
        amount_minor,
        currency,
        on,
    } = *s;
    let inserted = sqlx::query(
        "INSERT INTO settlements (settlement_id, tenant_id, invoice_id, kind, external_id, amount_minor, currency, on_date)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, kind, external_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(invoice_id)
    .bind(kind.as_str())
    .bind(external_id)
    .bind(amount_minor)
    .bind(currency)
    .bind(on)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE invoices SET settled_minor = settled_minor + $2,
            status = CASE WHEN status = 'open' AND settled_minor + $2 >= amount_minor THEN 'paid' ELSE status END
         WHERE invoice_id = $1",
    )
    .bind(invoice_id)
    .bind(amount_minor)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// An invoice as `STATE_SELECT` reads it.
#[derive(sqlx::FromRow)]
struct StateRow {
    invoice_id: Uuid,
    debtor_id: Uuid,
    tenant_id: String,
    external_id: String,
    number: String,
    amount_minor: i64,
    currency: String,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    status: String,
    version: i64,
    revision: i64,
    settled_minor: i64,
    plan_id: Option<Uuid>,
    disputed: bool,
    promised_date: Option<NaiveDate>,
}

const STATE_SELECT: &str =
    "SELECT i.invoice_id, i.debtor_id, i.tenant_id, i.external_id, i.number, i.amount_minor, i.currency,
        i.issue_date, i.due_date, i.status, i.version, i.revision, i.settled_minor, i.plan_id,
        EXISTS (SELECT 1 FROM disputes x WHERE x.invoice_id = i.invoice_id AND x.resolved_at IS NULL) AS disputed,
        (SELECT min(p.promised_date) FROM promises p WHERE p.invoice_id = i.invoice_id AND p.state = 'open')
            AS promised_date
     FROM invoices i";

impl StateRow {
    fn into_state(self, segment: String) -> Result<InvoiceState, sqlx::Error> {
        Ok(InvoiceState {
            invoice: Invoice {
                invoice_id: self.invoice_id,
                debtor_id: self.debtor_id,
                tenant_id: self.tenant_id,
                external_id: self.external_id,
                number: self.number,
                amount_minor: self.amount_minor,
                currency: self.currency,
                issue_date: self.issue_date,
                due_date: self.due_date,
                status: parse_column("status", &self.status)?,
                version: self.version,
            },
            revision: self.revision,
            settled_minor: self.settled_minor,
            plan_id: self.plan_id,
            disputed: self.disputed,
            promised_date: self.promised_date,
            segment,
        })
    }
}

/// Invoices by id (of one tenant, when given).
pub async fn invoice_states(
    executor: &mut Tx<'_>,
    tenant_id: Option<&str>,
    ids: &[Uuid],
) -> Result<Vec<InvoiceState>, sqlx::Error> {
    let rows: Vec<StateRow> = sqlx::query_as(&format!(
        "{STATE_SELECT} WHERE i.invoice_id = ANY($1) AND ($2::text IS NULL OR i.tenant_id = $2) ORDER BY i.invoice_id"
    ))
    .bind(ids)
    .bind(tenant_id)
    .fetch_all(&mut **executor)
    .await?;
    rows.into_iter()
        .map(|row| row.into_state(String::new()))
        .collect()
}

/// Locks one invoice of a tenant for a change; `None` if the tenant has no such invoice.
pub async fn lock_invoice(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    invoice_id: Uuid,
) -> Result<Option<InvoiceState>, sqlx::Error> {
    let locked: Option<(Uuid,)> =
        sqlx::query_as("SELECT invoice_id FROM invoices WHERE tenant_id = $1 AND invoice_id = $2 FOR UPDATE")
            .bind(tenant_id)
            .bind(invoice_id)
            .fetch_optional(&mut **tx)
            .await?;
    if locked.is_none() {
        return Ok(None);
    }
    Ok(invoice_states(tx, Some(tenant_id), &[invoice_id])
        .await?
        .into_iter()
        .next())
}

/// A new revision of each invoice, for a change the batch upsert did not already count.
pub async fn bump_revisions(tx: &mut Tx<'_>, invoice_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invoices SET revision = revision + 1, updated_at = now() WHERE invoice_id = ANY($1)")
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
            kind: parse_column("kind", &r.kind)?,
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
            channel: parse_column("channel", &row.channel)?,
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
                role: parse_column("role", &row.role)?,
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
                    channel: parse_column("channel", &p.channel)?,
                    address: p.address.clone(),
                    consent: parse_column("consent", &p.consent)?,
                    source: p.consent_source.clone(),
                    preferred: p.preferred,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        debtor.contacts.push(Contact {
            contact_id,
            name,
            role: parse_column("role", &role)?,
            points,
        });
    }
    Ok(Some(debtor))
}

/// A state column read strictly: a name we do not know is corrupt data, reported, never guessed.
fn parse_column<T>(column: &str, value: &str) -> Result<T, sqlx::Error>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value.parse().map_err(|err| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(err),
    })
}

/// A debtor's invoices as stored.
pub async fn invoices_of(
    pool: &PgPool,
    tenant_id: &str,
    debtor_id: Uuid,
) -> Result<Vec<InvoiceState>, sqlx::Error> {
    let rows: Vec<StateRow> = sqlx::query_as(&format!(
        "{STATE_SELECT} WHERE i.tenant_id = $1 AND i.debtor_id = $2 ORDER BY i.due_date, i.number"
    ))
    .bind(tenant_id)
    .bind(debtor_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| row.into_state(String::new()))
        .collect()
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
        channel: parse_column("channel", &channel)?,
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

/// A new open promise; an earlier open promise on the invoice is replaced (cancelled).
pub async fn insert_promise(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    invoice_id: Uuid,
    promised_date: NaiveDate,
    amount: &pb::Money,
    grace_days: i32,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query("UPDATE promises SET state = 'cancelled', decided_at = now() WHERE invoice_id = $1 AND state = 'open'")
        .bind(invoice_id)
        .execute(&mut **tx)
        .await?;
    let promise_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO promises (promise_id, tenant_id, invoice_id, promised_date, amount_minor, currency, made_on, grace_days, state)
         VALUES ($1, $2, $3, $4, $5, $6, CURRENT_DATE, $7, 'open')",
    )
    .bind(promise_id)
    .bind(tenant_id)
    .bind(invoice_id)
    .bind(promised_date)
    .bind(amount.amount_minor)
    .bind(&amount.currency)
    .bind(grace_days)
    .execute(&mut **tx)
    .await?;
    Ok(promise_id)
}

/// An open promise to judge.
#[derive(Debug, sqlx::FromRow)]
pub struct OpenPromise {
    pub promise_id: Uuid,
    pub invoice_id: Uuid,
    pub made_on: NaiveDate,
    pub promised_date: NaiveDate,
    pub amount_minor: i64,
    pub grace_days: i32,
}

/// Open promises whose date has come, locked so two replicas never judge the same one.
pub async fn promises_to_judge(
    tx: &mut Tx<'_>,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<OpenPromise>, sqlx::Error> {
    sqlx::query_as(
        "SELECT promise_id, invoice_id, made_on, promised_date, amount_minor, grace_days FROM promises
         WHERE state = 'open' AND promised_date <= $1 ORDER BY promised_date LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

pub async fn decide_promise(
    tx: &mut Tx<'_>,
    promise_id: Uuid,
    state: PromiseState,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE promises SET state = $2, decided_at = now() WHERE promise_id = $1")
        .bind(promise_id)
        .bind(state.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An invoice's settlements as the KPI code reads them.
pub async fn settlements_of(
    tx: &mut Tx<'_>,
    invoice_id: Uuid,
) -> Result<Vec<crate::kpi::Settlement>, sqlx::Error> {
    let rows: Vec<(String, i64, NaiveDate)> = sqlx::query_as(
        "SELECT kind, amount_minor, on_date FROM settlements WHERE invoice_id = $1 ORDER BY on_date",
    )
    .bind(invoice_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(kind, amount_minor, on)| {
            Ok(crate::kpi::Settlement {
                on,
                amount_minor,
                kind: parse_column("kind", &kind)?,
            })
        })
        .collect()
}

/// Opens a dispute; `None` when the invoice already has an open one.
pub async fn open_dispute(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    invoice_id: Uuid,
    reason: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let dispute_id = Uuid::new_v4();
    let inserted = sqlx::query(
        "INSERT INTO disputes (dispute_id, tenant_id, invoice_id, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (invoice_id) WHERE resolved_at IS NULL DO NOTHING",
    )
    .bind(dispute_id)
    .bind(tenant_id)
    .bind(invoice_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok((inserted.rows_affected() == 1).then_some(dispute_id))
}

/// Resolves an open dispute of the tenant; returns (invoice, reason) or `None`.
pub async fn resolve_dispute(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    dispute_id: Uuid,
    resolution: &str,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE disputes SET resolved_at = now(), resolution = $3
         WHERE tenant_id = $1 AND dispute_id = $2 AND resolved_at IS NULL RETURNING invoice_id, reason",
    )
    .bind(tenant_id)
    .bind(dispute_id)
    .bind(resolution)
    .fetch_optional(&mut **tx)
    .await
}

pub async fn create_plan(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    debtor_id: Uuid,
    invoice_ids: &[Uuid],
    instalments: &[(NaiveDate, i64, String)],
) -> Result<Uuid, sqlx::Error> {
    let plan_id = Uuid::new_v4();
    sqlx::query("INSERT INTO payment_plans (plan_id, tenant_id, debtor_id) VALUES ($1, $2, $3)")
        .bind(plan_id)
        .bind(tenant_id)
        .bind(debtor_id)
        .execute(&mut **tx)
        .await?;
    for (seq, (due_date, amount_minor, currency)) in instalments.iter().enumerate() {
        sqlx::query("INSERT INTO plan_instalments (plan_id, seq, due_date, amount_minor, currency) VALUES ($1, $2, $3, $4, $5)")
            .bind(plan_id)
            .bind(seq as i32)
            .bind(due_date)
            .bind(amount_minor)
            .bind(currency)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("UPDATE invoices SET plan_id = $2 WHERE invoice_id = ANY($1)")
        .bind(invoice_ids)
        .bind(plan_id)
        .execute(&mut **tx)
        .await?;
    Ok(plan_id)
}

/// An invoice as the KPIs read it.
#[derive(sqlx::FromRow)]
struct ReceivableRow {
    invoice_id: Uuid,
    currency: String,
    amount_minor: i64,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    status: String,
    segment: String,
}

/// Everything the KPIs need for a tenant (and segment): receivables with their settlements,
/// and promises with their outcome.
pub async fn portfolio(
    pool: &PgPool,
    tenant_id: &str,
    segment: Option<&str>,
) -> Result<(Vec<crate::kpi::Receivable>, Vec<crate::kpi::PromiseOutcome>), sqlx::Error> {
    let rows: Vec<ReceivableRow> = sqlx::query_as(
        "SELECT i.invoice_id, i.currency, i.amount_minor, i.issue_date, i.due_date, i.status, d.segment
         FROM invoices i JOIN debtors d ON d.debtor_id = i.debtor_id
         WHERE i.tenant_id = $1 AND ($2::text IS NULL OR d.segment = $2)",
    )
    .bind(tenant_id)
    .bind(segment)
    .fetch_all(pool)
    .await?;
    let settlements: Vec<(Uuid, String, i64, NaiveDate)> = sqlx::query_as(
        "SELECT s.invoice_id, s.kind, s.amount_minor, s.on_date FROM settlements s WHERE s.tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    let mut by_invoice: HashMap<Uuid, Vec<crate::kpi::Settlement>> = HashMap::new();
    for (invoice_id, kind, amount_minor, on) in settlements {
        by_invoice
            .entry(invoice_id)
            .or_default()
            .push(crate::kpi::Settlement {
                on,
                amount_minor,
                kind: parse_column("kind", &kind)?,
            });
    }
    let receivables = rows
        .into_iter()
        .map(|row| {
            let status: InvoiceStatus = parse_column("status", &row.status)?;
            Ok(crate::kpi::Receivable {
                currency: row.currency,
                amount_minor: row.amount_minor,
                issue_date: row.issue_date,
                due_date: row.due_date,
                cancelled: status == InvoiceStatus::Cancelled,
                segment: row.segment,
                settlements: by_invoice.remove(&row.invoice_id).unwrap_or_default(),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let promises: Vec<(NaiveDate, String)> = sqlx::query_as(
        "SELECT p.promised_date, p.state FROM promises p
         JOIN invoices i ON i.invoice_id = p.invoice_id JOIN debtors d ON d.debtor_id = i.debtor_id
         WHERE p.tenant_id = $1 AND ($2::text IS NULL OR d.segment = $2)",
    )
    .bind(tenant_id)
    .bind(segment)
    .fetch_all(pool)
    .await?;
    let promises = promises
        .into_iter()
        .map(|(promised_date, state)| {
            Ok(crate::kpi::PromiseOutcome {
                promised_date,
                state: parse_column("state", &state)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((receivables, promises))
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

/// Each plan's instalments, in order.
pub async fn instalments_of(
    tx: &mut Tx<'_>,
    plan_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Instalment>>, sqlx::Error> {
    let mut by_plan: HashMap<Uuid, Vec<Instalment>> = HashMap::new();
    if plan_ids.is_empty() {
        return Ok(by_plan);
    }
    let rows: Vec<(Uuid, NaiveDate, i64, String)> = sqlx::query_as(
        "SELECT plan_id, due_date, amount_minor, currency FROM plan_instalments WHERE plan_id = ANY($1) ORDER BY plan_id, seq",
    )
    .bind(plan_ids)
    .fetch_all(&mut **tx)
    .await?;
    for (plan_id, due_date, amount_minor, currency) in rows {
        by_plan.entry(plan_id).or_default().push(Instalment {
            due_date,
            amount_minor,
            currency,
        });
    }
    Ok(by_plan)
}
