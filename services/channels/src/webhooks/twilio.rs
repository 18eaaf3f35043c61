//! Twilio's webhook: status callbacks (MessageStatus) and inbound SMS (Body), both signed.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use recobro_common::Channel;
use recobro_common::secret::Secret;
use recobro_proto::v1 as pb;

use super::event_keys::{self, EventSource};
use super::{Rejection, Webhooks, forbidden, reply_from, unavailable};
use crate::signatures;
use crate::store::{self, Handling};

pub(super) async fn twilio(
    State(webhooks): State<Webhooks>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Rejection> {
    let token = webhooks
        .twilio_auth_token
        .as_ref()
        .map(Secret::expose)
        .ok_or_else(|| forbidden("twilio is not configured"))?;
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let url = format!("{}/webhooks/twilio", webhooks.public_url.trim_end_matches('/'));
    // No settings header: the auth token and HMAC-SHA1. With one: its algorithm and a
    // Setting's shared key (any of those configured, so keys can be rotated).
    let (secrets, algorithm) = match headers.get("x-twilio-webhooks-signature-settings") {
        None => (vec![token], signatures::TwilioAlgorithm::Sha1),
        Some(settings) => {
            let algorithm = settings
                .to_str()
                .ok()
                .and_then(signatures::twilio_algorithm)
                .ok_or_else(|| forbidden("unsupported signature algorithm"))?;
            if webhooks.twilio_shared_keys.is_empty() {
                // Answered 500 so Twilio retries while the operator sets the key: nothing lost.
                tracing::warn!(
                    "a Twilio webhook is signed with a Webhooks Setting key, and TWILIO_WEBHOOK_SHARED_KEY is not set"
                );
                return Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "signing key not configured".into(),
                ));
            }
            (
                webhooks.twilio_shared_keys.iter().map(Secret::expose).collect(),
                algorithm,
            )
        }
    };
    if !secrets
        .iter()
        .any(|secret| signatures::twilio_valid(secret, algorithm, &url, &params, signature))
    {
        tracing::warn!("twilio webhook with a bad signature refused");
        return Err(forbidden("bad signature"));
    }
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let (Some(key), Some(sid), Some(status)) = (
        event_keys::twilio_status(&params),
        get("MessageSid"),
        get("MessageStatus"),
    ) {
        let (status, reason) = match status.trim() {
            "delivered" => (pb::DeliveryStatus::Delivered, String::new()),
            "read" => (pb::DeliveryStatus::Read, String::new()),
            "failed" | "undelivered" => (
                pb::DeliveryStatus::Failed,
                format!("twilio {status}, error {}", get("ErrorCode").unwrap_or("-")),
            ),
            // queued, sending, sent, accepted: nothing new for the debtor's record.
            _ => return Ok(StatusCode::NO_CONTENT),
        };
        let Some(mut handling) = Handling::begin(&webhooks.pool, EventSource::Twilio.as_str(), &key)
            .await
            .map_err(unavailable)?
        else {
            return Ok(StatusCode::NO_CONTENT);
        };
        store::update_status(
            &mut handling,
            sid.trim(),
            status,
            &reason,
            &webhooks.deliveries_topic,
        )
        .await
        .map_err(unavailable)?;
        handling.commit().await.map_err(unavailable)?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let (Some(key), Some(from), Some(to), Some(text)) = (
        event_keys::twilio_inbound(&params),
        get("From"),
        get("To"),
        get("Body"),
    ) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "neither a status callback nor an inbound message (MessageSid, From, To, Body)".into(),
        ));
    };
    // `To` is our number the debtor wrote to: the sender our deliveries record.
    reply_from(
        &webhooks,
        (EventSource::Twilio, &key),
        Channel::Sms,
        to.trim(),
        from.trim(),
        text,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
