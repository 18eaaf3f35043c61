//! Payments through payment links (`payments.events.v1`), each applied once: a confirmed payment
//! of what was asked becomes a settlement of the invoice, by the provider's payment id (full:
//! the invoice is paid and its ladder stops; partial: collection goes on for the rest). A
//! refund or chargeback reverses it, reopens collection and queues a work item. Whatever
//! cannot be applied as asked (another amount or currency, more than is owed, an invoice
//! cancelled or paid meanwhile, a reversal of a payment never settled) is not guessed at: it is
//! a work item for a person. An event that does not decode, or names an invoice the tenant does
//! not have, is parked with the reason.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::kafka::{BatchHandler, Failure};
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain;
use crate::error::AccountsError;
use crate::events;
use crate::listening::WorkSla;
use crate::states::{InvoiceStatus, SettlementKind, WorkKind};
use crate::store::{self, NewSettlement, NewWorkItem, Tx};

pub struct PaymentIngest {
    pub pool: PgPool,
    pub account_events_topic: String,
    pub sla: WorkSla,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    Confirmed,
    Reversed,
}

/// A payment event that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub event_id: String,
    pub tenant_id: String,
    pub invoice_id: Uuid,
    pub kind: PaymentKind,
    pub provider: String,
    pub payment_id: String,
    pub amount: pb::Money,
    pub asked: Option<pb::Money>,
    pub at: DateTime<Utc>,
    pub reversal_id: String,
}

impl Payment {
    /// The settlement's external id: the provider and its payment id.
    fn external_id(&self) -> String {
        format!("{}:{}", self.provider, self.payment_id)
    }
}

pub fn parse(payload: &[u8]) -> Result<Payment, String> {
    let event =
        pb::PaymentEvent::decode(payload).map_err(|err| format!("not a recobro.v1.PaymentEvent: {err}"))?;
    let refused = |err: AccountsError| err.to_string();
    let required = |field: &str, value: &str| {
        let value = value.trim();
        if value.is_empty() {
            Err(format!("{field} is required"))
        } else {
            Ok(value.to_string())
        }
    };
    let kind = match pb::PaymentEventKind::try_from(event.kind) {
        Ok(pb::PaymentEventKind::Confirmed) => PaymentKind::Confirmed,
        Ok(pb::PaymentEventKind::Reversed) => PaymentKind::Reversed,
        _ => return Err(format!("kind: {} is not CONFIRMED or REVERSED", event.kind)),
    };
    let amount = domain::money_of("amount", event.amount.as_ref()).map_err(refused)?;
    if amount.amount_minor == 0 {
        return Err("amount.amount_minor must be positive".into());
    }
    let asked = event
        .asked
        .as_ref()
        .map(|asked| domain::money_of("asked", Some(asked)))
        .transpose()
        .map_err(refused)?;
    let reversal_id = event.reversal_id.trim().to_string();
    if kind == PaymentKind::Reversed && reversal_id.is_empty() {
        return Err("reversal_id is required for a reversal: each is applied once".into());
    }
    let at = event
        .at
        .as_ref()
        .and_then(|at| DateTime::from_timestamp(at.seconds, at.nanos.max(0) as u32))
        .ok_or("at is required")?;
    Ok(Payment {
        event_id: required("event_id", &event.event_id)?,
        tenant_id: domain::tenant("tenant_id", &event.tenant_id).map_err(refused)?,
        invoice_id: domain::uuid("invoice_id", &event.invoice_id).map_err(refused)?,
        kind,
        provider: required("provider", &event.provider)?,
        payment_id: required("payment_id", &event.payment_id)?,
        amount,
        asked,
        at,
        reversal_id,
    })
}

impl BatchHandler for PaymentIngest {
    async fn handle_batch(&self, messages: &[BorrowedMessage<'_>]) -> Result<Vec<(usize, String)>, Failure> {
        let mut rejected = Vec::new();
        let mut payments = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            match parse(message.payload().unwrap_or_default()) {
                Ok(payment) => payments.push((index, payment)),
                Err(reason) => rejected.push((index, reason)),
            }
        }
        rejected.extend(self.apply(&payments).await.map_err(|err| err.failure())?);
        rejected.sort_by_key(|(index, _)| *index);
        Ok(rejected)
    }
}

/// What became of one payment event.
#[derive(Debug, Clone, PartialEq)]
enum Applied {
    Settled,
    /// This much of the payment was given back.
    Reversed(i64),
    /// Not applied: a person decides, for this reason.
    ToAPerson(String),
    /// Seen before.
    Again,
}

impl PaymentIngest {
    /// Applies a batch in one transaction; returns those refused, by index, with why.
    #[tracing::instrument(skip_all, fields(payments = payments.len()))]
    pub async fn apply(&self, payments: &[(usize, Payment)]) -> Result<Vec<(usize, String)>, AccountsError> {
        let mut refused = Vec::new();
        if payments.is_empty() {
            return Ok(refused);
        }
        let mut tx = self.pool.begin().await?;
        for (index, payment) in payments {
            let Some(state) = store::lock_invoice(&mut tx, &payment.tenant_id, payment.invoice_id).await?
            else {
                refused.push((
                    *index,
                    format!(
                        "invoice {} is not an invoice of tenant {}",
                        payment.invoice_id, payment.tenant_id
                    ),
                ));
                continue;
            };
            let applied = match payment.kind {
                PaymentKind::Confirmed => self.confirm(&mut tx, payment, &state).await?,
                PaymentKind::Reversed => self.reverse(&mut tx, payment).await?,
            };
            let kind = match &applied {
                Applied::Settled | Applied::Again => None,
                Applied::Reversed(amount_minor) => Some((
                    WorkKind::PaymentReversed,
                    format!(
                        "{} reversed {} of payment {}: collection reopened",
                        payment.provider,
                        amount_text(&pb::Money {
                            amount_minor: *amount_minor,
                            currency: payment.amount.currency.clone(),
                        }),
                        payment.payment_id
                    ),
                )),
                Applied::ToAPerson(reason) => Some((WorkKind::PaymentMismatch, reason.clone())),
            };
            if let Some((kind, reason)) = kind {
                let now = Utc::now();
                // One item per provider event: a redelivered event queues nothing new.
                let source = format!("payment:{}", payment.event_id);
                store::insert_work_item(
                    &mut tx,
                    &NewWorkItem {
                        tenant_id: &payment.tenant_id,
                        kind,
                        debtor_id: state.invoice.debtor_id,
                        invoice_ids: &[payment.invoice_id],
                        response_id: Some(&source),
                        promise_id: None,
                        escalation_id: None,
                        reply_text: "",
                        reason: &reason,
                        created_at: now,
                        due_at: self.sla.due(kind, now),
                    },
                )
                .await?;
            }
            tracing::info!(
                tenant_id = %payment.tenant_id,
                invoice_id = %payment.invoice_id,
                provider = %payment.provider,
                outcome = ?applied,
                "payment event applied"
            );
        }
        tx.commit().await?;
        Ok(refused)
    }

    async fn confirm(
        &self,
        tx: &mut Tx<'_>,
        payment: &Payment,
        state: &domain::InvoiceState,
    ) -> Result<Applied, AccountsError> {
        let external_id = payment.external_id();
        if store::settlement_exists(tx, &payment.tenant_id, SettlementKind::Payment, &external_id).await? {
            return Ok(Applied::Again);
        }
        let paid = &payment.amount;
        let invoice = &state.invoice;
        let asked_differs = payment
            .asked
            .as_ref()
            .is_some_and(|asked| asked.amount_minor != paid.amount_minor || asked.currency != paid.currency);
        let mismatch = if paid.currency != invoice.currency {
            Some(format!(
                "paid {} for an invoice in {}",
                amount_text(paid),
                invoice.currency
            ))
        } else if asked_differs {
            Some(format!(
                "paid {} where {} was asked",
                amount_text(paid),
                payment.asked.as_ref().map(amount_text).unwrap_or_default()
            ))
        } else if invoice.status == InvoiceStatus::Cancelled {
            Some(format!("paid {} for a cancelled invoice", amount_text(paid)))
        } else if paid.amount_minor > state.outstanding_minor() {
            Some(format!(
                "paid {} where {} {} was owed",
                amount_text(paid),
                state.outstanding_minor(),
                invoice.currency
            ))
        } else {
            None
        };
        if let Some(reason) = mismatch {
            return Ok(Applied::ToAPerson(format!(
                "{} payment {} not applied: {reason}",
                payment.provider, payment.payment_id
            )));
        }
        let settlement = NewSettlement {
            kind: SettlementKind::Payment,
            external_id: &external_id,
            amount_minor: paid.amount_minor,
            currency: &paid.currency,
            on: payment.at.date_naive(),
        };
        if store::settle(tx, &payment.tenant_id, payment.invoice_id, &settlement).await? {
            events::publish_changes(
                tx,
                &[payment.invoice_id],
                true,
                "payment",
                &self.account_events_topic,
                &HashMap::new(),
            )
            .await?;
            Ok(Applied::Settled)
        } else {
            Ok(Applied::Again)
        }
    }

    async fn reverse(&self, tx: &mut Tx<'_>, payment: &Payment) -> Result<Applied, AccountsError> {
        let reversal_external_id = format!("{}:{}", payment.provider, payment.reversal_id);
        if store::reversal_exists(tx, &payment.tenant_id, &reversal_external_id).await? {
            return Ok(Applied::Again);
        }
        match store::reverse_payment(
            tx,
            &payment.tenant_id,
            &payment.external_id(),
            &reversal_external_id,
            payment.amount.amount_minor,
        )
        .await?
        {
            Some(reversed) => {
                events::publish_changes(
                    tx,
                    &[reversed.invoice_id],
                    true,
                    "payment_reversed",
                    &self.account_events_topic,
                    &HashMap::new(),
                )
                .await?;
                Ok(Applied::Reversed(reversed.amount_minor))
            }
            None => Ok(Applied::ToAPerson(format!(
                "{} reversed {} of payment {}, which was never settled here",
                payment.provider,
                amount_text(&payment.amount),
                payment.payment_id
            ))),
        }
    }
}

/// `12345 COP` (minor units): a reason carries amounts, never who paid.
fn amount_text(money: &pb::Money) -> String {
    format!("{} {} (minor units)", money.amount_minor, money.currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> pb::PaymentEvent {
        pb::PaymentEvent {
            event_id: "stripe:evt_1".into(),
            tenant_id: "acme".into(),
            invoice_id: Uuid::from_u128(2).to_string(),
            kind: pb::PaymentEventKind::Confirmed as i32,
            provider: "stripe".into(),
            payment_id: "pi_1".into(),
            amount: Some(pb::Money {
                amount_minor: 150_00,
                currency: "USD".into(),
            }),
            asked: Some(pb::Money {
                amount_minor: 150_00,
                currency: "USD".into(),
            }),
            at: Some(recobro_common::time::timestamp(Utc::now())),
            reversal_id: String::new(),
        }
    }

    #[test]
    fn a_confirmed_payment_is_read_with_its_settlement_id() {
        let payment = parse(&event().encode_to_vec()).expect("valid");
        assert_eq!(payment.kind, PaymentKind::Confirmed);
        assert_eq!(payment.external_id(), "stripe:pi_1");
        assert_eq!(payment.amount.amount_minor, 150_00);
    }

    #[test]
    fn what_cannot_be_applied_is_refused_naming_the_field() {
        type Breaker = fn(&mut pb::PaymentEvent);
        let cases: [(&str, Breaker); 8] = [
            ("kind", |e| e.kind = 7),
            ("event_id", |e| e.event_id.clear()),
            ("invoice_id", |e| e.invoice_id = "INV-1".into()),
            ("tenant_id", |e| e.tenant_id = "a b".into()),
            ("payment_id", |e| e.payment_id = " ".into()),
            ("amount", |e| e.amount = None),
            ("reversal_id", |e| e.kind = pb::PaymentEventKind::Reversed as i32),
            ("at", |e| e.at = None),
        ];
        for (field, break_it) in cases {
            let mut event = event();
            break_it(&mut event);
            let reason = parse(&event.encode_to_vec()).expect_err(field);
            assert!(reason.starts_with(field), "{field}: {reason}");
        }
        assert!(
            parse(b"\xff\xff")
                .expect_err("garbage")
                .starts_with("not a recobro.v1.PaymentEvent")
        );
    }
}
