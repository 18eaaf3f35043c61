//! SMS through Twilio's real protocol (a local stand-in), and the signed webhooks that bring
//! back its status callbacks and the debtor's replies.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use recobro_proto::v1::{self as pb};

use crate::helpers::{Stack, encode};
use crate::ledger::{ledger_invoice, until_channels_knows_invoice, us_company};
use crate::{HOP, invoice_of};

pub(crate) const AUTH_TOKEN: &str = "e2e-auth-token";

/// Every form Twilio's stand-in received, in order.
pub(crate) type Forms = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A Twilio stand-in: records each Messages.json form and answers 201 with a message sid.
pub(crate) async fn twilio_stand_in() -> (String, Forms) {
    let seen: Forms = Arc::default();
    let router = Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(|State(seen): State<Forms>, body: Bytes| async move {
                let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
                let n = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(form);
                    seen.len()
                };
                (
                    StatusCode::CREATED,
                    format!(r#"{{"sid": "SM{n:032}", "status": "queued"}}"#),
                )
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (format!("http://{addr}"), seen)
}

/// Signs as Twilio does: base64(HMAC(key, URL + sorted name+value pairs)).
fn sign<M: Mac + hmac::digest::KeyInit>(key: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The default: HMAC-SHA1 with the account's auth token.
pub(crate) fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    sign::<Hmac<sha1::Sha1>>(AUTH_TOKEN, url, params)
}

/// What a Twilio Webhooks Setting signs with: HMAC-SHA256 and its shared key.
fn twilio_setting_signature(url: &str, params: &[(&str, &str)]) -> String {
    sign::<Hmac<sha2::Sha256>>(SHARED_KEY, url, params)
}

const SHARED_KEY: &str = "webhooks-setting-shared-key";

/// Posts a form to the channels webhook with the given signature; returns the HTTP status.
pub(crate) async fn post_form(port: u16, params: &[(&str, &str)], signature: &str) -> u16 {
    post_form_with(port, params, signature, "").await
}

/// The same, with extra header lines (each ending in CRLF).
async fn post_form_with(port: u16, params: &[(&str, &str)], signature: &str, headers: &str) -> u16 {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let client = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!(
        "POST /webhooks/twilio HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut client = client;
    client.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    client.read_to_string(&mut response).await.expect("read");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_goes_out_through_twilio_and_signed_callbacks_and_replies_come_back() {
    let (twilio, sent) = twilio_stand_in().await;
    let stack = Stack::start_configured(
        None,
        vec![
            ("RECOBRO_SMS_PROVIDER", "twilio".into()),
            ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000e2e".into()),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.into()),
            ("TWILIO_FROM", "+15005550006".into()),
            ("TWILIO_API_BASE", twilio),
            // Two keys while one is rotated out.
            ("TWILIO_WEBHOOK_SHARED_KEY", format!("retired-key,{SHARED_KEY}")),
        ],
    )
    .await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let responses = stack.follow(&stack.topics.responses);

    // A debtor with a phone and no email: the step's fallback channel, SMS, is used.
    let mut event = invoice_of(&stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    let debtor = event.debtor.as_mut().expect("debtor");
    debtor.email.clear();
    debtor.phone = "+15551230001".into();
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let record: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(
        (record.channel(), record.status(), record.provider.as_str()),
        (pb::Channel::Sms, pb::DeliveryStatus::Sent, "twilio"),
        "{record:?}"
    );
    let form = sent
        .lock()
        .expect("lock")
        .first()
        .cloned()
        .expect("twilio was called");
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("To"), "+15551230001");
    assert_eq!(
        field("StatusCallback"),
        format!("http://127.0.0.1:{}/webhooks/twilio", stack.http_port)
    );
    assert!(field("Body").contains("FE-F-1"), "{}", field("Body"));

    let url = format!("http://127.0.0.1:{}/webhooks/twilio", stack.http_port);
    // A forged callback is refused.
    let delivered = [
        ("MessageSid", record.provider_message_id.as_str()),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC00000000000000000000000000000e2e"),
    ];
    assert_eq!(
        post_form(stack.http_port, &delivered, "Zm9yZ2VkIHNpZ25hdHVyZQ==").await,
        403
    );
    // A signed one updates the delivery.
    assert_eq!(
        post_form(stack.http_port, &delivered, &twilio_signature(&url, &delivered)).await,
        204
    );
    let update: pb::DeliveryRecord = deliveries
        .find(HOP, |r| {
            r.decode::<pb::DeliveryRecord>().status() == pb::DeliveryStatus::Delivered
        })
        .await
        .decode();
    assert_eq!(update.reminder_id, record.reminder_id);

    // A Webhooks Setting signs with its own key and HMAC-SHA256, and says so in a header.
    let read = [
        ("MessageSid", record.provider_message_id.as_str()),
        ("MessageStatus", "read"),
        ("AccountSid", "AC00000000000000000000000000000e2e"),
    ];
    let settings = "X-Twilio-Webhooks-Signature-Settings: key=KS0e2e,algorithm=HMAC_SHA256\r\n";
    assert_eq!(
        post_form_with(stack.http_port, &read, &twilio_signature(&url, &read), settings).await,
        403,
        "the auth token's SHA-1 signature does not pass for a Setting's webhook"
    );
    assert_eq!(
        post_form_with(
            stack.http_port,
            &read,
            &twilio_setting_signature(&url, &read),
            settings
        )
        .await,
        204
    );
    deliveries
        .find(HOP, |r| {
            r.decode::<pb::DeliveryRecord>().status() == pb::DeliveryStatus::Read
        })
        .await;

    // The debtor answers STOP: the reply is classified and attributed to them.
    let reply = [
        ("MessageSid", "SMreply000000000000000000000000001"),
        ("From", "+15551230001"),
        ("To", "+15005550006"),
        ("Body", "STOP"),
    ];
    let tampered = [
        ("MessageSid", "SMreply000000000000000000000000001"),
        ("From", "+15551230001"),
        ("To", "+15005550006"),
        ("Body", "ya pagué"),
    ];
    assert_eq!(
        post_form(stack.http_port, &tampered, &twilio_signature(&url, &reply)).await,
        403,
        "a body changed after signing"
    );
    assert_eq!(
        post_form(stack.http_port, &reply, &twilio_signature(&url, &reply)).await,
        204
    );
    let response: pb::DebtorResponse = responses.find(HOP, |_| true).await.decode();
    assert_eq!(
        (response.channel(), response.intent()),
        (pb::Channel::Sms, pb::ResponseIntent::OptOut)
    );
    assert_eq!(response.debtor_id, record.debtor_id);
}

/// WhatsApp through the Cloud API at `api_base`, with the app secret and verify token tests use.
pub(crate) fn whatsapp_cloud(api_base: String) -> Vec<(&'static str, String)> {
    vec![
        ("RECOBRO_WHATSAPP_PROVIDER", "whatsapp-cloud".into()),
        ("WHATSAPP_ACCESS_TOKEN", "EAAG-e2e".into()),
        ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922".into()),
        ("WHATSAPP_APP_SECRET", "e2e-app-secret".into()),
        ("WHATSAPP_VERIFY_TOKEN", "e2e-verify".into()),
        ("WHATSAPP_API_BASE", api_base),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whatsapp_webhook_handshake_echoes_only_our_verify_token() {
    let stack = Stack::start_configured(None, whatsapp_cloud("http://127.0.0.1:9".into())).await;
    let get = |query: &str| {
        let port = stack.http_port;
        let query = query.to_string();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            let request = format!(
                "GET /webhooks/whatsapp?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            );
            client.write_all(request.as_bytes()).await.expect("send");
            let mut response = String::new();
            client.read_to_string(&mut response).await.expect("read");
            response
        }
    };
    let ok = get("hub.mode=subscribe&hub.verify_token=e2e-verify&hub.challenge=1158201444").await;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("1158201444"),
        "{ok}"
    );
    let refused = get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444").await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_keeps_failing_is_given_up_on_and_the_contact_given_back() {
    let stack = Stack::start().await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let mut event = invoice_of(&stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    // The sandbox answers "busy" for this domain, like a provider in an outage; no phone to
    // fall back on.
    let debtor = event.debtor.as_mut().expect("debtor");
    debtor.email = "cartera@busy.sandbox.invalid".into();
    debtor.phone.clear();
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let record: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(record.status(), pb::DeliveryStatus::Failed, "{record:?}");
    assert!(
        record.reason.starts_with("gave up after 5 attempts"),
        "{}",
        record.reason
    );
    let mut channels =
        pb::channels_service_client::ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let budget = channels
        .get_contact_budget(pb::GetContactBudgetRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: record.debtor_id.clone(),
        })
        .await
        .expect("budget")
        .into_inner();
    assert!(
        budget.caps.iter().all(|cap| cap.used == 0),
        "a message that never left counts nothing: {:?}",
        budget.caps
    );
}

/// What the SendGrid stand-in saw: sends per reminder, and the most calls it had at once.
#[derive(Clone, Default)]
pub(crate) struct MailLog {
    pub sends: Arc<Mutex<std::collections::HashMap<String, u32>>>,
    /// Every recipient, in order.
    pub recipients: Arc<Mutex<Vec<String>>>,
    /// Every email's `List-Unsubscribe` header, in order.
    pub unsubscribe_links: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    most_at_once: Arc<std::sync::atomic::AtomicUsize>,
}

/// A SendGrid Mail Send stand-in that takes `delay` to answer, as a real API does.
pub(crate) async fn sendgrid_stand_in(delay: std::time::Duration) -> (String, MailLog) {
    use std::sync::atomic::Ordering;
    let log = MailLog::default();
    let router = Router::new()
        .route(
            "/v3/mail/send",
            post(move |State(log): State<MailLog>, body: Bytes| async move {
                let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                log.most_at_once.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let id = json["custom_args"]["reminder_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                *log.sends.lock().expect("lock").entry(id).or_default() += 1;
                if let Some(to) = json["personalizations"][0]["to"][0]["email"].as_str() {
                    log.recipients.lock().expect("lock").push(to.to_string());
                }
                if let Some(link) = json["headers"]["List-Unsubscribe"].as_str() {
                    log.unsubscribe_links.lock().expect("lock").push(link.to_string());
                }
                log.in_flight.fetch_sub(1, Ordering::SeqCst);
                StatusCode::ACCEPTED
            }),
        )
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (format!("http://{addr}"), log)
}

pub(crate) fn sendgrid(base: String) -> Vec<(&'static str, String)> {
    vec![
        ("RECOBRO_EMAIL_PROVIDER", "sendgrid".to_string()),
        ("SENDGRID_API_KEY", "SG.e2e".to_string()),
        ("SENDGRID_FROM", "cobranza@acme.example".to_string()),
        ("SENDGRID_API_BASE", base),
    ]
}

/// `count` email reminders, each for a debtor of its own, all allowed now.
async fn publish_email_reminders(stack: &Stack, count: usize) {
    let producer = recobro_common::kafka::producer(&crate::helpers::kafka_admin()).expect("producer");
    let today = chrono::Utc::now().date_naive();
    let debtor_ids: Vec<String> = (0..count).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    // The ledger's record of each debtor first, as accounts publishes it, and acknowledged
    // before any reminder is: two topics keep no order between them, and in the product a
    // reminder only exists after accounts has published its debtor.
    let mut pending = Vec::with_capacity(count);
    for (n, debtor_id) in debtor_ids.iter().enumerate() {
        pending.push(
            recobro_common::kafka::enqueue(
                &producer,
                &stack.topics.account_events,
                debtor_id,
                &encode(&stack.debtor_record(debtor_id, n)),
                rdkafka::message::OwnedHeaders::new(),
            )
            .expect("enqueue"),
        );
    }
    for delivery in pending.drain(..) {
        recobro_common::kafka::acknowledged(delivery)
            .await
            .expect("published");
    }
    for (n, debtor_id) in debtor_ids.iter().enumerate() {
        let reminder = pb::ReminderDue {
            reminder_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor_id.clone(),
            invoice_id: uuid::Uuid::new_v4().to_string(),
            step: "overdue-7".into(),
            channel: pb::Channel::Email as i32,
            template_id: "overdue".into(),
            invoice: Some(pb::Invoice {
                number: format!("FE-{n}"),
                amount: Some(pb::Money {
                    amount_minor: 1_000_00,
                    currency: "USD".into(),
                }),
                due_date: Some(recobro_common::time::date(today - chrono::Duration::days(10))),
                ..Default::default()
            }),
            ..Default::default()
        };
        pending.push(
            recobro_common::kafka::enqueue(
                &producer,
                &stack.topics.reminders_due,
                debtor_id,
                &encode(&reminder),
                rdkafka::message::OwnedHeaders::new(),
            )
            .expect("enqueue"),
        );
    }
    for delivery in pending {
        recobro_common::kafka::acknowledged(delivery)
            .await
            .expect("published");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_no_reminder_and_sends_none_twice() {
    const REMINDERS: usize = 10_000;
    // A millisecond per call, so that overlapping calls would show.
    let (base, log) = sendgrid_stand_in(std::time::Duration::from_millis(1)).await;
    let provider = sendgrid(base);
    let mut crashing = provider.clone();
    // Dies like a killed pod at the worst moment: the provider has just accepted a message, and
    // nothing is marked, recorded or committed.
    crashing.push(("RECOBRO_FAILPOINT_EXIT_AFTER_SENDS", "2500".to_string()));
    let mut stack = Stack::start_configured(None, crashing).await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    publish_email_reminders(&stack, REMINDERS).await;

    // The worker dies mid-stream...
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        if stack
            .service("channels")
            .child
            .try_wait()
            .expect("wait")
            .is_some()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failpoint never fired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // ...and a new one takes over.
    stack.restart("channels", provider).await;
    let mut recorded = std::collections::HashSet::new();
    let mut unknown = Vec::new();
    while recorded.len() < REMINDERS {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(received) = deliveries.next(left).await else {
            panic!("only {} of {REMINDERS} deliveries recorded", recorded.len());
        };
        let record: pb::DeliveryRecord = received.decode();
        if record.status() == pb::DeliveryStatus::Failed && record.reason.starts_with("outcome unknown") {
            unknown.push(record.reminder_id.clone());
        } else {
            assert_eq!(record.status(), pb::DeliveryStatus::Sent, "{record:?}");
        }
        recorded.insert(record.reminder_id);
    }
    let sends = log.sends.lock().expect("lock");
    let duplicated: Vec<_> = sends.iter().filter(|(_, count)| **count > 1).collect();
    assert!(duplicated.is_empty(), "sent twice: {duplicated:?}");
    assert_eq!(sends.len(), REMINDERS, "every reminder reached the provider once");
    // The one accepted as the worker died is recorded as such, not sent a second time.
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_eq!(sends.get(&unknown[0]), Some(&1));
    assert_eq!(
        log.most_at_once.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one provider call in flight at a time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_provider_calls_at_once_overlap_a_slow_provider_and_still_send_each_once() {
    const REMINDERS: usize = 200;
    let (base, log) = sendgrid_stand_in(std::time::Duration::from_millis(20)).await;
    let mut settings = sendgrid(base);
    settings.push(("RECOBRO_PROVIDER_CALLS_AT_ONCE", "4".to_string()));
    let stack = Stack::start_configured(None, settings).await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    publish_email_reminders(&stack, REMINDERS).await;

    let mut recorded = std::collections::HashSet::new();
    while recorded.len() < REMINDERS {
        let Some(received) = deliveries.next(std::time::Duration::from_secs(60)).await else {
            panic!("only {} of {REMINDERS} deliveries recorded", recorded.len());
        };
        let record: pb::DeliveryRecord = received.decode();
        assert_eq!(record.status(), pb::DeliveryStatus::Sent, "{record:?}");
        recorded.insert(record.reminder_id);
    }
    let sends = log.sends.lock().expect("lock");
    assert_eq!(sends.len(), REMINDERS);
    assert!(sends.values().all(|count| *count == 1), "each sent once");
    let most = log.most_at_once.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (2..=4).contains(&most),
        "calls overlapped, never more than 4: {most}"
    );
}

/// Tried from outside: a debtor is sent one message, Redis loses its data (a restart without
/// persistence), and a second contact the same local day must still be deferred: the budget is
/// rebuilt from the delivery records before anything is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_losing_its_data_does_not_reset_the_contact_budget() {
    let stack = Stack::start().await;
    let mut channels =
        pb::channels_service_client::ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let stored = stack.ledger_debtor(us_company("D-78", "en-US")).await;
    let debtor_id = stored.debtor.expect("debtor").debtor_id;
    let invoice = ledger_invoice(&stack, "D-78", "INV-78", "INV-78", 60).await;
    let request = |key: &str| pb::SendMessageRequest {
        idempotency_key: key.into(),
        tenant_id: stack.tenant.clone(),
        debtor_id: debtor_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        channel: pb::Channel::Email as i32,
        template_id: "overdue".into(),
        ..Default::default()
    };
    until_channels_knows_invoice(&mut channels, &request("probe")).await;
    let first = channels
        .send_message(request("call-1"))
        .await
        .expect("sent")
        .into_inner();
    assert_eq!(
        first.record.as_ref().map(|r| r.status()),
        Some(pb::DeliveryStatus::Sent),
        "{first:?}"
    );
    assert!(
        stack.forget_redis().await > 0,
        "the budget and claims were in Redis"
    );

    let second = channels
        .send_message(request("call-2"))
        .await
        .expect("answered")
        .into_inner()
        .record
        .expect("record");
    assert_eq!(
        second.status(),
        pb::DeliveryStatus::Deferred,
        "the day's contact was made before Redis lost it: {second:?}"
    );
    assert!(second.not_before.is_some(), "{second:?}");
    assert!(
        second.reason.contains("local_day"),
        "the daily cap: {}",
        second.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_off_message_follows_the_same_rules_and_shows_in_the_conversation() {
    let stack = Stack::start().await;
    let mut channels =
        pb::channels_service_client::ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let stored = stack.ledger_debtor(us_company("D-77", "en-US")).await;
    let debtor_id = stored.debtor.expect("debtor").debtor_id;
    let invoice = ledger_invoice(&stack, "D-77", "INV-77", "INV-77", 60).await;
    let request = |key: &str| pb::SendMessageRequest {
        idempotency_key: key.into(),
        tenant_id: stack.tenant.clone(),
        debtor_id: debtor_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        channel: pb::Channel::Email as i32,
        template_id: "overdue".into(),
        ..Default::default()
    };
    until_channels_knows_invoice(&mut channels, &request("probe")).await;
    let first = channels
        .send_message(request("call-1"))
        .await
        .expect("sent")
        .into_inner();
    assert_eq!(
        first.record.as_ref().map(|r| r.status()),
        Some(pb::DeliveryStatus::Sent),
        "{first:?}"
    );
    let retried = channels
        .send_message(request("call-1"))
        .await
        .expect("retried")
        .into_inner();
    assert_eq!(
        retried.reminder_id, first.reminder_id,
        "the same key is the same message"
    );
    let second = channels
        .send_message(request("call-2"))
        .await
        .expect("answered")
        .into_inner();
    let second = second.record.expect("record");
    assert_eq!(
        second.status(),
        pb::DeliveryStatus::Deferred,
        "the day's budget is spent: {second:?}"
    );
    assert!(second.not_before.is_some());
    let unknown = channels
        .send_message(pb::SendMessageRequest {
            template_id: "threat".into(),
            ..request("call-3")
        })
        .await
        .expect_err("unknown template");
    assert!(unknown.message().contains("template_id"), "{}", unknown.message());
    let statement = channels
        .send_message(pb::SendMessageRequest {
            template_id: "statement_overdue".into(),
            ..request("call-4")
        })
        .await
        .expect_err("a statement is not a one-off message");
    assert_eq!(statement.code(), tonic::Code::InvalidArgument);
    assert!(
        statement.message().contains("template_id"),
        "{}",
        statement.message()
    );

    let (status, body) = crate::helpers::post_json(
        stack.http_port,
        "/webhooks/sandbox/replies",
        &format!(
            r#"{{"reminder_id":"{}","text":"I'll pay on Friday"}}"#,
            first.reminder_id
        ),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let conversation = channels
        .get_conversation(pb::GetConversationRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor_id.clone(),
            ..Default::default()
        })
        .await
        .expect("conversation")
        .into_inner()
        .entries;
    let summary: Vec<(bool, &str)> = conversation
        .iter()
        .map(|e| (e.inbound, e.status.as_str()))
        .collect();
    assert_eq!(
        summary,
        [(false, "sent"), (true, "RESPONSE_INTENT_PROMISE_TO_PAY")],
        "{conversation:?}"
    );
    assert_eq!(conversation[0].text, "Invoice INV-77 is overdue");
    // One entry per page: the message, then the reply, then no more.
    let mut token = String::new();
    for expected in &conversation {
        let page = channels
            .get_conversation(pb::GetConversationRequest {
                tenant_id: stack.tenant.clone(),
                debtor_id: debtor_id.clone(),
                page_size: 1,
                page_token: token,
            })
            .await
            .expect("a page")
            .into_inner();
        assert_eq!(page.entries, std::slice::from_ref(expected));
        token = page.next_page_token;
    }
    assert!(token.is_empty(), "two entries, two pages");

    let templates = channels
        .list_templates(pb::ListTemplatesRequest::default())
        .await
        .expect("templates")
        .into_inner()
        .templates;
    assert_eq!(
        templates.len(),
        30,
        "four templates and six statement templates in three languages"
    );
    assert!(
        templates
            .iter()
            .any(|t| t.template_id == "overdue" && t.language == "es")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_bounce_fails_the_delivery_and_withdraws_the_address() {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;
    let engine = &base64::engine::general_purpose::STANDARD;
    let signing = p256::ecdsa::SigningKey::from_bytes(&[11u8; 32].into()).expect("key");
    let public = engine.encode(
        signing
            .verifying_key()
            .to_public_key_der()
            .expect("der")
            .as_bytes(),
    );
    let (base, _log) = sendgrid_stand_in(std::time::Duration::ZERO).await;
    let mut settings = sendgrid(base);
    settings.push(("SENDGRID_WEBHOOK_PUBLIC_KEY", public));
    let stack = Stack::start_configured(None, settings).await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let first = invoice_of(&stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&first), None)
        .await;
    let sent: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(
        (sent.status(), sent.provider.as_str()),
        (pb::DeliveryStatus::Sent, "sendgrid")
    );

    let body = format!(
        r#"[{{"email":"tesoreria@tornillo.example","event":"bounce","reason":"550 5.1.1 no such user","reminder_id":"{}"}}]"#,
        sent.reminder_id
    );
    let sign = |timestamp: &str| {
        let signature: p256::ecdsa::Signature =
            signing.sign(&[timestamp.as_bytes(), body.as_bytes()].concat());
        engine.encode(signature.to_der().as_bytes())
    };
    let post = |timestamp: String, signature: String| {
        let body = body.clone();
        let port = stack.http_port;
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            let request = format!(
                "POST /webhooks/sendgrid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Twilio-Email-Event-Webhook-Signature: {signature}\r\nX-Twilio-Email-Event-Webhook-Timestamp: {timestamp}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(request.as_bytes()).await.expect("send");
            let mut response = String::new();
            client.read_to_string(&mut response).await.expect("read");
            response
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .expect("status")
        }
    };
    let now = chrono::Utc::now().timestamp().to_string();
    let stale = (chrono::Utc::now() - chrono::Duration::minutes(30))
        .timestamp()
        .to_string();
    assert_eq!(
        post(stale.clone(), sign(&stale)).await,
        403,
        "a replayed old event"
    );
    let forger = p256::ecdsa::SigningKey::from_bytes(&[12u8; 32].into()).expect("key");
    let forged: p256::ecdsa::Signature = forger.sign(&[now.as_bytes(), body.as_bytes()].concat());
    assert_eq!(
        post(now.clone(), engine.encode(forged.to_der().as_bytes())).await,
        403,
        "another key"
    );
    assert_eq!(post(now.clone(), sign(&now)).await, 200);
    let failed: pb::DeliveryRecord = deliveries
        .find(HOP, |r| {
            r.decode::<pb::DeliveryRecord>().status() == pb::DeliveryStatus::Failed
        })
        .await
        .decode();
    assert_eq!(failed.reminder_id, sent.reminder_id);
    assert!(failed.reason.contains("550 5.1.1"), "{}", failed.reason);

    // The address is withdrawn: the next reminder is suppressed, not sent.
    let second = invoice_of(&stack, "F-2", "evt-2", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&second), None)
        .await;
    let next: pb::DeliveryRecord = deliveries
        .find(HOP, |r| {
            let record: pb::DeliveryRecord = r.decode();
            record.reminder_id != sent.reminder_id
        })
        .await
        .decode();
    // Never to the address that bounced: refused for consent if the reminder was planned for
    // email before accounts recorded the withdrawal, else planned for the debtor's phone.
    match next.channel() {
        pb::Channel::Email => assert_eq!(
            (next.status(), next.rule.as_str()),
            (pb::DeliveryStatus::Suppressed, "consent"),
            "{next:?}"
        ),
        _ => assert_ne!(next.status(), pb::DeliveryStatus::Suppressed, "{next:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_email_keeps_failing_the_steps_next_channel_is_used() {
    let stack = Stack::start().await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let mut event = invoice_of(&stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    // The overdue step goes by email, else SMS; the email provider is down.
    event.debtor.as_mut().expect("debtor").email = "cartera@busy.sandbox.invalid".into();
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let record: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(
        (record.status(), record.channel(), record.provider.as_str()),
        (pb::DeliveryStatus::Sent, pb::Channel::Sms, "sandbox-sms"),
        "{record:?}"
    );
}

/// A debtor in the ledger with an invoice INV-88 channels knows of.
#[derive(Clone)]
struct LedgerDebtor {
    debtor_id: String,
    invoice_id: String,
    /// Its WhatsApp points, the preferred one first.
    whatsapp: Vec<String>,
}

fn one_off(stack: &Stack, key: &str, debtor: &LedgerDebtor, channel: pb::Channel) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        idempotency_key: key.into(),
        tenant_id: stack.tenant.clone(),
        debtor_id: debtor.debtor_id.clone(),
        invoice_id: debtor.invoice_id.clone(),
        channel: channel as i32,
        template_id: "overdue".into(),
        ..Default::default()
    }
}

/// A company in the United States reachable by email, SMS and two WhatsApp numbers.
async fn us_debtor(stack: &Stack, external_id: &str, locale: &str) -> LedgerDebtor {
    let mut input = us_company(external_id, locale);
    for (address, preferred) in [("+15125550100", true), ("+15125550199", false)] {
        input.contacts[0].points.push(pb::ContactPoint {
            channel: pb::Channel::Whatsapp as i32,
            address: address.into(),
            preferred,
            ..Default::default()
        });
    }
    let stored = stack.ledger_debtor(input).await;
    let whatsapp = stored.contacts[0]
        .points
        .iter()
        .filter(|p| p.channel() == pb::Channel::Whatsapp)
        .map(|p| (p.address.clone(), p.point_id.clone()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    let invoice = ledger_invoice(stack, external_id, &format!("INV-88-{external_id}"), "INV-88", 60).await;
    let debtor = LedgerDebtor {
        debtor_id: stored.debtor.expect("debtor").debtor_id,
        invoice_id: invoice.invoice_id,
        whatsapp,
    };
    let mut channels = stack.channels().await;
    until_channels_knows_invoice(
        &mut channels,
        &one_off(stack, "probe", &debtor, pb::Channel::Email),
    )
    .await;
    debtor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_rewords_a_template_and_its_debtors_read_the_new_wording() {
    let stack = Stack::start().await;
    let mut channels =
        pb::channels_service_client::ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let wording = |language: &str, subject: &str, body: &str| pb::PutTemplateRequest {
        tenant_id: stack.tenant.clone(),
        template_id: "overdue".into(),
        language: language.into(),
        subject: subject.into(),
        body: body.into(),
    };
    let body = "Hi {debtor_name}, {amount} is still open on {invoice_number}: {payment_link}\n\n{opt_out}";

    let refused = channels
        .put_template(wording("en", "About {invoice_number}", "Pay {amount} now."))
        .await
        .expect_err("no opt-out line");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("body"), "{}", refused.message());
    let refused = channels
        .put_template(wording("en", "About {invoice} ", body))
        .await
        .expect_err("unknown variable");
    assert!(refused.message().contains("subject"), "{}", refused.message());

    let first = channels
        .put_template(wording("en", "Riverside: {invoice_number}", body))
        .await
        .expect("stored")
        .into_inner();
    assert_eq!(first.version, 1);
    let second = channels
        .put_template(wording("en", "A note about invoice {invoice_number}", body))
        .await
        .expect("stored")
        .into_inner();
    assert_eq!(second.version, 2, "every change is a new version");

    let templates = channels
        .list_templates(pb::ListTemplatesRequest {
            tenant_id: stack.tenant.clone(),
            ..Default::default()
        })
        .await
        .expect("templates")
        .into_inner()
        .templates;
    assert_eq!(templates.len(), 30, "one reworded, twenty-nine shipped");
    // In pages of five: the same thirty, in the same order.
    let (mut paged, mut token) = (Vec::new(), String::new());
    loop {
        let page = channels
            .list_templates(pb::ListTemplatesRequest {
                tenant_id: stack.tenant.clone(),
                page_size: 5,
                page_token: token,
            })
            .await
            .expect("a page")
            .into_inner();
        assert!(page.templates.len() <= 5);
        paged.extend(page.templates);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, templates);
    let find = |language: &str| {
        templates
            .iter()
            .find(|t| t.template_id == "overdue" && t.language == language)
            .expect("listed")
    };
    assert_eq!(
        (find("en").tenant_id.as_str(), find("en").version),
        (stack.tenant.as_str(), 2)
    );
    assert_eq!(
        (find("es").tenant_id.as_str(), find("es").version),
        ("", 0),
        "shipped Spanish"
    );

    let english = us_debtor(&stack, "D-EN", "en-US").await;
    let sent = channels
        .send_message(one_off(&stack, "reworded-1", &english, pb::Channel::Email))
        .await
        .expect("sent")
        .into_inner();
    assert_eq!(
        sent.record.as_ref().map(|r| r.status()),
        Some(pb::DeliveryStatus::Sent),
        "{sent:?}"
    );
    let spanish = us_debtor(&stack, "D-ES", "es-US").await;
    channels
        .send_message(one_off(&stack, "reworded-2", &spanish, pb::Channel::Email))
        .await
        .expect("sent");
    let reader = channels.clone();
    let subject_sent_to = |debtor: &LedgerDebtor| {
        let mut channels = reader.clone();
        let request = pb::GetConversationRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor.debtor_id.clone(),
            ..Default::default()
        };
        async move {
            let entries = channels
                .get_conversation(request)
                .await
                .expect("conversation")
                .into_inner()
                .entries;
            entries.first().map(|e| e.text.clone()).unwrap_or_default()
        }
    };
    assert_eq!(subject_sent_to(&english).await, "A note about invoice INV-88");
    assert_eq!(
        subject_sent_to(&spanish).await,
        "Factura INV-88 vencida",
        "no Spanish rewording"
    );

    let removed = channels
        .delete_template(pb::DeleteTemplateRequest {
            tenant_id: stack.tenant.clone(),
            template_id: "overdue".into(),
            language: "en".into(),
        })
        .await
        .expect("deleted")
        .into_inner();
    assert!(removed.deleted);
    let again = channels
        .delete_template(pb::DeleteTemplateRequest {
            tenant_id: stack.tenant.clone(),
            template_id: "overdue".into(),
            language: "en".into(),
        })
        .await
        .expect_err("already gone");
    assert_eq!(again.code(), tonic::Code::NotFound);
    let back = us_debtor(&stack, "D-BACK", "en-US").await;
    channels
        .send_message(one_off(&stack, "reworded-3", &back, pb::Channel::Email))
        .await
        .expect("sent");
    assert_eq!(
        subject_sent_to(&back).await,
        "Invoice INV-88 is overdue",
        "the shipped wording again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_form_whatsapp_goes_only_inside_the_window_the_debtor_opened() {
    let stack = Stack::start().await;
    let mut channels =
        pb::channels_service_client::ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let debtor = us_debtor(&stack, "D-WA", "es-US").await;
    let free_form = |key: &str| pb::SendMessageRequest {
        template_id: String::new(),
        text: "Su saldo pendiente es de 980,00 USD.".into(),
        ..one_off(&stack, key, &debtor, pb::Channel::Whatsapp)
    };

    let unasked = channels
        .send_message(free_form("free-1"))
        .await
        .expect("answered")
        .into_inner()
        .record
        .expect("record");
    assert_eq!(unasked.status(), pb::DeliveryStatus::Failed, "{unasked:?}");
    assert!(unasked.reason.contains("24-hour"), "{}", unasked.reason);
    let by_email = channels
        .send_message(pb::SendMessageRequest {
            channel: pb::Channel::Email as i32,
            ..free_form("free-2")
        })
        .await
        .expect_err("email uses templates");
    assert_eq!(by_email.code(), tonic::Code::InvalidArgument);

    // A utility template opens the conversation; the debtor writes back.
    let template = channels
        .send_message(one_off(&stack, "template-1", &debtor, pb::Channel::Whatsapp))
        .await
        .expect("sent")
        .into_inner();
    assert_eq!(
        template.record.as_ref().map(|r| r.status()),
        Some(pb::DeliveryStatus::Sent),
        "{template:?}"
    );
    let (status, body) = crate::helpers::post_json(
        stack.http_port,
        "/webhooks/sandbox/replies",
        &format!(
            r#"{{"reminder_id":"{}","text":"¿Cuánto debo exactamente?"}}"#,
            template.reminder_id
        ),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    // The window is that number's: another number of the same debtor never wrote to us.
    let elsewhere = channels
        .send_message(pb::SendMessageRequest {
            template_id: String::new(),
            text: "Su saldo pendiente es de 980,00 USD.".into(),
            point_id: debtor.whatsapp[1].clone(),
            ..one_off(&stack, "free-4", &debtor, pb::Channel::Whatsapp)
        })
        .await
        .expect("answered")
        .into_inner()
        .record
        .expect("record");
    assert_eq!(elsewhere.status(), pb::DeliveryStatus::Failed, "{elsewhere:?}");
    assert!(elsewhere.reason.contains("24-hour"), "{}", elsewhere.reason);

    // Inside the window now, and still under the same contact budget (one a day here).
    let answered = channels
        .send_message(free_form("free-3"))
        .await
        .expect("answered")
        .into_inner()
        .record
        .expect("record");
    assert_eq!(answered.status(), pb::DeliveryStatus::Deferred, "{answered:?}");
    assert!(!answered.reason.contains("24-hour"), "{}", answered.reason);

    // By SMS, free-form text needs no window, and carries the opt-out line.
    let other = us_debtor(&stack, "D-SMS", "es-US").await;
    let sms = channels
        .send_message(pb::SendMessageRequest {
            template_id: String::new(),
            text: "Gracias por su pago.".into(),
            ..one_off(&stack, "sms-1", &other, pb::Channel::Sms)
        })
        .await
        .expect("sent")
        .into_inner();
    assert_eq!(
        sms.record.as_ref().map(|r| r.status()),
        Some(pb::DeliveryStatus::Sent),
        "{sms:?}"
    );
    let conversation = channels
        .get_conversation(pb::GetConversationRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: other.debtor_id.clone(),
            ..Default::default()
        })
        .await
        .expect("conversation")
        .into_inner()
        .entries;
    assert_eq!(conversation.len(), 1, "{conversation:?}");
    assert!(
        conversation[0].text.starts_with("Gracias por su pago."),
        "{conversation:?}"
    );
    assert!(
        conversation[0].text.len() > "Gracias por su pago.".len(),
        "an opt-out line follows"
    );
}
