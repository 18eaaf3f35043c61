//! Ingestion of ERP invoice events from `erp.invoices.v1`: validate, store idempotently,
//! and queue the resulting account event in the same transaction.

use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::kafka::{Failure, Handler};
use recobro_common::{outbox, time};
use recobro_proto::v1::{self as pb, account_event};
use sqlx::PgPool;

use crate::domain::InvoiceEvent;
use crate::error::AccountsError;
use crate::store;

pub struct InvoiceIngest {
    pub pool: PgPool,
    pub account_events_topic: String,
}

impl Handler for InvoiceIngest {
    async fn handle(&self, message: &BorrowedMessage<'_>) -> Result<(), Failure> {
        let payload = message.payload().unwrap_or_default();
        let raw = pb::InvoiceEvent::decode(payload)
            .map_err(|err| Failure::Reject(format!("not a recobro.v1.InvoiceEvent: {err}")))?;
        let event = InvoiceEvent::parse(&raw).map_err(|err| Failure::Reject(err.to_string()))?;
        self.apply(&event)
            .await
            .map_err(|err| Failure::Retry(err.to_string()))
    }
}

impl InvoiceIngest {
    #[tracing::instrument(skip_all, fields(tenant_id = %event.tenant_id, debtor_id = %event.debtor.debtor_id, invoice_id = %event.invoice.invoice_id))]
    pub async fn apply(&self, event: &InvoiceEvent) -> Result<(), AccountsError> {
        let mut tx = self.pool.begin().await?;
        if store::ingest(&mut tx, event).await? {
            let account_event = pb::AccountEvent {
                event_id: uuid::Uuid::new_v4().to_string(),
                tenant_id: event.tenant_id.clone(),
                debtor_id: event.debtor.debtor_id.to_string(),
                occurred_at: Some(time::timestamp(chrono::Utc::now())),
                change: Some(account_event::Change::InvoiceChanged(pb::InvoiceChanged {
                    invoice: Some(event.invoice.to_proto()),
                    debtor: Some(event.debtor.to_proto()),
                })),
            };
            outbox::enqueue(
                &mut tx,
                &self.account_events_topic,
                &event.debtor.debtor_id.to_string(),
                &account_event.encode_to_vec(),
            )
            .await?;
            tracing::info!(
                status = event.invoice.status,
                version = event.invoice.version,
                "invoice applied"
            );
        } else {
            tracing::info!("event already applied or older than what we hold, nothing to do");
        }
        tx.commit().await?;
        Ok(())
    }
}
