//! Turns account events into planned reminders: an open invoice gets the ladder, a paid or
//! cancelled one has its pending reminders cancelled.

use chrono::{DateTime, Utc};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::db;
use recobro_common::kafka::{self, Failure, Handler};
use recobro_proto::v1 as pb;
use sqlx::PgPool;

use recobro_rules::Rulebook;

use crate::change::{Change, Hold};
use crate::ladder::{self, ContactWindow};
use crate::store;
use crate::stored::InvoiceState;
use crate::strategy::{Arm, Facts, Strategies, Strategy};

pub struct Planner {
    pub pool: PgPool,
    pub window: ContactWindow,
    pub rulebook: Rulebook,
    pub strategies: Strategies,
}

/// The strategy the segment rules choose for this invoice now (or the one forced), and the
/// debtor's arm in it.
pub fn choose<'a>(
    strategies: &'a Strategies,
    change: &Change,
    forced: Option<&str>,
    now: DateTime<Utc>,
) -> Option<(&'a Strategy, &'a Arm)> {
    let strategy = match forced {
        Some(id) => strategies.get(id)?,
        None => {
            let today = now.with_timezone(&change.time_zone).date_naive();
            strategies.choose(&Facts {
                debtor_kind: change.debtor_kind,
                country: &change.country,
                segment: &change.segment,
                amount_minor: change.amount_minor,
                risk: change.risk,
                days_past_due: (today - change.due_date).num_days(),
            })
        }
    };
    Some((strategy, strategy.arm_for(change.debtor_id)))
}

/// The ladder for a change as if its invoice were open and not on hold: what the service stores
/// for an open invoice without a hold. Preview shows it for every item, ignoring holds
/// (legal holds, disputes, promises, payment plans) and instalments.
pub fn schedule<'a>(
    strategies: &'a Strategies,
    rulebook: &Rulebook,
    window: &ContactWindow,
    change: &Change,
    forced: Option<&str>,
    now: DateTime<Utc>,
) -> Option<(&'a Strategy, &'a Arm, Vec<ladder::Planned>)> {
    let (strategy, arm) = choose(strategies, change, forced, now)?;
    let rules = rulebook.for_debtor(&change.tenant_id, &change.country, Some(change.region.as_str()));
    let plan = ladder::plan(
        &arm.steps,
        strategy.escalation_grace,
        change.due_date,
        change.time_zone,
        window,
        &rules,
        now,
    );
    Some((strategy, arm, plan))
}

/// What a change does to an invoice's reminders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Open but held: pending reminders wait (a payment plan's own instalments only when the
    /// hold says so), and a payment plan's instalments are (re)planned.
    Hold(Hold),
    /// Open and not held: the ladder is planned, or resumed after a hold ends.
    Plan,
    /// Paid or cancelled: pending and paused reminders are cancelled.
    Stop,
}

pub fn effect(status: InvoiceState, hold: Option<Hold>) -> Effect {
    match (status, hold) {
        (InvoiceState::Open, Some(hold)) => Effect::Hold(hold),
        (InvoiceState::Open, None) => Effect::Plan,
        (InvoiceState::Paid | InvoiceState::Cancelled, _) => Effect::Stop,
    }
}

impl Handler for Planner {
    async fn handle(&self, message: &BorrowedMessage<'_>) -> Result<(), Failure> {
        let event = pb::AccountEvent::decode(message.payload().unwrap_or_default())
            .map_err(|err| Failure::Reject(format!("not a recobro.v1.AccountEvent: {err}")))?;
        let Some(change) = Change::parse(&event).map_err(Failure::Reject)? else {
            return Ok(());
        };
        let origin = kafka::traceparent(&tracing::Span::current());
        self.apply(&change, origin, Utc::now())
            .await
            .map_err(|err| db::failure(&err))
    }
}

impl Planner {
    #[tracing::instrument(skip_all, fields(tenant_id = %change.tenant_id, debtor_id = %change.debtor_id, invoice_id = %change.invoice_id))]
    pub async fn apply(
        &self,
        change: &Change,
        origin: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let before = store::held_status(&mut tx, change.invoice_id).await?;
        if !store::record_invoice(&mut tx, change).await? {
            tracing::info!(version = change.version, "stale invoice change ignored");
            return tx.commit().await;
        }
        // Open again after it was paid or cancelled: what closing cancelled is held (paused)
        // for planning to place again, now or when a hold lifts.
        if change.status == InvoiceState::Open
            && matches!(before, Some(InvoiceState::Paid | InvoiceState::Cancelled))
        {
            let revived = store::revive_cancelled(&mut tx, change.invoice_id).await?;
            tracing::info!(revived, "invoice open again: its ladder resumes");
        }
        match effect(change.status, change.hold) {
            Effect::Hold(hold) => {
                let keep_instalments = !hold.holds_instalments();
                let paused = store::pause_pending(&mut tx, change.invoice_id, keep_instalments).await?;
                tracing::info!(paused, hold = hold.as_str(), "ladder paused");
                if let Some((plan_id, planned)) = change.plan.as_ref().filter(|_| keep_instalments) {
                    let rules = self.rulebook.for_debtor(
                        &change.tenant_id,
                        &change.country,
                        Some(change.region.as_str()),
                    );
                    // Also what resumes instalments a legal hold paused: they go back to pending.
                    for (n, (due, amount)) in planned.iter().enumerate() {
                        let fire_at =
                            ladder::instalment_fire_at(*due, change.time_zone, &self.window, &rules, now);
                        store::plan_instalment(&mut tx, change, *plan_id, n + 1, *due, amount, fire_at)
                            .await?;
                    }
                    tracing::info!(instalments = planned.len(), "instalment reminders planned");
                }
            }
            Effect::Plan => {
                // A new plan, or the end of a pause: steps whose moment passed meanwhile are
                // skipped but for the latest, which fires at the next allowed moment.
                let Some((strategy, arm, plan)) =
                    schedule(&self.strategies, &self.rulebook, &self.window, change, None, now)
                else {
                    return tx.commit().await;
                };
                store::plan_reminders(&mut tx, change, strategy, &arm.id, &plan, origin.as_deref()).await?;
                tracing::info!(steps = plan.len(), strategy = %strategy.id, arm = %arm.id, "ladder planned");
            }
            Effect::Stop => {
                let cancelled = store::cancel_pending(&mut tx, change.invoice_id).await?;
                tracing::info!(cancelled, status = ?change.status, "ladder stopped");
            }
        }
        tx.commit().await
    }
}

#[cfg(test)]
mod change_properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legal_hold_pauses_instalments_too_and_its_end_resumes_the_ladder() {
        let held = effect(InvoiceState::Open, Some(Hold::LegalHold));
        assert_eq!(held, Effect::Hold(Hold::LegalHold));
        assert!(Hold::LegalHold.holds_instalments(), "no instalment is kept");
        // The snapshot that lifts it plans again, as when a dispute is resolved.
        assert_eq!(effect(InvoiceState::Open, None), Effect::Plan);
        assert_eq!(
            effect(InvoiceState::Open, Some(Hold::PaymentPlan)),
            Effect::Hold(Hold::PaymentPlan)
        );
    }

    #[test]
    fn a_settled_invoice_stops_whatever_holds_it() {
        for status in [InvoiceState::Paid, InvoiceState::Cancelled] {
            assert_eq!(effect(status, Some(Hold::LegalHold)), Effect::Stop);
            assert_eq!(effect(status, None), Effect::Stop);
        }
    }
}
