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
    /// Why the ladder must wait, if it must: a dispute, a promise to pay, a payment plan.
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
    Dispute,
    Promise,
    /// The plan's instalment reminders replace the ladder.
    PaymentPlan,
}

impl Hold {
    /// What holds an open invoice's ladder, read from its snapshot.
    pub fn of(invoice: &pb::Invoice) -> Option<Hold> {
        if invoice.disputed {
            Some(Hold::Dispute)
        } else if invoice.promised_date.is_some() {
            Some(Hold::Promise)
        } else if !invoice.payment_plan_id.is_empty() {
            Some(Hold::PaymentPlan)
        } else {
            None
        }
    }

    /// The name logs show.
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Dispute => "dispute",
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
                .and_then(|status| InvoiceState::try_from(status).ok())
                .ok_or("invoice.status is not set")?,
            // Accounts' revision orders every kind of change; older producers only had the version.
            version: if invoice.revision > 0 {
                invoice.revision
            } else {
                invoice.version
            },
            hold: Hold::of(invoice),
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
