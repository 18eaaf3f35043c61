//! An invoice change from accounts, checked: what planning, storing and previewing rely on.

use std::fmt;

use chrono_tz::Tz;
use recobro_common::time;
use recobro_proto::v1::{self as pb, InvoiceStatus, account_event};
use uuid::Uuid;

use crate::stored::InvoiceState;

/// An invoice change with everything checked that planning relies on.
pub struct Change {
    pub snapshot: pb::InvoiceChanged,
    pub tenant_id: String,
    pub invoice_id: Uuid,
    pub debtor_id: Uuid,
    pub status: InvoiceState,
    pub version: i64,
    /// Why the ladder must wait, if it must: a legal hold, a dispute, a promise to pay, a
    /// payment plan.
    pub hold: Option<Hold>,
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

/// Why an open invoice's ladder waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hold {
    /// The debtor is under a legal hold (a collection lawsuit, bankruptcy, a
    /// cease-communication request): no extrajudicial contact at all, instalment reminders
    /// included.
    LegalHold,
    Dispute,
    /// The debtor says it is paid; a person is confirming (accounts lifts it when the payment
    /// is recorded, a person says otherwise, or the hold's days run out).
    ClaimedPaid,
    Promise,
    /// The plan's instalment reminders replace the ladder.
    PaymentPlan,
}

impl Hold {
    /// What holds an open invoice's ladder, read from its snapshot. A legal hold comes first: it
    /// is the only one that also holds a payment plan's instalment reminders.
    pub fn of(snapshot: &pb::InvoiceChanged) -> Option<Hold> {
        if snapshot.debtor.as_ref().is_some_and(|debtor| debtor.legal_hold) {
            return Some(Hold::LegalHold);
        }
        let invoice = snapshot.invoice.as_ref()?;
        if invoice.disputed {
            Some(Hold::Dispute)
        } else if invoice.claimed_paid_until.is_some() {
            Some(Hold::ClaimedPaid)
        } else if invoice.promised_date.is_some() {
            Some(Hold::Promise)
        } else if !invoice.payment_plan_id.is_empty() {
            Some(Hold::PaymentPlan)
        } else {
            None
        }
    }

    /// Whether it holds a payment plan's own instalment reminders too: a payment plan replaces
    /// the ladder with them; anything else holds every reminder.
    pub fn holds_instalments(self) -> bool {
        self != Hold::PaymentPlan
    }

    /// The name logs show.
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::LegalHold => "legal hold",
            Hold::Dispute => "dispute",
            Hold::ClaimedPaid => "claimed paid",
            Hold::Promise => "promise",
            Hold::PaymentPlan => "payment plan",
        }
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Change {
    /// The invoice change an account event carries; `None` for a change scheduling has no use
    /// for. A change this version does not know is an error (the event is parked, not skipped).
    pub fn parse(event: &pb::AccountEvent) -> Result<Option<Change>, String> {
        let changed = match &event.change {
            Some(account_event::Change::InvoiceChanged(changed)) => changed,
            // A debtor's contact record and a tenant's role are for channels. Scheduling reads
            // the debtor from the snapshot each InvoiceChanged carries (accounts republishes the
            // open invoices when a legal hold is placed or lifted).
            Some(account_event::Change::DebtorChanged(_) | account_event::Change::TenantChanged(_)) => {
                return Ok(None);
            }
            // Unset, or a kind added after this version (prost drops the unknown field).
            None => return Err("account event carries no change this version knows".into()),
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
                .and_then(|status| InvoiceState::try_from(status).ok())
                .ok_or("invoice.status is not set")?,
            // Accounts' revision orders every kind of change; older producers only had the version.
            version: if invoice.revision > 0 {
                invoice.revision
            } else {
                invoice.version
            },
            hold: Hold::of(changed),
            // Dates accounts would never publish are refused here too (a dead letter, never a
            // panic in the ladder's arithmetic).
            due_date: time::plannable_date(invoice.due_date.as_ref().ok_or("invoice.due_date is not set")?)
                .map_err(|reason| format!("invoice.due_date {reason}"))?,
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
            plan: match Uuid::parse_str(&invoice.payment_plan_id) {
                Ok(plan_id) => Some((plan_id, instalments(invoice)?)),
                Err(_) => None,
            },
            snapshot: changed.clone(),
        }))
    }
}

/// A payment plan's instalments, each with a plannable due date and an amount.
fn instalments(invoice: &pb::Invoice) -> Result<Vec<(chrono::NaiveDate, pb::Money)>, String> {
    let mut all = Vec::with_capacity(invoice.instalments.len());
    for (n, instalment) in invoice.instalments.iter().enumerate() {
        let due = time::plannable_date(
            instalment
                .due_date
                .as_ref()
                .ok_or_else(|| format!("invoice.instalments[{n}].due_date is not set"))?,
        )
        .map_err(|reason| format!("invoice.instalments[{n}].due_date {reason}"))?;
        let amount = instalment
            .amount
            .clone()
            .ok_or_else(|| format!("invoice.instalments[{n}].amount is not set"))?;
        all.push((due, amount));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(legal_hold: bool) -> pb::InvoiceChanged {
        pb::InvoiceChanged {
            invoice: Some(pb::Invoice {
                invoice_id: Uuid::nil().to_string(),
                debtor_id: Uuid::nil().to_string(),
                tenant_id: "acme".into(),
                status: InvoiceStatus::Open as i32,
                revision: 1,
                due_date: Some(time::date(
                    chrono::NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"),
                )),
                ..Default::default()
            }),
            debtor: Some(pb::Debtor {
                time_zone: "America/Bogota".into(),
                legal_hold,
                ..Default::default()
            }),
            reason: "legal_hold".into(),
        }
    }

    fn event(change: account_event::Change) -> pb::AccountEvent {
        pb::AccountEvent {
            change: Some(change),
            ..Default::default()
        }
    }

    fn parsed(snapshot: pb::InvoiceChanged) -> Change {
        Change::parse(&event(account_event::Change::InvoiceChanged(snapshot)))
            .expect("valid")
            .expect("an invoice change")
    }

    #[test]
    fn a_date_no_ladder_can_plan_is_refused_naming_the_field_never_planned() {
        let mut far = snapshot(false);
        far.invoice.as_mut().expect("invoice").due_date = Some(pb::Date {
            year: 262142,
            month: 12,
            day: 31,
        });
        let Err(err) = Change::parse(&event(account_event::Change::InvoiceChanged(far))) else {
            panic!("a due date in year 262142 must be refused");
        };
        assert!(err.starts_with("invoice.due_date is in year 262142"), "{err}");

        let mut plan = snapshot(false);
        let invoice = plan.invoice.as_mut().expect("invoice");
        invoice.payment_plan_id = Uuid::nil().to_string();
        invoice.instalments = vec![pb::Instalment {
            due_date: Some(pb::Date {
                year: 2026,
                month: 2,
                day: 30,
            }),
            amount: Some(pb::Money {
                amount_minor: 100,
                currency: "COP".into(),
            }),
        }];
        let Err(err) = Change::parse(&event(account_event::Change::InvoiceChanged(plan))) else {
            panic!("an instalment on 30 February must be refused");
        };
        assert!(err.starts_with("invoice.instalments[0].due_date"), "{err}");
    }

    #[test]
    fn a_legal_hold_holds_the_invoice_and_a_later_snapshot_lifts_it() {
        assert_eq!(parsed(snapshot(true)).hold, Some(Hold::LegalHold));
        assert_eq!(parsed(snapshot(false)).hold, None);
    }

    #[test]
    fn a_legal_hold_comes_before_every_other_hold_and_holds_instalments_too() {
        let mut held = snapshot(true);
        let invoice = held.invoice.as_mut().expect("invoice");
        invoice.disputed = true;
        invoice.payment_plan_id = Uuid::nil().to_string();
        assert_eq!(Hold::of(&held), Some(Hold::LegalHold));
        assert!(Hold::LegalHold.holds_instalments());
        assert!(Hold::Dispute.holds_instalments());
        assert!(Hold::Promise.holds_instalments());
        assert!(Hold::ClaimedPaid.holds_instalments());
        assert!(!Hold::PaymentPlan.holds_instalments());
        // Lifted, the invoice's own hold shows again.
        held.debtor.as_mut().expect("debtor").legal_hold = false;
        assert_eq!(Hold::of(&held), Some(Hold::Dispute));
    }

    #[test]
    fn a_claimed_payment_holds_the_invoice_until_accounts_lifts_it() {
        let mut held = snapshot(false);
        let invoice = held.invoice.as_mut().expect("invoice");
        invoice.claimed_paid_until = Some(pb::Date {
            year: 2026,
            month: 12,
            day: 15,
        });
        invoice.promised_date = Some(pb::Date {
            year: 2026,
            month: 12,
            day: 20,
        });
        assert_eq!(Hold::of(&held), Some(Hold::ClaimedPaid));
        held.invoice.as_mut().expect("invoice").claimed_paid_until = None;
        assert_eq!(Hold::of(&held), Some(Hold::Promise));
    }

    #[test]
    fn debtor_and_tenant_changes_are_accepted_and_plan_nothing() {
        let debtor = event(account_event::Change::DebtorChanged(pb::DebtorChanged {
            reason: "consent".into(),
            ..Default::default()
        }));
        assert!(matches!(Change::parse(&debtor), Ok(None)));
        let tenant = event(account_event::Change::TenantChanged(pb::TenantChanged {
            role: pb::TenantRole::Agency as i32,
        }));
        assert!(matches!(Change::parse(&tenant), Ok(None)));
    }

    #[test]
    fn an_event_without_a_change_this_version_knows_is_an_error() {
        assert!(Change::parse(&pb::AccountEvent::default()).is_err());
        // A kind a newer accounts might add as field 13 (tag 13, length-delimited, empty).
        use prost::Message as _;
        let newer = pb::AccountEvent::decode(&[0x6a, 0x00][..]).expect("unknown fields are skipped");
        assert!(Change::parse(&newer).is_err());
    }
}
