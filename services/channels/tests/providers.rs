//! The SMS and WhatsApp providers against local stand-ins that check the exact request each
//! provider documents and answer with its documented responses and error bodies.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use recobro_channels::provider::{OutgoingText, ProviderError, Twilio, WhatsAppCloud};
use recobro_channels::unsubscribe::{Link, UnsubscribeKeys, UnsubscribeLinks};
use recobro_common::secret::Secret;

/// The key the SendGrid test signs unsubscribe links with.
const UNSUBSCRIBE_KEY: &str = "providers-test-key-0123456789-abcdefghijklmnopqrstuvwxyz";

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>);

/// Serves `router` on a free loopback port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("http://{addr}")
}

/// Twilio's Messages resource: 201 with the message, or its documented error body.
async fn twilio_messages(
    State(seen): State<Seen>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    seen.0
        .lock()
        .expect("lock")
        .push((account.clone(), headers, body.clone()));
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let to = form
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    match to {
        "+15005550009" => (
            StatusCode::BAD_REQUEST,
            r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#.to_string(),
        ),
        "+15005550010" => (StatusCode::SERVICE_UNAVAILABLE, r#"{"code": 20503, "message": "Service unavailable", "status": 503}"#.to_string()),
        _ => (
            StatusCode::CREATED,
            format!(r#"{{"sid": "SM0123456789abcdef0123456789abcdef", "account_sid": "{account}", "to": "{to}", "status": "queued"}}"#),
        ),
    }
}

fn twilio(base: String) -> Twilio {
    Twilio {
        http: reqwest::Client::new(),
        api_base: base,
        account_sid: "AC00000000000000000000000000000001".into(),
        auth_token: Secret::new("token-1"),
        from: "+15005550006".into(),
        status_callback: Some("https://collect.example/webhooks/twilio".into()),
    }
}

fn text(to: &str) -> OutgoingText<'_> {
    OutgoingText {
        reminder_id: uuid::Uuid::nil(),
        to,
        text: "Factura FE-1 vencida. https://pay.example/i/1 Para no recibir más mensajes, responda BAJA.",
        template: "overdue",
        language: "es",
        parameters: vec![
            "Ferretería El Tornillo".into(),
            "FE-1".into(),
            "1.250.000,00 COP".into(),
            "31 de octubre de 2026".into(),
            "https://pay.example/i/1".into(),
        ],
    }
}

#[tokio::test]
async fn twilio_gets_the_documented_form_post_with_basic_auth() {
    let seen = Seen::default();
    let base = serve(
        Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(twilio_messages),
            )
            .with_state(seen.clone()),
    )
    .await;
    let sid = twilio(base).send(&text("+573001234567")).await.expect("sent");
    assert_eq!(sid, "SM0123456789abcdef0123456789abcdef");
    let (account, headers, body) = seen.0.lock().expect("lock").remove(0);
    assert_eq!(account, "AC00000000000000000000000000000001");
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .expect("basic auth");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim_start_matches("Basic "))
        .expect("base64");
    assert_eq!(decoded, b"AC00000000000000000000000000000001:token-1");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("To").as_deref(), Some("+573001234567"));
    assert_eq!(field("From").as_deref(), Some("+15005550006"));
    assert_eq!(
        field("StatusCallback").as_deref(),
        Some("https://collect.example/webhooks/twilio")
    );
    assert!(
        field("Body").is_some_and(|b| b.contains("responda BAJA")),
        "the opt-out travels in the SMS"
    );
}

#[tokio::test]
async fn twilio_refusals_are_permanent_and_outages_transient() {
    let seen = Seen::default();
    let base = serve(
        Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(twilio_messages),
            )
            .with_state(seen),
    )
    .await;
    let twilio = twilio(base);
    match twilio.send(&text("+15005550009")).await {
        Err(ProviderError::Permanent(reason)) => assert!(reason.contains("21610"), "{reason}"),
        other => panic!("an unsubscribed number is permanent: {other:?}"),
    }
    assert!(
        matches!(
            twilio.send(&text("+15005550010")).await,
            Err(ProviderError::Transient(_))
        ),
        "503 is retried"
    );
    let unreachable = Twilio {
        api_base: "http://127.0.0.1:9".into(),
        ..twilio
    };
    assert!(matches!(
        unreachable.send(&text("+573001234567")).await,
        Err(ProviderError::Transient(_))
    ));
}

/// The Graph API's messages edge: 200 with the message id, or its documented error body.
async fn graph_messages(
    State(seen): State<Seen>,
    Path(phone): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    seen.0.lock().expect("lock").push((phone, headers, body.clone()));
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
    let error = |status: StatusCode, code: i64, message: &str| {
        (
            status,
            format!(
                r#"{{"error": {{"message": "{message}", "type": "OAuthException", "code": {code}, "fbtrace_id": "A1b2"}}}}"#
            ),
        )
    };
    match json["to"].as_str().unwrap_or_default() {
        "15005550011" => error(StatusCode::BAD_REQUEST, 131047, "Re-engagement message"),
        "15005550012" => error(StatusCode::BAD_REQUEST, 131026, "Message undeliverable"),
        "15005550013" => error(StatusCode::BAD_REQUEST, 130429, "Rate limit hit"),
        to => (
            StatusCode::OK,
            format!(
                r#"{{"messaging_product": "whatsapp", "contacts": [{{"input": "{to}", "wa_id": "{to}"}}], "messages": [{{"id": "wamid.HBgLMTIzNDU2Nzg5MBUCABEYEjA="}}]}}"#
            ),
        ),
    }
}

fn whatsapp(base: String) -> WhatsAppCloud {
    WhatsAppCloud {
        http: reqwest::Client::new(),
        api_base: base,
        phone_number_id: "106540352242922".into(),
        access_token: Secret::new("EAAG-token"),
    }
}

#[tokio::test]
async fn whatsapp_gets_a_utility_template_with_bearer_auth() {
    let seen = Seen::default();
    let base = serve(
        Router::new()
            .route("/{phone}/messages", post(graph_messages))
            .with_state(seen.clone()),
    )
    .await;
    let id = whatsapp(base).send(&text("+573001234567")).await.expect("sent");
    assert_eq!(id, "wamid.HBgLMTIzNDU2Nzg5MBUCABEYEjA=");
    let (phone, headers, body) = seen.0.lock().expect("lock").remove(0);
    assert_eq!(phone, "106540352242922");
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer EAAG-token")
    );
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(json["messaging_product"], "whatsapp");
    assert_eq!(json["to"], "573001234567", "E.164 digits without '+'");
    assert_eq!(json["type"], "template");
    assert_eq!(json["template"]["name"], "overdue");
    assert_eq!(json["template"]["language"]["code"], "es");
    let parameters = json["template"]["components"][0]["parameters"]
        .as_array()
        .expect("parameters");
    assert_eq!(parameters.len(), 5);
    assert_eq!(parameters[2]["text"], "1.250.000,00 COP");
}

#[tokio::test]
async fn whatsapp_free_form_text_goes_as_a_text_message_without_a_template() {
    let seen = Seen::default();
    let base = serve(
        Router::new()
            .route("/{phone}/messages", post(graph_messages))
            .with_state(seen.clone()),
    )
    .await;
    let mut reply = text("+573001234567");
    reply.template = "";
    reply.text = "Gracias por escribirnos. Su saldo es 1.250.000,00 COP.";
    whatsapp(base).send(&reply).await.expect("sent");
    let (_, _, body) = seen.0.lock().expect("lock").remove(0);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(json["type"], "text");
    assert_eq!(json["text"]["body"], reply.text);
    assert_eq!(json["text"]["preview_url"], false);
    assert!(json.get("template").is_none(), "{json}");
}

#[tokio::test]
async fn whatsapp_errors_are_classified_as_meta_documents_them() {
    let base = serve(
        Router::new()
            .route("/{phone}/messages", post(graph_messages))
            .with_state(Seen::default()),
    )
    .await;
    let whatsapp = whatsapp(base);
    for (to, code) in [("+15005550011", "131047"), ("+15005550012", "131026")] {
        match whatsapp.send(&text(to)).await {
            Err(ProviderError::Permanent(reason)) => assert!(reason.contains(code), "{reason}"),
            other => panic!("{code} is permanent: {other:?}"),
        }
    }
    assert!(
        matches!(
            whatsapp.send(&text("+15005550013")).await,
            Err(ProviderError::Transient(_))
        ),
        "130429 is retried"
    );
}

#[tokio::test]
async fn sendgrid_gets_the_mail_send_json_with_one_click_unsubscribe() {
    use recobro_channels::provider::{OutgoingEmail, SendGrid};
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/v3/mail/send",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    seen.0.lock().expect("lock").push((String::new(), headers, body));
                    (
                        StatusCode::ACCEPTED,
                        [(
                            "x-message-id",
                            "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
                        )],
                        "",
                    )
                },
            ),
        )
        .with_state(seen.clone());
    let sendgrid = SendGrid {
        http: reqwest::Client::new(),
        api_base: serve(router).await,
        api_key: Secret::new("SG.key"),
        from: "cobranza@acme.example".into(),
        unsubscribe: UnsubscribeLinks {
            public_url: "https://collect.example".into(),
            keys: Arc::new(UnsubscribeKeys::parse(UNSUBSCRIBE_KEY).expect("key")),
        },
    };
    let reminder_id = uuid::Uuid::from_u128(7);
    let point_id = uuid::Uuid::from_u128(8);
    let email = OutgoingEmail {
        reminder_id,
        point_id,
        to: "tesoreria@tornillo.example",
        subject: "Factura FE-1 vencida",
        body: "Estimado/a...",
    };
    assert_eq!(
        sendgrid.send(&email).await.expect("sent"),
        "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
    );
    let (_, headers, body) = seen.0.lock().expect("lock").remove(0);
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer SG.key")
    );
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        json["personalizations"][0]["to"][0]["email"],
        "tesoreria@tornillo.example"
    );
    assert_eq!(json["from"]["email"], "cobranza@acme.example");
    assert_eq!(json["content"][0]["type"], "text/plain");
    // A signed token for this reminder and point: ids only, no address.
    let link = json["headers"]["List-Unsubscribe"]
        .as_str()
        .and_then(|v| v.strip_prefix("<https://collect.example/unsubscribe/"))
        .and_then(|v| v.strip_suffix('>'))
        .expect("a one-click link");
    assert_eq!(
        UnsubscribeKeys::parse(UNSUBSCRIBE_KEY).expect("key").verify(link),
        Some(Link {
            reminder_id,
            point_id,
            channel: recobro_common::Channel::Email,
        })
    );
    assert_eq!(
        json["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(
        json["custom_args"],
        serde_json::json!({"reminder_id": reminder_id.to_string()}),
        "no personal data"
    );
}
