//! The ledger's rules for what an ERP may tell us, checked before anything is stored.

use chrono::{DateTime, NaiveDate, Utc};
use recobro_common::{Channel, time};
use recobro_proto::v1 as pb;
use uuid::Uuid;

use crate::states::{Consent, ContactRole, DebtorKind, InvoiceStatus};

pub use recobro_common::ids::{debtor_id, invoice_id};

#[derive(Debug, Clone, PartialEq)]
pub struct Debtor {
    pub debtor_id: Uuid,
    pub tenant_id: String,
    pub external_id: String,
    pub name: String,
    pub kind: DebtorKind,
    pub time_zone: String,
    pub locale: String,
    pub country: String,
    /// The preferred email and phone among the contact points that may be used.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub region: Option<String>,
    pub segment: String,
    pub risk_score: Option<i32>,
    pub contacts: Vec<Contact>,
    /// The hold standing on all extrajudicial contact, if any.
    pub legal_hold: Option<LegalHold>,
}

/// A hold on all extrajudicial contact with a debtor (a lawsuit served, bankruptcy, a
/// cease-communication request): while it stands nobody is contacted.
#[derive(Debug, Clone, PartialEq)]
pub struct LegalHold {
    pub reason: String,
    /// Who or what asked for it.
    pub source: String,
    pub since: DateTime<Utc>,
}

/// A person at the debtor (for a consumer, the debtor themself).
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub contact_id: Uuid,
    pub name: String,
    pub role: ContactRole,
    pub points: Vec<Point>,
}

/// One way to reach a contact, with its consent.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub point_id: Uuid,
    pub channel: Channel,
    pub address: String,
    pub consent: Consent,
    /// Where the consent or opt-out came from ("erp", "import", "reply"...).
    pub source: String,
    /// When the consent or opt-out was recorded: `None` until the ledger stores it.
    pub consent_at: Option<DateTime<Utc>>,
    pub preferred: bool,
    /// Set once the ERP no longer gives this address: history, never used again.
    pub retired: Option<Retirement>,
}

/// When and why an address was retired.
#[derive(Debug, Clone, PartialEq)]
pub struct Retirement {
    pub at: DateTime<Utc>,
    pub reason: String,
}

impl Point {
    /// Whether a message may go here now: consent stands and the address was not retired.
    pub fn usable(&self) -> bool {
        self.consent == Consent::Granted && self.retired.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub invoice_id: Uuid,
    pub debtor_id: Uuid,
    pub tenant_id: String,
    pub external_id: String,
    pub number: String,
    pub amount_minor: i64,
    pub currency: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub status: InvoiceStatus,
    pub version: i64,
}

/// What an ERP event does to its invoice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErpKind {
    /// Issued or updated: the invoice as the ERP has it now.
    Upsert,
    Paid,
    Cancelled,
    CreditNote,
}

impl ErpKind {
    /// Its name in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErpKind::Upsert => "upsert",
            ErpKind::Paid => "paid",
            ErpKind::Cancelled => "cancelled",
            ErpKind::CreditNote => "credit_note",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreditNote {
    pub external_id: String,
    pub amount_minor: i64,
    pub on: NaiveDate,
}

/// An ERP event that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceEvent {
    pub event_id: String,
    pub tenant_id: String,
    pub kind: ErpKind,
    pub occurred_on: NaiveDate,
    pub debtor: Debtor,
    pub invoice: Invoice,
    pub credit_note: Option<CreditNote>,
}

mod input;

pub use input::{
    money_of, parse_debtor_input, parse_invoice_input, primary_contact_id, required_date, tenant, uuid,
};

impl Debtor {
    pub fn to_proto(&self) -> pb::Debtor {
        pb::Debtor {
            debtor_id: self.debtor_id.to_string(),
            tenant_id: self.tenant_id.clone(),
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            kind: pb::DebtorKind::from(self.kind) as i32,
            time_zone: self.time_zone.clone(),
            locale: self.locale.clone(),
            country: self.country.clone(),
            email: self.email.clone().unwrap_or_default(),
            phone: self.phone.clone().unwrap_or_default(),
            region: self.region.clone().unwrap_or_default(),
            segment: self.segment.clone(),
            risk_score: self.risk_score,
            // Only where a message may go now: withdrawn and retired points are left out.
            routes: self
                .contacts
                .iter()
                .flat_map(|contact| {
                    contact
                        .points
                        .iter()
                        .filter(|p| p.usable())
                        .map(|point| pb::ContactRoute {
                            role: contact.role.as_str().to_string(),
                            channel: pb::Channel::from(point.channel) as i32,
                            address: point.address.clone(),
                            preferred: point.preferred,
                            point_id: point.point_id.to_string(),
                        })
                })
                .collect(),
            legal_hold: self.legal_hold.is_some(),
        }
    }
}

impl Contact {
    /// The contact with every point: withdrawn and retired ones too, with when and why.
    pub fn to_proto(&self) -> pb::Contact {
        pb::Contact {
            contact_id: self.contact_id.to_string(),
            name: self.name.clone(),
            role: pb::ContactRole::from(self.role) as i32,
            points: self.points.iter().map(Point::to_proto).collect(),
        }
    }
}

impl Point {
    pub fn to_proto(&self) -> pb::ContactPoint {
        pb::ContactPoint {
            point_id: self.point_id.to_string(),
            channel: pb::Channel::from(self.channel) as i32,
            address: self.address.clone(),
            consent: pb::Consent::from(self.consent) as i32,
            consent_source: self.source.clone(),
            consent_at: self.consent_at.map(time::timestamp),
            preferred: self.preferred,
            retired_at: self.retired.as_ref().map(|r| time::timestamp(r.at)),
            retired_reason: self
                .retired
                .as_ref()
                .map(|r| r.reason.clone())
                .unwrap_or_default(),
        }
    }
}

impl LegalHold {
    pub fn to_proto(&self) -> pb::LegalHold {
        pb::LegalHold {
            reason: self.reason.clone(),
            source: self.source.clone(),
            since: Some(time::timestamp(self.since)),
        }
    }
}

impl Invoice {
    pub fn to_proto(&self) -> pb::Invoice {
        pb::Invoice {
            invoice_id: self.invoice_id.to_string(),
            tenant_id: self.tenant_id.clone(),
            debtor_id: self.debtor_id.to_string(),
            external_id: self.external_id.clone(),
            number: self.number.clone(),
            amount: Some(pb::Money {
                amount_minor: self.amount_minor,
                currency: self.currency.clone(),
            }),
            issue_date: Some(time::date(self.issue_date)),
            due_date: Some(time::date(self.due_date)),
            status: pb::InvoiceStatus::from(self.status) as i32,
            version: self.version,
            ..Default::default()
        }
    }
}

/// One instalment of a payment plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Instalment {
    pub due_date: NaiveDate,
    pub amount_minor: i64,
    pub currency: String,
}

impl Instalment {
    pub fn to_proto(&self) -> pb::Instalment {
        pb::Instalment {
            due_date: Some(time::date(self.due_date)),
            amount: Some(pb::Money {
                amount_minor: self.amount_minor,
                currency: self.currency.clone(),
            }),
        }
    }
}

/// An invoice as stored, with what has happened to it since it was issued.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceState {
    pub invoice: Invoice,
    pub revision: i64,
    pub settled_minor: i64,
    pub disputed: bool,
    pub promised_date: Option<NaiveDate>,
    /// The debtor says it is paid: collection pauses through this date.
    pub claimed_paid_until: Option<NaiveDate>,
    /// A claimed-paid hold ended with no payment recorded: reminders acknowledge the claim.
    pub claim_unconfirmed: bool,
    pub plan_id: Option<Uuid>,
    pub segment: String,
}

impl InvoiceState {
    pub fn outstanding_minor(&self) -> i64 {
        if self.invoice.status == InvoiceStatus::Cancelled {
            return 0;
        }
        (self.invoice.amount_minor - self.settled_minor).max(0)
    }

    pub fn to_proto(&self) -> pb::Invoice {
        pb::Invoice {
            revision: self.revision,
            outstanding: Some(pb::Money {
                amount_minor: self.outstanding_minor(),
                currency: self.invoice.currency.clone(),
            }),
            disputed: self.disputed,
            promised_date: self.promised_date.map(time::date),
            claimed_paid_until: self.claimed_paid_until.map(time::date),
            claim_unconfirmed: self.claim_unconfirmed,
            payment_plan_id: self.plan_id.map(|id| id.to_string()).unwrap_or_default(),
            segment: self.segment.clone(),
            ..self.invoice.to_proto()
        }
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
