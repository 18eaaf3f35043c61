//! WhatsApp Cloud API webhooks: Meta's subscription handshake, and status and inbound-message
//! notifications signed over the raw body.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use recobro_common::Channel;
use recobro_common::secret::Secret;
use recobro_proto::v1 as pb;
use serde::Deserialize;
use serde_json::Value;

use super::event_keys::{self, EventSource};
use super::{Rejection, Webhooks, forbidden, reply_from, unavailable};
use crate::signatures;
use crate::store::{self, Handling};

#[derive(Deserialize)]
pub(super) struct VerifyQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Meta's subscription handshake: echo the challenge when the verify token is ours.
pub(super) async fn whatsapp_verify(
    State(webhooks): State<Webhooks>,
    Query(query): Query<VerifyQuery>,
) -> Result<String, Rejection> {
    let ours = webhooks
        .whatsapp_verify_token
        .as_ref()
        .map(Secret::expose)
        .ok_or_else(|| forbidden("whatsapp is not configured"))?;
    match (
        query.mode.as_deref(),
        query.verify_token.as_deref(),
        query.challenge,
    ) {
        (Some("subscribe"), Some(token), Some(challenge)) if token == ours => Ok(challenge),
        _ => Err(forbidden("verification refused")),
    }
}

pub(super) async fn whatsapp(
    State(webhooks): State<Webhooks>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Rejection> {
    let secret = webhooks
        .whatsapp_app_secret
        .as_ref()
        .map(Secret::expose)
        .ok_or_else(|| forbidden("whatsapp is not configured"))?;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !signatures::meta_valid(secret, &body, signature) {
        tracing::warn!("whatsapp webhook with a bad signature refused");
        return Err(forbidden("bad signature"));
    }
    let payload: Value =
        serde_json::from_slice(&body).map_err(|err| (StatusCode::BAD_REQUEST, format!("not JSON: {err}")))?;
    let values = payload["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| {
            entry["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|change| change["value"].clone())
                .collect::<Vec<_>>()
        });
    for value in values {
        for status in value["statuses"].as_array().into_iter().flatten() {
            status_update(&webhooks, status).await?;
        }
        // Which of our numbers the messages came to: the sender our deliveries record.
        let Some(our_number) = value["metadata"]["phone_number_id"].as_str() else {
            continue;
        };
        for message in value["messages"].as_array().into_iter().flatten() {
            let (Some(key), Some(from), Some(text)) = (
                event_keys::whatsapp_message(message),
                message["from"].as_str(),
                text_of(message),
            ) else {
                continue;
            };
            reply_from(
                &webhooks,
                (EventSource::WhatsApp, &key),
                Channel::Whatsapp,
                our_number,
                &format!("+{}", from.trim_start_matches('+')),
                text,
            )
            .await?;
        }
    }
    Ok(StatusCode::OK)
}

/// A delivered, read or failed message, once per (message, status).
async fn status_update(webhooks: &Webhooks, status: &Value) -> Result<(), Rejection> {
    let (Some(key), Some(id), Some(state)) = (
        event_keys::whatsapp_status(status),
        status["id"].as_str(),
        status["status"].as_str(),
    ) else {
        return Ok(());
    };
    let (state, reason) = match state {
        "delivered" => (pb::DeliveryStatus::Delivered, String::new()),
        "read" => (pb::DeliveryStatus::Read, String::new()),
        "failed" => (
            pb::DeliveryStatus::Failed,
            format!("whatsapp failed: {}", status["errors"][0]["code"]),
        ),
        // sent: nothing new for the debtor's record.
        _ => return Ok(()),
    };
    let Some(mut handling) = Handling::begin(&webhooks.pool, EventSource::WhatsApp.as_str(), &key)
        .await
        .map_err(unavailable)?
    else {
        return Ok(());
    };
    store::update_status(&mut handling, id, state, &reason, &webhooks.deliveries_topic)
        .await
        .map_err(unavailable)?;
    handling.commit().await.map_err(unavailable)
}

/// What the debtor wrote: a text, or the label of a quick-reply button they tapped ("Stop
/// promotions" buttons are opt-outs too).
fn text_of(message: &Value) -> Option<&str> {
    message["text"]["body"]
        .as_str()
        .or_else(|| message["button"]["text"].as_str())
        .or_else(|| message["interactive"]["button_reply"]["title"].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_its_text_or_the_button_tapped() {
        let text = serde_json::json!({"type": "text", "text": {"body": "BAJA"}});
        let button = serde_json::json!({"type": "button", "button": {"text": "Stop", "payload": "x"}});
        let interactive = serde_json::json!({"type": "interactive", "interactive": {"button_reply": {"id": "1", "title": "Parar"}}});
        let image = serde_json::json!({"type": "image", "image": {"id": "1"}});
        assert_eq!(text_of(&text), Some("BAJA"));
        assert_eq!(text_of(&button), Some("Stop"));
        assert_eq!(text_of(&interactive), Some("Parar"));
        assert_eq!(text_of(&image), None);
    }
}
