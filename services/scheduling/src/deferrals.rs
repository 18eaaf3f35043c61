//! Deferrals coming back from channels: a contact the rules did not allow yet goes back to
//! pending with the moment channels computed, and is re-checked and emitted again then.

use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::db;
use recobro_common::kafka::{Failure, Handler};
use recobro_common::time;
use recobro_proto::v1::{self as pb, DeliveryStatus};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store;

pub struct Deferrals {
    pub pool: PgPool,
}

impl Handler for Deferrals {
    async fn handle(&self, message: &BorrowedMessage<'_>) -> Result<(), Failure> {
        let record = pb::DeliveryRecord::decode(message.payload().unwrap_or_default())
            .map_err(|err| Failure::Reject(format!("not a recobro.v1.DeliveryRecord: {err}")))?;
        if record.status() != DeliveryStatus::Deferred {
            return Ok(());
        }
        let reminder_id = Uuid::parse_str(&record.reminder_id)
            .map_err(|_| Failure::Reject("reminder_id is not a UUID".into()))?;
        let not_before = record
            .not_before
            .as_ref()
            .and_then(time::from_timestamp)
            .ok_or_else(|| Failure::Reject("a DEFERRED record needs not_before".into()))?;
        // A deferred statement puts back each reminder it covers (it is not a reminder itself);
        // they fire again then, as a statement again if they still fall due together.
        let mut reminders = Vec::with_capacity(record.covered_reminder_ids.len().max(1));
        for (index, id) in record.covered_reminder_ids.iter().enumerate() {
            reminders.push(
                Uuid::parse_str(id)
                    .map_err(|_| Failure::Reject(format!("covered_reminder_ids[{index}] is not a UUID")))?,
            );
        }
        if reminders.is_empty() {
            reminders.push(reminder_id);
        }
        let rescheduled = store::reschedule(&self.pool, &reminders, not_before)
            .await
            .map_err(|err| db::failure(&err))?;
        tracing::info!(%reminder_id, %not_before, rescheduled, rule = %record.rule, "contact deferred by the rules");
        Ok(())
    }
}
