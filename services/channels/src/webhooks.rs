//! The HTTP side of channels: provider webhooks and one-click unsubscribes bringing back what
//! debtors answer, one module per provider. Here: the state they share, the routes, and how a
//! response is recorded (an opt-out withdrawing the contact point it concerns).

mod event_keys;
mod sandbox;
mod sendgrid;
mod twilio;
mod unsubscribe;
mod whatsapp;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::Utc;
use recobro_common::config::Topics;
use recobro_common::secret::Secret;
use recobro_common::{Channel, time};
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::provider::{EmailChoice, ProviderSettings, SmsChoice, WhatsAppChoice};
use crate::replies::Reading;
use crate::store::{self, Handling};
use crate::unsubscribe::UnsubscribeKeys;

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
    /// Verify one-click unsubscribe tokens.
    pub unsubscribe_keys: Arc<UnsubscribeKeys>,
    /// The channels that go to the sandbox: its unsigned reply webhook is served only for
    /// their deliveries, and not at all when there are none.
    pub sandbox_channels: Vec<Channel>,
}

impl Webhooks {
    pub fn new(pool: PgPool, topics: &Topics, public_url: &str, providers: &ProviderSettings) -> Webhooks {
        let (twilio_auth_token, twilio_shared_keys) = match &providers.sms {
            SmsChoice::Twilio(twilio) => (
                Some(twilio.auth_token.clone()),
                twilio.webhook_shared_keys.clone(),
            ),
            SmsChoice::Sandbox => (None, Vec::new()),
        };
        let (whatsapp_app_secret, whatsapp_verify_token) = match &providers.whatsapp {
            WhatsAppChoice::Cloud(whatsapp) => (
                Some(whatsapp.app_secret.clone()),
                Some(whatsapp.verify_token.clone()),
            ),
            WhatsAppChoice::Sandbox => (None, None),
        };
        let sendgrid_public_key = match &providers.email {
            EmailChoice::SendGrid(sendgrid) => sendgrid.webhook_public_key.clone(),
            EmailChoice::Smtp(_) | EmailChoice::Sandbox => None,
        };
        let mut sandbox_channels = Vec::new();
        if matches!(providers.email, EmailChoice::Sandbox) {
            sandbox_channels.push(Channel::Email);
        }
        if matches!(providers.sms, SmsChoice::Sandbox) {
            sandbox_channels.push(Channel::Sms);
        }
        if matches!(providers.whatsapp, WhatsAppChoice::Sandbox) {
            sandbox_channels.push(Channel::Whatsapp);
        }
        Webhooks {
            pool,
            responses_topic: topics.responses.clone(),
            deliveries_topic: topics.deliveries.clone(),
            public_url: public_url.to_string(),
            twilio_auth_token,
            twilio_shared_keys,
            whatsapp_app_secret,
            whatsapp_verify_token,
            sendgrid_public_key,
            unsubscribe_keys: providers.unsubscribe_keys.clone(),
            sandbox_channels,
        }
    }
}

pub fn router(webhooks: Webhooks) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/webhooks/twilio", post(twilio::twilio))
        .route("/unsubscribe/{token}", post(unsubscribe::unsubscribe))
        .route("/webhooks/sendgrid", post(sendgrid::sendgrid))
        .route(
            "/webhooks/whatsapp",
            get(whatsapp::whatsapp_verify).post(whatsapp::whatsapp),
        );
    // Unsigned: anyone who can reach it could make up replies. Not there unless chosen.
    if !webhooks.sandbox_channels.is_empty() {
        router = router.route("/webhooks/sandbox/replies", post(sandbox::sandbox_reply));
    }
    router
        .layer(axum::middleware::from_fn_with_state(
            WEBHOOK_DEADLINE,
            within_deadline,
        ))
        .with_state(webhooks)
}

/// How long a webhook may take: providers wait about this long before they retry, and a slow
/// database must not pile up requests behind it.
pub const WEBHOOK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Answers 503 (the provider retries later) when handling a request outlives `deadline`
/// ([`WEBHOOK_DEADLINE`]); what was stored before is deduplicated on the retry.
pub(crate) async fn within_deadline(
    axum::extract::State(deadline): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => {
            tracing::warn!("webhook took longer than its deadline, answered 503");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}

type Rejection = (StatusCode, String);

/// The database did not take it: the provider retries the webhook later.
fn unavailable(err: sqlx::Error) -> Rejection {
    tracing::error!(error = %recobro_common::db::described(&err), "webhook not stored");
    (StatusCode::SERVICE_UNAVAILABLE, "try again".to_string())
}

fn forbidden(why: &str) -> Rejection {
    (StatusCode::FORBIDDEN, why.to_string())
}

/// What told us: published as `DebtorResponse.source`, and kept with a withdrawn point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The debtor wrote back (SMS, WhatsApp, or the sandbox standing in for them).
    Reply,
    OneClickUnsubscribe,
    SendGridBounce,
    SendGridDropped,
    SendGridSpamReport,
    SendGridUnsubscribe,
    SendGridGroupUnsubscribe,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Reply => "reply",
            Source::OneClickUnsubscribe => "one-click unsubscribe",
            Source::SendGridBounce => "sendgrid bounce",
            Source::SendGridDropped => "sendgrid dropped",
            Source::SendGridSpamReport => "sendgrid spamreport",
            Source::SendGridUnsubscribe => "sendgrid unsubscribe",
            Source::SendGridGroupUnsubscribe => "sendgrid group_unsubscribe",
        }
    }
}

/// Records what the debtor answered to `delivery` (or what a provider reported for them), and
/// publishes it, as part of `handling`. An opt-out withdraws the point the delivery went to
/// (accounts withdraws it in the ledger when it reads the response); a STOP by SMS or WhatsApp
/// also holds for our sender, whichever tenant writes from it. A delivery recorded before
/// points were (no point id) cannot be attributed: the response is kept, nothing withdrawn.
async fn record(
    webhooks: &Webhooks,
    handling: &mut Handling,
    delivery: &store::Delivery,
    text: String,
    reading: Reading,
    source: Source,
) -> Result<pb::DebtorResponse, Rejection> {
    let intent = reading.intent;
    // What the answered message was about: the reminder's invoice, or a statement's invoices.
    let invoice_ids = match delivery.invoice_id {
        Some(invoice_id) => vec![invoice_id],
        None => store::invoices_of_reminders(&webhooks.pool, &delivery.covered)
            .await
            .map_err(unavailable)?,
    };
    let response = pb::DebtorResponse {
        invoice_ids: invoice_ids.iter().map(Uuid::to_string).collect(),
        response_id: Uuid::new_v4().to_string(),
        tenant_id: delivery.tenant_id.clone(),
        debtor_id: delivery.debtor_id.to_string(),
        channel: pb::Channel::from(delivery.channel) as i32,
        reminder_id: delivery.reminder_id.to_string(),
        text,
        intent: intent as i32,
        received_at: Some(time::timestamp(Utc::now())),
        // The address or number we wrote to, where it came from.
        sender: delivery.recipient.clone(),
        point_id: delivery.point_id.map(|id| id.to_string()).unwrap_or_default(),
        source: source.as_str().to_string(),
        opt_out_unsure: reading.opt_out_unsure,
    };
    let opt_out = intent == pb::ResponseIntent::OptOut;
    if opt_out && delivery.point_id.is_none() {
        tracing::warn!(
            reminder_id = %delivery.reminder_id,
            source = source.as_str(),
            "an opt-out for a delivery without a contact point: recorded, no point withdrawn"
        );
    }
    // An unsure opt-out withdraws the point (which a person can grant again) but not our sender
    // for that number, which nothing grants again.
    let sender_stop = (opt_out
        && !reading.opt_out_unsure
        && source == Source::Reply
        && delivery.channel.uses_phone()
        && !delivery.sender.is_empty())
    .then(|| store::SenderStop {
        channel: delivery.channel,
        sender: &delivery.sender,
        address: &delivery.recipient,
    });
    // A reply starts a trace of its own (it may come days later), linked to the delivery's, so
    // the path from the ERP event to the delivery and on to the answer can be followed.
    let span = tracing::info_span!(
        parent: None,
        "debtor response",
        reminder_id = %delivery.reminder_id,
        source = source.as_str()
    );
    if let Some(traceparent) = store::delivery_traceparent(&webhooks.pool, delivery.reminder_id)
        .await
        .map_err(unavailable)?
    {
        recobro_common::kafka::link_to_traceparent(&span, &traceparent);
    }
    store::record_response(handling, &response, sender_stop, &webhooks.responses_topic)
        .instrument(span)
        .await
        .map_err(unavailable)?;
    tracing::info!(
        reminder_id = %delivery.reminder_id,
        debtor_id = %response.debtor_id,
        point_id = %response.point_id,
        intent = intent.as_str_name(),
        opt_out_unsure = reading.opt_out_unsure,
        source = source.as_str(),
        "debtor response recorded"
    );
    Ok(response)
}

/// A reply from an address or number to one of our senders: it belongs to the tenant and
/// debtor of the latest message sent there from that sender on that channel. A stranger's
/// message is acknowledged and ignored; a retried one (same provider event) changes nothing.
async fn reply_from(
    webhooks: &Webhooks,
    event: (event_keys::EventSource, &str),
    channel: Channel,
    our_sender: &str,
    from: &str,
    text: &str,
) -> Result<(), Rejection> {
    let Some(delivery) = store::latest_delivery_to(&webhooks.pool, channel, our_sender, from)
        .await
        .map_err(unavailable)?
    else {
        tracing::info!(
            channel = channel.as_str(),
            "a reply from an unknown sender ignored"
        );
        return Ok(());
    };
    let Some(mut handling) = Handling::begin(&webhooks.pool, event.0.as_str(), event.1)
        .await
        .map_err(unavailable)?
    else {
        tracing::info!(reminder_id = %delivery.reminder_id, "a retried reply ignored");
        return Ok(());
    };
    let reading = crate::replies::read(text);
    record(
        webhooks,
        &mut handling,
        &delivery,
        text.to_string(),
        reading,
        Source::Reply,
    )
    .await?;
    handling.commit().await.map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_webhook_outliving_its_deadline_is_answered_503_and_a_quick_one_as_usual() {
        let router = Router::new()
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/quick", post(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(200),
                within_deadline,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        let slow = client
            .post(format!("http://{addr}/slow"))
            .send()
            .await
            .expect("answered");
        assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let quick = client
            .post(format!("http://{addr}/quick"))
            .send()
            .await
            .expect("answered");
        assert_eq!(quick.status(), StatusCode::OK);
    }
}
