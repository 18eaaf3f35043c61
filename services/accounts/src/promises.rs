//! Promises to pay are judged automatically once their date (plus grace) has come: kept if the
//! payments cover them, broken otherwise (and a collector gets a work item). Either way
//! collection resumes or stops accordingly. Claimed-paid holds that ended unconfirmed are
//! lifted on the same round, so the ladder resumes where it was.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::domain::InvoiceState;
use crate::error::AccountsError;
use crate::events;
use crate::kpi::{self, PromiseState};
use crate::listening;
use crate::listening::amounts::PromisedAmount;
use crate::states::{InvoiceStatus, WorkKind};
use crate::store;

pub struct PromiseJudge {
    pub pool: PgPool,
    pub account_events_topic: String,
    pub every: Duration,
    /// How soon a collector should look at a broken promise.
    pub broken_promise_sla: Duration,
}

impl PromiseJudge {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let today = chrono::Utc::now().date_naive();
            if let Err(err) = self.judge_due(today).await {
                tracing::warn!(error = %err, "judging promises failed, will try again");
            }
            if let Err(err) = self.lift_expired_claims(today).await {
                tracing::warn!(error = %err, "lifting claimed-paid holds failed, will try again");
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// Judges every open promise due by `today`; returns how many were decided.
    pub async fn judge_due(&self, today: chrono::NaiveDate) -> Result<usize, AccountsError> {
        let mut tx = self.pool.begin().await?;
        let mut decided = 0;
        for promise in store::promises_to_judge(&mut tx, today, 500).await? {
            let store::OpenPromise {
                promise_id,
                invoice_id,
                made_on,
                promised_date,
                amount_minor: amount,
                grace_days: grace,
            } = promise;
            let settlements = store::settlements_of(&mut tx, invoice_id).await?;
            let state = kpi::judge_promise(
                made_on,
                promised_date,
                amount,
                i64::from(grace),
                &settlements,
                today,
            );
            let reason = match state {
                PromiseState::Kept => "promise_kept",
                PromiseState::Broken => "promise_broken",
                PromiseState::Open | PromiseState::Cancelled => continue,
            };
            store::decide_promise(&mut tx, promise_id, state).await?;
            // The promise's invoice is always there: a promise references it.
            if state == PromiseState::Broken
                && let Some((tenant_id, debtor_id)) = store::debtor_of_invoice(&mut tx, invoice_id).await?
            {
                let now = chrono::Utc::now();
                store::insert_work_item(
                    &mut tx,
                    &store::NewWorkItem {
                        tenant_id: &tenant_id,
                        kind: WorkKind::BrokenPromise,
                        debtor_id,
                        invoice_ids: &[invoice_id],
                        response_id: None,
                        promise_id: Some(promise_id),
                        escalation_id: None,
                        reply_text: "",
                        reason: &format!("the promise to pay by {promised_date} was not kept"),
                        created_at: now,
                        due_at: listening::due_after(now, self.broken_promise_sla),
                    },
                )
                .await?;
            }
            events::publish_changes(
                &mut tx,
                &[invoice_id],
                true,
                reason,
                &self.account_events_topic,
                &HashMap::new(),
            )
            .await?;
            tracing::info!(%promise_id, %invoice_id, state = state.as_str(), "promise judged");
            decided += 1;
        }
        tx.commit().await?;
        Ok(decided)
    }

    /// Lifts the claimed-paid holds that ended before `today` with no payment recorded (a paid
    /// invoice has none left); returns how many invoices resume.
    pub async fn lift_expired_claims(&self, today: chrono::NaiveDate) -> Result<usize, AccountsError> {
        let mut tx = self.pool.begin().await?;
        let lifted = store::lift_expired_claims(&mut tx, today, 500).await?;
        events::publish_changes(
            &mut tx,
            &lifted,
            true,
            "claimed_paid_expired",
            &self.account_events_topic,
            &HashMap::new(),
        )
        .await?;
        tx.commit().await?;
        if !lifted.is_empty() {
            tracing::info!(
                invoices = lifted.len(),
                "claimed-paid holds ended unconfirmed: ladders resume"
            );
        }
        Ok(lifted.len())
    }
}

/// Records a promise for `date` on each of `invoice_ids` that is open, still owes something and
/// passes `takes` (a reply's promise skips disputed invoices); an earlier open promise on it is
/// replaced. The amount is what it still owes, unless `amount_in` reads one for the invoice's
/// currency: a share of what each owes, or a sum spread over the oldest first (an invoice it
/// does not reach gets no promise, and its ladder goes on). Returns the invoices promised.
pub(crate) async fn promise_what_is_owed(
    tx: &mut store::Tx<'_>,
    tenant_id: &str,
    invoice_ids: &[uuid::Uuid],
    date: chrono::NaiveDate,
    grace_days: i32,
    takes: impl Fn(&InvoiceState) -> bool,
    amount_in: impl Fn(&str) -> Option<PromisedAmount>,
) -> Result<Vec<uuid::Uuid>, AccountsError> {
    let mut promised = Vec::new();
    let mut states = store::invoice_states(tx, Some(tenant_id), invoice_ids).await?;
    states.sort_by_key(|state| (state.invoice.due_date, state.invoice.invoice_id));
    // What is left of a promised sum, by currency.
    let mut left: HashMap<String, i64> = HashMap::new();
    let mut sum_currency: Option<String> = None;
    for state in states {
        let outstanding = state.outstanding_minor();
        if state.invoice.status != InvoiceStatus::Open || outstanding == 0 || !takes(&state) {
            continue;
        }
        let currency = &state.invoice.currency;
        let amount_minor = match amount_in(currency) {
            None => outstanding,
            Some(PromisedAmount::Share(percent)) => {
                i64::try_from(i128::from(outstanding) * i128::from(percent) / 100)
                    .unwrap_or(outstanding)
                    .max(1)
            }
            // A sum is in the currency of the oldest invoice it reaches; invoices in another
            // currency get none (the debtor named one sum, not one per currency).
            Some(PromisedAmount::Minor(sum)) => {
                let currency_of_sum = sum_currency.get_or_insert_with(|| currency.clone());
                if currency_of_sum != currency {
                    continue;
                }
                let left = left.entry(currency.clone()).or_insert(sum);
                let take = (*left).min(outstanding);
                *left -= take;
                take
            }
        };
        if amount_minor == 0 {
            continue;
        }
        let amount = recobro_proto::v1::Money {
            amount_minor,
            currency: currency.clone(),
        };
        store::insert_promise(tx, tenant_id, state.invoice.invoice_id, date, &amount, grace_days).await?;
        promised.push(state.invoice.invoice_id);
    }
    Ok(promised)
}
