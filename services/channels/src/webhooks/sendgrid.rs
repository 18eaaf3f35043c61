//! SendGrid's event webhook, signed with ECDSA: deliveries, bounces, drops, spam reports and
//! unsubscribes. A hard bounce, a drop, a complaint or an unsubscribe withdraws the address
//! the email went to (its contact point, not every address of the debtor), and is published
//! as an opt-out for accounts to record in the ledger.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use recobro_proto::v1 as pb;
use serde_json::Value;
use uuid::Uuid;

use super::event_keys::{self, EventSource};
use super::{Rejection, Source, Webhooks, forbidden, record, unavailable};
use crate::provider::redacted;
use crate::replies::Reading;
use crate::signatures;
use crate::store::{self, Handling};

/// The events SendGrid documents. Those that say nothing about consent or delivery (processed,
/// deferred, opens and clicks) change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Processed,
    Dropped,
    Delivered,
    Deferred,
    Bounce,
    Open,
    Click,
    SpamReport,
    Unsubscribe,
    GroupUnsubscribe,
    GroupResubscribe,
}

impl Event {
    fn parse(name: &str) -> Option<Event> {
        Some(match name {
            "processed" => Event::Processed,
            "dropped" => Event::Dropped,
            "delivered" => Event::Delivered,
            "deferred" => Event::Deferred,
            "bounce" => Event::Bounce,
            "open" => Event::Open,
            "click" => Event::Click,
            "spamreport" => Event::SpamReport,
            "unsubscribe" => Event::Unsubscribe,
            "group_unsubscribe" => Event::GroupUnsubscribe,
            "group_resubscribe" => Event::GroupResubscribe,
            _ => return None,
        })
    }
}

/// What an event does: the delivery's new status (with why), and the opt-out it stands for.
fn effects(event: Event, details: &Value) -> (Option<pb::DeliveryStatus>, Option<Source>) {
    match event {
        Event::Delivered => (Some(pb::DeliveryStatus::Delivered), None),
        // A "blocked" bounce is the receiving server refusing us for now (reputation, rate):
        // the message failed, the address did not.
        Event::Bounce if details["type"].as_str() == Some("blocked") => {
            (Some(pb::DeliveryStatus::Failed), None)
        }
        Event::Bounce => (Some(pb::DeliveryStatus::Failed), Some(Source::SendGridBounce)),
        Event::Dropped => (Some(pb::DeliveryStatus::Failed), Some(Source::SendGridDropped)),
        Event::SpamReport => (None, Some(Source::SendGridSpamReport)),
        Event::Unsubscribe => (None, Some(Source::SendGridUnsubscribe)),
        Event::GroupUnsubscribe => (None, Some(Source::SendGridGroupUnsubscribe)),
        Event::Processed | Event::Deferred | Event::Open | Event::Click | Event::GroupResubscribe => {
            (None, None)
        }
    }
}

pub(super) async fn sendgrid(
    State(webhooks): State<Webhooks>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Rejection> {
    let key = webhooks
        .sendgrid_public_key
        .as_deref()
        .ok_or_else(|| forbidden("sendgrid is not configured"))?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let signature = header("x-twilio-email-event-webhook-signature");
    let timestamp = header("x-twilio-email-event-webhook-timestamp");
    if !signatures::sendgrid_valid(
        key,
        timestamp,
        &body,
        signature,
        Utc::now(),
        chrono::Duration::minutes(10),
    ) {
        tracing::warn!("sendgrid webhook with a bad or stale signature refused");
        return Err(forbidden("bad signature"));
    }
    let events: Vec<Value> = serde_json::from_slice(&body)
        .map_err(|err| (StatusCode::BAD_REQUEST, format!("not a JSON array: {err}")))?;
    for details in &events {
        handle(&webhooks, details).await?;
    }
    Ok(StatusCode::OK)
}

/// One event of the batch, once however often SendGrid posts it.
async fn handle(webhooks: &Webhooks, details: &Value) -> Result<(), Rejection> {
    let name = details["event"].as_str().unwrap_or_default();
    let Some(event) = Event::parse(name) else {
        // Answering an error would only make SendGrid post the whole batch again.
        tracing::warn!(event = name, "an unknown sendgrid event ignored");
        return Ok(());
    };
    let (status, opt_out) = effects(event, details);
    if status.is_none() && opt_out.is_none() {
        return Ok(());
    }
    // Our only custom arg: the reminder id (never personal data at the provider).
    let Some(reminder_id) = details["reminder_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
    else {
        tracing::warn!(event = name, "a sendgrid event without our reminder id ignored");
        return Ok(());
    };
    let Some(delivery) = store::delivery(&webhooks.pool, reminder_id)
        .await
        .map_err(unavailable)?
    else {
        tracing::warn!(%reminder_id, event = name, "a sendgrid event for an unknown reminder ignored");
        return Ok(());
    };
    let mut handling = match event_keys::sendgrid(details) {
        Some(key) => {
            let handling = Handling::begin(&webhooks.pool, EventSource::SendGrid.as_str(), &key)
                .await
                .map_err(unavailable)?;
            let Some(handling) = handling else {
                return Ok(());
            };
            handling
        }
        None => {
            tracing::warn!(%reminder_id, event = name, "a sendgrid event without sg_event_id: handled without the retry guard");
            Handling::begin_unkeyed(&webhooks.pool)
                .await
                .map_err(unavailable)?
        }
    };
    if let Some(status) = status {
        let reason = match status {
            pb::DeliveryStatus::Failed => redacted(
                &format!(
                    "sendgrid {name}: {}",
                    details["reason"].as_str().unwrap_or_default()
                ),
                details["email"].as_str().unwrap_or(&delivery.recipient),
            ),
            _ => String::new(),
        };
        store::update_status_of_reminder(
            &mut handling,
            reminder_id,
            status,
            &reason,
            &webhooks.deliveries_topic,
        )
        .await
        .map_err(unavailable)?;
    }
    if let Some(source) = opt_out {
        // Reported by the provider, not written by the debtor: no text.
        record(
            webhooks,
            &mut handling,
            &delivery,
            String::new(),
            Reading::sure(pb::ResponseIntent::OptOut),
            source,
        )
        .await?;
    }
    handling.commit().await.map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_bounces_drops_complaints_and_unsubscribes_withdraw_the_address() {
        let none = serde_json::json!({});
        for (name, source) in [
            ("bounce", Source::SendGridBounce),
            ("dropped", Source::SendGridDropped),
            ("spamreport", Source::SendGridSpamReport),
            ("unsubscribe", Source::SendGridUnsubscribe),
            ("group_unsubscribe", Source::SendGridGroupUnsubscribe),
        ] {
            let event = Event::parse(name).expect("known");
            assert_eq!(effects(event, &none).1, Some(source), "{name}");
        }
        let blocked = serde_json::json!({"type": "blocked"});
        assert_eq!(
            effects(Event::Bounce, &blocked),
            (Some(pb::DeliveryStatus::Failed), None),
            "blocked: the message failed, the address did not"
        );
        assert_eq!(
            effects(Event::Delivered, &none),
            (Some(pb::DeliveryStatus::Delivered), None)
        );
        for name in ["processed", "deferred", "open", "click", "group_resubscribe"] {
            assert_eq!(
                effects(Event::parse(name).expect("known"), &none),
                (None, None),
                "{name}"
            );
        }
        assert_eq!(Event::parse("bounced"), None);
    }
}
