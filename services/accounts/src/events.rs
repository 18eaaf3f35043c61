//! The account events accounts publishes: how an invoice change becomes an `AccountEvent`, and
//! its queueing in the outbox within the transaction that made the change.

use std::collections::HashMap;

use prost::Message as _;
use recobro_common::outbox::Queued;
use recobro_proto::v1 as pb;
use uuid::Uuid;

use crate::domain::{Debtor, Instalment, InvoiceState};
use crate::store::{self, Tx};

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
