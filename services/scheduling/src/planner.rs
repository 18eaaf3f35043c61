//! Turns account events into planned reminders: an open invoice gets the ladder, a paid or
//! cancelled one has its pending reminders cancelled.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::kafka::{self, Failure, Handler};
use recobro_common::time;
use recobro_proto::v1::{self as pb, InvoiceStatus, account_event};
use sqlx::PgPool;
use uuid::Uuid;

use recobro_common::rules::Rulebook;

use crate::ladder::{self, ContactWindow};
use crate::store;
use crate::strategy::{Arm, Facts, Strategies, Strategy};

/// An invoice change with everything checked that planning relies on.
pub struct Change {
    pub snapshot: pb::InvoiceChanged,
    pub tenant_id: String,
    pub invoice_id: Uuid,
    pub debtor_id: Uuid,
    pub status: InvoiceStatus,
    pub version: i64,
    /// Why the ladder must wait, if it must: a dispute, a promise to pay, a payment plan.
    pub hold: Option<&'static str>,
    pub due_date: chrono::NaiveDate,
    pub time_zone: Tz,
    pub country: String,
    pub region: String,
    /// What segment rules look at.
    pub debtor_kind: &'static str,
    pub segment: String,
    pub amount_minor: i64,
    pub risk: Option<i32>,
    /// A payment plan's id and instalments (due date, amount), when the invoice has one.
    pub plan: Option<(Uuid, Vec<(chrono::NaiveDate, pb::Money)>)>,
}

/// What holds an open invoice's ladder, read from its snapshot.
pub fn hold_reason(invoice: &pb::Invoice) -> Option<&'static str> {
    if invoice.disputed {
        Some("dispute")
    } else if invoice.promised_date.is_some() {
        Some("promise")
    } else if !invoice.payment_plan_id.is_empty() {
        Some("payment plan")
    } else {
        None
    }
}

impl Change {
    pub fn parse(event: &pb::AccountEvent) -> Result<Option<Change>, String> {
        let Some(account_event::Change::InvoiceChanged(changed)) = &event.change else {
            return Ok(None);
        };
        let invoice = changed
            .invoice
            .as_ref()
            .ok_or("invoice_changed.invoice is required")?;
        let debtor = changed
            .debtor
            .as_ref()
            .ok_or("invoice_changed.debtor is required")?;
        let uuid =
            |field: &str, value: &str| Uuid::parse_str(value).map_err(|_| format!("{field} is not a UUID"));
        Ok(Some(Change {
            tenant_id: invoice.tenant_id.clone(),
            invoice_id: uuid("invoice.invoice_id", &invoice.invoice_id)?,
            debtor_id: uuid("invoice.debtor_id", &invoice.debtor_id)?,
            status: InvoiceStatus::try_from(invoice.status)
                .ok()
                .filter(|status| *status != InvoiceStatus::Unspecified)
                .ok_or("invoice.status is not set")?,
            // Accounts' revision orders every kind of change; older producers only had the version.
            version: if invoice.revision > 0 {
                invoice.revision
            } else {
                invoice.version
            },
            hold: hold_reason(invoice),
            due_date: invoice
                .due_date
                .as_ref()
                .and_then(time::from_date)
                .ok_or("invoice.due_date is not a date")?,
            time_zone: debtor
                .time_zone
                .parse()
                .map_err(|_| format!("debtor.time_zone {:?} is not an IANA zone", debtor.time_zone))?,
            country: debtor.country.clone(),
            region: debtor.region.clone(),
            debtor_kind: if debtor.kind() == pb::DebtorKind::Company {
                "company"
            } else {
                "consumer"
            },
            segment: if invoice.segment.is_empty() {
                debtor.segment.clone()
            } else {
                invoice.segment.clone()
            },
            amount_minor: invoice
                .outstanding
                .as_ref()
                .or(invoice.amount.as_ref())
                .map(|m| m.amount_minor)
                .unwrap_or_default(),
            risk: debtor.risk_score,
            plan: Uuid::parse_str(&invoice.payment_plan_id).ok().map(|plan_id| {
                let instalments = invoice
                    .instalments
                    .iter()
                    .filter_map(|i| Some((i.due_date.as_ref().and_then(time::from_date)?, i.amount.clone()?)))
                    .collect();
                (plan_id, instalments)
            }),
            snapshot: changed.clone(),
        }))
    }
}

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

/// The exact schedule for a change: what the service stores and what preview shows.
pub fn schedule(
    strategies: &Strategies,
    rulebook: &Rulebook,
    window: &ContactWindow,
    change: &Change,
    forced: Option<&str>,
    now: DateTime<Utc>,
) -> Option<(String, String, Vec<ladder::Planned>)> {
    let (strategy, arm) = choose(strategies, change, forced, now)?;
    let rules = rulebook.for_debtor(&change.tenant_id, &change.country, Some(change.region.as_str()));
    let plan = ladder::plan(&arm.steps, change.due_date, change.time_zone, window, &rules, now);
    Some((strategy.id.clone(), arm.id.clone(), plan))
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
            .map_err(|err| Failure::Retry(err.to_string()))
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
        if !store::record_invoice(&mut tx, change).await? {
            tracing::info!(version = change.version, "stale invoice change ignored");
            return tx.commit().await;
        }
        if change.status == InvoiceStatus::Open
            && let Some(hold) = change.hold
        {
            // A payment plan replaces the ladder with its instalments; anything else holds all.
            let instalments = hold == "payment plan";
            let paused = store::pause_pending(&mut tx, change.invoice_id, instalments).await?;
            tracing::info!(paused, hold, "ladder paused");
            if let Some((plan_id, planned)) = change.plan.as_ref().filter(|_| instalments) {
                let rules = self.rulebook.for_debtor(
                    &change.tenant_id,
                    &change.country,
                    Some(change.region.as_str()),
                );
                for (n, (due, amount)) in planned.iter().enumerate() {
                    let fire_at =
                        ladder::instalment_fire_at(*due, change.time_zone, &self.window, &rules, now);
                    store::plan_instalment(&mut tx, change, *plan_id, n + 1, *due, amount, fire_at).await?;
                }
                tracing::info!(instalments = planned.len(), "instalment reminders planned");
            }
        } else if change.status == InvoiceStatus::Open {
            // A new plan, or the end of a pause: steps whose moment passed meanwhile are skipped
            // but for the latest, which fires at the next allowed moment.
            let Some((strategy, arm, plan)) =
                schedule(&self.strategies, &self.rulebook, &self.window, change, None, now)
            else {
                return tx.commit().await;
            };
            store::plan_reminders(&mut tx, change, &strategy, &arm, &plan, origin.as_deref()).await?;
            tracing::info!(steps = plan.len(), %strategy, %arm, "ladder planned");
        } else {
            let cancelled = store::cancel_pending(&mut tx, change.invoice_id).await?;
            tracing::info!(cancelled, status = ?change.status, "ladder stopped");
        }
        tx.commit().await
    }
}
