//! The provider's own ids that identify each webhook event, so a retried one is recognised
//! (`store::Handling`). A status is keyed by message and status, since one message reports
//! several; an inbound message by its own id.

use serde_json::Value;

/// Whose ids a key is made of (the `provider` column of `provider_events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    Twilio,
    WhatsApp,
    SendGrid,
    /// Our own one-click unsubscribe links: the token's reminder and point.
    OneClickUnsubscribe,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Twilio => "twilio",
            EventSource::WhatsApp => "whatsapp-cloud",
            EventSource::SendGrid => "sendgrid",
            EventSource::OneClickUnsubscribe => "one-click unsubscribe",
        }
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A Twilio status callback: `MessageSid` and `MessageStatus`.
pub fn twilio_status(params: &[(String, String)]) -> Option<String> {
    Some(format!(
        "status/{}/{}",
        param(params, "MessageSid")?,
        param(params, "MessageStatus")?
    ))
}

/// An inbound SMS: its own `MessageSid`.
pub fn twilio_inbound(params: &[(String, String)]) -> Option<String> {
    Some(format!("inbound/{}", param(params, "MessageSid")?))
}

/// A WhatsApp status (`statuses[]`): the message `id` and its `status`.
pub fn whatsapp_status(status: &Value) -> Option<String> {
    let id = status["id"].as_str().filter(|id| !id.is_empty())?;
    let state = status["status"].as_str().filter(|s| !s.is_empty())?;
    Some(format!("status/{id}/{state}"))
}

/// An inbound WhatsApp message (`messages[]`): its `id` (wamid).
pub fn whatsapp_message(message: &Value) -> Option<String> {
    let id = message["id"].as_str().filter(|id| !id.is_empty())?;
    Some(format!("inbound/{id}"))
}

/// A SendGrid event: its `sg_event_id`.
pub fn sendgrid(event: &Value) -> Option<String> {
    event["sg_event_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// A one-click unsubscribe: the reminder and point its token names (every valid POST of the
/// same link is the same event).
pub fn one_click(reminder_id: uuid::Uuid, point_id: uuid::Uuid) -> String {
    format!("{reminder_id}/{point_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn twilio_statuses_are_keyed_by_message_and_status_and_inbound_by_message() {
        let delivered = params(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "delivered"),
            ("To", "+1555"),
        ]);
        let read = params(&[("MessageSid", "SM1"), ("MessageStatus", "read")]);
        assert_eq!(twilio_status(&delivered).as_deref(), Some("status/SM1/delivered"));
        assert_ne!(
            twilio_status(&delivered),
            twilio_status(&read),
            "one message, two events"
        );
        let inbound = params(&[("MessageSid", "SM2"), ("From", "+1555"), ("Body", "STOP")]);
        assert_eq!(twilio_inbound(&inbound).as_deref(), Some("inbound/SM2"));
        assert_eq!(twilio_inbound(&params(&[("MessageSid", " ")])), None);
        assert_eq!(twilio_status(&params(&[("MessageSid", "SM1")])), None);
    }

    #[test]
    fn whatsapp_statuses_are_keyed_by_id_and_status_and_messages_by_id() {
        let status = serde_json::json!({"id": "wamid.A", "status": "read", "recipient_id": "1555"});
        assert_eq!(whatsapp_status(&status).as_deref(), Some("status/wamid.A/read"));
        let message = serde_json::json!({"id": "wamid.B", "from": "1555", "text": {"body": "BAJA"}});
        assert_eq!(whatsapp_message(&message).as_deref(), Some("inbound/wamid.B"));
        assert_eq!(whatsapp_message(&serde_json::json!({"from": "1555"})), None);
        assert_eq!(whatsapp_status(&serde_json::json!({"id": "wamid.A"})), None);
    }

    #[test]
    fn sendgrid_events_are_keyed_by_their_event_id() {
        let event = serde_json::json!({"event": "bounce", "sg_event_id": "sg-1", "sg_message_id": "m"});
        assert_eq!(sendgrid(&event).as_deref(), Some("sg-1"));
        assert_eq!(sendgrid(&serde_json::json!({"event": "bounce"})), None);
    }

    #[test]
    fn a_one_click_link_is_one_event_however_often_it_is_posted() {
        let (reminder, point) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        assert_eq!(one_click(reminder, point), one_click(reminder, point));
        assert_ne!(one_click(reminder, point), one_click(point, reminder));
    }
}
