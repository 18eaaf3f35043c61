//! The timer loop: claims due reminders, re-checks the invoice, and emits `ReminderDue` (or an
//! `Escalation`) through the outbox in the same transaction that marks them emitted. A crash
//! before commit leaves them pending (emitted later, once); after commit the outbox guarantees
//! publication. Any number of replicas may run this: rows are claimed with SKIP LOCKED.

use std::time::Duration;

use prost::Message as _;
use recobro_common::metrics::{label, metrics};
use recobro_common::outbox::{self, Queued};
use recobro_common::{kafka, time};
use recobro_proto::v1::{self as pb};
use recobro_rules::Channel;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::change::Hold;
use crate::statement;
use crate::store::{self, DueReminder};
use crate::stored::{self, EscalationKind, InvoiceState, ReminderAction, ReminderState};

/// How often the due-but-not-fired gauge is measured, and where its count stops (a count over
/// a month-end backlog would cost more than the figure is worth).
const DUE_EVERY: Duration = Duration::from_secs(5);
const DUE_COUNT_CAP: i64 = 100_000;
/// How long a loop waits after a batch that was not full. While reminders are falling due the
/// wait is lateness for each one due meanwhile, so it is short: with the idle pause there,
/// reminders falling due at 1,000 a second left scheduling 229 ms late at p99, with this one
/// 53 ms (docs/benchmarks.md, steady state). When nothing was due, an empty claim is a wasted
/// transaction, so the wait is longer.
const BUSY_PAUSE: Duration = Duration::from_millis(20);
const IDLE_PAUSE: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct Timers {
    pub pool: PgPool,
    pub reminders_topic: String,
    pub escalations_topic: String,
    pub batch: i64,
    /// How long a reminder that may join a statement waits after its moment before it is
    /// claimed: the debtor's other invoices of the same ERP import are planned meanwhile (each
    /// invoice change is planned on its own), so one statement covers them all.
    pub statement_gather: chrono::Duration,
}

impl Timers {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut measured = std::time::Instant::now() - DUE_EVERY;
        while !shutdown.is_cancelled() {
            if measured.elapsed() >= DUE_EVERY {
                measured = std::time::Instant::now();
                match store::count_due(&self.pool, DUE_COUNT_CAP).await {
                    Ok(due) => {
                        metrics()
                            .timers_due
                            .get_or_create(&label("state", "pending"))
                            .set(due);
                    }
                    Err(err) => tracing::warn!(error = %err, "counting due reminders failed"),
                }
            }
            let pause = match self.fire_due().await {
                Ok(fired) if fired as i64 >= self.batch => Duration::ZERO,
                Ok(fired) if fired > 0 => BUSY_PAUSE,
                Ok(_) => IDLE_PAUSE,
                Err(err) => {
                    tracing::warn!(error = %err, "firing due reminders failed, retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One batch; returns how many reminders were claimed.
    pub async fn fire_due(&self) -> Result<usize, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut due = store::claim_due(&mut tx, self.batch, self.statement_gather).await?;
        let claimed = due.len();
        let now = chrono::Utc::now();
        let lateness = &metrics().timer_lateness_seconds;
        for reminder in &due {
            let late = (now - reminder.fire_at).num_milliseconds().max(0) as f64 / 1000.0;
            lateness
                .get_or_create(&label("action", reminder.action.as_str()))
                .observe(late);
        }
        // A debtor with a reminder due now that may join a statement: the rest of their day's
        // reminders join it (see `statement`).
        let days = window_ends(&due, now);
        let ids: Vec<uuid::Uuid> = due.iter().map(|r| r.reminder_id).collect();
        due.extend(store::claim_same_day(&mut tx, &days, &ids).await?);
        let escalated: Vec<uuid::Uuid> = due
            .iter()
            .filter(|r| matches!(r.action, ReminderAction::Escalate(_)))
            .map(|r| r.invoice_id)
            .collect();
        let messages = store::messages_of(&mut tx, &escalated).await?;
        let mut postponed = Vec::new();
        let mut emitted = Vec::new();
        let mut cancelled = Vec::new();
        let mut paused = Vec::new();
        let mut queued: Vec<Queued> = Vec::with_capacity(due.len());
        // Message reminders that may go out in a statement, keyed by debtor and first route.
        let mut statement_members = Vec::new();
        for reminder in &due {
            if reminder.invoice_status != InvoiceState::Open {
                cancelled.push(reminder.reminder_id);
                continue;
            }
            let snapshot = match pb::InvoiceChanged::decode(reminder.snapshot.as_slice()) {
                Ok(snapshot) => snapshot,
                Err(err) => {
                    tracing::error!(reminder_id = %reminder.reminder_id, error = %err, "stored snapshot unreadable, reminder cancelled");
                    cancelled.push(reminder.reminder_id);
                    continue;
                }
            };
            // Re-checked right before emitting: a legal hold, dispute or promise that arrived
            // since holds it.
            if let Some(hold) = held(reminder.action, &snapshot) {
                tracing::info!(reminder_id = %reminder.reminder_id, hold = hold.as_str(), "reminder held");
                paused.push(reminder.reminder_id);
                continue;
            }
            if matches!(reminder.action, ReminderAction::Escalate(_)) {
                let of_invoice = messages
                    .iter()
                    .filter(|(invoice_id, _)| *invoice_id == reminder.invoice_id)
                    .map(|(_, message)| *message);
                if let Some(not_before) = escalation_waits(of_invoice, reminder.escalation_grace, now) {
                    tracing::info!(reminder_id = %reminder.reminder_id, %not_before, "escalation waits for the grace after the last message");
                    postponed.push((reminder.reminder_id, not_before));
                    continue;
                }
            }
            if reminder.consolidate && reminder.action == ReminderAction::Message {
                let debtor = snapshot.debtor.clone().unwrap_or_default();
                let route = routes(reminder, &debtor).into_iter().next().unwrap_or_default();
                statement_members.push(((reminder.debtor_id, route), (reminder, snapshot)));
                continue;
            }
            let debtor_id = snapshot
                .invoice
                .as_ref()
                .map(|i| i.debtor_id.clone())
                .unwrap_or_default();
            // Days may pass between the invoice event and this moment: a new trace, linked to it.
            let span = tracing::info_span!(parent: None, "reminder.fire", reminder_id = %reminder.reminder_id, debtor_id = %debtor_id, step = %reminder.step);
            if let Some(origin) = &reminder.origin_traceparent {
                use opentelemetry::trace::TraceContextExt as _;
                let origin = kafka::context_from_traceparent(origin);
                span.add_link(origin.span().span_context().clone());
            }
            let traceparent = kafka::traceparent(&span);
            let (topic, payload) = match reminder.action {
                ReminderAction::Escalate(kind) => (
                    &self.escalations_topic,
                    escalation(reminder, kind, snapshot).encode_to_vec(),
                ),
                ReminderAction::Message | ReminderAction::Instalment => (
                    &self.reminders_topic,
                    reminder_due(reminder, snapshot).encode_to_vec(),
                ),
            };
            queued.push((topic.clone(), debtor_id, payload, traceparent));
            span.in_scope(|| tracing::debug!(action = %reminder.action, "reminder due"));
            emitted.push(reminder.reminder_id);
        }
        for mut members in statement::group(statement_members) {
            // Only reminders of the same day that no reminder due now goes with: they keep
            // their own moment.
            if members.iter().all(|(reminder, _)| reminder.fire_at > now) {
                continue;
            }
            emitted.extend(members.iter().map(|(reminder, _)| reminder.reminder_id));
            let (reminder, snapshot) = match members.as_slice() {
                [single] => (single.0, single.1.clone()),
                _ => {
                    members.sort_by_key(|(_, snapshot)| covered_order(snapshot));
                    let due = statement_due(&members);
                    let span = tracing::info_span!(parent: None, "statement.fire", reminder_id = %due.reminder_id, debtor_id = %due.debtor_id, covered = due.covered.len());
                    let traceparent = kafka::traceparent(&span);
                    span.in_scope(|| tracing::debug!("statement due"));
                    queued.push((
                        self.reminders_topic.clone(),
                        due.debtor_id.clone(),
                        due.encode_to_vec(),
                        traceparent,
                    ));
                    continue;
                }
            };
            let span = tracing::info_span!(parent: None, "reminder.fire", reminder_id = %reminder.reminder_id, debtor_id = %reminder.debtor_id, step = %reminder.step);
            if let Some(origin) = &reminder.origin_traceparent {
                use opentelemetry::trace::TraceContextExt as _;
                let origin = kafka::context_from_traceparent(origin);
                span.add_link(origin.span().span_context().clone());
            }
            let traceparent = kafka::traceparent(&span);
            queued.push((
                self.reminders_topic.clone(),
                reminder.debtor_id.to_string(),
                reminder_due(reminder, snapshot).encode_to_vec(),
                traceparent,
            ));
        }
        outbox::enqueue_many(&mut tx, &queued).await?;
        store::mark(&mut tx, &emitted, ReminderState::Emitted).await?;
        store::mark(&mut tx, &cancelled, ReminderState::Cancelled).await?;
        store::mark(&mut tx, &paused, ReminderState::Paused).await?;
        store::postpone(&mut tx, &postponed).await?;
        tx.commit().await?;
        if !emitted.is_empty() {
            tracing::info!(emitted = emitted.len(), "reminders due");
        }
        Ok(claimed)
    }
}

/// For each debtor with a reminder due now that may join a statement, the end of its window
/// (their local day, or the strategy's wider window): the statement takes in the reminders due
/// before it.
fn window_ends(
    due: &[DueReminder],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>)> {
    let mut ends: Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>)> = Vec::new();
    for reminder in due {
        if !reminder.consolidate
            || reminder.action != ReminderAction::Message
            || ends.iter().any(|(debtor, _)| *debtor == reminder.debtor_id)
        {
            continue;
        }
        let zone = pb::InvoiceChanged::decode(reminder.snapshot.as_slice())
            .ok()
            .and_then(|snapshot| snapshot.debtor)
            .and_then(|debtor| debtor.time_zone.parse::<chrono_tz::Tz>().ok());
        if let Some(end) = zone.and_then(|zone| statement::end_of_window(now, zone, reminder.statement_days))
        {
            ends.push((reminder.debtor_id, end));
        }
    }
    ends
}

/// A statement's invoices in the order the debtor reads them: by due date, then number.
fn covered_order(snapshot: &pb::InvoiceChanged) -> (i32, i32, i32, String) {
    let invoice = snapshot.invoice.as_ref();
    let due = invoice.and_then(|i| i.due_date.as_ref());
    (
        due.map_or(0, |d| d.year),
        due.map_or(0, |d| d.month),
        due.map_or(0, |d| d.day),
        invoice.map(|i| i.number.clone()).unwrap_or_default(),
    )
}

/// One message covering several invoices' reminders (in the order given, the first leading:
/// its channel, fallbacks, strategy and arm). Its id comes from the covered reminders.
fn statement_due(members: &[(&DueReminder, pb::InvoiceChanged)]) -> pb::ReminderDue {
    let (lead, lead_snapshot) = &members[0];
    let ids: Vec<uuid::Uuid> = members.iter().map(|(reminder, _)| reminder.reminder_id).collect();
    let mut due = reminder_due(lead, lead_snapshot.clone());
    due.reminder_id = statement::statement_id(&ids).to_string();
    due.invoice_id = String::new();
    due.invoice = None;
    due.amount_due = None;
    due.due_date = None;
    due.covered = members
        .iter()
        .map(|(reminder, snapshot)| pb::CoveredReminder {
            reminder_id: reminder.reminder_id.to_string(),
            step: reminder.step.clone(),
            template_id: reminder.template_id.clone(),
            invoice: snapshot.invoice.clone(),
        })
        .collect();
    due
}

/// When an escalation may fire, if not now: `grace` after the last message of its invoice left
/// for channels, and after each message still to fire within the grace (the final notice the
/// rules deferred to tomorrow goes first). The plan spaced them already; this holds at fire
/// time whatever deferrals, holds and replans did since.
fn escalation_waits(
    messages: impl Iterator<Item = store::Message>,
    grace: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let horizon = now.checked_add_signed(grace)?;
    messages
        .filter_map(|message| match message {
            store::Message::Emitted(at) => Some(at),
            store::Message::Pending(at) if at <= horizon => Some(at),
            store::Message::Pending(_) => None,
        })
        .filter_map(|at| at.checked_add_signed(grace))
        .max()
        .filter(|not_before| *not_before > now)
}

/// What holds a reminder now, by the invoice's latest snapshot. A payment plan holds the
/// ladder, not its own instalment reminders; a legal hold holds them all.
fn held(action: ReminderAction, snapshot: &pb::InvoiceChanged) -> Option<Hold> {
    Hold::of(snapshot).filter(|hold| hold.holds_instalments() || action != ReminderAction::Instalment)
}

/// The first of the step's channels the debtor can be reached on, to the first of its roles
/// that has a contact point there; else the first channel, to the debtor's primary address.
/// Every reachable (channel, role, address) for the step, in the step's order of channels.
fn routes(reminder: &DueReminder, debtor: &pb::Debtor) -> Vec<(Option<Channel>, String, String)> {
    let mut found = Vec::new();
    for &channel in &reminder.channels {
        let on_channel = |route: &&pb::ContactRoute| Channel::try_from(route.channel()) == Ok(channel);
        let mut candidates: Vec<&pb::ContactRoute> = debtor.routes.iter().filter(on_channel).collect();
        candidates.sort_by_key(|route| {
            let rank = reminder
                .roles
                .iter()
                .position(|role| *role == route.role)
                .unwrap_or(reminder.roles.len());
            (rank, !route.preferred)
        });
        if let Some(best) = candidates.first() {
            found.push((Some(channel), best.role.clone(), best.address.clone()));
            continue;
        }
        // Snapshots from before contact routes carry only the primary email and phone.
        let primary = if channel.uses_phone() {
            &debtor.phone
        } else {
            &debtor.email
        };
        if debtor.routes.is_empty() && !primary.is_empty() {
            found.push((Some(channel), String::new(), primary.clone()));
        }
    }
    if found.is_empty() {
        found.push((reminder.channel, String::new(), String::new()));
    }
    found
}

fn reminder_due(reminder: &DueReminder, snapshot: pb::InvoiceChanged) -> pb::ReminderDue {
    let invoice = snapshot.invoice.unwrap_or_default();
    let debtor = snapshot.debtor.unwrap_or_default();
    let mut routes = routes(reminder, &debtor).into_iter();
    let (channel, contact_role, recipient) = routes.next().unwrap_or_default();
    let fallbacks = routes
        .map(|(channel, contact_role, recipient)| pb::Fallback {
            channel: stored::channel_on_wire(channel) as i32,
            contact_role,
            recipient,
        })
        .collect();
    pb::ReminderDue {
        reminder_id: reminder.reminder_id.to_string(),
        tenant_id: invoice.tenant_id.clone(),
        debtor_id: invoice.debtor_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        step: reminder.step.clone(),
        channel: stored::channel_on_wire(channel) as i32,
        template_id: reminder.template_id.clone(),
        due_at: Some(time::timestamp(reminder.fire_at)),
        debtor: Some(debtor),
        invoice: Some(invoice),
        strategy_id: reminder.strategy_id.clone(),
        arm: reminder.arm.clone(),
        contact_role,
        recipient,
        amount_due: reminder
            .amount_due
            .clone()
            .map(|(amount_minor, currency)| pb::Money {
                amount_minor,
                currency,
            }),
        due_date: reminder.due_date.map(time::date),
        fallbacks,
        // Ladder steps always use a template.
        text: String::new(),
        // Ladder steps name a contact role: channels picks its consented point from the ledger.
        point_id: String::new(),
        // One invoice's reminder; `statement_due` fills it for a statement.
        covered: Vec::new(),
    }
}

fn escalation(reminder: &DueReminder, kind: EscalationKind, snapshot: pb::InvoiceChanged) -> pb::Escalation {
    let invoice = snapshot.invoice.unwrap_or_default();
    pb::Escalation {
        escalation_id: reminder.reminder_id.to_string(),
        tenant_id: invoice.tenant_id.clone(),
        debtor_id: invoice.debtor_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        kind: kind.as_str().to_string(),
        step: reminder.step.clone(),
        strategy_id: reminder.strategy_id.clone(),
        arm: reminder.arm.clone(),
        due_at: Some(time::timestamp(reminder.fire_at)),
        debtor: snapshot.debtor,
        invoice: Some(invoice),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(channels: Vec<Channel>, roles: &[&str]) -> DueReminder {
        DueReminder {
            reminder_id: uuid::Uuid::nil(),
            debtor_id: uuid::Uuid::nil(),
            invoice_id: uuid::Uuid::nil(),
            consolidate: false,
            statement_days: 1,
            step: "overdue-1".into(),
            channel: channels.first().copied(),
            template_id: "overdue".into(),
            fire_at: chrono::Utc::now(),
            origin_traceparent: None,
            invoice_status: InvoiceState::Open,
            snapshot: Vec::new(),
            strategy_id: "standard".into(),
            arm: "champion".into(),
            action: ReminderAction::Message,
            channels,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            amount_due: None,
            due_date: None,
            escalation_grace: chrono::Duration::days(3),
        }
    }

    #[test]
    fn an_escalation_waits_the_grace_after_the_last_message_and_for_one_still_to_go() {
        use store::Message::{Emitted, Pending};
        let now: chrono::DateTime<chrono::Utc> = "2026-11-25T15:00:00Z".parse().expect("instant");
        let days = chrono::Duration::days;
        let grace = days(3);
        assert_eq!(
            escalation_waits([].into_iter(), grace, now),
            None,
            "no message: now"
        );
        assert_eq!(
            escalation_waits([Emitted(now - days(4))].into_iter(), grace, now),
            None,
            "the grace has passed"
        );
        assert_eq!(
            escalation_waits(
                [Emitted(now - days(10)), Emitted(now - days(1))].into_iter(),
                grace,
                now
            ),
            Some(now + days(2)),
            "three days after the last one"
        );
        // The final notice the rules deferred to tomorrow goes first; the escalation after it.
        assert_eq!(
            escalation_waits(
                [Emitted(now - days(9)), Pending(now + days(1))].into_iter(),
                grace,
                now
            ),
            Some(now + days(4))
        );
        // A message due at the same moment: never together.
        assert_eq!(
            escalation_waits([Pending(now)].into_iter(), grace, now),
            Some(now + grace)
        );
        // A message planned well after the escalation does not hold it.
        assert_eq!(
            escalation_waits([Pending(now + days(10))].into_iter(), grace, now),
            None
        );
    }

    fn route(channel: pb::Channel, role: &str, address: &str, preferred: bool) -> pb::ContactRoute {
        pb::ContactRoute {
            channel: channel as i32,
            role: role.into(),
            address: address.into(),
            preferred,
            ..Default::default()
        }
    }

    fn snapshot(legal_hold: bool, payment_plan: bool) -> pb::InvoiceChanged {
        pb::InvoiceChanged {
            invoice: Some(pb::Invoice {
                payment_plan_id: if payment_plan {
                    uuid::Uuid::nil().to_string()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
            debtor: Some(pb::Debtor {
                legal_hold,
                ..Default::default()
            }),
            reason: "legal_hold".into(),
        }
    }

    #[test]
    fn a_legal_hold_holds_every_reminder_right_before_it_fires() {
        let actions = [
            ReminderAction::Message,
            ReminderAction::Instalment,
            ReminderAction::Escalate(EscalationKind::Collector),
        ];
        for action in actions {
            assert_eq!(
                held(action, &snapshot(true, false)),
                Some(Hold::LegalHold),
                "{action}"
            );
            assert_eq!(
                held(action, &snapshot(true, true)),
                Some(Hold::LegalHold),
                "{action}"
            );
            assert_eq!(held(action, &snapshot(false, false)), None, "lifted: {action}");
        }
    }

    #[test]
    fn a_payment_plan_holds_the_ladder_but_not_its_instalments() {
        let plan = snapshot(false, true);
        assert_eq!(held(ReminderAction::Message, &plan), Some(Hold::PaymentPlan));
        assert_eq!(held(ReminderAction::Instalment, &plan), None);
    }

    #[test]
    fn without_routes_phone_channels_go_to_the_phone_and_email_to_the_address() {
        let debtor = pb::Debtor {
            email: "ap@example.com".into(),
            phone: "+573001234567".into(),
            ..Default::default()
        };
        let found = routes(&due(vec![Channel::Whatsapp, Channel::Email], &[]), &debtor);
        assert_eq!(
            found,
            vec![
                (
                    Some(Channel::Whatsapp),
                    String::new(),
                    "+573001234567".to_string()
                ),
                (Some(Channel::Email), String::new(), "ap@example.com".to_string()),
            ]
        );
    }

    #[test]
    fn routes_follow_the_steps_channels_then_its_roles() {
        let debtor = pb::Debtor {
            routes: vec![
                route(pb::Channel::Unspecified, "treasury", "nobody", true),
                route(pb::Channel::Sms, "treasury", "+1", false),
                route(pb::Channel::Sms, "accounts_payable", "+2", false),
                route(pb::Channel::Email, "treasury", "t@example.com", true),
            ],
            ..Default::default()
        };
        let found = routes(
            &due(
                vec![Channel::Sms, Channel::Whatsapp, Channel::Email],
                &["accounts_payable", "treasury"],
            ),
            &debtor,
        );
        assert_eq!(
            found,
            vec![
                (
                    Some(Channel::Sms),
                    "accounts_payable".to_string(),
                    "+2".to_string()
                ),
                (
                    Some(Channel::Email),
                    "treasury".to_string(),
                    "t@example.com".to_string()
                ),
            ]
        );
        let unreachable = routes(&due(vec![Channel::Whatsapp], &[]), &debtor);
        assert_eq!(
            unreachable,
            vec![(Some(Channel::Whatsapp), String::new(), String::new())]
        );
    }
}
