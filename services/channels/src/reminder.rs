//! A `ReminderDue` with the fields delivery relies on checked once, at the edge.

use chrono_tz::Tz;
use recobro_proto::v1 as pb;
use recobro_rules::Channel;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct Reminder {
    /// The W3C trace the reminder arrived in: its delivery record continues it.
    pub traceparent: Option<String>,
    pub reminder_id: Uuid,
    pub debtor_id: Uuid,
    pub invoice_id: Option<Uuid>,
    pub channel: Channel,
    /// A contact point of the debtor's the message must go to (one-off messages).
    pub point_id: Option<Uuid>,
    /// The debtor as channels' view of the ledger has them, and their zone: set by the
    /// dispatcher from the view before any decision (`with_ledger`). The event's own copy of
    /// the debtor is never read: addresses, country and time zone come from the ledger.
    pub time_zone: Tz,
    pub debtor: pb::Debtor,
    pub event: pb::ReminderDue,
    /// The step's next channels, in order, for when a provider keeps failing.
    pub fallbacks: Vec<Fallback>,
    /// A statement's invoices, one per covered reminder (empty for one invoice's reminder).
    pub covered: Vec<Covered>,
}

/// One invoice's reminder a statement covers.
#[derive(Clone, Debug)]
pub struct Covered {
    pub reminder_id: Uuid,
    pub invoice_id: Uuid,
    pub template_id: String,
    pub invoice: pb::Invoice,
}

/// The most invoices one statement lists: a month of daily invoices for a large buyer, and far
/// below the topic's message size.
pub const MAX_COVERED: usize = 1_000;

#[derive(Clone, Debug)]
pub struct Fallback {
    pub channel: Channel,
    pub contact_role: String,
}

/// Checks a reminder; the reason names the field that is wrong.
pub fn parse(event: pb::ReminderDue) -> Result<Reminder, String> {
    let reminder_id = Uuid::parse_str(&event.reminder_id).map_err(|_| "reminder_id is not a UUID")?;
    let debtor_id = Uuid::parse_str(&event.debtor_id).map_err(|_| "debtor_id is not a UUID")?;
    let channel = Channel::try_from(event.channel()).map_err(|err| format!("channel: {err}"))?;
    let point_id = match event.point_id.as_str() {
        "" => None,
        id => Some(Uuid::parse_str(id).map_err(|_| "point_id is not a UUID")?),
    };
    if event.tenant_id.is_empty() {
        return Err("tenant_id is required".into());
    }
    let mut fallbacks = Vec::with_capacity(event.fallbacks.len());
    for (index, fallback) in event.fallbacks.iter().enumerate() {
        let channel = Channel::try_from(fallback.channel())
            .map_err(|err| format!("fallbacks[{index}].channel: {err}"))?;
        fallbacks.push(Fallback {
            channel,
            contact_role: fallback.contact_role.clone(),
        });
    }
    if event.covered.len() > MAX_COVERED {
        return Err(format!("covered holds more than {MAX_COVERED} reminders"));
    }
    let mut covered = Vec::with_capacity(event.covered.len());
    for (index, reminder) in event.covered.iter().enumerate() {
        let reminder_id = Uuid::parse_str(&reminder.reminder_id)
            .map_err(|_| format!("covered[{index}].reminder_id is not a UUID"))?;
        let invoice = reminder
            .invoice
            .clone()
            .ok_or_else(|| format!("covered[{index}].invoice is required"))?;
        let invoice_id = Uuid::parse_str(&invoice.invoice_id)
            .map_err(|_| format!("covered[{index}].invoice.invoice_id is not a UUID"))?;
        covered.push(Covered {
            reminder_id,
            invoice_id,
            template_id: reminder.template_id.clone(),
            invoice,
        });
    }
    Ok(Reminder {
        traceparent: None,
        reminder_id,
        debtor_id,
        invoice_id: Uuid::parse_str(&event.invoice_id).ok(),
        channel,
        point_id,
        time_zone: chrono_tz::UTC,
        debtor: pb::Debtor::default(),
        event,
        fallbacks,
        covered,
    })
}

impl Reminder {
    /// Whether it is a statement covering several invoices.
    pub fn is_statement(&self) -> bool {
        !self.covered.is_empty()
    }

    /// The reminder with its debtor as the ledger has them.
    pub fn with_ledger(&self, debtor: &pb::Debtor, time_zone: Tz) -> Reminder {
        let mut addressed = self.clone();
        addressed.debtor = debtor.clone();
        addressed.time_zone = time_zone;
        addressed
    }

    /// The same reminder on the step's next channel (its fallback), for that channel's role.
    pub fn on_fallback(&self, fallback: &Fallback) -> Reminder {
        let mut next = self.clone();
        next.channel = fallback.channel;
        next.point_id = None;
        next.event.channel = pb::Channel::from(fallback.channel) as i32;
        next.event.contact_role = fallback.contact_role.clone();
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due() -> pb::ReminderDue {
        pb::ReminderDue {
            reminder_id: Uuid::from_u128(1).to_string(),
            debtor_id: Uuid::from_u128(2).to_string(),
            tenant_id: "acme".into(),
            channel: pb::Channel::Sms as i32,
            // What the producer believed: channels never reads it.
            debtor: Some(pb::Debtor {
                time_zone: "Mars/Base".into(),
                email: "someone@else.example".into(),
                ..Default::default()
            }),
            recipient: "+15550001111".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_checked_reminder_keeps_its_ids_and_channel_and_none_of_the_events_debtor() {
        let reminder = parse(due()).expect("valid");
        assert_eq!(reminder.channel, Channel::Sms);
        assert_eq!(reminder.debtor_id, Uuid::from_u128(2));
        assert_eq!(reminder.invoice_id, None);
        assert_eq!(reminder.point_id, None);
        assert_eq!(reminder.debtor, pb::Debtor::default());
        let ledger = pb::Debtor {
            time_zone: "America/Bogota".into(),
            ..Default::default()
        };
        let addressed = reminder.with_ledger(&ledger, chrono_tz::America::Bogota);
        assert_eq!(addressed.time_zone, chrono_tz::America::Bogota);
        assert_eq!(addressed.debtor.time_zone, "America/Bogota");
    }

    /// Spoils one field of a valid reminder.
    type Spoil = fn(&mut pb::ReminderDue);

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(&str, Spoil); 9] = [
            ("reminder_id", |e| e.reminder_id = "x".into()),
            ("debtor_id", |e| e.debtor_id = String::new()),
            ("channel", |e| e.channel = pb::Channel::Unspecified as i32),
            ("point_id", |e| e.point_id = "+15550001111".into()),
            ("tenant_id", |e| e.tenant_id.clear()),
            ("fallbacks[0].channel", |e| {
                e.fallbacks.push(pb::Fallback::default())
            }),
            ("covered[0].reminder_id", |e| {
                e.covered.push(pb::CoveredReminder::default())
            }),
            ("covered[0].invoice", |e| {
                e.covered.push(pb::CoveredReminder {
                    reminder_id: Uuid::from_u128(3).to_string(),
                    ..Default::default()
                })
            }),
            ("covered holds more than", |e| {
                e.covered = vec![pb::CoveredReminder::default(); MAX_COVERED + 1]
            }),
        ];
        for (field, spoil) in cases {
            let mut event = due();
            spoil(&mut event);
            let reason = parse(event).expect_err(field);
            assert!(reason.starts_with(field), "{field}: {reason}");
        }
    }
}
