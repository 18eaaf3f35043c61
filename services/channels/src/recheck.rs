//! A statement's invoices checked again right before it goes: scheduling chose them when it
//! emitted the statement, but a payment, a dispute, a claimed payment, a promise or a payment
//! plan may have reached
//! the ledger since (a statement deferred by the rules or queued behind an outage waits). What
//! channels' view of the ledger says now decides: an invoice no longer owed is left out, and the
//! amounts are the latest.

use std::collections::HashMap;

use recobro_proto::v1::{self as pb, InvoiceStatus};
use uuid::Uuid;

use crate::reminder::Covered;

/// Why an invoice is no longer in a statement: what the ledger says of it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftOut {
    Paid,
    Cancelled,
    Disputed,
    ClaimedPaid,
    Promised,
    PaymentPlan,
}

impl LeftOut {
    /// What holds the invoice now, if anything: the same holds scheduling applies when it plans.
    pub fn of(invoice: &pb::Invoice) -> Option<LeftOut> {
        match invoice.status() {
            InvoiceStatus::Paid => Some(LeftOut::Paid),
            InvoiceStatus::Cancelled => Some(LeftOut::Cancelled),
            _ if invoice.disputed => Some(LeftOut::Disputed),
            _ if invoice.claimed_paid_until.is_some() => Some(LeftOut::ClaimedPaid),
            _ if invoice.promised_date.is_some() => Some(LeftOut::Promised),
            _ if !invoice.payment_plan_id.is_empty() => Some(LeftOut::PaymentPlan),
            _ => None,
        }
    }

    /// The audit's rule name.
    pub fn rule(self) -> &'static str {
        match self {
            LeftOut::Paid => "invoice-paid",
            LeftOut::Cancelled => "invoice-cancelled",
            LeftOut::Disputed => "invoice-disputed",
            LeftOut::ClaimedPaid => "invoice-claimed-paid",
            LeftOut::Promised => "invoice-promised",
            LeftOut::PaymentPlan => "invoice-payment-plan",
        }
    }

    /// The audit's reason (ids only).
    pub fn reason(self, invoice_id: Uuid) -> String {
        let now = match self {
            LeftOut::Paid => "is paid",
            LeftOut::Cancelled => "is cancelled",
            LeftOut::Disputed => "is disputed",
            LeftOut::ClaimedPaid => "is claimed paid by the debtor",
            LeftOut::Promised => "is under a promise to pay",
            LeftOut::PaymentPlan => "is in a payment plan",
        };
        format!("invoice {invoice_id} {now} since the statement was planned: left out of it")
    }
}

/// The covered invoices still owed (with the view's latest snapshot where it is newer) and those
/// left out, with why. An invoice the view does not hold keeps the snapshot it was planned with.
pub fn recheck(
    covered: &[Covered],
    view: &HashMap<Uuid, pb::Invoice>,
) -> (Vec<Covered>, Vec<(Covered, LeftOut)>) {
    let mut kept = Vec::with_capacity(covered.len());
    let mut left_out = Vec::new();
    for one in covered {
        let mut one = one.clone();
        if let Some(latest) = view.get(&one.invoice_id)
            && latest.revision >= one.invoice.revision
        {
            one.invoice = latest.clone();
        }
        match LeftOut::of(&one.invoice) {
            Some(why) => left_out.push((one, why)),
            None => kept.push(one),
        }
    }
    (kept, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(n: u128, revision: i64) -> Covered {
        Covered {
            reminder_id: Uuid::from_u128(100 + n),
            invoice_id: Uuid::from_u128(n),
            template_id: "overdue".into(),
            invoice: pb::Invoice {
                invoice_id: Uuid::from_u128(n).to_string(),
                number: format!("FE-{n}"),
                status: InvoiceStatus::Open as i32,
                revision,
                outstanding: Some(pb::Money {
                    amount_minor: 1_000,
                    currency: "COP".into(),
                }),
                ..Default::default()
            },
        }
    }

    #[test]
    fn invoices_paid_disputed_claimed_promised_or_planned_since_are_left_out_with_why() {
        let six: Vec<Covered> = (1..=6).map(|n| covered(n, 3)).collect();
        let mut view = HashMap::new();
        let now = |n: u128, change: &dyn Fn(&mut pb::Invoice)| {
            let mut invoice = covered(n, 4).invoice;
            change(&mut invoice);
            (Uuid::from_u128(n), invoice)
        };
        view.extend([
            now(1, &|i| i.status = InvoiceStatus::Paid as i32),
            now(2, &|i| i.disputed = true),
            now(3, &|i| i.promised_date = Some(pb::Date::default())),
            now(4, &|i| i.payment_plan_id = "plan-1".into()),
            // Partly paid since: still owed, at the latest amount.
            now(5, &|i| {
                i.outstanding.as_mut().expect("outstanding").amount_minor = 400
            }),
            now(6, &|i| i.claimed_paid_until = Some(pb::Date::default())),
        ]);
        let (kept, left_out) = recheck(&six, &view);
        let kept_numbers: Vec<&str> = kept.iter().map(|c| c.invoice.number.as_str()).collect();
        assert_eq!(kept_numbers, ["FE-5"]);
        assert_eq!(
            kept[0].invoice.outstanding.as_ref().map(|m| m.amount_minor),
            Some(400)
        );
        let why: Vec<(u128, LeftOut)> = left_out
            .iter()
            .map(|(c, why)| (c.invoice_id.as_u128(), *why))
            .collect();
        assert_eq!(
            why,
            [
                (1, LeftOut::Paid),
                (2, LeftOut::Disputed),
                (3, LeftOut::Promised),
                (4, LeftOut::PaymentPlan),
                (6, LeftOut::ClaimedPaid)
            ]
        );
        assert!(
            LeftOut::Paid
                .reason(Uuid::from_u128(1))
                .contains(&Uuid::from_u128(1).to_string())
        );
    }

    #[test]
    fn an_older_snapshot_in_the_view_changes_nothing() {
        let planned = vec![covered(1, 7)];
        let mut stale = covered(1, 6).invoice;
        stale.status = InvoiceStatus::Paid as i32;
        let view = HashMap::from([(Uuid::from_u128(1), stale)]);
        let (kept, left_out) = recheck(&planned, &view);
        assert_eq!(kept.len(), 1, "the statement's own snapshot is newer");
        assert!(left_out.is_empty());
        let (kept, _) = recheck(&planned, &HashMap::new());
        assert_eq!(
            kept.len(),
            1,
            "an invoice the view does not hold is kept as planned"
        );
    }
}
