//! Provider events already handled, keyed by the provider's own ids: providers retry a webhook
//! they think failed, and a retried one must have no second effect.

use sqlx::{PgPool, Postgres, Transaction};

/// One provider event being handled: its effects and the mark that it was handled are written
/// in this one transaction, so either both are kept or neither (the provider's retry then does
/// the work).
pub struct Handling {
    tx: Transaction<'static, Postgres>,
}

impl Handling {
    /// Starts handling the event `key` of `provider`; `None` when it was handled already. A
    /// concurrent retry of the same event waits here until the first one commits (then finds
    /// it handled) or rolls back (then handles it).
    pub async fn begin(pool: &PgPool, provider: &str, key: &str) -> Result<Option<Handling>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        let first = sqlx::query(
            "INSERT INTO provider_events (provider, event_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(Handling { tx }))
    }

    /// Starts handling something no provider id identifies (a sandbox reply): without that
    /// guard, every post is handled.
    pub async fn begin_unkeyed(pool: &PgPool) -> Result<Handling, sqlx::Error> {
        Ok(Handling {
            tx: pool.begin().await?,
        })
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(super) fn tx(&mut self) -> &mut Transaction<'static, Postgres> {
        &mut self.tx
    }
}

/// Whether `key` of `provider` was handled (for events whose handling is idempotent in itself
/// and marked handled after it: a replay is answered at once).
pub async fn provider_event_seen(
    pool: &sqlx::PgPool,
    provider: &str,
    key: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM provider_events WHERE provider = $1 AND event_key = $2)")
        .bind(provider)
        .bind(key)
        .fetch_one(pool)
        .await
}

pub async fn provider_event_handled(
    pool: &sqlx::PgPool,
    provider: &str,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO provider_events (provider, event_key) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(provider)
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
