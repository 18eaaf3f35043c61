//! Promises to pay are judged automatically once their date (plus grace) has come: kept if the
//! payments cover them, broken otherwise. Either way collection resumes or stops accordingly.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::error::AccountsError;
use crate::events;
use crate::kpi::{self, PromiseState};
use crate::store;

pub struct PromiseJudge {
    pub pool: PgPool,
    pub account_events_topic: String,
    pub every: Duration,
}

impl PromiseJudge {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(err) = self.judge_due(chrono::Utc::now().date_naive()).await {
                tracing::warn!(error = %err, "judging promises failed, will try again");
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// Judges every open promise due by `today`; returns how many were decided.
    pub async fn judge_due(&self, today: chrono::NaiveDate) -> Result<usize, AccountsError> {
        let mut tx = self.pool.begin().await?;
        let mut decided = 0;
        for promise in store::promises_to_judge(&mut tx, today, 500).await? {
            let store::OpenPromise {
                promise_id,
                invoice_id,
                made_on,
                promised_date,
                amount_minor: amount,
                grace_days: grace,
            } = promise;
            let settlements = store::settlements_of(&mut tx, invoice_id).await?;
            let state = kpi::judge_promise(
                made_on,
                promised_date,
                amount,
                i64::from(grace),
                &settlements,
                today,
            );
            let reason = match state {
                PromiseState::Kept => "promise_kept",
                PromiseState::Broken => "promise_broken",
                PromiseState::Open | PromiseState::Cancelled => continue,
            };
            store::decide_promise(&mut tx, promise_id, state).await?;
            events::publish_changes(
                &mut tx,
                &[invoice_id],
                true,
                reason,
                &self.account_events_topic,
                &HashMap::new(),
            )
            .await?;
            tracing::info!(%promise_id, %invoice_id, state = state.as_str(), "promise judged");
            decided += 1;
        }
        tx.commit().await?;
        Ok(decided)
    }
}
