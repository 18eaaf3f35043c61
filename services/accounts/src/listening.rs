//! What a debtor answers acts on their case (read from `channel.responses.v1`, once per
//! response id): "ya pagué" holds the invoices under a claimed-paid hold and asks a person to
//! confirm; a promise with a date that can be read is recorded (which pauses the ladder until
//! it is judged), one without becomes a work item; a dispute is opened on the invoices with the
//! debtor's words as its reason, and a person is asked to look; anything else is queued for a
//! person while the ladder goes on. Opt-outs are `responses`' (consent).
//!
//! The invoices are those the answered message was about (channels says which); with none
//! named, the debtor's open invoices. Invoices of another debtor are never touched.

pub mod amounts;
pub mod dates;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use prost::Message as _;
use recobro_proto::v1 as pb;
use uuid::Uuid;

use crate::domain;
use crate::error::AccountsError;
use crate::events;
use crate::promises;
use crate::states::WorkKind;
use crate::store::{self, NewWorkItem, Tx};

/// What replies may do, and how soon a person should look at each kind of work item.
#[derive(Debug, Clone)]
pub struct ListeningSettings {
    /// How long a claimed-paid hold pauses collection, in the debtor's days.
    pub claim_days: u32,
    /// The furthest a promise read from a reply may be; later is a person's call.
    pub promise_horizon_days: u32,
    pub promise_grace_days: i32,
    pub sla: WorkSla,
}

/// How long after it is queued each kind of work item is due.
#[derive(Debug, Clone)]
pub struct WorkSla {
    pub claimed_paid: Duration,
    pub unclear_promise: Duration,
    pub dispute: Duration,
    pub reply: Duration,
    pub broken_promise: Duration,
    pub collector: Duration,
    pub unsure_opt_out: Duration,
    pub payment_mismatch: Duration,
    pub payment_reversed: Duration,
}

impl WorkSla {
    pub fn of(&self, kind: WorkKind) -> Duration {
        match kind {
            WorkKind::ClaimedPaid => self.claimed_paid,
            WorkKind::UnclearPromise => self.unclear_promise,
            WorkKind::Dispute => self.dispute,
            WorkKind::Reply => self.reply,
            WorkKind::BrokenPromise => self.broken_promise,
            WorkKind::Collector => self.collector,
            WorkKind::UnsureOptOut => self.unsure_opt_out,
            WorkKind::PaymentMismatch => self.payment_mismatch,
            WorkKind::PaymentReversed => self.payment_reversed,
        }
    }

    pub fn due(&self, kind: WorkKind, from: DateTime<Utc>) -> DateTime<Utc> {
        due_after(from, self.of(kind))
    }
}

/// When an item queued at `from` with this SLA is due (a day, for an SLA too long to add).
pub fn due_after(from: DateTime<Utc>, sla: Duration) -> DateTime<Utc> {
    from + chrono::Duration::from_std(sla).unwrap_or(chrono::Duration::days(1))
}

/// What the debtor meant, for the ledger (opt-outs are consent, handled apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyIntent {
    AlreadyPaid,
    PromiseToPay,
    Dispute,
    Other,
}

/// A reply that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub response_id: String,
    pub tenant_id: String,
    pub debtor_id: Uuid,
    pub invoice_ids: Vec<Uuid>,
    pub intent: ReplyIntent,
    pub text: String,
    pub received_at: DateTime<Utc>,
}

/// The reply a response carries, `None` for an opt-out (consent's), or why it cannot be acted on.
pub fn parse(payload: &[u8]) -> Result<Option<Reply>, String> {
    let response = pb::DebtorResponse::decode(payload)
        .map_err(|err| format!("not a recobro.v1.DebtorResponse: {err}"))?;
    let intent = match response.intent() {
        pb::ResponseIntent::OptOut => return Ok(None),
        pb::ResponseIntent::AlreadyPaid => ReplyIntent::AlreadyPaid,
        pb::ResponseIntent::PromiseToPay => ReplyIntent::PromiseToPay,
        pb::ResponseIntent::Dispute => ReplyIntent::Dispute,
        pb::ResponseIntent::Other => ReplyIntent::Other,
        pb::ResponseIntent::Unspecified => {
            return Err("intent is not set (or is one this version does not know)".into());
        }
    };
    let refused = |err: AccountsError| err.to_string();
    let response_id = response.response_id.trim();
    if response_id.is_empty() {
        return Err("response_id is required: a reply is acted on once per response".into());
    }
    if response.debtor_id.trim().is_empty() {
        return Err("debtor_id is required: a reply acts on its debtor's case".into());
    }
    let invoice_ids = response
        .invoice_ids
        .iter()
        .map(|id| domain::uuid("invoice_ids", id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(refused)?;
    Ok(Some(Reply {
        response_id: response_id.to_string(),
        tenant_id: domain::tenant("tenant_id", &response.tenant_id).map_err(refused)?,
        debtor_id: domain::uuid("debtor_id", &response.debtor_id).map_err(refused)?,
        invoice_ids,
        intent,
        text: response.text,
        received_at: response
            .received_at
            .as_ref()
            .and_then(recobro_common::time::from_timestamp)
            .ok_or("received_at is required: a promised date is read from the day it was written")?,
    }))
}

/// What applying one reply changed: invoices to publish, by why.
#[derive(Debug, Default)]
pub struct Applied {
    pub changed: Vec<(Uuid, &'static str)>,
}

/// Acts on one reply inside `tx`; `Err` with why when it names a debtor the tenant does not
/// have. A response applied before changes nothing.
pub async fn apply(
    tx: &mut Tx<'_>,
    settings: &ListeningSettings,
    reply: &Reply,
    applied: &mut Applied,
) -> Result<Result<(), String>, AccountsError> {
    let Reply {
        response_id,
        tenant_id,
        debtor_id,
        ..
    } = reply;
    if store::lock_debtor(tx, tenant_id, *debtor_id).await?.is_none() {
        return Ok(Err(format!(
            "debtor {debtor_id} is not a debtor of tenant {tenant_id}"
        )));
    }
    if !store::first_time_response(tx, tenant_id, response_id).await? {
        return Ok(Ok(()));
    }
    let (zone, open) = store::debtor_zone_and_open_invoices(tx, *debtor_id).await?;
    let zone: Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    let today = reply.received_at.with_timezone(&zone).date_naive();
    let invoices: Vec<Uuid> = if reply.invoice_ids.is_empty() {
        open
    } else {
        reply
            .invoice_ids
            .iter()
            .copied()
            .filter(|id| open.contains(id))
            .collect()
    };
    let queued = match reply.intent {
        ReplyIntent::AlreadyPaid => {
            let until = today
                .checked_add_days(Days::new(u64::from(settings.claim_days)))
                .unwrap_or(today);
            let held = store::hold_claimed_paid(tx, &invoices, until).await?;
            applied
                .changed
                .extend(held.iter().map(|id| (*id, "claimed_paid")));
            Some((
                WorkKind::ClaimedPaid,
                format!("the debtor says it is paid: reminders paused through {until}; confirm the payment"),
            ))
        }
        ReplyIntent::PromiseToPay => promise(tx, settings, reply, today, &invoices, applied).await?,
        ReplyIntent::Dispute => {
            let reason = match reply.text.trim() {
                "" => "disputed in a reply",
                text => text,
            };
            for invoice_id in &invoices {
                if store::open_dispute(tx, tenant_id, *invoice_id, reason)
                    .await?
                    .is_some()
                {
                    applied.changed.push((*invoice_id, "dispute_opened"));
                }
            }
            Some((
                WorkKind::Dispute,
                "the debtor disputes the invoice: a dispute was opened with their words; accept or reject it"
                    .into(),
            ))
        }
        ReplyIntent::Other => Some((
            WorkKind::Reply,
            "a reply no rule understood: read it; the ladder goes on".into(),
        )),
    };
    if let Some((kind, reason)) = queued {
        let now = Utc::now();
        store::insert_work_item(
            tx,
            &NewWorkItem {
                tenant_id,
                kind,
                debtor_id: *debtor_id,
                invoice_ids: &invoices,
                response_id: Some(response_id),
                promise_id: None,
                escalation_id: None,
                reply_text: &reply.text,
                reason: &reason,
                created_at: now,
                due_at: settings.sla.due(kind, now),
            },
        )
        .await?;
    }
    tracing::info!(%tenant_id, %debtor_id, %response_id, intent = ?reply.intent, invoices = invoices.len(), "reply acted on");
    Ok(Ok(()))
}

/// Records the promise a reply makes on each of its invoices that can take one (open, not
/// disputed), for what each still owes or the amount it names (`amounts`); a date that cannot be read, is past or is beyond the
/// horizon is a work item instead.
async fn promise(
    tx: &mut Tx<'_>,
    settings: &ListeningSettings,
    reply: &Reply,
    today: NaiveDate,
    invoices: &[Uuid],
    applied: &mut Applied,
) -> Result<Option<(WorkKind, String)>, AccountsError> {
    let horizon = today
        .checked_add_days(Days::new(u64::from(settings.promise_horizon_days)))
        .unwrap_or(today);
    let date = match dates::promised_date(&reply.text, today) {
        None => {
            return Ok(Some((
                WorkKind::UnclearPromise,
                "a promise to pay with no date that could be read: agree one with the debtor".into(),
            )));
        }
        Some(date) if date < today || date > horizon => {
            return Ok(Some((
                WorkKind::UnclearPromise,
                format!(
                    "a promise to pay for {date}, past or beyond {} days: agree a date with the debtor",
                    settings.promise_horizon_days
                ),
            )));
        }
        Some(date) => date,
    };
    let promised = promises::promise_what_is_owed(
        tx,
        &reply.tenant_id,
        invoices,
        date,
        settings.promise_grace_days,
        |state| !state.disputed,
        |currency| amounts::promised_amount(&reply.text, currency),
    )
    .await?;
    applied
        .changed
        .extend(promised.iter().map(|id| (*id, "promise_made")));
    if promised.is_empty() {
        return Ok(Some((
            WorkKind::UnclearPromise,
            format!("a promise to pay for {date}, but no open invoice could take it"),
        )));
    }
    Ok(None)
}

/// Invoices changed for one reason, with the trace of the reply that changed each.
type Changed = (Vec<Uuid>, HashMap<Uuid, Option<String>>);

/// Publishes what a batch of replies changed, grouped by why, with each reply's trace.
pub async fn publish(
    tx: &mut Tx<'_>,
    changed: Vec<(Uuid, &'static str, Option<String>)>,
    topic: &str,
) -> Result<(), sqlx::Error> {
    let mut by_reason: HashMap<&'static str, Changed> = HashMap::new();
    for (invoice_id, reason, trace) in changed {
        let (ids, traces) = by_reason.entry(reason).or_default();
        if !ids.contains(&invoice_id) {
            ids.push(invoice_id);
        }
        traces.insert(invoice_id, trace);
    }
    let mut reasons: Vec<_> = by_reason.into_iter().collect();
    reasons.sort_by_key(|(reason, _)| *reason);
    for (reason, (mut ids, traces)) in reasons {
        ids.sort();
        events::publish_changes(tx, &ids, true, reason, topic, &traces).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use recobro_common::time::timestamp;

    use super::*;

    fn reply(intent: pb::ResponseIntent) -> pb::DebtorResponse {
        pb::DebtorResponse {
            response_id: "resp-1".into(),
            tenant_id: "acme".into(),
            debtor_id: Uuid::from_u128(1).to_string(),
            channel: pb::Channel::Whatsapp as i32,
            intent: intent as i32,
            text: "Pago el viernes".into(),
            received_at: Some(timestamp(
                DateTime::from_timestamp(1_790_000_000, 0).expect("time"),
            )),
            invoice_ids: vec![Uuid::from_u128(7).to_string()],
            ..Default::default()
        }
    }

    #[test]
    fn each_intent_is_read_with_its_invoices() {
        for (intent, expected) in [
            (pb::ResponseIntent::AlreadyPaid, ReplyIntent::AlreadyPaid),
            (pb::ResponseIntent::PromiseToPay, ReplyIntent::PromiseToPay),
            (pb::ResponseIntent::Dispute, ReplyIntent::Dispute),
            (pb::ResponseIntent::Other, ReplyIntent::Other),
        ] {
            let parsed = parse(&reply(intent).encode_to_vec())
                .expect("valid")
                .expect("a reply");
            assert_eq!(parsed.intent, expected);
            assert_eq!(parsed.invoice_ids, vec![Uuid::from_u128(7)]);
            assert_eq!(parsed.debtor_id, Uuid::from_u128(1));
        }
        assert_eq!(
            parse(&reply(pb::ResponseIntent::OptOut).encode_to_vec()),
            Ok(None),
            "opt-outs are consent's"
        );
    }

    #[test]
    fn what_cannot_be_acted_on_is_refused_naming_the_field() {
        type Breaker = fn(&mut pb::DebtorResponse);
        let cases: [(&str, Breaker); 6] = [
            ("intent", |r| r.intent = 42),
            ("response_id", |r| r.response_id.clear()),
            ("debtor_id", |r| r.debtor_id.clear()),
            ("debtor_id", |r| r.debtor_id = "D-1".into()),
            ("invoice_ids", |r| r.invoice_ids = vec!["F-1".into()]),
            ("received_at", |r| r.received_at = None),
        ];
        for (field, break_it) in cases {
            let mut response = reply(pb::ResponseIntent::Dispute);
            break_it(&mut response);
            let reason = parse(&response.encode_to_vec()).expect_err(field);
            assert!(reason.starts_with(field), "{field}: {reason}");
            assert!(!reason.contains("viernes"), "no reply text in a reason: {reason}");
        }
    }
}
