//! The payment routes: a link opened, the sandbox's checkout, and providers' webhooks.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use recobro_proto::v1 as pb;
use uuid::Uuid;

use super::providers::{Account, ProviderKind};
use super::{Payments, mercadopago, pages, stripe};
use crate::signatures::{self, Refused};
use crate::store::{self, Checkout, Handling};

/// Stripe's and Mercado Pago's own libraries allow five minutes between signing and checking.
const SIGNATURE_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

fn store_failed(err: sqlx::Error) -> Response {
    tracing::error!(error = %recobro_common::db::described(&err), "payment link storage failed");
    pages::unavailable()
}

/// A webhook the database did not take: the provider retries it.
fn retry_later(err: sqlx::Error) -> Response {
    tracing::error!(error = %recobro_common::db::described(&err), "payment webhook not stored");
    (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
}

fn refused(provider: &str, why: Refused) -> Response {
    tracing::warn!(provider, reason = ?why, "payment webhook refused");
    let text = match why {
        Refused::Malformed => "malformed signature",
        Refused::Forged => "signature does not match",
        Refused::Stale => "stale timestamp",
    };
    (StatusCode::BAD_REQUEST, text).into_response()
}

pub(super) async fn done() -> Response {
    pages::done()
}

/// `GET /pay/{token}`: a checkout for what the invoice owes now, or a page saying why not.
pub(super) async fn open_link(State(payments): State<Payments>, Path(token): Path<String>) -> Response {
    let Some(bound) = payments.links.verify(&token) else {
        return pages::not_found();
    };
    let invoice = match store::invoice(&payments.pool, &bound.tenant_id, bound.invoice_id).await {
        Ok(Some((_, invoice))) => invoice,
        Ok(None) => return pages::not_found(),
        Err(err) => return store_failed(err),
    };
    match pb::InvoiceStatus::try_from(invoice.status) {
        Ok(pb::InvoiceStatus::Cancelled) => return pages::cancelled(),
        Ok(pb::InvoiceStatus::Paid) => return pages::paid(),
        _ => {}
    }
    if invoice.disputed {
        return pages::disputed();
    }
    let amount_minor = super::due_now(&invoice);
    let Some(currency) = invoice.outstanding.as_ref().map(|m| m.currency.clone()) else {
        return pages::not_found();
    };
    if amount_minor <= 0 {
        return pages::paid();
    }
    let Some(account) = payments.providers.for_payment(&bound.tenant_id, &currency) else {
        tracing::warn!(tenant_id = %bound.tenant_id, %currency, "no payment account for this tenant and currency");
        return pages::unavailable();
    };
    let key = super::idempotency_key(
        &bound.tenant_id,
        &invoice,
        amount_minor,
        &currency,
        &account.name,
        Utc::now().date_naive(),
    );
    let checkout = match store::checkout_for(
        &payments.pool,
        &Checkout {
            checkout_id: Uuid::new_v4(),
            tenant_id: bound.tenant_id.clone(),
            invoice_id: bound.invoice_id,
            provider: account.kind.as_str().to_string(),
            amount_minor,
            currency,
            idempotency_key: key,
            url: None,
        },
    )
    .await
    {
        Ok(checkout) => checkout,
        Err(err) => return store_failed(err),
    };
    if let Some(url) = &checkout.url {
        return Redirect::to(url).into_response();
    }
    // Not opened yet (or a click raced another): the provider's idempotency key makes a second
    // call return the same session rather than a second one.
    let opened = match account.kind {
        ProviderKind::Sandbox => Ok((
            checkout.checkout_id.to_string(),
            format!("{}/pay/sandbox/{}", payments.public_url, checkout.checkout_id),
        )),
        ProviderKind::Stripe => {
            stripe::create_session(
                &payments.http,
                &account,
                &checkout,
                &invoice.number,
                &payments.public_url,
            )
            .await
        }
        ProviderKind::MercadoPago => {
            mercadopago::create_preference(
                &payments.http,
                &account,
                &checkout,
                &invoice.number,
                &payments.public_url,
            )
            .await
        }
    };
    let (provider_checkout_id, url) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            tracing::warn!(checkout_id = %checkout.checkout_id, error = %err, "checkout not opened");
            return pages::unavailable();
        }
    };
    if let Err(err) =
        store::checkout_opened(&payments.pool, checkout.checkout_id, &provider_checkout_id, &url).await
    {
        return store_failed(err);
    }
    tracing::info!(
        checkout_id = %checkout.checkout_id,
        invoice_id = %checkout.invoice_id,
        provider = account.kind.as_str(),
        amount_minor = checkout.amount_minor,
        "checkout opened"
    );
    Redirect::to(&url).into_response()
}

async fn sandbox_checkout(payments: &Payments, checkout_id: &str) -> Result<Checkout, Response> {
    let Ok(checkout_id) = Uuid::parse_str(checkout_id) else {
        return Err(pages::not_found());
    };
    match store::checkout(&payments.pool, checkout_id).await {
        Ok(Some(checkout)) if checkout.provider == ProviderKind::Sandbox.as_str() => Ok(checkout),
        Ok(_) => Err(pages::not_found()),
        Err(err) => Err(store_failed(err)),
    }
}

/// `GET /pay/sandbox/{checkout}`: the sandbox's checkout page, only for sandbox checkouts.
pub(super) async fn sandbox_page(
    State(payments): State<Payments>,
    Path(checkout_id): Path<String>,
) -> Response {
    match sandbox_checkout(&payments, &checkout_id).await {
        Ok(checkout) => pages::sandbox_checkout(
            &checkout.checkout_id.to_string(),
            &format!("{} {} (minor units)", checkout.amount_minor, checkout.currency),
        ),
        Err(page) => page,
    }
}

/// `POST /pay/sandbox/{checkout}`: the sandbox pays what the checkout asks, once.
pub(super) async fn sandbox_pay(
    State(payments): State<Payments>,
    Path(checkout_id): Path<String>,
) -> Response {
    let checkout = match sandbox_checkout(&payments, &checkout_id).await {
        Ok(checkout) => checkout,
        Err(page) => return page,
    };
    let payment_id = format!("sbx-{}", checkout.checkout_id.simple());
    let amount = pb::Money {
        amount_minor: checkout.amount_minor,
        currency: checkout.currency.clone(),
    };
    let event = super::event(
        &checkout,
        pb::PaymentEventKind::Confirmed,
        format!("sandbox:{payment_id}"),
        &payment_id,
        amount,
        String::new(),
    );
    if let Err(err) = confirm(&payments, &checkout, &event).await {
        return store_failed(err);
    }
    pages::done()
}

/// Records a confirmed payment and publishes it (once per provider payment id).
async fn confirm(
    payments: &Payments,
    checkout: &Checkout,
    event: &pb::PaymentEvent,
) -> Result<(), sqlx::Error> {
    let mut handling = Handling::begin_unkeyed(&payments.pool).await?;
    let new = store::record_payment(&mut handling, checkout, event, &payments.payments_topic).await?;
    handling.commit().await?;
    tracing::info!(
        checkout_id = %checkout.checkout_id,
        invoice_id = %checkout.invoice_id,
        provider = %event.provider,
        new,
        "payment confirmed"
    );
    Ok(())
}

/// Records that a payment was given back (refund or chargeback), `amount_minor` of it beyond what
/// was recorded before, and publishes it.
async fn reverse(
    payments: &Payments,
    provider: ProviderKind,
    payment_id: &str,
    reversal_id: &str,
    refunded_total_minor: Option<i64>,
    amount_minor: i64,
) -> Result<(), sqlx::Error> {
    let Some(paid) = store::link_payment(&payments.pool, provider.as_str(), payment_id).await? else {
        tracing::warn!(
            provider = provider.as_str(),
            "a reversal of a payment no link took: ignored"
        );
        return Ok(());
    };
    let Some(checkout) = store::checkout(&payments.pool, paid.checkout_id).await? else {
        return Ok(());
    };
    // Stripe and Mercado Pago report what was refunded in total: give back only what is new.
    let amount = match refunded_total_minor {
        Some(total) => total - paid.reversed_minor,
        None => amount_minor.min(paid.amount_minor - paid.reversed_minor),
    };
    if amount <= 0 {
        return Ok(());
    }
    let event = super::event(
        &checkout,
        pb::PaymentEventKind::Reversed,
        format!("{}:{reversal_id}", provider.as_str()),
        payment_id,
        pb::Money {
            amount_minor: amount,
            currency: paid.currency.clone(),
        },
        reversal_id.to_string(),
    );
    let Some(mut handling) = Handling::begin(
        &payments.pool,
        &format!("{}-reversal", provider.as_str()),
        reversal_id,
    )
    .await?
    else {
        return Ok(());
    };
    store::record_reversal(&mut handling, &event, amount, &payments.payments_topic).await?;
    handling.commit().await?;
    tracing::info!(checkout_id = %checkout.checkout_id, provider = provider.as_str(), amount_minor = amount, "payment reversed");
    Ok(())
}

fn account_of(payments: &Payments, name: &str, kind: ProviderKind) -> Option<std::sync::Arc<Account>> {
    payments
        .providers
        .named(name)
        .filter(|account| account.kind == kind)
}

fn text_of<'a>(value: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(serde_json::Value::as_str)
}

/// `POST /webhooks/payments/stripe/{account}`: a signed Stripe event, acted on once.
pub(super) async fn stripe_webhook(
    State(payments): State<Payments>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(account) = account_of(&payments, &name, ProviderKind::Stripe) else {
        return (StatusCode::NOT_FOUND, "no such account").into_response();
    };
    let secret = account
        .webhook_secret
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or_default();
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Err(why) = signatures::stripe_valid(
        secret,
        &body,
        signature,
        Utc::now().timestamp(),
        SIGNATURE_TOLERANCE,
    ) {
        return refused("stripe", why);
    }
    let Ok(event) = serde_json::from_slice::<stripe::Event>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a Stripe event").into_response();
    };
    // The event id is handled once: a replay within the tolerance changes nothing.
    match store::provider_event_seen(&payments.pool, "stripe-payments", &event.id).await {
        Ok(true) => return StatusCode::OK.into_response(),
        Ok(false) => {}
        Err(err) => return retry_later(err),
    }
    let object = &event.data.object;
    let outcome = match event.kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            if text_of(object, "payment_status") != Some("paid") {
                // Paid later (a bank transfer): async_payment_succeeded will say so.
                Ok(())
            } else {
                stripe_paid(&payments, object).await
            }
        }
        "charge.refunded" => match text_of(object, "payment_intent") {
            Some(payment_intent) => {
                let total = object.get("amount_refunded").and_then(serde_json::Value::as_i64);
                reverse(
                    &payments,
                    ProviderKind::Stripe,
                    payment_intent,
                    &event.id,
                    total,
                    0,
                )
                .await
            }
            None => Ok(()),
        },
        "charge.dispute.created" => match (text_of(object, "payment_intent"), text_of(object, "id")) {
            (Some(payment_intent), Some(dispute_id)) => {
                let amount = object
                    .get("amount")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0);
                reverse(
                    &payments,
                    ProviderKind::Stripe,
                    payment_intent,
                    dispute_id,
                    None,
                    amount,
                )
                .await
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    };
    if let Err(err) = outcome {
        return retry_later(err);
    }
    if let Err(err) = store::provider_event_handled(&payments.pool, "stripe-payments", &event.id).await {
        return retry_later(err);
    }
    StatusCode::OK.into_response()
}

async fn stripe_paid(payments: &Payments, session: &serde_json::Value) -> Result<(), sqlx::Error> {
    let Some(session_id) = text_of(session, "id") else {
        return Ok(());
    };
    let Some(checkout) = store::checkout_by_provider_id(&payments.pool, "stripe", session_id).await? else {
        tracing::warn!("a Stripe session no payment link opened: ignored");
        return Ok(());
    };
    let payment_id = text_of(session, "payment_intent")
        .unwrap_or(session_id)
        .to_string();
    let amount = pb::Money {
        amount_minor: session
            .get("amount_total")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
        currency: text_of(session, "currency")
            .unwrap_or_default()
            .to_ascii_uppercase(),
    };
    let event = super::event(
        &checkout,
        pb::PaymentEventKind::Confirmed,
        format!("stripe:{payment_id}"),
        &payment_id,
        amount,
        String::new(),
    );
    confirm(payments, &checkout, &event).await
}

#[derive(serde::Deserialize)]
pub(super) struct MercadoPagoQuery {
    #[serde(rename = "data.id")]
    data_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `POST /webhooks/payments/mercadopago/{account}?data.id=..&type=payment`: a signed
/// notification; the payment itself is read from the API.
pub(super) async fn mercadopago_webhook(
    State(payments): State<Payments>,
    Path(name): Path<String>,
    Query(query): Query<MercadoPagoQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(account) = account_of(&payments, &name, ProviderKind::MercadoPago) else {
        return (StatusCode::NOT_FOUND, "no such account").into_response();
    };
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let data_id = query.data_id.unwrap_or_default();
    let secret = account
        .webhook_secret
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or_default();
    if let Err(why) = signatures::mercadopago_valid(
        secret,
        &data_id,
        header_text("x-request-id"),
        header_text("x-signature"),
        Utc::now().timestamp(),
        SIGNATURE_TOLERANCE,
    ) {
        return refused("mercadopago", why);
    }
    if query.kind.as_deref() != Some("payment") {
        return StatusCode::OK.into_response();
    }
    let payment = match mercadopago::fetch_payment(&payments.http, &account, &data_id).await {
        Ok(payment) => payment,
        Err(err) => {
            // Answered 5xx so that Mercado Pago notifies again.
            tracing::warn!(error = %err, "Mercado Pago payment not read");
            return (StatusCode::BAD_GATEWAY, "payment not read").into_response();
        }
    };
    let checkout = match payment
        .external_reference
        .as_deref()
        .and_then(|reference| Uuid::parse_str(reference).ok())
    {
        Some(checkout_id) => match store::checkout(&payments.pool, checkout_id).await {
            Ok(checkout) => checkout.filter(|c| c.provider == ProviderKind::MercadoPago.as_str()),
            Err(err) => return retry_later(err),
        },
        None => None,
    };
    let Some(checkout) = checkout else {
        tracing::warn!("a Mercado Pago payment no payment link opened: ignored");
        return StatusCode::OK.into_response();
    };
    let payment_id = payment.id();
    let currency = payment.currency_id.to_ascii_uppercase();
    let outcome = match payment.status.as_str() {
        "approved" => {
            let event = super::event(
                &checkout,
                pb::PaymentEventKind::Confirmed,
                format!("mercadopago:{payment_id}"),
                &payment_id,
                pb::Money {
                    amount_minor: mercadopago::minor(payment.transaction_amount, &currency),
                    currency,
                },
                String::new(),
            );
            confirm(&payments, &checkout, &event).await
        }
        "refunded" | "charged_back" => {
            let total = if payment.status == "refunded" && payment.transaction_amount_refunded > 0.0 {
                mercadopago::minor(payment.transaction_amount_refunded, &currency)
            } else {
                mercadopago::minor(payment.transaction_amount, &currency)
            };
            let reversal_id = format!("{payment_id}-{}-{total}", payment.status);
            reverse(
                &payments,
                ProviderKind::MercadoPago,
                &payment_id,
                &reversal_id,
                Some(total),
                0,
            )
            .await
        }
        _ => Ok(()),
    };
    match outcome {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => retry_later(err),
    }
}
