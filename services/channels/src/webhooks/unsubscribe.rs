//! RFC 8058 one-click unsubscribe, the target of every email's `List-Unsubscribe` link: the
//! email point the message went to is withdrawn, once.
//!
//! Only a token we signed for that very email counts (`crate::unsubscribe`). A forged token,
//! one whose reminder went to another point, or one for anything but an email changes nothing
//! and publishes nothing; and the answer does not say which of these it was.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use recobro_common::Channel;
use recobro_proto::v1 as pb;

use super::event_keys::{self, EventSource};
use super::{Rejection, Source, Webhooks, record, unavailable};
use crate::replies::Reading;
use crate::store::{self, Handling};

pub(super) async fn unsubscribe(
    State(webhooks): State<Webhooks>,
    Path(token): Path<String>,
) -> Result<StatusCode, Rejection> {
    let Some(link) = webhooks.unsubscribe_keys.verify(&token) else {
        tracing::warn!("an unsubscribe link we did not sign refused");
        return Err((StatusCode::FORBIDDEN, "not a valid link".into()));
    };
    let unknown = || (StatusCode::NOT_FOUND, "unknown link".to_string());
    if link.channel != Channel::Email {
        return Err(unknown());
    }
    let Some(delivery) = store::delivery(&webhooks.pool, link.reminder_id)
        .await
        .map_err(unavailable)?
    else {
        return Err(unknown());
    };
    if delivery.channel != Channel::Email || delivery.point_id != Some(link.point_id) {
        tracing::warn!(
            reminder_id = %link.reminder_id,
            point_id = %link.point_id,
            "an unsubscribe link whose reminder did not go to its point refused"
        );
        return Err(unknown());
    }
    let key = event_keys::one_click(link.reminder_id, link.point_id);
    let Some(mut handling) = Handling::begin(&webhooks.pool, EventSource::OneClickUnsubscribe.as_str(), &key)
        .await
        .map_err(unavailable)?
    else {
        // Mail clients and scanners post the link again: it is done already.
        return Ok(StatusCode::OK);
    };
    record(
        &webhooks,
        &mut handling,
        &delivery,
        String::new(),
        Reading::sure(pb::ResponseIntent::OptOut),
        Source::OneClickUnsubscribe,
    )
    .await?;
    handling.commit().await.map_err(unavailable)?;
    Ok(StatusCode::OK)
}
