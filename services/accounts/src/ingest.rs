//! Ingestion of ERP invoice events from each tenant's `erp.invoices.v1.<tenant id>`, a batch per
//! transaction: validate, store idempotently (an event id is applied once; an older version never
//! overwrites a newer one), and queue the resulting account events in the same transaction.
//! The ERP's debtor record is authoritative for addresses: an address it replaced is retired.
//! A debtor's record is published only when it changed (most events repeat an unchanged one).
//!
//! The tenant comes from the topic, which the broker lets only that tenant's connector write: an
//! event naming another tenant, or a tenant that was never created, is parked with the reason.

use std::collections::{HashMap, HashSet};

use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::config::Topics;
use recobro_common::db;
use recobro_common::kafka::{self, BatchHandler, Failure};
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{Debtor, ErpKind, InvoiceEvent};
use crate::error::AccountsError;
use crate::events::{self, DebtorChange};
use crate::states::SettlementKind;
use crate::store::{self, NewSettlement, Tx};

pub struct InvoiceIngest {
    pub pool: PgPool,
    pub account_events_topic: String,
    /// Names the topics, so a message's topic tells its tenant.
    pub topics: Topics,
}

/// An event with the trace it arrived in.
pub type Traced = (InvoiceEvent, Option<String>);

impl BatchHandler for InvoiceIngest {
    async fn handle_batch(&self, messages: &[BorrowedMessage<'_>]) -> Result<Vec<(usize, String)>, Failure> {
        let mut rejected = Vec::new();
        let mut parsed_events = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let parsed = self.parse(message);
            match parsed {
                Ok(event) => parsed_events.push((index, (event, kafka::message_traceparent(message)))),
                Err(reason) => rejected.push((index, reason)),
            }
        }
        let tenants: Vec<&str> = parsed_events
            .iter()
            .map(|(_, (e, _))| e.tenant_id.as_str())
            .collect();
        let known: HashSet<String> = store::known_tenants(&self.pool, &tenants)
            .await
            .map_err(|err| db::failure(&err))?
            .into_iter()
            .collect();
        let mut events = Vec::with_capacity(parsed_events.len());
        for (index, traced) in parsed_events {
            if known.contains(&traced.0.tenant_id) {
                events.push(traced);
            } else {
                let reason = format!(
                    "tenant {} does not exist: create it with UpsertTenant before its ERP sends events",
                    traced.0.tenant_id
                );
                rejected.push((index, reason));
            }
        }
        self.apply(&events).await.map_err(|err| err.failure())?;
        rejected.sort_by_key(|(index, _)| *index);
        Ok(rejected)
    }
}

impl InvoiceIngest {
    /// A valid event of the tenant whose topic it came on.
    fn parse(&self, message: &BorrowedMessage<'_>) -> Result<InvoiceEvent, String> {
        let Some(topic_tenant) = self.topics.tenant_of_erp_topic(message.topic()) else {
            return Err(format!("{} is not a tenant's ERP topic", message.topic()));
        };
        let raw = pb::InvoiceEvent::decode(message.payload().unwrap_or_default())
            .map_err(|err| format!("not a recobro.v1.InvoiceEvent: {err}"))?;
        if raw.tenant_id != topic_tenant {
            return Err(format!(
                "tenant_id {:?} is not the tenant of its topic ({topic_tenant}): a connector writes only its own tenant's events",
                raw.tenant_id
            ));
        }
        InvoiceEvent::parse(&raw).map_err(|err| err.to_string())
    }

    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn apply(&self, events: &[Traced]) -> Result<(), AccountsError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let keys: Vec<(String, String)> = events
            .iter()
            .map(|(e, _)| (e.tenant_id.clone(), e.event_id.clone()))
            .collect();
        let mut fresh: HashSet<(String, String)> = store::first_time_seen(&mut tx, &keys)
            .await?
            .into_iter()
            .collect();
        let mut upserts: Vec<&Traced> = Vec::new();
        let mut applied: HashMap<&'static str, u64> = HashMap::new();
        for traced in events {
            let (event, _) = traced;
            // Seen before (or twice in this batch): no second effect.
            if !fresh.remove(&(event.tenant_id.clone(), event.event_id.clone())) {
                *applied.entry("duplicate").or_default() += 1;
                continue;
            }
            *applied.entry(event.kind.as_str()).or_default() += 1;
            if event.kind == ErpKind::Upsert {
                upserts.push(traced);
                continue;
            }
            // Keep order: what came before this event is written first.
            self.apply_upserts(&mut tx, &upserts).await?;
            upserts.clear();
            self.apply_settling(&mut tx, traced).await?;
        }
        self.apply_upserts(&mut tx, &upserts).await?;
        tx.commit().await?;
        let erp_events = &recobro_common::metrics::metrics().erp_events;
        for (kind, count) in applied {
            erp_events
                .get_or_create(&recobro_common::metrics::label("kind", kind))
                .inc_by(count);
        }
        Ok(())
    }

    async fn apply_upserts(&self, tx: &mut Tx<'_>, events: &[&Traced]) -> Result<(), AccountsError> {
        if events.is_empty() {
            return Ok(());
        }
        self.apply_debtors(tx, events).await?;
        let invoices: Vec<_> = events.iter().map(|(e, _)| &e.invoice).collect();
        let changed = store::upsert_invoices(tx, &invoices).await?;
        let traces: HashMap<Uuid, Option<String>> = events
            .iter()
            .map(|(e, trace)| (e.invoice.invoice_id, trace.clone()))
            .collect();
        events::publish_changes(tx, &changed, false, "erp", &self.account_events_topic, &traces).await?;
        tracing::debug!(
            applied = changed.len(),
            stale = events.len() - changed.len(),
            "invoices applied"
        );
        Ok(())
    }

    /// Writes the events' debtors, retires the addresses their ERP records replaced, and
    /// publishes the record of each debtor that changed (before its invoices' events, so that a
    /// consumer of both learns the record first).
    async fn apply_debtors(&self, tx: &mut Tx<'_>, events: &[&Traced]) -> Result<(), AccountsError> {
        let debtors: Vec<&Debtor> = events.iter().map(|(e, _)| &e.debtor).collect();
        let mut changed = store::upsert_debtors(tx, &debtors).await?;
        changed.extend(store::retire_replaced_points(tx, &debtors).await?);
        changed.sort();
        changed.dedup();
        if changed.is_empty() {
            return Ok(());
        }
        let traces: HashMap<Uuid, Option<String>> = events
            .iter()
            .map(|(e, trace)| (e.debtor.debtor_id, trace.clone()))
            .collect();
        events::publish_debtor_changes(
            tx,
            &changed,
            DebtorChange::Erp,
            &self.account_events_topic,
            &traces,
        )
        .await?;
        tracing::debug!(changed = changed.len(), "debtor records changed");
        Ok(())
    }

    /// PAID, CANCELLED and CREDIT_NOTE events, one at a time.
    async fn apply_settling(&self, tx: &mut Tx<'_>, traced: &Traced) -> Result<(), AccountsError> {
        self.apply_debtors(tx, &[traced]).await?;
        let (event, trace) = traced;
        let invoice_id = event.invoice.invoice_id;
        let traces = HashMap::from([(invoice_id, trace.clone())]);
        let topic = &self.account_events_topic;
        match event.kind {
            ErpKind::Upsert => Ok(()),
            ErpKind::Paid | ErpKind::Cancelled => {
                let changed = store::upsert_invoices(tx, &[&event.invoice]).await?;
                if changed.is_empty() {
                    return Ok(());
                }
                if event.kind == ErpKind::Paid
                    && let Some(state) = store::lock_invoice(tx, &event.tenant_id, invoice_id).await?
                {
                    // What the ERP says was paid in full: the rest as one payment, for the KPIs.
                    let remaining = state.invoice.amount_minor - state.settled_minor;
                    if remaining > 0 {
                        let external_id = format!("erp:{}", event.event_id);
                        let payment = NewSettlement {
                            kind: SettlementKind::Payment,
                            external_id: &external_id,
                            amount_minor: remaining,
                            currency: &state.invoice.currency,
                            on: event.occurred_on,
                        };
                        store::settle(tx, &event.tenant_id, invoice_id, &payment).await?;
                    }
                }
                let reason = if event.kind == ErpKind::Paid {
                    "payment"
                } else {
                    "erp"
                };
                events::publish_changes(tx, &changed, false, reason, topic, &traces).await?;
                Ok(())
            }
            ErpKind::CreditNote => {
                store::upsert_invoices(tx, &[&event.invoice]).await?;
                let Some(note) = &event.credit_note else {
                    return Ok(());
                };
                let credit = NewSettlement {
                    kind: SettlementKind::CreditNote,
                    external_id: &note.external_id,
                    amount_minor: note.amount_minor,
                    currency: &event.invoice.currency,
                    on: note.on,
                };
                if store::settle(tx, &event.tenant_id, invoice_id, &credit).await? {
                    events::publish_changes(tx, &[invoice_id], true, "credit_note", topic, &traces).await?;
                }
                Ok(())
            }
        }
    }
}
