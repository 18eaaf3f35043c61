//! Payment links (issue 16), end to end: the link in a real reminder, opened over HTTP, makes a
//! checkout at the tenant's provider for what is owed now and redirects there; the provider's
//! confirmation (a signed webhook, or the sandbox's own page) settles the invoice in accounts and
//! the rest of its ladder is cancelled. Stripe and Mercado Pago are local stand-ins that check
//! the documented request shape (Bearer key, idempotency key, fields) and keep what was asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::Utc;
use hmac::{Hmac, Mac};
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::channels_service_client::ChannelsServiceClient;
use recobro_proto::v1::{self as pb};

use crate::accounts::reminders_until;
use crate::helpers::{Stack, encode};
use crate::{HOP, debtor_id, invoice_id, invoice_of};

const STRIPE_KEY: &str = "sk_test_recobro";
const STRIPE_HOOK: &str = "whsec_recobro_test";
const MP_TOKEN: &str = "APP_USR-recobro-test";
const MP_HOOK: &str = "mp-webhook-secret";

/// One call to a stand-in: (path, idempotency key, the fields it checked).
type Call = (String, String, HashMap<String, String>);

/// What a provider stand-in was asked.
#[derive(Clone, Default)]
struct Asked {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Mercado Pago payments the stand-in knows, by id (JSON answered by GET /v1/payments/{id}).
    payments: Arc<Mutex<HashMap<String, serde_json::Value>>>,
}

impl Asked {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

fn bearer(headers: &HeaderMap, expected: &str) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {expected}"))
}

async fn stripe_sessions(
    State(asked): State<Asked>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "Idempotency-Key missing".into());
    };
    if !bearer(&headers, STRIPE_KEY) {
        return (StatusCode::UNAUTHORIZED, "bad key".into());
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    for field in [
        "mode",
        "success_url",
        "line_items[0][price_data][currency]",
        "line_items[0][price_data][unit_amount]",
        "line_items[0][quantity]",
        "metadata[invoice_id]",
    ] {
        if !form.contains_key(field) {
            return (StatusCode::BAD_REQUEST, format!("{field} missing"));
        }
    }
    if form["mode"] != "payment" {
        return (StatusCode::BAD_REQUEST, "mode must be payment".into());
    }
    let mut calls = asked.calls.lock().expect("calls");
    // Stripe answers a repeated idempotency key with the first session.
    let n = calls.iter().position(|(_, k, _)| k == key).unwrap_or(calls.len());
    calls.push(("/v1/checkout/sessions".into(), key.to_string(), form));
    let session = serde_json::json!({ "id": format!("cs_test_{n}"), "url": format!("https://checkout.stripe.test/c/{n}") });
    (StatusCode::OK, session.to_string())
}

async fn mp_preferences(
    State(asked): State<Asked>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> (StatusCode, String) {
    let Some(key) = headers.get("x-idempotency-key").and_then(|v| v.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "X-Idempotency-Key missing".into());
    };
    if !bearer(&headers, MP_TOKEN) {
        return (StatusCode::UNAUTHORIZED, "bad token".into());
    }
    let item = &body["items"][0];
    let mut fields = HashMap::new();
    for (name, value) in [
        ("external_reference", &body["external_reference"]),
        ("notification_url", &body["notification_url"]),
        ("currency_id", &item["currency_id"]),
        ("unit_price", &item["unit_price"]),
        ("quantity", &item["quantity"]),
    ] {
        if value.is_null() {
            return (StatusCode::BAD_REQUEST, format!("{name} missing"));
        }
        fields.insert(name.to_string(), value.to_string().trim_matches('"').to_string());
    }
    let mut calls = asked.calls.lock().expect("calls");
    let n = calls.len();
    calls.push(("/checkout/preferences".into(), key.to_string(), fields));
    let preference = serde_json::json!({ "id": format!("pref-{n}"), "init_point": format!("https://www.mercadopago.test/checkout/{n}") });
    (StatusCode::CREATED, preference.to_string())
}

async fn mp_payment(
    State(asked): State<Asked>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> (StatusCode, String) {
    if !bearer(&headers, MP_TOKEN) {
        return (StatusCode::UNAUTHORIZED, "bad token".into());
    }
    match asked.payments.lock().expect("payments").get(&id) {
        Some(payment) => (StatusCode::OK, payment.to_string()),
        None => (StatusCode::NOT_FOUND, "{}".into()),
    }
}

/// Starts the stand-ins of both providers on one port.
async fn provider_stand_in() -> (u16, Asked) {
    let asked = Asked::default();
    let router = axum::Router::new()
        .route("/v1/checkout/sessions", post(stripe_sessions))
        .route("/checkout/preferences", post(mp_preferences))
        .route("/v1/payments/{id}", get(mp_payment))
        .with_state(asked.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, asked)
}

/// A stack whose tenant takes COP through `provider` (with the stand-in's address).
async fn stack_paying_with(provider: &str, api_port: u16) -> Stack {
    let dir = std::env::temp_dir().join(format!("recobro-payments-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (key, hook) = match provider {
        "stripe" => (STRIPE_KEY, STRIPE_HOOK),
        _ => (MP_TOKEN, MP_HOOK),
    };
    std::fs::write(dir.join("api-key"), key).expect("key");
    std::fs::write(dir.join("webhook-secret"), hook).expect("hook");
    // The tenant is the stack's, known only once it starts: its id is filled in below.
    let config = |tenant: &str| {
        let credentials = match provider {
            "stripe" => format!("secret_key_file = \"{}\"", dir.join("api-key").display()),
            "mercadopago" => format!("access_token_file = \"{}\"", dir.join("api-key").display()),
            _ => String::new(),
        };
        let hook = if provider == "sandbox" {
            String::new()
        } else {
            format!(
                "webhook_secret_file = \"{}\"",
                dir.join("webhook-secret").display()
            )
        };
        format!(
            "[[account]]\nname = \"test-{provider}\"\ntenant_id = \"{tenant}\"\ncurrencies = [\"COP\"]\n\
             provider = \"{provider}\"\n{credentials}\n{hook}\napi_base = \"http://127.0.0.1:{api_port}\"\n"
        )
    };
    // Stack ids are random: the file names the tenant the stack will make.
    let file = dir.join("providers.toml");
    Stack::start_configured_with(|tenant| {
        std::fs::write(&file, config(tenant)).expect("providers file");
        vec![("RECOBRO_PAYMENT_PROVIDERS_FILE", file.display().to_string())]
    })
    .await
}

/// Invoice F-1 (1,250,000.00 COP), ten days overdue; its first reminder's payment link.
async fn reminder_link(stack: &Stack) -> String {
    let deliveries = stack.follow(&stack.topics.deliveries);
    let event = invoice_of(stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let sent: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(sent.status(), pb::DeliveryStatus::Sent, "{sent:?}");
    let mut channels = ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let listed = channels
        .list_deliveries(pb::ListDeliveriesRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor_id(&stack.tenant, "D-1"),
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    let body = &listed.first().expect("the reminder").body;
    let prefix = format!("http://127.0.0.1:{}/pay/", stack.http_port);
    let start = body
        .find(&prefix)
        .unwrap_or_else(|| panic!("a payment link in {body}"));
    let link: String = body[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    assert!(
        !link.contains(&invoice_id(&stack.tenant, "F-1")),
        "an opaque link: {link}"
    );
    link
}

fn tool(variable: &str) -> std::path::PathBuf {
    std::env::var(variable)
        .unwrap_or_else(|_| {
            panic!("{variable} is unset: run the tests with `make test` (deploy/local/clients.sh)")
        })
        .into()
}

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Opens `link` as a browser would: the status and where it redirects.
async fn open(link: &str) -> (u16, String, String) {
    let response = client().get(link).send().await.expect("GET the link");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, location, response.text().await.unwrap_or_default())
}

async fn invoice_until(stack: &Stack, done: impl Fn(&pb::Invoice) -> bool) -> pb::Invoice {
    crate::listening::invoice_until(&mut crate::listening::accounts(stack).await, stack, done).await
}

async fn work_items_until(stack: &Stack, done: impl Fn(&[pb::WorkItem]) -> bool) -> Vec<pb::WorkItem> {
    crate::listening::work_items_until(&mut crate::listening::accounts(stack).await, &stack.tenant, done)
        .await
}

fn outstanding(invoice: &pb::Invoice) -> i64 {
    invoice.outstanding.as_ref().map_or(-1, |m| m.amount_minor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_link_takes_the_payment_and_the_ladder_stops() {
    let stack = stack_paying_with("sandbox", 9).await;
    let link = reminder_link(&stack).await;

    // Opened twice (a double click): one checkout, the same place both times.
    let (status, checkout, _) = open(&link).await;
    assert_eq!(status, 303, "a redirect to the checkout");
    let (_, again, _) = open(&link).await;
    assert_eq!(again, checkout, "a second click reuses the checkout");
    assert!(checkout.contains("/pay/sandbox/"), "{checkout}");
    let page = client().get(&checkout).send().await.expect("checkout page");
    let text = page.text().await.expect("page");
    assert!(text.contains("125000000 COP"), "what is owed now: {text}");

    // A real browser (headless Chromium) follows the link and presses "pay".
    let browser = std::process::Command::new(tool("RECOBRO_EXAMPLE_PYTHON"))
        .arg(repo().join("tests/browser/pay_in_sandbox.py"))
        .arg(tool("RECOBRO_CHROMIUM"))
        .arg(&link)
        .output()
        .expect("run the browser");
    let saw = String::from_utf8_lossy(&browser.stdout).to_string();
    assert!(
        browser.status.success(),
        "{saw}\n{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    assert!(saw.contains(&format!("checkout: {checkout}")), "{saw}");
    assert!(saw.contains("button: Pagar / Pay"), "{saw}");
    assert!(saw.contains("after: Gracias."), "{saw}");
    // Paying again pays nothing more.
    let again = client().post(&checkout).send().await.expect("pay again");
    assert_eq!(again.status().as_u16(), 200);
    let invoice = invoice_until(&stack, |i| i.status() == pb::InvoiceStatus::Paid).await;
    assert_eq!(outstanding(&invoice), 0);
    reminders_until(&stack, &stack.tenant, &invoice.invoice_id, |r| {
        r.iter().all(|r| r.state() != pb::ReminderState::Pending)
    })
    .await;
    // The link now says it is paid, and charges nothing.
    let (status, location, page) = open(&link).await;
    assert_eq!((status, location.as_str()), (200, ""));
    assert!(page.contains("ya está pagada"), "{page}");
    // A forged link opens nothing.
    let forged = format!("{}x", &link[..link.len() - 1]);
    assert_eq!(open(&forged).await.0, 404);
}

/// A Stripe event, signed with `secret` at `t`.
fn stripe_signed(body: &str, secret: &str, t: i64) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_stripe(stack: &Stack, body: &str, signature: &str) -> u16 {
    client()
        .post(format!(
            "http://127.0.0.1:{}/webhooks/payments/stripe/test-stripe",
            stack.http_port
        ))
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("webhook")
        .status()
        .as_u16()
}

fn session_completed(event_id: &str, session: &str, amount: i64) -> String {
    serde_json::json!({
        "id": event_id,
        "type": "checkout.session.completed",
        "data": { "object": {
            "id": session, "payment_status": "paid", "payment_intent": format!("pi_{event_id}"),
            "amount_total": amount, "currency": "cop"
        }}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_signed_events_settle_refund_and_flag_what_does_not_match() {
    let (api_port, asked) = provider_stand_in().await;
    let stack = stack_paying_with("stripe", api_port).await;
    let link = reminder_link(&stack).await;
    // A partial payment recorded meanwhile: the link charges the rest.
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    accounts
        .record_settlement(pb::RecordSettlementRequest {
            tenant_id: stack.tenant.clone(),
            invoice_id: invoice_id(&stack.tenant, "F-1"),
            kind: pb::SettlementKind::Payment as i32,
            external_id: "bank-transfer-1".into(),
            amount: Some(pb::Money {
                amount_minor: 250_000_00,
                currency: "COP".into(),
            }),
            on: Some(recobro_common::time::date(Utc::now().date_naive())),
        })
        .await
        .expect("a partial payment");
    invoice_until(&stack, |i| outstanding(i) == 1_000_000_00).await;
    // Channels' view catches up through accounts' events.
    let deadline = tokio::time::Instant::now() + HOP;
    let checkout = loop {
        let (status, location, _) = open(&link).await;
        assert_eq!(status, 303);
        let calls = asked.calls();
        if calls
            .last()
            .is_some_and(|(_, _, f)| f["line_items[0][price_data][unit_amount]"] == "100000000")
        {
            break location;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never charged the rest: {calls:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let calls = asked.calls();
    let (_, key, form) = calls.last().expect("a session");
    assert_eq!(form["line_items[0][price_data][currency]"], "cop");
    assert_eq!(form["metadata[invoice_id]"], invoice_id(&stack.tenant, "F-1"));
    // A double click: the same checkout, no second session.
    let before = asked.calls().len();
    assert_eq!(open(&link).await.1, checkout);
    assert_eq!(asked.calls().len(), before, "the stored checkout is reused");
    let session = format!(
        "cs_test_{}",
        calls.iter().position(|(_, k, _)| k == key).expect("n")
    );

    let now = Utc::now().timestamp();
    // An internet-facing endpoint: a body over 64 KiB is refused before it is read.
    let huge = "x".repeat(100 * 1024);
    assert_eq!(
        post_stripe(&stack, &huge, &stripe_signed(&huge, STRIPE_HOOK, now)).await,
        413
    );
    let paid = session_completed("evt_paid", &session, 1_000_000_00);
    assert_eq!(
        post_stripe(&stack, &paid, &stripe_signed(&paid, "whsec_forged", now)).await,
        400,
        "forged"
    );
    assert_eq!(
        post_stripe(&stack, &paid, &stripe_signed(&paid, STRIPE_HOOK, now - 600)).await,
        400,
        "stale"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        outstanding(&invoice_until(&stack, |_| true).await),
        1_000_000_00,
        "nothing recorded"
    );
    assert_eq!(
        post_stripe(&stack, &paid, &stripe_signed(&paid, STRIPE_HOOK, now)).await,
        200
    );
    // Replayed: answered, applied once.
    assert_eq!(
        post_stripe(&stack, &paid, &stripe_signed(&paid, STRIPE_HOOK, now)).await,
        200
    );
    let invoice = invoice_until(&stack, |i| i.status() == pb::InvoiceStatus::Paid).await;
    assert_eq!(outstanding(&invoice), 0);
    reminders_until(&stack, &stack.tenant, &invoice.invoice_id, |r| {
        r.iter().all(|r| r.state() != pb::ReminderState::Pending)
    })
    .await;

    // Refunded in full: the invoice reopens for what was given back, with a work item.
    let refund = serde_json::json!({
        "id": "evt_refund",
        "type": "charge.refunded",
        "data": { "object": { "id": "ch_1", "payment_intent": "pi_evt_paid", "amount_refunded": 1_000_000_00 }}
    })
    .to_string();
    assert_eq!(
        post_stripe(&stack, &refund, &stripe_signed(&refund, STRIPE_HOOK, now)).await,
        200
    );
    let invoice = invoice_until(&stack, |i| i.status() == pb::InvoiceStatus::Open).await;
    assert_eq!(outstanding(&invoice), 1_000_000_00);
    // Collection resumes: the ladder has steps to come again.
    reminders_until(&stack, &stack.tenant, &invoice.invoice_id, |r| {
        r.iter().any(|r| r.state() == pb::ReminderState::Pending)
    })
    .await;
    work_items_until(&stack, |items| {
        items
            .iter()
            .any(|i| i.kind() == pb::WorkItemKind::PaymentReversed)
    })
    .await;

    // A payment of another amount than asked is not guessed at: a work item, nothing settled.
    let (_, _, _) = open(&link).await;
    let calls = asked.calls();
    let (_, key, _) = calls.last().expect("a new session for the reopened debt");
    let session = format!(
        "cs_test_{}",
        calls.iter().position(|(_, k, _)| k == key).expect("n")
    );
    let short = session_completed("evt_short", &session, 10_00);
    assert_eq!(
        post_stripe(&stack, &short, &stripe_signed(&short, STRIPE_HOOK, now)).await,
        200
    );
    let items = work_items_until(&stack, |items| {
        items
            .iter()
            .any(|i| i.kind() == pb::WorkItemKind::PaymentMismatch)
    })
    .await;
    let mismatch = items
        .iter()
        .find(|i| i.kind() == pb::WorkItemKind::PaymentMismatch)
        .expect("mismatch");
    assert!(mismatch.reason.contains("was asked"), "{}", mismatch.reason);
    assert_eq!(outstanding(&invoice_until(&stack, |_| true).await), 1_000_000_00);
}

/// Mercado Pago's `x-signature` for `data_id` and `request_id` at `ts`.
fn mp_signed(data_id: &str, request_id: &str, ts: i64, secret: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("id:{data_id};request-id:{request_id};ts:{ts};").as_bytes());
    format!("ts={ts},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_mp(stack: &Stack, data_id: &str, request_id: &str, signature: &str) -> u16 {
    client()
        .post(format!(
            "http://127.0.0.1:{}/webhooks/payments/mercadopago/test-mercadopago?data.id={data_id}&type=payment",
            stack.http_port
        ))
        .header("x-signature", signature)
        .header("x-request-id", request_id)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "type": "payment", "action": "payment.updated", "data": { "id": data_id } }).to_string())
        .send()
        .await
        .expect("webhook")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercadopago_notifications_are_verified_then_read_from_the_api() {
    let (api_port, asked) = provider_stand_in().await;
    let stack = stack_paying_with("mercadopago", api_port).await;
    let link = reminder_link(&stack).await;
    let (status, location, _) = open(&link).await;
    assert_eq!(status, 303);
    assert!(
        location.starts_with("https://www.mercadopago.test/checkout/"),
        "{location}"
    );
    let calls = asked.calls();
    let (_, _, fields) = calls.last().expect("a preference");
    assert_eq!(fields["currency_id"], "COP");
    assert_eq!(fields["unit_price"], "1250000.0");
    assert!(
        fields["notification_url"].ends_with("/webhooks/payments/mercadopago/test-mercadopago"),
        "{fields:?}"
    );
    // The payment the debtor made there, as the API will describe it.
    asked.payments.lock().expect("payments").insert(
        "9001".into(),
        serde_json::json!({
            "id": 9001, "status": "approved", "transaction_amount": 1250000.0, "currency_id": "COP",
            "external_reference": fields["external_reference"], "transaction_amount_refunded": 0
        }),
    );
    let now = Utc::now().timestamp();
    assert_eq!(
        post_mp(
            &stack,
            "9001",
            "req-1",
            &mp_signed("9001", "req-1", now, "forged")
        )
        .await,
        400
    );
    assert_eq!(
        post_mp(
            &stack,
            "9001",
            "req-1",
            &mp_signed("9001", "req-1", now - 900, MP_HOOK)
        )
        .await,
        400
    );
    // Signed for another payment id: refused.
    assert_eq!(
        post_mp(&stack, "9001", "req-1", &mp_signed("9002", "req-1", now, MP_HOOK)).await,
        400
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        invoice_until(&stack, |_| true).await.status(),
        pb::InvoiceStatus::Open
    );
    assert_eq!(
        post_mp(&stack, "9001", "req-1", &mp_signed("9001", "req-1", now, MP_HOOK)).await,
        200
    );
    assert_eq!(
        post_mp(&stack, "9001", "req-2", &mp_signed("9001", "req-2", now, MP_HOOK)).await,
        200
    );
    let invoice = invoice_until(&stack, |i| i.status() == pb::InvoiceStatus::Paid).await;
    assert_eq!(outstanding(&invoice), 0);
}
