//! The HTTP side of channels: provider webhooks bringing back what debtors answer.

use axum::Router;
use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::Utc;
use recobro_common::time;
use recobro_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{replies, store};

#[derive(Clone)]
pub struct Webhooks {
    pub pool: PgPool,
    pub responses_topic: String,
}

pub fn router(webhooks: Webhooks) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/webhooks/sandbox/replies", post(sandbox_reply))
        .with_state(webhooks)
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
    let unavailable = |err: sqlx::Error| {
        tracing::error!(error = %err, "reply not stored");
        (StatusCode::SERVICE_UNAVAILABLE, "try again".to_string())
    };
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
    let response = pb::DebtorResponse {
        response_id: Uuid::new_v4().to_string(),
        tenant_id: delivery.tenant_id,
        debtor_id: delivery.debtor_id.to_string(),
        channel: recobro_common::channel_from_name(&delivery.channel) as i32,
        reminder_id: reminder_id.to_string(),
        text: reply.text,
        intent: intent as i32,
        received_at: Some(time::timestamp(Utc::now())),
    };
    store::record_response(&webhooks.pool, &response, &webhooks.responses_topic)
        .await
        .map_err(unavailable)?;
    tracing::info!(debtor_id = %response.debtor_id, intent = intent.as_str_name(), "debtor replied");
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            response_id: response.response_id,
            intent: intent.as_str_name().to_string(),
        }),
    ))
}
