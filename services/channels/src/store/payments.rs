//! Checkouts opened for payment links, and the payments providers reported for them.

use prost::Message as _;
use recobro_common::outbox;
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use super::Handling;

/// A checkout as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Checkout {
    pub checkout_id: Uuid,
    pub tenant_id: String,
    pub invoice_id: Uuid,
    pub provider: String,
    pub amount_minor: i64,
    pub currency: String,
    pub idempotency_key: String,
    pub url: Option<String>,
}

const COLUMNS: &str =
    "checkout_id, tenant_id, invoice_id, provider, amount_minor, currency, idempotency_key, url";

/// The checkout of `idempotency_key`, made now if there is none: two clicks racing get the
/// same row.
pub async fn checkout_for(pool: &PgPool, new: &Checkout) -> Result<Checkout, sqlx::Error> {
    sqlx::query(
        "INSERT INTO checkouts (checkout_id, tenant_id, invoice_id, provider, amount_minor, currency, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(new.checkout_id)
    .bind(&new.tenant_id)
    .bind(new.invoice_id)
    .bind(&new.provider)
    .bind(new.amount_minor)
    .bind(&new.currency)
    .bind(&new.idempotency_key)
    .execute(pool)
    .await?;
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM checkouts WHERE idempotency_key = $1"
    ))
    .bind(&new.idempotency_key)
    .fetch_one(pool)
    .await
}

/// What the provider answered for a checkout: its id there and where to send the debtor.
pub async fn checkout_opened(
    pool: &PgPool,
    checkout_id: Uuid,
    provider_checkout_id: &str,
    url: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE checkouts SET provider_checkout_id = $2, url = $3 WHERE checkout_id = $1")
        .bind(checkout_id)
        .bind(provider_checkout_id)
        .bind(url)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn checkout(pool: &PgPool, checkout_id: Uuid) -> Result<Option<Checkout>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM checkouts WHERE checkout_id = $1"))
        .bind(checkout_id)
        .fetch_optional(pool)
        .await
}

/// The checkout a provider knows by its own id (a Stripe Checkout Session id).
pub async fn checkout_by_provider_id(
    pool: &PgPool,
    provider: &str,
    provider_checkout_id: &str,
) -> Result<Option<Checkout>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM checkouts WHERE provider = $1 AND provider_checkout_id = $2"
    ))
    .bind(provider)
    .bind(provider_checkout_id)
    .fetch_optional(pool)
    .await
}

/// A payment a provider reported, with the checkout it paid.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkPayment {
    pub checkout_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub reversed_minor: i64,
}

pub async fn link_payment(
    pool: &PgPool,
    provider: &str,
    payment_id: &str,
) -> Result<Option<LinkPayment>, sqlx::Error> {
    sqlx::query_as(
        "SELECT checkout_id, amount_minor, currency, reversed_minor FROM link_payments
         WHERE provider = $1 AND payment_id = $2",
    )
    .bind(provider)
    .bind(payment_id)
    .fetch_optional(pool)
    .await
}

/// Records a confirmed payment (once per provider payment id) and queues its event, as part
/// of `handling`; `false` when it was recorded before.
pub async fn record_payment(
    handling: &mut Handling,
    checkout: &Checkout,
    event: &pb::PaymentEvent,
    topic: &str,
) -> Result<bool, sqlx::Error> {
    let amount = event.amount.clone().unwrap_or_default();
    let tx = handling.tx();
    let inserted = sqlx::query(
        "INSERT INTO link_payments (provider, payment_id, checkout_id, amount_minor, currency)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(&event.provider)
    .bind(&event.payment_id)
    .bind(checkout.checkout_id)
    .bind(amount.amount_minor)
    .bind(&amount.currency)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    outbox::enqueue(tx, topic, &event.invoice_id, &event.encode_to_vec()).await?;
    Ok(true)
}

/// Records that `amount_minor` more of a payment was given back and queues the reversal, as
/// part of `handling`.
pub async fn record_reversal(
    handling: &mut Handling,
    event: &pb::PaymentEvent,
    amount_minor: i64,
    topic: &str,
) -> Result<(), sqlx::Error> {
    let tx = handling.tx();
    sqlx::query(
        "UPDATE link_payments SET reversed_minor = reversed_minor + $3 WHERE provider = $1 AND payment_id = $2",
    )
    .bind(&event.provider)
    .bind(&event.payment_id)
    .bind(amount_minor)
    .execute(&mut **tx)
    .await?;
    outbox::enqueue(tx, topic, &event.invoice_id, &event.encode_to_vec()).await
}
