//! Payment links: every reminder links to our own `/pay/<token>`, an opaque token bound to the
//! tenant and the invoice (link.rs). Opening it makes, or reuses, a checkout at the tenant's
//! payment provider for what the invoice owes at that moment, read from channels' view of the
//! ledger (after partial payments and credit notes, or the instalment due under a plan), and
//! redirects there (303). A paid, cancelled or disputed invoice gets a short page instead.
//! Providers' confirmations arrive as signed webhooks (stripe.rs, mercadopago.rs) or from the
//! sandbox's own page (sandbox.rs), and are published on `payments.events.v1` for accounts to
//! settle. Amounts, ids and provider names only: nothing about the debtor is logged.

mod handlers;
pub mod link;
mod mercadopago;
mod pages;
pub mod providers;
mod stripe;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use recobro_proto::v1 as pb;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

pub use link::PaymentLinks;
pub use providers::PaymentProviders;

/// A provider call that did not give us a checkout or a payment. Reasons carry the provider and
/// HTTP status only.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("{provider} answered HTTP {status}")]
    Provider { provider: &'static str, status: u16 },
    #[error("{provider} could not be reached: {reason}")]
    Unreachable { provider: &'static str, reason: String },
    #[error("{provider} answered what we cannot read: {reason}")]
    Unreadable { provider: &'static str, reason: String },
}

impl PaymentError {
    fn unreachable(provider: &'static str, err: reqwest::Error) -> PaymentError {
        PaymentError::Unreachable {
            provider,
            reason: err.without_url().to_string(),
        }
    }

    fn unreadable(provider: &'static str, err: reqwest::Error) -> PaymentError {
        PaymentError::Unreadable {
            provider,
            reason: err.without_url().to_string(),
        }
    }
}

/// A provider's answer, if it was a success; else what it was (the status only).
async fn answered<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, PaymentError> {
    let response = sent.map_err(|err| PaymentError::unreachable(provider, err))?;
    let status = response.status();
    if !status.is_success() {
        return Err(PaymentError::Provider {
            provider,
            status: status.as_u16(),
        });
    }
    response
        .json()
        .await
        .map_err(|err| PaymentError::unreadable(provider, err))
}

/// What the payment routes share.
#[derive(Clone)]
pub struct Payments {
    pub pool: PgPool,
    pub links: Arc<PaymentLinks>,
    pub providers: Arc<PaymentProviders>,
    pub http: reqwest::Client,
    pub payments_topic: String,
    pub public_url: String,
}

/// Webhook bodies are small JSON documents; anything bigger is refused before it is read.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(payments: Payments) -> Router {
    Router::new()
        .route("/pay/done", get(handlers::done))
        .route("/pay/{token}", get(handlers::open_link))
        .route(
            "/pay/sandbox/{checkout_id}",
            get(handlers::sandbox_page).post(handlers::sandbox_pay),
        )
        .route(
            "/webhooks/payments/stripe/{account}",
            post(handlers::stripe_webhook),
        )
        .route(
            "/webhooks/payments/mercadopago/{account}",
            post(handlers::mercadopago_webhook),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // A provider call or the database taking too long answers 503, as webhooks do.
        .layer(axum::middleware::from_fn_with_state(
            crate::webhooks::WEBHOOK_DEADLINE,
            crate::webhooks::within_deadline,
        ))
        .with_state(payments)
}

/// What a payment link charges now: under a plan, the instalment due (what the instalments up
/// to it add to, less what was paid), else everything still owed; never more than is owed.
pub fn due_now(invoice: &pb::Invoice) -> i64 {
    let outstanding = invoice.outstanding.as_ref().map_or(0, |m| m.amount_minor);
    if invoice.instalments.is_empty() {
        return outstanding;
    }
    let amount = invoice.amount.as_ref().map_or(0, |m| m.amount_minor);
    let paid = (amount - outstanding).max(0);
    let mut instalments: Vec<&pb::Instalment> = invoice.instalments.iter().collect();
    instalments.sort_by_key(|i| i.due_date.as_ref().map(|d| (d.year, d.month, d.day)));
    let mut cumulative = 0;
    for instalment in instalments {
        cumulative += instalment.amount.as_ref().map_or(0, |m| m.amount_minor);
        if cumulative > paid {
            return (cumulative - paid).min(outstanding);
        }
    }
    outstanding
}

/// The idempotency key of a checkout: the same invoice, revision, amount and account on the
/// same UTC day reuse one checkout (providers' sessions last a day), so a double click or a
/// retry never opens a second charge; any change to what is owed makes a new one.
pub fn idempotency_key(
    tenant_id: &str,
    invoice: &pb::Invoice,
    amount_minor: i64,
    currency: &str,
    account: &str,
    day: NaiveDate,
) -> String {
    let digest = Sha256::new()
        .chain_update(b"recobro checkout\0")
        .chain_update(tenant_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(invoice.invoice_id.as_bytes())
        .chain_update(invoice.revision.to_be_bytes())
        .chain_update(amount_minor.to_be_bytes())
        .chain_update(currency.as_bytes())
        .chain_update(b"\0")
        .chain_update(account.as_bytes())
        .chain_update(day.to_string().as_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

/// A payment event as published.
fn event(
    checkout: &crate::store::Checkout,
    kind: pb::PaymentEventKind,
    event_id: String,
    payment_id: &str,
    amount: pb::Money,
    reversal_id: String,
) -> pb::PaymentEvent {
    pb::PaymentEvent {
        event_id,
        tenant_id: checkout.tenant_id.clone(),
        invoice_id: checkout.invoice_id.to_string(),
        kind: kind as i32,
        provider: checkout.provider.clone(),
        payment_id: payment_id.to_string(),
        amount: Some(amount),
        asked: Some(pb::Money {
            amount_minor: checkout.amount_minor,
            currency: checkout.currency.clone(),
        }),
        at: Some(recobro_common::time::timestamp(Utc::now())),
        reversal_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount_minor: i64) -> Option<pb::Money> {
        Some(pb::Money {
            amount_minor,
            currency: "COP".into(),
        })
    }

    fn instalment(day: i32, amount_minor: i64) -> pb::Instalment {
        pb::Instalment {
            due_date: Some(pb::Date {
                year: 2026,
                month: 12,
                day,
            }),
            amount: money(amount_minor),
        }
    }

    #[test]
    fn a_link_charges_what_is_owed_or_the_instalment_due() {
        let mut invoice = pb::Invoice {
            amount: money(300_00),
            outstanding: money(120_00),
            ..Default::default()
        };
        assert_eq!(due_now(&invoice), 120_00, "after partial payments, the rest");
        // Three instalments of 100: 180 paid, so 20 is left of the second.
        invoice.instalments = vec![
            instalment(20, 100_00),
            instalment(5, 100_00),
            instalment(12, 100_00),
        ];
        assert_eq!(due_now(&invoice), 20_00);
        invoice.outstanding = money(300_00);
        assert_eq!(due_now(&invoice), 100_00, "nothing paid: the first instalment");
        invoice.outstanding = money(0);
        assert_eq!(due_now(&invoice), 0);
    }

    #[test]
    fn the_same_debt_on_the_same_day_reuses_its_checkout_and_any_change_does_not() {
        let invoice = pb::Invoice {
            invoice_id: "6f1c1f7e-5b1a-4a43-9b51-4f1b7f3f9a10".into(),
            revision: 3,
            ..Default::default()
        };
        let day = NaiveDate::from_ymd_opt(2026, 12, 6).expect("date");
        let key = |invoice: &pb::Invoice, amount, day| {
            idempotency_key("acme", invoice, amount, "COP", "stripe-acme", day)
        };
        assert_eq!(key(&invoice, 100, day), key(&invoice, 100, day));
        assert_ne!(key(&invoice, 100, day), key(&invoice, 99, day));
        assert_ne!(
            key(&invoice, 100, day),
            key(&invoice, 100, day.succ_opt().expect("day"))
        );
        let revised = pb::Invoice {
            revision: 4,
            ..invoice.clone()
        };
        assert_ne!(key(&invoice, 100, day), key(&revised, 100, day));
    }
}
