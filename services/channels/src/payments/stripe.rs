//! Stripe: a Checkout Session in payment mode per checkout (`POST /v1/checkout/sessions`, form
//! encoded, the secret key as Bearer, our idempotency key as `Idempotency-Key`), and the events
//! its webhooks bring (signature checked in crate::signatures).

use serde::Deserialize;

use super::PaymentError;
use super::providers::Account;
use crate::store::Checkout;

const PROVIDER: &str = "stripe";

#[derive(Deserialize)]
struct Session {
    id: String,
    url: Option<String>,
}

/// Opens a Checkout Session for `checkout`: (session id, URL to send the debtor to).
pub async fn create_session(
    http: &reqwest::Client,
    account: &Account,
    checkout: &Checkout,
    invoice_number: &str,
    public_url: &str,
) -> Result<(String, String), PaymentError> {
    let key = account.api_key.as_ref().map(|k| k.expose()).unwrap_or_default();
    let checkout_id = checkout.checkout_id.to_string();
    let invoice_id = checkout.invoice_id.to_string();
    let form: Vec<(&str, String)> = vec![
        ("mode", "payment".into()),
        ("success_url", format!("{public_url}/pay/done")),
        ("cancel_url", format!("{public_url}/pay/done")),
        ("client_reference_id", checkout_id.clone()),
        ("line_items[0][quantity]", "1".into()),
        (
            "line_items[0][price_data][currency]",
            checkout.currency.to_ascii_lowercase(),
        ),
        (
            "line_items[0][price_data][unit_amount]",
            checkout.amount_minor.to_string(),
        ),
        (
            "line_items[0][price_data][product_data][name]",
            format!("Factura / Invoice {invoice_number}"),
        ),
        ("metadata[checkout_id]", checkout_id.clone()),
        ("metadata[tenant_id]", checkout.tenant_id.clone()),
        ("metadata[invoice_id]", invoice_id.clone()),
        ("payment_intent_data[metadata][checkout_id]", checkout_id),
        ("payment_intent_data[metadata][invoice_id]", invoice_id),
    ];
    let sent = http
        .post(format!("{}/v1/checkout/sessions", account.api_base))
        .bearer_auth(key)
        .header("Idempotency-Key", &checkout.idempotency_key)
        .form(&form)
        .send()
        .await;
    let session: Session = super::answered(PROVIDER, sent).await?;
    let url = session.url.ok_or(PaymentError::Unreadable {
        provider: PROVIDER,
        reason: "a session without a url".into(),
    })?;
    Ok((session.id, url))
}

/// The parts of a Stripe event we act on.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}
