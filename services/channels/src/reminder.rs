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
    pub time_zone: Tz,
    pub debtor: pb::Debtor,
    pub event: pb::ReminderDue,
    /// The step's next channels, in order, for when a provider keeps failing.
    pub fallbacks: Vec<Fallback>,
}

#[derive(Clone, Debug)]
pub struct Fallback {
    pub channel: Channel,
    pub recipient: String,
    pub contact_role: String,
}

/// Checks a reminder; the reason names the field that is wrong.
pub fn parse(event: pb::ReminderDue) -> Result<Reminder, String> {
    let reminder_id = Uuid::parse_str(&event.reminder_id).map_err(|_| "reminder_id is not a UUID")?;
    let debtor_id = Uuid::parse_str(&event.debtor_id).map_err(|_| "debtor_id is not a UUID")?;
    let channel = Channel::try_from(event.channel()).map_err(|err| format!("channel: {err}"))?;
    let debtor = event.debtor.clone().ok_or("debtor is required")?;
    let time_zone = debtor
        .time_zone
        .parse()
        .map_err(|_| format!("debtor.time_zone {:?} is not an IANA zone", debtor.time_zone))?;
    if event.tenant_id.is_empty() {
        return Err("tenant_id is required".into());
    }
    let mut fallbacks = Vec::with_capacity(event.fallbacks.len());
    for (index, fallback) in event.fallbacks.iter().enumerate() {
        let channel = Channel::try_from(fallback.channel())
            .map_err(|err| format!("fallbacks[{index}].channel: {err}"))?;
        fallbacks.push(Fallback {
            channel,
            recipient: fallback.recipient.clone(),
            contact_role: fallback.contact_role.clone(),
        });
    }
    Ok(Reminder {
        traceparent: None,
        reminder_id,
        debtor_id,
        invoice_id: Uuid::parse_str(&event.invoice_id).ok(),
        channel,
        time_zone,
        debtor,
        event,
        fallbacks,
    })
}

impl Reminder {
    /// The same reminder on the step's next channel (its fallback), with that channel's
    /// recipient and role.
    pub fn on_fallback(&self, fallback: &Fallback) -> Reminder {
        let mut next = self.clone();
        next.channel = fallback.channel;
        next.event.channel = pb::Channel::from(fallback.channel) as i32;
        next.event.recipient = fallback.recipient.clone();
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
            debtor: Some(pb::Debtor {
                time_zone: "America/Bogota".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_checked_reminder_keeps_its_ids_channel_and_zone() {
        let reminder = parse(due()).expect("valid");
        assert_eq!(reminder.channel, Channel::Sms);
        assert_eq!(reminder.time_zone, chrono_tz::America::Bogota);
        assert_eq!(reminder.debtor_id, Uuid::from_u128(2));
        assert_eq!(reminder.invoice_id, None);
    }

    /// Spoils one field of a valid reminder.
    type Spoil = fn(&mut pb::ReminderDue);

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(&str, Spoil); 6] = [
            ("reminder_id", |e| e.reminder_id = "x".into()),
            ("debtor_id", |e| e.debtor_id = String::new()),
            ("channel", |e| e.channel = pb::Channel::Unspecified as i32),
            ("debtor.time_zone", |e| {
                e.debtor.as_mut().expect("debtor").time_zone = "Mars/Base".into()
            }),
            ("tenant_id", |e| e.tenant_id.clear()),
            ("fallbacks[0].channel", |e| {
                e.fallbacks.push(pb::Fallback::default())
            }),
        ];
        for (field, spoil) in cases {
            let mut event = due();
            spoil(&mut event);
            let reason = parse(event).expect_err(field);
            assert!(reason.starts_with(field), "{field}: {reason}");
        }
        let mut event = due();
        event.debtor = None;
        assert_eq!(parse(event).expect_err("no debtor"), "debtor is required");
    }
}
