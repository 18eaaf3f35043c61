//! Mercado Pago: a Checkout Pro preference per checkout (`POST /checkout/preferences`, the
//! access token as Bearer, `X-Idempotency-Key`, our checkout id as `external_reference`, our
//! webhook as `notification_url`), and the payment a notification names, fetched from the API
//! (`GET /v1/payments/{id}`) before anything is recorded: a notification only says "look".

use serde::Deserialize;
use serde_json::json;

use super::PaymentError;
use super::providers::Account;
use crate::store::Checkout;

const PROVIDER: &str = "mercadopago";

#[derive(Deserialize)]
struct Preference {
    id: String,
    init_point: String,
}

/// Major units as Mercado Pago's decimal amounts take them (e.g. 1250.5 for 125050 minor).
fn major(amount_minor: i64, currency: &str) -> f64 {
    let digits = recobro_common::money::minor_unit_digits(currency).unwrap_or(2);
    amount_minor as f64 / 10f64.powi(digits as i32)
}

/// Minor units from a decimal amount, rounded to the currency's digits.
pub fn minor(amount: f64, currency: &str) -> i64 {
    let digits = recobro_common::money::minor_unit_digits(currency).unwrap_or(2);
    (amount * 10f64.powi(digits as i32)).round() as i64
}

/// Opens a preference for `checkout`: (preference id, the `init_point` to send the debtor to).
pub async fn create_preference(
    http: &reqwest::Client,
    account: &Account,
    checkout: &Checkout,
    invoice_number: &str,
    public_url: &str,
) -> Result<(String, String), PaymentError> {
    let token = account.api_key.as_ref().map(|k| k.expose()).unwrap_or_default();
    let body = json!({
        "items": [{
            "id": checkout.invoice_id.to_string(),
            "title": format!("Factura {invoice_number}"),
            "quantity": 1,
            "currency_id": checkout.currency,
            "unit_price": major(checkout.amount_minor, &checkout.currency),
        }],
        "external_reference": checkout.checkout_id.to_string(),
        "notification_url": format!("{public_url}/webhooks/payments/mercadopago/{}", account.name),
        "back_urls": {
            "success": format!("{public_url}/pay/done"),
            "failure": format!("{public_url}/pay/done"),
            "pending": format!("{public_url}/pay/done"),
        },
    });
    let sent = http
        .post(format!("{}/checkout/preferences", account.api_base))
        .bearer_auth(token)
        .header("X-Idempotency-Key", &checkout.idempotency_key)
        .json(&body)
        .send()
        .await;
    let preference: Preference = super::answered(PROVIDER, sent).await?;
    Ok((preference.id, preference.init_point))
}

/// A payment as the API describes it (the fields we act on).
#[derive(Debug, Deserialize)]
pub struct Payment {
    pub id: serde_json::Value,
    pub status: String,
    pub transaction_amount: f64,
    pub currency_id: String,
    #[serde(default)]
    pub external_reference: Option<String>,
    #[serde(default)]
    pub transaction_amount_refunded: f64,
}

impl Payment {
    pub fn id(&self) -> String {
        match &self.id {
            serde_json::Value::String(id) => id.clone(),
            other => other.to_string(),
        }
    }
}

pub async fn fetch_payment(
    http: &reqwest::Client,
    account: &Account,
    id: &str,
) -> Result<Payment, PaymentError> {
    let token = account.api_key.as_ref().map(|k| k.expose()).unwrap_or_default();
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) || id.is_empty() {
        return Err(PaymentError::Unreadable {
            provider: PROVIDER,
            reason: "a payment id that is not alphanumeric".into(),
        });
    }
    let sent = http
        .get(format!("{}/v1/payments/{id}", account.api_base))
        .bearer_auth(token)
        .send()
        .await;
    super::answered(PROVIDER, sent).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_travel_in_major_units_and_come_back_exact() {
        assert_eq!(major(125_050, "COP"), 1250.5);
        assert_eq!(major(5000, "CLP"), 5000.0);
        assert_eq!(minor(1250.5, "COP"), 125_050);
        assert_eq!(minor(0.1 + 0.2, "BRL"), 30);
        assert_eq!(minor(5000.0, "CLP"), 5000);
    }
}
