//! The SchedulingService gRPC API.

use prost::Message as _;
use recobro_common::{channel_from_name, time};
use recobro_proto::v1::scheduling_service_server::SchedulingService;
use recobro_proto::v1::{
    self as pb, ListRemindersRequest, ListRemindersResponse, PlannedReminder, ReminderState,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::SchedulingError;
use crate::store;

pub struct Scheduling {
    pub pool: PgPool,
}

fn invalid(field: &str, reason: &str) -> SchedulingError {
    SchedulingError::InvalidArgument {
        field: field.into(),
        reason: reason.into(),
    }
}

#[tonic::async_trait]
impl SchedulingService for Scheduling {
    async fn list_reminders(
        &self,
        request: Request<ListRemindersRequest>,
    ) -> Result<Response<ListRemindersResponse>, Status> {
        let request = request.into_inner();
        if request.tenant_id.trim().is_empty() {
            return Err(invalid("tenant_id", "is required").into());
        }
        let invoice_id =
            Uuid::parse_str(request.invoice_id.trim()).map_err(|_| invalid("invoice_id", "is not a UUID"))?;
        let (snapshot, rows) = store::reminders(&self.pool, &request.tenant_id, invoice_id)
            .await
            .map_err(SchedulingError::from)?
            .ok_or_else(|| SchedulingError::NotFound {
                what: format!("invoice {invoice_id}"),
            })?;
        let snapshot = pb::InvoiceChanged::decode(snapshot.as_slice()).map_err(SchedulingError::from)?;
        let tz: chrono_tz::Tz = snapshot
            .debtor
            .map(|d| d.time_zone)
            .unwrap_or_default()
            .parse()
            .unwrap_or(chrono_tz::UTC);
        let reminders = rows
            .into_iter()
            .map(|row| PlannedReminder {
                reminder_id: row.reminder_id.to_string(),
                step: row.step,
                channel: channel_from_name(&row.channel) as i32,
                template_id: row.template_id,
                fire_at: Some(time::timestamp(row.fire_at)),
                fire_at_local: row.fire_at.with_timezone(&tz).to_rfc3339(),
                state: match row.state.as_str() {
                    "pending" => ReminderState::Pending,
                    "emitted" => ReminderState::Emitted,
                    "cancelled" => ReminderState::Cancelled,
                    "paused" => ReminderState::Paused,
                    _ => ReminderState::Skipped,
                } as i32,
            })
            .collect();
        Ok(Response::new(ListRemindersResponse { reminders }))
    }
}
