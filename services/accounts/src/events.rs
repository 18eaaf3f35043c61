//! The account events accounts publishes: how an invoice, debtor or tenant change becomes an
//! `AccountEvent`, and its queueing in the outbox within the transaction that made the change.
//! Keys: the debtor id for invoice and debtor changes (one partition keeps a debtor's events in
//! order), the tenant id for tenant changes.

use std::collections::HashMap;

use prost::Message as _;
use recobro_common::outbox::Queued;
use recobro_proto::v1 as pb;
use uuid::Uuid;

use crate::domain::{Contact, Debtor, Instalment, InvoiceState, LegalHold};
use crate::states::TenantRole;
use crate::store::{self, Tx};

/// What changed a debtor's record: `DebtorChanged.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebtorChange {
    /// An ERP event changed the debtor or its addresses.
    Erp,
    /// `UpsertDebtor`.
    Api,
    /// `BulkImport` (the CSV import).
    Import,
    /// `SetConsent`.
    Consent,
    /// An opt-out channels received (channel.responses.v1).
    OptOut,
    /// `SetLegalHold`.
    LegalHold,
    /// Published once for a debtor stored before records were published (see `backfill`).
    Backfill,
}

impl DebtorChange {
    pub fn as_str(self) -> &'static str {
        match self {
            DebtorChange::Erp => "erp",
            DebtorChange::Api => "api",
            DebtorChange::Import => "import",
            DebtorChange::Consent => "consent",
            DebtorChange::OptOut => "opt_out",
            DebtorChange::LegalHold => "legal_hold",
            DebtorChange::Backfill => "backfill",
        }
    }
}

/// Bumps each debtor's revision and queues a `DebtorChanged` with its whole record, in `tx`.
/// The revision is bumped before the record is read: the bump locks the debtor, so of two
/// changes to one debtor the later revision always carries the later record.
pub async fn publish_debtor_changes(
    tx: &mut Tx<'_>,
    debtor_ids: &[Uuid],
    change: DebtorChange,
    topic: &str,
    traceparents: &HashMap<Uuid, Option<String>>,
) -> Result<(), sqlx::Error> {
    if debtor_ids.is_empty() {
        return Ok(());
    }
    // One event per debtor, in a stable order.
    let mut ids = debtor_ids.to_vec();
    ids.sort();
    ids.dedup();
    let revisions = store::bump_debtor_revisions(tx, &ids).await?;
    let debtors = store::debtors_by_id(tx, &ids).await?;
    let mut queued: Vec<Queued> = Vec::with_capacity(ids.len());
    for id in &ids {
        let (Some(debtor), Some(revision)) = (debtors.get(id), revisions.get(id)) else {
            continue;
        };
        let event = debtor_changed(debtor, *revision, change);
        let traceparent = traceparents
            .get(id)
            .cloned()
            .unwrap_or_else(|| recobro_common::kafka::traceparent(&tracing::Span::current()));
        queued.push((
            topic.to_string(),
            id.to_string(),
            event.encode_to_vec(),
            traceparent,
        ));
    }
    store::enqueue_events(tx, &queued).await
}

/// After a change to whom a debtor may be contacted (consent, opt-out, legal hold, the API's
/// record): the debtor's record, then every open invoice again (their snapshots carry the
/// debtor's routes and hold), so that scheduling follows. `invoice_reason` is the invoices';
/// `traceparent` the trace the change arrived in (`None`: the current span's).
pub async fn publish_debtor_and_open_invoices(
    tx: &mut Tx<'_>,
    debtor_id: Uuid,
    change: DebtorChange,
    invoice_reason: &str,
    topic: &str,
    traceparent: Option<String>,
) -> Result<(), sqlx::Error> {
    let traceparent = traceparent.or_else(|| recobro_common::kafka::traceparent(&tracing::Span::current()));
    let debtor_trace = HashMap::from([(debtor_id, traceparent.clone())]);
    publish_debtor_changes(tx, &[debtor_id], change, topic, &debtor_trace).await?;
    let open = store::open_invoice_ids(tx, debtor_id).await?;
    let invoice_traces: HashMap<Uuid, Option<String>> =
        open.iter().map(|id| (*id, traceparent.clone())).collect();
    publish_changes(tx, &open, true, invoice_reason, topic, &invoice_traces).await
}

/// A debtor's record after a change: the debtor (with the routes that may be used now), every
/// contact with every point (withdrawn and retired ones too) and the standing hold.
pub fn debtor_changed(debtor: &Debtor, revision: i64, change: DebtorChange) -> pb::AccountEvent {
    pb::AccountEvent {
        event_id: Uuid::new_v4().to_string(),
        tenant_id: debtor.tenant_id.clone(),
        debtor_id: debtor.debtor_id.to_string(),
        occurred_at: Some(recobro_common::time::timestamp(chrono::Utc::now())),
        change: Some(pb::account_event::Change::DebtorChanged(pb::DebtorChanged {
            debtor: Some(debtor.to_proto()),
            contacts: debtor.contacts.iter().map(Contact::to_proto).collect(),
            legal_hold: debtor.legal_hold.as_ref().map(LegalHold::to_proto),
            revision,
            reason: change.as_str().to_string(),
        })),
    }
}

/// Queues a `TenantChanged` with the tenant's role as it is now, in `tx`.
pub async fn publish_tenant_change(
    tx: &mut Tx<'_>,
    tenant_id: &str,
    role: TenantRole,
    topic: &str,
) -> Result<(), sqlx::Error> {
    let event = tenant_changed(tenant_id, role);
    let traceparent = recobro_common::kafka::traceparent(&tracing::Span::current());
    store::enqueue_events(
        tx,
        &[(
            topic.to_string(),
            tenant_id.to_string(),
            event.encode_to_vec(),
            traceparent,
        )],
    )
    .await
}

/// A tenant as it is now: no debtor, keyed by the tenant.
pub fn tenant_changed(tenant_id: &str, role: TenantRole) -> pb::AccountEvent {
    pb::AccountEvent {
        event_id: Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_string(),
        debtor_id: String::new(),
        occurred_at: Some(recobro_common::time::timestamp(chrono::Utc::now())),
        change: Some(pb::account_event::Change::TenantChanged(pb::TenantChanged {
            role: pb::TenantRole::from(role) as i32,
        })),
    }
}

/// Bumps each invoice's revision (unless the batch upsert did already) and queues an
/// `InvoiceChanged` with its full state, so consumers can act on the snapshot alone. The
/// events are queued in `tx`: they are published if and only if the change commits.
pub async fn publish_changes(
    tx: &mut Tx<'_>,
    invoice_ids: &[Uuid],
    bump: bool,
    reason: &str,
    topic: &str,
    traceparents: &HashMap<Uuid, Option<String>>,
) -> Result<(), sqlx::Error> {
    if invoice_ids.is_empty() {
        return Ok(());
    }
    if bump {
        store::bump_revisions(tx, invoice_ids).await?;
    }
    let states = store::invoice_states(tx, None, invoice_ids).await?;
    let debtor_ids: Vec<Uuid> = states.iter().map(|s| s.invoice.debtor_id).collect();
    let debtors = store::debtors_by_id(tx, &debtor_ids).await?;
    let plan_ids: Vec<Uuid> = states.iter().filter_map(|s| s.plan_id).collect();
    let instalments = store::instalments_of(tx, &plan_ids).await?;
    let mut queued: Vec<Queued> = Vec::with_capacity(states.len());
    for mut state in states {
        let Some(debtor) = debtors.get(&state.invoice.debtor_id) else {
            continue;
        };
        state.segment = debtor.segment.clone();
        let plan = state
            .plan_id
            .and_then(|plan| instalments.get(&plan))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let event = invoice_changed(&state, debtor, plan, reason);
        let traceparent = traceparents
            .get(&state.invoice.invoice_id)
            .cloned()
            .unwrap_or_else(|| recobro_common::kafka::traceparent(&tracing::Span::current()));
        queued.push((
            topic.to_string(),
            debtor.debtor_id.to_string(),
            event.encode_to_vec(),
            traceparent,
        ));
    }
    store::enqueue_events(tx, &queued).await
}

/// An invoice's snapshot after a change: the invoice with its plan, and its debtor.
pub fn invoice_changed(
    state: &InvoiceState,
    debtor: &Debtor,
    instalments: &[Instalment],
    reason: &str,
) -> pb::AccountEvent {
    pb::AccountEvent {
        event_id: Uuid::new_v4().to_string(),
        tenant_id: state.invoice.tenant_id.clone(),
        debtor_id: debtor.debtor_id.to_string(),
        occurred_at: Some(recobro_common::time::timestamp(chrono::Utc::now())),
        change: Some(pb::account_event::Change::InvoiceChanged(pb::InvoiceChanged {
            invoice: Some(pb::Invoice {
                instalments: instalments.iter().map(Instalment::to_proto).collect(),
                ..state.to_proto()
            }),
            debtor: Some(debtor.to_proto()),
            reason: reason.to_string(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use recobro_common::Channel;

    use super::*;
    use crate::domain::{Contact, Point, Retirement};
    use crate::states::{Consent, ContactRole, DebtorKind};

    fn at(seconds: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(seconds, 0).expect("a time")
    }

    fn debtor() -> Debtor {
        let point = |n: u128, consent: Consent, retired: bool| Point {
            point_id: Uuid::from_u128(n),
            channel: Channel::Email,
            address: format!("ap{n}@riverside.example"),
            consent,
            source: "erp".into(),
            consent_at: Some(at(1_790_000_000)),
            preferred: n == 1,
            retired: retired.then(|| Retirement {
                at: at(1_790_000_100),
                reason: "replaced by the ERP record".into(),
            }),
        };
        Debtor {
            debtor_id: Uuid::from_u128(9),
            tenant_id: "acme".into(),
            external_id: "C-1".into(),
            name: "Riverside Supplies LLC".into(),
            kind: DebtorKind::Company,
            time_zone: "America/New_York".into(),
            locale: "en-US".into(),
            country: "US".into(),
            email: Some("ap1@riverside.example".into()),
            phone: None,
            region: None,
            segment: String::new(),
            risk_score: None,
            contacts: vec![Contact {
                contact_id: Uuid::from_u128(8),
                name: "Accounts payable".into(),
                role: ContactRole::AccountsPayable,
                points: vec![
                    point(1, Consent::Granted, false),
                    point(2, Consent::Withdrawn, false),
                    point(3, Consent::Granted, true),
                ],
            }],
            legal_hold: Some(LegalHold {
                reason: "served in lawsuit 2026-123".into(),
                source: "court notice".into(),
                since: at(1_790_000_200),
            }),
        }
    }

    #[test]
    fn a_debtor_change_carries_the_whole_record_and_its_revision() {
        let event = debtor_changed(&debtor(), 7, DebtorChange::OptOut);
        assert_eq!(event.tenant_id, "acme");
        assert_eq!(event.debtor_id, Uuid::from_u128(9).to_string());
        assert!(Uuid::parse_str(&event.event_id).is_ok());
        assert!(event.occurred_at.is_some());
        let Some(pb::account_event::Change::DebtorChanged(changed)) = event.change else {
            panic!("a debtor change")
        };
        assert_eq!((changed.revision, changed.reason.as_str()), (7, "opt_out"));
        let record = changed.debtor.expect("debtor");
        assert!(record.legal_hold);
        assert_eq!(record.routes.len(), 1, "only the usable point is a route");
        let points = &changed.contacts[0].points;
        assert_eq!(points.len(), 3, "withdrawn and retired points too");
        assert_eq!(points[1].consent(), pb::Consent::Withdrawn);
        assert_eq!(points[2].retired_reason, "replaced by the ERP record");
        let hold = changed.legal_hold.expect("the standing hold");
        assert_eq!(
            (hold.reason.as_str(), hold.source.as_str()),
            ("served in lawsuit 2026-123", "court notice")
        );
        assert_eq!(hold.since.map(|t| t.seconds), Some(1_790_000_200));
    }

    #[test]
    fn a_tenant_change_carries_its_role_and_no_debtor() {
        let event = tenant_changed("acme", TenantRole::Agency);
        assert_eq!((event.tenant_id.as_str(), event.debtor_id.as_str()), ("acme", ""));
        let Some(pb::account_event::Change::TenantChanged(changed)) = event.change else {
            panic!("a tenant change")
        };
        assert_eq!(changed.role(), pb::TenantRole::Agency);
    }

    #[test]
    fn debtor_change_reasons_are_the_documented_names() {
        let names: Vec<&str> = [
            DebtorChange::Erp,
            DebtorChange::Api,
            DebtorChange::Import,
            DebtorChange::Consent,
            DebtorChange::OptOut,
            DebtorChange::LegalHold,
            DebtorChange::Backfill,
        ]
        .iter()
        .map(|change| change.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "erp",
                "api",
                "import",
                "consent",
                "opt_out",
                "legal_hold",
                "backfill"
            ]
        );
    }
}
