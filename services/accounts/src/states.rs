//! The small closed sets the ledger stores as text: one enum each, one name per value (the
//! name in the tables), and a name we do not know is an error, never a guess.

use recobro_common::named;
use recobro_proto::v1 as pb;

named! {
    /// Whether a contact point may be used.
    "consent", "granted or withdrawn",
    pub enum Consent {
        Granted => "granted",
        Withdrawn => "withdrawn",
    }
}

named! {
    /// Whether a tenant collects its own receivables or others' (channels' provider
    /// eligibility depends on it).
    "tenant role", "creditor or agency",
    pub enum TenantRole {
        Creditor => "creditor",
        Agency => "agency",
    }
}

named! {
    "debtor kind", "company or consumer",
    pub enum DebtorKind {
        Company => "company",
        Consumer => "consumer",
    }
}

named! {
    /// Who a contact is at the debtor.
    "contact role", "treasury, accounts_payable, purchasing, decision_maker or other",
    pub enum ContactRole {
        Treasury => "treasury",
        AccountsPayable => "accounts_payable",
        Purchasing => "purchasing",
        DecisionMaker => "decision_maker",
        Other => "other",
    }
}

named! {
    "invoice status", "open, paid or cancelled",
    pub enum InvoiceStatus {
        Open => "open",
        Paid => "paid",
        Cancelled => "cancelled",
    }
}

named! {
    /// What reduced what an invoice owes.
    "settlement kind", "payment, credit_note or write_off",
    pub enum SettlementKind {
        Payment => "payment",
        CreditNote => "credit_note",
        WriteOff => "write_off",
    }
}

named! {
    /// Where a promise to pay stands.
    "promise state", "open, kept, broken or cancelled",
    pub enum PromiseState {
        Open => "open",
        Kept => "kept",
        Broken => "broken",
        Cancelled => "cancelled",
    }
}

named! {
    /// Why a work item is in the queue.
    "work item kind", "claimed_paid, unclear_promise, dispute, reply, broken_promise, collector, unsure_opt_out, payment_mismatch or payment_reversed",
    pub enum WorkKind {
        ClaimedPaid => "claimed_paid",
        UnclearPromise => "unclear_promise",
        Dispute => "dispute",
        Reply => "reply",
        BrokenPromise => "broken_promise",
        Collector => "collector",
        UnsureOptOut => "unsure_opt_out",
        PaymentMismatch => "payment_mismatch",
        PaymentReversed => "payment_reversed",
    }
}

named! {
    /// Who a ladder's escalation hands the case to: a collector of the creditor's own (a work
    /// item) or someone outside (a hand-off record).
    "escalation kind", "collector, agency, credit_bureau or legal",
    pub enum EscalationKind {
        Collector => "collector",
        Agency => "agency",
        CreditBureau => "credit_bureau",
        Legal => "legal",
    }
}

named! {
    "hand-off state", "sent, accepted or returned",
    pub enum HandoffState {
        Sent => "sent",
        Accepted => "accepted",
        Returned => "returned",
    }
}

/// The value of `all` a proto enum value stands for; `Err` for one with no counterpart (its
/// UNSPECIFIED, or a value this version does not know).
fn from_proto<T: Copy, P: PartialEq + From<T>>(all: &[T], value: P) -> Result<T, ()> {
    all.iter()
        .copied()
        .find(|known| P::from(*known) == value)
        .ok_or(())
}

impl From<HandoffState> for pb::HandoffState {
    fn from(state: HandoffState) -> pb::HandoffState {
        match state {
            HandoffState::Sent => pb::HandoffState::Sent,
            HandoffState::Accepted => pb::HandoffState::Accepted,
            HandoffState::Returned => pb::HandoffState::Returned,
        }
    }
}

impl TryFrom<pb::HandoffState> for HandoffState {
    type Error = ();
    fn try_from(state: pb::HandoffState) -> Result<HandoffState, ()> {
        from_proto(HandoffState::ALL, state)
    }
}

impl EscalationKind {
    /// The hand-off target, for every kind but a collector.
    pub fn target(self) -> Option<pb::HandoffTarget> {
        match self {
            EscalationKind::Collector => None,
            EscalationKind::Agency => Some(pb::HandoffTarget::Agency),
            EscalationKind::CreditBureau => Some(pb::HandoffTarget::CreditBureau),
            EscalationKind::Legal => Some(pb::HandoffTarget::Legal),
        }
    }
}

named! {
    "work item state", "open, claimed or resolved",
    pub enum WorkState {
        Open => "open",
        Claimed => "claimed",
        Resolved => "resolved",
    }
}

named! {
    /// How a person closed a work item.
    "work item outcome",
    "confirmed_paid, not_paid, promise_set, dispute_accepted, dispute_rejected, no_action or no_contact",
    pub enum WorkOutcome {
        ConfirmedPaid => "confirmed_paid",
        NotPaid => "not_paid",
        PromiseSet => "promise_set",
        DisputeAccepted => "dispute_accepted",
        DisputeRejected => "dispute_rejected",
        NoAction => "no_action",
        NoContact => "no_contact",
    }
}

impl From<WorkKind> for pb::WorkItemKind {
    fn from(kind: WorkKind) -> pb::WorkItemKind {
        match kind {
            WorkKind::ClaimedPaid => pb::WorkItemKind::ClaimedPaid,
            WorkKind::UnclearPromise => pb::WorkItemKind::UnclearPromise,
            WorkKind::Dispute => pb::WorkItemKind::Dispute,
            WorkKind::Reply => pb::WorkItemKind::Reply,
            WorkKind::BrokenPromise => pb::WorkItemKind::BrokenPromise,
            WorkKind::Collector => pb::WorkItemKind::Collector,
            WorkKind::UnsureOptOut => pb::WorkItemKind::UnsureOptOut,
            WorkKind::PaymentMismatch => pb::WorkItemKind::PaymentMismatch,
            WorkKind::PaymentReversed => pb::WorkItemKind::PaymentReversed,
        }
    }
}

impl TryFrom<pb::WorkItemKind> for WorkKind {
    type Error = ();
    fn try_from(kind: pb::WorkItemKind) -> Result<WorkKind, ()> {
        from_proto(WorkKind::ALL, kind)
    }
}

impl From<WorkState> for pb::WorkItemState {
    fn from(state: WorkState) -> pb::WorkItemState {
        match state {
            WorkState::Open => pb::WorkItemState::Open,
            WorkState::Claimed => pb::WorkItemState::Claimed,
            WorkState::Resolved => pb::WorkItemState::Resolved,
        }
    }
}

impl TryFrom<pb::WorkItemState> for WorkState {
    type Error = ();
    fn try_from(state: pb::WorkItemState) -> Result<WorkState, ()> {
        from_proto(WorkState::ALL, state)
    }
}

impl From<WorkOutcome> for pb::WorkItemOutcome {
    fn from(outcome: WorkOutcome) -> pb::WorkItemOutcome {
        match outcome {
            WorkOutcome::ConfirmedPaid => pb::WorkItemOutcome::ConfirmedPaid,
            WorkOutcome::NotPaid => pb::WorkItemOutcome::NotPaid,
            WorkOutcome::PromiseSet => pb::WorkItemOutcome::PromiseSet,
            WorkOutcome::DisputeAccepted => pb::WorkItemOutcome::DisputeAccepted,
            WorkOutcome::DisputeRejected => pb::WorkItemOutcome::DisputeRejected,
            WorkOutcome::NoAction => pb::WorkItemOutcome::NoAction,
            WorkOutcome::NoContact => pb::WorkItemOutcome::NoContact,
        }
    }
}

impl TryFrom<pb::WorkItemOutcome> for WorkOutcome {
    type Error = ();
    fn try_from(outcome: pb::WorkItemOutcome) -> Result<WorkOutcome, ()> {
        from_proto(WorkOutcome::ALL, outcome)
    }
}

impl From<Consent> for pb::Consent {
    fn from(consent: Consent) -> pb::Consent {
        match consent {
            Consent::Granted => pb::Consent::Granted,
            Consent::Withdrawn => pb::Consent::Withdrawn,
        }
    }
}

impl Consent {
    /// A consent as a client sends it; `None` for `CONSENT_UNSPECIFIED` and unknown numbers.
    pub fn from_wire(consent: i32) -> Option<Consent> {
        match pb::Consent::try_from(consent).ok()? {
            pb::Consent::Granted => Some(Consent::Granted),
            pb::Consent::Withdrawn => Some(Consent::Withdrawn),
            pb::Consent::Unspecified => None,
        }
    }
}

impl From<TenantRole> for pb::TenantRole {
    fn from(role: TenantRole) -> pb::TenantRole {
        match role {
            TenantRole::Creditor => pb::TenantRole::Creditor,
            TenantRole::Agency => pb::TenantRole::Agency,
        }
    }
}

impl TenantRole {
    /// A role as a client sends it; `None` for `TENANT_ROLE_UNSPECIFIED` and unknown numbers.
    pub fn from_wire(role: i32) -> Option<TenantRole> {
        match pb::TenantRole::try_from(role).ok()? {
            pb::TenantRole::Creditor => Some(TenantRole::Creditor),
            pb::TenantRole::Agency => Some(TenantRole::Agency),
            pb::TenantRole::Unspecified => None,
        }
    }
}

impl From<DebtorKind> for pb::DebtorKind {
    fn from(kind: DebtorKind) -> pb::DebtorKind {
        match kind {
            DebtorKind::Company => pb::DebtorKind::Company,
            DebtorKind::Consumer => pb::DebtorKind::Consumer,
        }
    }
}

impl DebtorKind {
    /// A kind as a client sends it; `None` for `DEBTOR_KIND_UNSPECIFIED` and unknown numbers.
    pub fn from_wire(kind: i32) -> Option<DebtorKind> {
        match pb::DebtorKind::try_from(kind).ok()? {
            pb::DebtorKind::Company => Some(DebtorKind::Company),
            pb::DebtorKind::Consumer => Some(DebtorKind::Consumer),
            pb::DebtorKind::Unspecified => None,
        }
    }
}

impl From<ContactRole> for pb::ContactRole {
    fn from(role: ContactRole) -> pb::ContactRole {
        match role {
            ContactRole::Treasury => pb::ContactRole::Treasury,
            ContactRole::AccountsPayable => pb::ContactRole::AccountsPayable,
            ContactRole::Purchasing => pb::ContactRole::Purchasing,
            ContactRole::DecisionMaker => pb::ContactRole::DecisionMaker,
            ContactRole::Other => pb::ContactRole::Other,
        }
    }
}

impl ContactRole {
    /// A role as a client sends it: one not stated is "other"; `None` for unknown numbers.
    pub fn from_wire(role: i32) -> Option<ContactRole> {
        match pb::ContactRole::try_from(role).ok()? {
            pb::ContactRole::Treasury => Some(ContactRole::Treasury),
            pb::ContactRole::AccountsPayable => Some(ContactRole::AccountsPayable),
            pb::ContactRole::Purchasing => Some(ContactRole::Purchasing),
            pb::ContactRole::DecisionMaker => Some(ContactRole::DecisionMaker),
            pb::ContactRole::Other | pb::ContactRole::Unspecified => Some(ContactRole::Other),
        }
    }
}

impl From<InvoiceStatus> for pb::InvoiceStatus {
    fn from(status: InvoiceStatus) -> pb::InvoiceStatus {
        match status {
            InvoiceStatus::Open => pb::InvoiceStatus::Open,
            InvoiceStatus::Paid => pb::InvoiceStatus::Paid,
            InvoiceStatus::Cancelled => pb::InvoiceStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::str::FromStr;

    use recobro_common::names::UnknownName;

    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + FromStr<Err = UnknownName> + fmt::Display,
    {
        for value in all {
            assert_eq!(value.to_string().parse::<T>(), Ok(*value));
        }
    }

    #[test]
    fn every_value_round_trips_through_its_name() {
        round_trips(Consent::ALL);
        round_trips(TenantRole::ALL);
        round_trips(DebtorKind::ALL);
        round_trips(ContactRole::ALL);
        round_trips(InvoiceStatus::ALL);
        round_trips(SettlementKind::ALL);
        round_trips(PromiseState::ALL);
        round_trips(WorkKind::ALL);
        round_trips(WorkState::ALL);
        round_trips(WorkOutcome::ALL);
        round_trips(EscalationKind::ALL);
        round_trips(HandoffState::ALL);
        assert!("collections".parse::<EscalationKind>().is_err());
        for state in HandoffState::ALL {
            assert_eq!(HandoffState::try_from(pb::HandoffState::from(*state)), Ok(*state));
        }
        for kind in WorkKind::ALL {
            assert_eq!(WorkKind::try_from(pb::WorkItemKind::from(*kind)), Ok(*kind));
        }
        for outcome in WorkOutcome::ALL {
            assert_eq!(
                WorkOutcome::try_from(pb::WorkItemOutcome::from(*outcome)),
                Ok(*outcome)
            );
        }
        assert_eq!(WorkOutcome::try_from(pb::WorkItemOutcome::Unspecified), Err(()));
        assert_eq!(WorkState::try_from(pb::WorkItemState::Unspecified), Err(()));
    }

    #[test]
    fn the_names_are_the_ones_in_the_tables() {
        let names = |all: &[&str]| all.join(",");
        assert_eq!(
            names(&Consent::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
            "granted,withdrawn"
        );
        assert_eq!(
            names(&TenantRole::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
            "creditor,agency"
        );
        assert_eq!(
            names(&DebtorKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
            "company,consumer"
        );
        assert_eq!(
            names(&ContactRole::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
            "treasury,accounts_payable,purchasing,decision_maker,other"
        );
        assert_eq!(
            names(&InvoiceStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            "open,paid,cancelled"
        );
    }

    #[test]
    fn unknown_names_are_errors_not_guesses() {
        assert!("Granted".parse::<Consent>().is_err());
        assert!("".parse::<Consent>().is_err());
        assert!("person".parse::<DebtorKind>().is_err());
        assert!("collector".parse::<TenantRole>().is_err());
        assert!("ceo".parse::<ContactRole>().is_err());
        assert!("closed".parse::<InvoiceStatus>().is_err());
        assert!("refund".parse::<SettlementKind>().is_err());
        assert!("pending".parse::<PromiseState>().is_err());
        let err = "closed".parse::<InvoiceStatus>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown invoice status \"closed\" (open, paid or cancelled)"
        );
    }
}
