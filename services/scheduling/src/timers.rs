//! The timer loop: claims due reminders, re-checks the invoice, and emits `ReminderDue` through
//! the outbox in the same transaction that marks them emitted. A crash before commit leaves them
//! pending (emitted later, once); after commit the outbox guarantees publication.

use std::time::Duration;

use prost::Message as _;
use recobro_common::{channel_from_name, kafka, outbox, time};
use recobro_proto::v1::{self as pb};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::store::{self, DueReminder};

pub struct Timers {
    pub pool: PgPool,
    pub reminders_topic: String,
    pub batch: i64,
}

impl Timers {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let pause = match self.fire_due().await {
                Ok(fired) if fired as i64 >= self.batch => Duration::ZERO,
                Ok(_) => Duration::from_millis(200),
                Err(err) => {
                    tracing::warn!(error = %err, "firing due reminders failed, retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One batch; returns how many reminders were claimed.
    pub async fn fire_due(&self) -> Result<usize, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let due = store::claim_due(&mut tx, self.batch).await?;
        let mut emitted = Vec::new();
        let mut cancelled = Vec::new();
        let mut paused = Vec::new();
        for reminder in &due {
            if reminder.invoice_status != "open" {
                cancelled.push(reminder.reminder_id);
                continue;
            }
            let snapshot = match pb::InvoiceChanged::decode(reminder.snapshot.as_slice()) {
                Ok(snapshot) => snapshot,
                Err(err) => {
                    tracing::error!(reminder_id = %reminder.reminder_id, error = %err, "stored snapshot unreadable, reminder cancelled");
                    cancelled.push(reminder.reminder_id);
                    continue;
                }
            };
            // Re-checked right before emitting: a dispute or promise that arrived since holds it.
            if let Some(hold) = snapshot.invoice.as_ref().and_then(crate::planner::hold_reason) {
                tracing::info!(reminder_id = %reminder.reminder_id, hold, "reminder held");
                paused.push(reminder.reminder_id);
                continue;
            }
            let (event, key) = reminder_due(reminder, snapshot);
            // Days may pass between the invoice event and this moment: a new trace, linked to it.
            let span = tracing::info_span!(parent: None, "reminder.fire", reminder_id = %reminder.reminder_id, debtor_id = %key, step = %reminder.step);
            if let Some(origin) = &reminder.origin_traceparent {
                use opentelemetry::trace::TraceContextExt as _;
                let origin = kafka::context_from_traceparent(origin);
                span.add_link(origin.span().span_context().clone());
            }
            let traceparent = kafka::traceparent(&span);
            outbox::enqueue_with_trace(
                &mut tx,
                &self.reminders_topic,
                &key,
                &event.encode_to_vec(),
                traceparent,
            )
            .await?;
            span.in_scope(|| tracing::info!(channel = %reminder.channel, "reminder due"));
            emitted.push(reminder.reminder_id);
        }
        store::mark(&mut tx, &emitted, "emitted").await?;
        store::mark(&mut tx, &cancelled, "cancelled").await?;
        store::mark(&mut tx, &paused, "paused").await?;
        tx.commit().await?;
        Ok(due.len())
    }
}

fn reminder_due(reminder: &DueReminder, snapshot: pb::InvoiceChanged) -> (pb::ReminderDue, String) {
    let invoice = snapshot.invoice.unwrap_or_default();
    let debtor = snapshot.debtor.unwrap_or_default();
    let key = invoice.debtor_id.clone();
    let event = pb::ReminderDue {
        reminder_id: reminder.reminder_id.to_string(),
        tenant_id: invoice.tenant_id.clone(),
        debtor_id: invoice.debtor_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        step: reminder.step.clone(),
        channel: channel_from_name(&reminder.channel) as i32,
        template_id: reminder.template_id.clone(),
        due_at: Some(time::timestamp(reminder.fire_at)),
        debtor: Some(debtor),
        invoice: Some(invoice),
    };
    (event, key)
}
