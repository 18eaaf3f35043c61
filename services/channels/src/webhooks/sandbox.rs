//! What the sandbox posts when a debtor answers one of its messages. Unsigned, so it is served
//! only when some channel uses the sandbox, and only for the sandbox's own deliveries: it can
//! never put words in the mouth of someone a real provider wrote to.

use axum::extract::{Json, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Rejection, Source, Webhooks, record, unavailable};
use crate::replies;
use crate::store::{self, Handling};

#[derive(Deserialize)]
pub(super) struct SandboxReply {
    reminder_id: String,
    text: String,
}

#[derive(Serialize)]
pub(super) struct Accepted {
    response_id: String,
    intent: String,
}

pub(super) async fn sandbox_reply(
    State(webhooks): State<Webhooks>,
    Json(reply): Json<SandboxReply>,
) -> Result<(StatusCode, Json<Accepted>), Rejection> {
    let reminder_id = Uuid::parse_str(reply.reminder_id.trim())
        .map_err(|_| (StatusCode::BAD_REQUEST, "reminder_id is not a UUID".to_string()))?;
    if reply.text.trim().is_empty() {
        return Err((StatusCode::BAD_REQUEST, "text is required".into()));
    }
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            format!("no sandbox delivery for reminder {reminder_id}"),
        )
    };
    let delivery = store::delivery(&webhooks.pool, reminder_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(not_found)?;
    let by_sandbox =
        webhooks.sandbox_channels.contains(&delivery.channel) && delivery.provider.starts_with("sandbox");
    if !by_sandbox {
        return Err(not_found());
    }
    // No provider id to recognise a retry by: each post is a reply of its own.
    let mut handling = Handling::begin_unkeyed(&webhooks.pool)
        .await
        .map_err(unavailable)?;
    let reading = replies::read(&reply.text);
    let intent = reading.intent;
    let response = record(
        &webhooks,
        &mut handling,
        &delivery,
        reply.text,
        reading,
        Source::Reply,
    )
    .await?;
    handling.commit().await.map_err(unavailable)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            response_id: response.response_id,
            intent: intent.as_str_name().to_string(),
        }),
    ))
}
