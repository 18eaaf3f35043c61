//! The collectors' work queue: list, claim, note and resolve the items replies and broken
//! promises queue. Resolving acts on the case through the same ledger changes as the other
//! calls (a claimed-paid hold lifted, a promise recorded, a dispute resolved), published like
//! any other change, and the item keeps who resolved it and how.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use recobro_common::grpc::Refusal;
use recobro_common::page::{PageRequest, parse_time_id_key, time_id_key};
use recobro_common::time;
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain;
use crate::error::AccountsError;
use crate::events;
use crate::promises;
use crate::states::{InvoiceStatus, WorkKind, WorkOutcome, WorkState};
use crate::store::{self, WorkFilter, WorkItemRow};

/// The longest note a person may add, in characters.
const MAX_NOTE: usize = 2_000;
/// The furthest a promise a collector sets may be, as `RecordPromise` allows.
const PROMISE_HORIZON_DAYS: i64 = 120;

pub struct WorkQueue<'a> {
    pub pool: &'a PgPool,
    pub account_events_topic: &'a str,
    pub promise_grace_days: i32,
}

fn invalid(field: &str, reason: &str) -> AccountsError {
    Refusal::invalid(field, reason).into()
}

fn work_item_id(value: &str) -> Result<Uuid, AccountsError> {
    domain::uuid("work_item_id", value)
}

impl WorkQueue<'_> {
    pub async fn list(
        &self,
        tenant_id: &str,
        request: &pb::ListWorkItemsRequest,
    ) -> Result<pb::ListWorkItemsResponse, AccountsError> {
        let state = match request.state() {
            pb::WorkItemState::Unspecified => None,
            state => Some(
                WorkState::try_from(state)
                    .map_err(|()| invalid("state", "is not a state this version knows"))?,
            ),
        };
        let kind = match request.kind() {
            pb::WorkItemKind::Unspecified => None,
            kind => Some(
                WorkKind::try_from(kind).map_err(|()| invalid("kind", "is not a kind this version knows"))?,
            ),
        };
        let assignee = Some(request.assignee.trim().to_string()).filter(|a| !a.is_empty());
        let due_before = request
            .due_before
            .as_ref()
            .map(|at| time::from_timestamp(at).ok_or_else(|| invalid("due_before", "is not a valid time")))
            .transpose()?;
        let query = format!(
            "ListWorkItems|{tenant_id}|{:?}|{:?}|{}|{:?}",
            state.map(WorkState::as_str),
            kind.map(WorkKind::as_str),
            assignee.as_deref().unwrap_or_default(),
            due_before.map(|at| at.timestamp_micros()),
        );
        let page = PageRequest::parse(request.page_size, &request.page_token, &query)?;
        let after = page.after_key(parse_time_id_key)?;
        let filter = WorkFilter {
            state,
            kind,
            assignee,
            due_before,
            after,
        };
        let mut tx = store::snapshot(self.pool).await?;
        let items = store::work_items(&mut tx, tenant_id, &filter, page.limit()).await?;
        tx.commit().await?;
        let (items, next_page_token) =
            page.page(items, &query, |item| time_id_key(item.due_at, item.work_item_id));
        Ok(pb::ListWorkItemsResponse {
            work_items: items.iter().map(to_proto).collect(),
            next_page_token,
        })
    }

    /// Takes an item for `who`; taking one you already hold changes nothing.
    pub async fn claim(&self, tenant_id: &str, id: &str, who: &str) -> Result<pb::WorkItem, AccountsError> {
        let id = work_item_id(id)?;
        self.change(tenant_id, id, async |tx, item| {
            match item.state {
                WorkState::Resolved => {
                    return Err(Refusal::FailedPrecondition(format!("work item {id} is resolved")).into());
                }
                WorkState::Claimed if item.assignee != who => {
                    return Err(Refusal::FailedPrecondition(format!(
                        "work item {id} is held by {}",
                        item.assignee
                    ))
                    .into());
                }
                WorkState::Claimed | WorkState::Open => {}
            }
            store::claim_work_item(tx, id, who).await?;
            Ok(())
        })
        .await
    }

    pub async fn note(
        &self,
        tenant_id: &str,
        id: &str,
        who: &str,
        text: &str,
    ) -> Result<pb::WorkItem, AccountsError> {
        let id = work_item_id(id)?;
        let text = note_text("text", text)?.ok_or_else(|| invalid("text", "is required"))?;
        self.change(tenant_id, id, async |tx, _item| {
            store::add_work_item_note(tx, id, who, &text).await?;
            Ok(())
        })
        .await
    }

    /// Closes an item with its outcome and acts on the case. Resolving again with the same
    /// outcome returns the item as it is (a retried call); with another, it is refused.
    pub async fn resolve(
        &self,
        tenant_id: &str,
        request: &pb::ResolveWorkItemRequest,
        who: &str,
    ) -> Result<pb::WorkItem, AccountsError> {
        let id = work_item_id(&request.work_item_id)?;
        let outcome = WorkOutcome::try_from(request.outcome()).map_err(|()| {
            invalid(
                "outcome",
                "is required (CONFIRMED_PAID, NOT_PAID, PROMISE_SET, ...)",
            )
        })?;
        let promised_date = match outcome {
            WorkOutcome::PromiseSet => Some(promise_date(request.promised_date.as_ref())?),
            _ => None,
        };
        let note = note_text("note", &request.note)?;
        let grace = self.promise_grace_days;
        let topic = self.account_events_topic;
        self.change(tenant_id, id, async |tx, item| {
            if item.state == WorkState::Resolved {
                if item.outcome == Some(outcome) {
                    return Ok(());
                }
                return Err(
                    Refusal::FailedPrecondition(format!("work item {id} is resolved already")).into(),
                );
            }
            let changed = act(tx, tenant_id, item, outcome, promised_date, grace, who).await?;
            events::publish_changes(tx, &changed.0, true, changed.1, topic, &HashMap::new()).await?;
            if let Some(note) = &note {
                store::add_work_item_note(tx, id, who, note).await?;
            }
            store::resolve_work_item(tx, id, outcome, who).await?;
            tracing::info!(%tenant_id, work_item_id = %id, outcome = outcome.as_str(), "work item resolved");
            Ok(())
        })
        .await
    }

    async fn change<F>(&self, tenant_id: &str, id: Uuid, change: F) -> Result<pb::WorkItem, AccountsError>
    where
        F: AsyncFnOnce(&mut store::Tx<'_>, &WorkItemRow) -> Result<(), AccountsError>,
    {
        let mut tx = self.pool.begin().await?;
        let item = store::lock_work_item(&mut tx, tenant_id, id)
            .await?
            .ok_or_else(|| Refusal::not_found(format!("work item {id}")))?;
        change(&mut tx, &item).await?;
        let item = store::lock_work_item(&mut tx, tenant_id, id)
            .await?
            .ok_or_else(|| Refusal::not_found(format!("work item {id}")))?;
        tx.commit().await?;
        Ok(to_proto(&item))
    }
}

/// What an outcome does to the item's invoices; returns those changed and why.
async fn act(
    tx: &mut store::Tx<'_>,
    tenant_id: &str,
    item: &WorkItemRow,
    outcome: WorkOutcome,
    promised_date: Option<NaiveDate>,
    grace_days: i32,
    who: &str,
) -> Result<(Vec<Uuid>, &'static str), AccountsError> {
    let invoices = &item.invoice_ids;
    Ok(match outcome {
        WorkOutcome::ConfirmedPaid => {
            let states = store::invoice_states(tx, Some(tenant_id), invoices).await?;
            if let Some(open) = states.iter().find(|s| s.invoice.status == InvoiceStatus::Open) {
                return Err(Refusal::FailedPrecondition(format!(
                    "invoice {} is still open: record the payment (RecordSettlement) first",
                    open.invoice.invoice_id
                ))
                .into());
            }
            (
                store::lift_claimed_paid(tx, invoices).await?,
                "claimed_paid_confirmed",
            )
        }
        WorkOutcome::NotPaid => (
            store::lift_claimed_paid(tx, invoices).await?,
            "claimed_paid_lifted",
        ),
        WorkOutcome::PromiseSet => {
            let date = promised_date.expect("checked with the request");
            let mut changed = store::lift_claimed_paid(tx, invoices).await?;
            changed.extend(
                promises::promise_what_is_owed(tx, tenant_id, invoices, date, grace_days, |_| true, |_| None)
                    .await?,
            );
            changed.sort();
            changed.dedup();
            (changed, "promise_made")
        }
        WorkOutcome::DisputeRejected => (
            store::resolve_disputes_of(tx, invoices, &format!("rejected by {who}")).await?,
            "dispute_resolved",
        ),
        // The dispute stays open, the invoice paused, until the ERP corrects or cancels it.
        WorkOutcome::DisputeAccepted | WorkOutcome::NoAction | WorkOutcome::NoContact => (Vec::new(), ""),
    })
}

fn promise_date(date: Option<&pb::Date>) -> Result<NaiveDate, AccountsError> {
    let date = domain::required_date("promised_date", date)?;
    let today = Utc::now().date_naive();
    if date < today {
        return Err(invalid("promised_date", "is in the past"));
    }
    if date > today + chrono::Duration::days(PROMISE_HORIZON_DAYS) {
        return Err(invalid(
            "promised_date",
            "is more than 120 days away: offer a payment plan instead",
        ));
    }
    Ok(date)
}

/// A note as given, trimmed; `None` when empty; refused when too long.
pub(crate) fn note_text(field: &str, text: &str) -> Result<Option<String>, AccountsError> {
    let text = text.trim();
    if text.chars().count() > MAX_NOTE {
        return Err(invalid(field, &format!("is longer than {MAX_NOTE} characters")));
    }
    Ok(Some(text.to_string()).filter(|text| !text.is_empty()))
}

pub fn to_proto(item: &WorkItemRow) -> pb::WorkItem {
    pb::WorkItem {
        work_item_id: item.work_item_id.to_string(),
        tenant_id: item.tenant_id.clone(),
        kind: pb::WorkItemKind::from(item.kind) as i32,
        state: pb::WorkItemState::from(item.state) as i32,
        debtor_id: item.debtor_id.to_string(),
        invoice_ids: item.invoice_ids.iter().map(Uuid::to_string).collect(),
        response_id: item.response_id.clone().unwrap_or_default(),
        reply_text: item.reply_text.clone(),
        reason: item.reason.clone(),
        created_at: Some(time::timestamp(item.created_at)),
        due_at: Some(time::timestamp(item.due_at)),
        assignee: item.assignee.clone(),
        notes: item
            .notes
            .iter()
            .map(|note| pb::WorkItemNote {
                author: note.author.clone(),
                text: note.text.clone(),
                at: Some(time::timestamp(note.at)),
            })
            .collect(),
        outcome: item
            .outcome
            .map_or(pb::WorkItemOutcome::Unspecified, pb::WorkItemOutcome::from) as i32,
        resolved_at: item.resolved_at.map(time::timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promise_set_by_a_person_must_be_soon_and_not_past() {
        let today = Utc::now().date_naive();
        let date = |days: i64| Some(time::date(today + chrono::Duration::days(days)));
        assert_eq!(
            promise_date(date(3).as_ref()).ok(),
            Some(today + chrono::Duration::days(3))
        );
        for (given, why) in [
            (date(-1), "is in the past"),
            (date(121), "more than 120 days"),
            (None, "promised_date"),
        ] {
            let err = promise_date(given.as_ref()).expect_err(why).to_string();
            assert!(err.starts_with("promised_date"), "{err}");
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn notes_are_trimmed_and_bounded() {
        assert_eq!(
            note_text("text", "  llamó, paga el lunes ")
                .expect("ok")
                .as_deref(),
            Some("llamó, paga el lunes")
        );
        assert_eq!(note_text("text", "   ").expect("ok"), None);
        let long = "x".repeat(MAX_NOTE + 1);
        assert!(
            note_text("note", &long)
                .expect_err("too long")
                .to_string()
                .starts_with("note")
        );
    }
}
