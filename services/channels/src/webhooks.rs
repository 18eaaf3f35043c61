//! The HTTP side of channels: provider webhooks bringing back what debtors answer.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Json, Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::Utc;
use recobro_common::secret::Secret;
use recobro_common::time;
use recobro_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{replies, signatures, store};

#[derive(Clone)]
pub struct Webhooks {
    pub pool: PgPool,
    pub responses_topic: String,
    pub deliveries_topic: String,
    /// Our public base URL as providers call it: Twilio signs the full URL, so a proxy that
    /// rewrites scheme or host must not change what we verify against.
    pub public_url: String,
    pub twilio_auth_token: Option<Secret>,
    /// The SharedKeys of Twilio Webhooks Settings, for webhooks they sign instead of the
    /// token: several while a key is being rotated.
    pub twilio_shared_keys: Vec<Secret>,
    pub whatsapp_app_secret: Option<Secret>,
    pub whatsapp_verify_token: Option<Secret>,
    /// SendGrid's event-webhook verification key (base64 DER).
    pub sendgrid_public_key: Option<String>,
}

pub fn router(webhooks: Webhooks) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/webhooks/sandbox/replies", post(sandbox_reply))
        .route("/webhooks/twilio", post(twilio))
        .route("/unsubscribe/{reminder_id}", post(unsubscribe))
        .route("/webhooks/sendgrid", post(sendgrid))
        .route("/webhooks/whatsapp", get(whatsapp_verify).post(whatsapp))
        .with_state(webhooks)
}

/// The database did not take it: the provider retries the webhook later.
fn unavailable(err: sqlx::Error) -> Rejection {
    tracing::error!(error = %err, "webhook not stored");
    (StatusCode::SERVICE_UNAVAILABLE, "try again".to_string())
}

/// Records what the debtor answered to `delivery`, and publishes it.
async fn record_reply(
    webhooks: &Webhooks,
    delivery: store::Delivery,
    channel: pb::Channel,
    text: String,
    intent: pb::ResponseIntent,
) -> Result<pb::DebtorResponse, Rejection> {
    let response = pb::DebtorResponse {
        response_id: Uuid::new_v4().to_string(),
        tenant_id: delivery.tenant_id,
        debtor_id: delivery.debtor_id.to_string(),
        channel: channel as i32,
        reminder_id: delivery.reminder_id.to_string(),
        text,
        intent: intent as i32,
        received_at: Some(time::timestamp(Utc::now())),
        // Replies are matched to the message last sent to this address or number.
        sender: delivery.recipient.clone(),
    };
    store::record_response(&webhooks.pool, &response, &webhooks.responses_topic)
        .await
        .map_err(unavailable)?;
    tracing::info!(debtor_id = %response.debtor_id, intent = intent.as_str_name(), "debtor replied");
    Ok(response)
}

fn forbidden(why: &str) -> Rejection {
    (StatusCode::FORBIDDEN, why.to_string())
}

/// RFC 8058 one-click unsubscribe from an email's `List-Unsubscribe` link: consent for email is
/// withdrawn at once, as if the debtor had replied "BAJA".
async fn unsubscribe(
    State(webhooks): State<Webhooks>,
    Path(reminder_id): Path<String>,
) -> Result<StatusCode, Rejection> {
    let reminder_id = Uuid::parse_str(reminder_id.trim())
        .map_err(|_| (StatusCode::BAD_REQUEST, "not a reminder id".to_string()))?;
    let delivery = store::delivery(&webhooks.pool, reminder_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| (StatusCode::NOT_FOUND, "unknown link".to_string()))?;
    let channel = pb::Channel::from(delivery.channel);
    let text = "List-Unsubscribe one-click".to_string();
    record_reply(&webhooks, delivery, channel, text, pb::ResponseIntent::OptOut).await?;
    Ok(StatusCode::OK)
}

/// SendGrid's event webhook: delivered, bounces, drops, spam reports and unsubscribes, signed
/// with ECDSA. A bounce or drop, a complaint or an unsubscribe withdraws email for that debtor (every
/// address of theirs, not only the one that bounced: consent is kept per channel today).
async fn sendgrid(
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
    let events: Vec<serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|err| (StatusCode::BAD_REQUEST, format!("not a JSON array: {err}")))?;
    for event in &events {
        let Some(reminder_id) = event["reminder_id"].as_str() else {
            continue;
        };
        let kind = event["event"].as_str().unwrap_or_default();
        let reason = format!(
            "sendgrid {kind}: {}",
            event["reason"].as_str().unwrap_or_default()
        );
        let topic = &webhooks.deliveries_topic;
        match kind {
            "delivered" => {
                store::update_status_of_reminder(
                    &webhooks.pool,
                    reminder_id,
                    pb::DeliveryStatus::Delivered,
                    "",
                    topic,
                )
                .await
                .map_err(unavailable)?;
            }
            "bounce" | "dropped" => {
                store::update_status_of_reminder(
                    &webhooks.pool,
                    reminder_id,
                    pb::DeliveryStatus::Failed,
                    &reason,
                    topic,
                )
                .await
                .map_err(unavailable)?;
                store::withdraw(&webhooks.pool, reminder_id, &format!("sendgrid {kind}"))
                    .await
                    .map_err(unavailable)?;
            }
            "spamreport" | "unsubscribe" | "group_unsubscribe" => {
                store::withdraw(&webhooks.pool, reminder_id, &format!("sendgrid {kind}"))
                    .await
                    .map_err(unavailable)?;
            }
            _ => {}
        }
    }
    Ok(StatusCode::OK)
}

/// Twilio status callbacks (MessageStatus) and inbound SMS (Body), both signed.
async fn twilio(
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
    if let (Some(sid), Some(status)) = (get("MessageSid"), get("MessageStatus")) {
        let (status, reason) = match status {
            "delivered" => (pb::DeliveryStatus::Delivered, String::new()),
            "read" => (pb::DeliveryStatus::Read, String::new()),
            "failed" | "undelivered" => (
                pb::DeliveryStatus::Failed,
                format!("twilio {status}, error {}", get("ErrorCode").unwrap_or("-")),
            ),
            // queued, sending, sent, accepted: nothing new for the debtor's record.
            _ => return Ok(StatusCode::NO_CONTENT),
        };
        store::update_status(&webhooks.pool, sid, status, &reason, &webhooks.deliveries_topic)
            .await
            .map_err(unavailable)?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let (Some(from), Some(text)) = (get("From"), get("Body")) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "neither a status callback nor an inbound message".into(),
        ));
    };
    reply_from(&webhooks, pb::Channel::Sms, from, text).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct VerifyQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Meta's subscription handshake: echo the challenge when the verify token is ours.
async fn whatsapp_verify(
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

/// WhatsApp status and inbound-message notifications, signed over the raw body.
async fn whatsapp(
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
    let payload: serde_json::Value =
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
            let (Some(id), Some(state)) = (status["id"].as_str(), status["status"].as_str()) else {
                continue;
            };
            let (state, reason) = match state {
                "delivered" => (pb::DeliveryStatus::Delivered, String::new()),
                "read" => (pb::DeliveryStatus::Read, String::new()),
                "failed" => (
                    pb::DeliveryStatus::Failed,
                    format!("whatsapp failed: {}", status["errors"][0]["code"]),
                ),
                _ => continue,
            };
            store::update_status(&webhooks.pool, id, state, &reason, &webhooks.deliveries_topic)
                .await
                .map_err(unavailable)?;
        }
        for message in value["messages"].as_array().into_iter().flatten() {
            let (Some(from), Some(text)) = (message["from"].as_str(), message["text"]["body"].as_str())
            else {
                continue;
            };
            reply_from(
                &webhooks,
                pb::Channel::Whatsapp,
                &format!("+{}", from.trim_start_matches('+')),
                text,
            )
            .await?;
        }
    }
    Ok(StatusCode::OK)
}

/// A reply from an address or number we wrote to: it belongs to the debtor of the latest
/// message sent there. A stranger's message is acknowledged and ignored.
async fn reply_from(
    webhooks: &Webhooks,
    channel: pb::Channel,
    from: &str,
    text: &str,
) -> Result<(), Rejection> {
    let Some(delivery) = store::latest_delivery_to(&webhooks.pool, from)
        .await
        .map_err(unavailable)?
    else {
        tracing::info!("a reply from an unknown sender ignored");
        return Ok(());
    };
    record_reply(
        webhooks,
        delivery,
        channel,
        text.to_string(),
        replies::classify(text),
    )
    .await?;
    Ok(())
}

/// What the sandbox provider posts when a debtor answers a reminder.
#[derive(Deserialize)]
struct SandboxReply {
    reminder_id: String,
    text: String,
}

#[derive(Serialize)]
struct Accepted {
    response_id: String,
    intent: String,
}

type Rejection = (StatusCode, String);

async fn sandbox_reply(
    State(webhooks): State<Webhooks>,
    Json(reply): Json<SandboxReply>,
) -> Result<(StatusCode, Json<Accepted>), Rejection> {
    let reminder_id = Uuid::parse_str(reply.reminder_id.trim())
        .map_err(|_| (StatusCode::BAD_REQUEST, "reminder_id is not a UUID".to_string()))?;
    if reply.text.trim().is_empty() {
        return Err((StatusCode::BAD_REQUEST, "text is required".into()));
    }
    let delivery = store::delivery(&webhooks.pool, reminder_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("no delivery for reminder {reminder_id}"),
            )
        })?;
    let intent = replies::classify(&reply.text);
    let channel = pb::Channel::from(delivery.channel);
    let response = record_reply(&webhooks, delivery, channel, reply.text, intent).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            response_id: response.response_id,
            intent: intent.as_str_name().to_string(),
        }),
    ))
}
