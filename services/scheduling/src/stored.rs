//! The words scheduling keeps in its tables (`reminders.state`, `reminders.action`,
//! `invoices.status`) and in its strategies (escalation kinds): one enum each, one name per
//! value (`as_str`) and one strict parse (`FromStr`). An unknown word is an error, never a
//! guess. The text is what the tables already hold: no migration.

use std::fmt;
use std::str::FromStr;

use recobro_common::named;
use recobro_common::names::UnknownName;
use recobro_proto::v1 as pb;
use recobro_rules::{Channel, UnknownChannel};

named! {
    /// Where a reminder (a durable timer) is in its life: `reminders.state`. `Skipped`: its
    /// moment had passed when the invoice arrived, and a later step was due. `Paused`: held
    /// while the invoice is disputed, under a promise to pay or in a payment plan, or its
    /// debtor under a legal hold.
    "reminder state", "pending, emitted, cancelled, skipped or paused",
    pub enum ReminderState {
        Pending => "pending",
        Emitted => "emitted",
        Cancelled => "cancelled",
        Skipped => "skipped",
        Paused => "paused",
    }
}

impl From<ReminderState> for pb::ReminderState {
    fn from(state: ReminderState) -> pb::ReminderState {
        match state {
            ReminderState::Pending => pb::ReminderState::Pending,
            ReminderState::Emitted => pb::ReminderState::Emitted,
            ReminderState::Cancelled => pb::ReminderState::Cancelled,
            ReminderState::Skipped => pb::ReminderState::Skipped,
            ReminderState::Paused => pb::ReminderState::Paused,
        }
    }
}

named! {
    /// An invoice's status as scheduling keeps it: `invoices.status`.
    "invoice status", "open, paid or cancelled",
    pub enum InvoiceState {
        Open => "open",
        Paid => "paid",
        Cancelled => "cancelled",
    }
}

impl TryFrom<pb::InvoiceStatus> for InvoiceState {
    type Error = UnknownName;

    fn try_from(status: pb::InvoiceStatus) -> Result<InvoiceState, UnknownName> {
        match status {
            pb::InvoiceStatus::Open => Ok(InvoiceState::Open),
            pb::InvoiceStatus::Paid => Ok(InvoiceState::Paid),
            pb::InvoiceStatus::Cancelled => Ok(InvoiceState::Cancelled),
            pb::InvoiceStatus::Unspecified => Err(UnknownName {
                what: "invoice status",
                name: "INVOICE_STATUS_UNSPECIFIED".into(),
                expected: "OPEN, PAID or CANCELLED",
            }),
        }
    }
}

named! {
    /// Who a case is handed on to by an escalation step (the name in strategy files and in
    /// `Escalation.kind`).
    "escalation", "collector, agency, credit_bureau or legal",
    pub enum EscalationKind {
        Collector => "collector",
        Agency => "agency",
        CreditBureau => "credit_bureau",
        Legal => "legal",
    }
}

/// What a reminder does when it falls due: `reminders.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReminderAction {
    /// A ladder step's message.
    Message,
    /// A payment plan's instalment reminder.
    Instalment,
    /// A ladder step that hands the case on; stored as `escalate:<kind>`.
    Escalate(EscalationKind),
}

impl ReminderAction {
    /// How it is stored and shown: "message", "instalment" or "escalate:<kind>".
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderAction::Message => "message",
            ReminderAction::Instalment => "instalment",
            ReminderAction::Escalate(EscalationKind::Collector) => "escalate:collector",
            ReminderAction::Escalate(EscalationKind::Agency) => "escalate:agency",
            ReminderAction::Escalate(EscalationKind::CreditBureau) => "escalate:credit_bureau",
            ReminderAction::Escalate(EscalationKind::Legal) => "escalate:legal",
        }
    }
}

impl FromStr for ReminderAction {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<ReminderAction, UnknownName> {
        let unknown = || UnknownName {
            what: "reminder action",
            name: name.to_string(),
            expected: "message, instalment or escalate:<kind>",
        };
        match name {
            "message" => Ok(ReminderAction::Message),
            "instalment" => Ok(ReminderAction::Instalment),
            _ => match name.strip_prefix("escalate:") {
                Some(kind) => kind.parse().map(ReminderAction::Escalate).map_err(|_| unknown()),
                None => Err(unknown()),
            },
        }
    }
}

/// `reminders.channel`: the step's first channel, or '' for a step without one (an escalation).
pub fn channel_column(channel: Option<Channel>) -> &'static str {
    channel.map_or("", Channel::as_str)
}

/// The strict reverse of `channel_column`.
pub fn parse_channel_column(name: &str) -> Result<Option<Channel>, UnknownChannel> {
    if name.is_empty() {
        Ok(None)
    } else {
        name.parse().map(Some)
    }
}

/// A reminder's channel on the wire: CHANNEL_UNSPECIFIED for a step without one.
pub fn channel_on_wire(channel: Option<Channel>) -> pb::Channel {
    channel.map_or(pb::Channel::Unspecified, pb::Channel::from)
}

impl fmt::Display for ReminderAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_name() {
        for state in ReminderState::ALL {
            assert_eq!(state.as_str().parse(), Ok(*state));
        }
        for state in InvoiceState::ALL {
            assert_eq!(state.as_str().parse(), Ok(*state));
        }
        for &kind in EscalationKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
            let action = ReminderAction::Escalate(kind);
            assert_eq!(action.as_str(), format!("escalate:{kind}"));
            assert_eq!(action.as_str().parse(), Ok(action));
        }
        for action in [ReminderAction::Message, ReminderAction::Instalment] {
            assert_eq!(action.as_str().parse(), Ok(action));
        }
    }

    #[test]
    fn unknown_words_are_errors_not_guesses() {
        assert!("Pending".parse::<ReminderState>().is_err());
        assert!("".parse::<ReminderState>().is_err());
        assert!("overdue".parse::<InvoiceState>().is_err());
        assert!("sheriff".parse::<EscalationKind>().is_err());
        assert!("escalate:sheriff".parse::<ReminderAction>().is_err());
        assert!("escalate:".parse::<ReminderAction>().is_err());
        assert!("collector".parse::<ReminderAction>().is_err());
        assert!("".parse::<ReminderAction>().is_err());
        assert!(InvoiceState::try_from(pb::InvoiceStatus::Unspecified).is_err());
    }

    #[test]
    fn a_reminder_without_a_channel_is_stored_empty_and_nothing_else_is() {
        assert_eq!(parse_channel_column(channel_column(None)), Ok(None));
        for channel in Channel::ALL {
            assert_eq!(
                parse_channel_column(channel_column(Some(channel))),
                Ok(Some(channel))
            );
        }
        assert!(parse_channel_column("fax").is_err());
        assert!(parse_channel_column("Email").is_err());
        assert_eq!(channel_on_wire(None), pb::Channel::Unspecified);
    }
}
