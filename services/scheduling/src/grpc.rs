//! The SchedulingService gRPC API.

use chrono::Utc;
use prost::Message as _;
use recobro_common::grpc::Refusal;
use recobro_common::identity::{Caller, MethodScopes, Scope};
use recobro_common::page::PageRequest;
use recobro_common::time;
use recobro_proto::v1::scheduling_service_server::SchedulingService;
use recobro_proto::v1::{
    self as pb, ListRemindersRequest, ListRemindersResponse, PlannedReminder, ReminderState,
};
use recobro_rules::Rulebook;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::change::Change;
use crate::error::SchedulingError;
use crate::ladder::ContactWindow;
use crate::planner;
use crate::statement;
use crate::store;
use crate::stored;
use crate::strategy::{Action, Strategies};

/// Invoices one `PreviewSchedule` call may plan: a portfolio larger than this is previewed in
/// parts, so one call never holds the service for long.
pub const MAX_PREVIEW_ITEMS: usize = 1_000;

pub struct Scheduling {
    pub pool: PgPool,
    pub strategies: Strategies,
    pub rulebook: Rulebook,
    pub window: ContactWindow,
}

fn invalid(field: &str, reason: &str) -> SchedulingError {
    Refusal::invalid(field, reason).into()
}

/// The scope each method needs; the guard refuses the rest (see `recobro_common::identity`).
pub fn method_scopes() -> MethodScopes {
    MethodScopes::new(
        "recobro.v1.SchedulingService",
        &[
            ("ListReminders", Scope::Read),
            ("PreviewSchedule", Scope::Read),
            ("ListStrategies", Scope::Read),
        ],
    )
}

#[tonic::async_trait]
impl SchedulingService for Scheduling {
    async fn list_reminders(
        &self,
        request: Request<ListRemindersRequest>,
    ) -> Result<Response<ListRemindersResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let invoice_id =
            Uuid::parse_str(request.invoice_id.trim()).map_err(|_| invalid("invoice_id", "is not a UUID"))?;
        let (snapshot, rows) = store::reminders(&self.pool, &tenant_id, invoice_id)
            .await
            .map_err(SchedulingError::from)?
            .ok_or_else(|| SchedulingError::from(Refusal::not_found(format!("invoice {invoice_id}"))))?;
        let snapshot = pb::InvoiceChanged::decode(snapshot.as_slice()).map_err(SchedulingError::from)?;
        let tz: chrono_tz::Tz = snapshot
            .debtor
            .map(|d| d.time_zone)
            .unwrap_or_default()
            .parse()
            .unwrap_or(chrono_tz::UTC);
        let query = format!("ListReminders|{tenant_id}|{invoice_id}");
        let page = PageRequest::parse(request.page_size, &request.page_token, &query)
            .map_err(SchedulingError::from)?;
        // One invoice's reminders: its ladder's steps and its plan's instalments, read whole.
        let (rows, next_page_token) = page.page_of(rows, &query, |row| {
            format!(
                "{}\u{1f}{}",
                row.fire_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                row.step
            )
        });
        let reminders = rows
            .into_iter()
            .map(|row| PlannedReminder {
                reminder_id: row.reminder_id.to_string(),
                step: row.step,
                channel: stored::channel_on_wire(row.channel) as i32,
                template_id: row.template_id,
                fire_at: Some(time::timestamp(row.fire_at)),
                fire_at_local: row.fire_at.with_timezone(&tz).to_rfc3339(),
                state: ReminderState::from(row.state) as i32,
                strategy_id: row.strategy_id,
                arm: row.arm,
                action: row.action.as_str().to_string(),
                // Which statement covered it is channels' record (ListDeliveries).
                statement_id: String::new(),
            })
            .collect();
        Ok(Response::new(ListRemindersResponse {
            reminders,
            next_page_token,
        }))
    }

    /// The ladder `planner::schedule` gives each item as if it were open and not on hold: the
    /// item's status, hold (legal hold, dispute, promise, payment plan) and instalments are not
    /// looked at, nor what is already stored, nor the send-time checks of channels.
    async fn preview_schedule(
        &self,
        request: Request<pb::PreviewScheduleRequest>,
    ) -> Result<Response<pb::PreviewScheduleResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        if request.items.len() > MAX_PREVIEW_ITEMS {
            return Err(invalid(
                "items",
                &format!(
                    "holds {} invoices; at most {MAX_PREVIEW_ITEMS} per call",
                    request.items.len()
                ),
            )
            .into());
        }
        // Previews only of the caller's own invoices: an item naming another tenant is refused.
        for item in &request.items {
            let named = item
                .invoice
                .as_ref()
                .map_or("", |invoice| invoice.tenant_id.as_str());
            caller.tenant_for(named)?;
        }
        let now = match request.as_of.as_ref() {
            Some(at) => time::from_timestamp(at)
                .filter(|at| time::PLANNABLE_YEARS.contains(&chrono::Datelike::year(at)))
                .ok_or_else(|| invalid("as_of", "is not a valid time between 1900 and 2999"))?,
            None => Utc::now(),
        };
        let forced = Some(request.strategy_id.trim()).filter(|id| !id.is_empty());
        if let Some(id) = forced
            && self.strategies.get(id).is_none()
        {
            return Err(invalid("strategy_id", &format!("no strategy {id:?} is loaded")).into());
        }
        let mut previews = Vec::new();
        // Message reminders that may share a statement, and where each is in `previews`.
        let mut candidates = Vec::new();
        let mut placed = Vec::new();
        for (index, item) in request.items.into_iter().enumerate() {
            let event = pb::AccountEvent {
                change: Some(pb::account_event::Change::InvoiceChanged(item)),
                ..Default::default()
            };
            let change = Change::parse(&event)
                .map_err(|reason| invalid(&format!("items[{index}]"), &reason))?
                .ok_or_else(|| invalid(&format!("items[{index}]"), "is empty"))?;
            let (strategy, arm, plan) = planner::schedule(
                &self.strategies,
                &self.rulebook,
                &self.window,
                &change,
                forced,
                now,
            )
            .ok_or_else(|| invalid("strategy_id", "no strategy applies"))?;
            let (strategy_id, arm) = (strategy.id.clone(), arm.id.clone());
            if strategy.consolidates(change.debtor_kind) {
                for (at, planned) in plan.iter().enumerate() {
                    if let (false, Action::Message { channels, roles, .. }) =
                        (planned.skipped, &planned.step.action)
                    {
                        candidates.push(statement::Candidate {
                            key: (
                                change.debtor_id,
                                channels.first().map(|c| c.as_str()),
                                roles.clone(),
                            ),
                            fire_at: planned.fire_at,
                            zone: change.time_zone,
                            window_days: strategy.statement_window_days,
                        });
                        placed.push((previews.len(), at));
                    }
                }
            }
            let reminders = plan
                .into_iter()
                .map(|planned| {
                    let channel = match &planned.step.action {
                        Action::Message { channels, .. } => channels.first().copied(),
                        Action::Escalate(_) => None,
                    };
                    let template = match &planned.step.action {
                        Action::Message { template, .. } => template.clone(),
                        Action::Escalate(_) => String::new(),
                    };
                    PlannedReminder {
                        reminder_id: store::reminder_id(change.invoice_id, &planned.step.name).to_string(),
                        channel: stored::channel_on_wire(channel) as i32,
                        template_id: template,
                        fire_at: Some(time::timestamp(planned.fire_at)),
                        fire_at_local: planned.fire_at.with_timezone(&change.time_zone).to_rfc3339(),
                        state: if planned.skipped {
                            ReminderState::Skipped
                        } else {
                            ReminderState::Pending
                        } as i32,
                        strategy_id: strategy_id.clone(),
                        arm: arm.clone(),
                        action: planned.step.action.stored().as_str().to_string(),
                        step: planned.step.name,
                        statement_id: String::new(),
                    }
                })
                .collect();
            previews.push(pb::Preview {
                invoice_id: change.invoice_id.to_string(),
                strategy_id,
                arm,
                reminders,
            });
        }
        let statements = statement::windows(&candidates)
            .into_iter()
            .map(|members| {
                let debtor_id = candidates[members[0]].key.0;
                let members: Vec<(usize, usize)> = members.iter().map(|m| placed[*m]).collect();
                planned_statement(&mut previews, debtor_id, &members)
            })
            .collect();
        Ok(Response::new(pb::PreviewScheduleResponse {
            previews,
            statements,
        }))
    }

    async fn list_strategies(
        &self,
        request: Request<pb::ListStrategiesRequest>,
    ) -> Result<Response<pb::ListStrategiesResponse>, Status> {
        let request = request.into_inner();
        let query = "ListStrategies";
        let page = PageRequest::parse(request.page_size, &request.page_token, query)
            .map_err(SchedulingError::from)?;
        let (strategies, next_page_token) =
            page.page_of(self.strategies.all().iter().collect(), query, |s| s.id.clone());
        let strategies = strategies
            .into_iter()
            .map(|s| pb::StrategySource {
                strategy_id: s.id.clone(),
                version: s.version.clone(),
                name: s.name.clone(),
                toml: s.source.clone(),
            })
            .collect();
        Ok(Response::new(pb::ListStrategiesResponse {
            strategies,
            next_page_token,
        }))
    }
}

/// One statement of a preview, from its covered reminders (by preview and reminder index, the
/// lead first), each of them marked as going out in it.
fn planned_statement(
    previews: &mut [pb::Preview],
    debtor_id: Uuid,
    members: &[(usize, usize)],
) -> pb::PlannedStatement {
    let ids: Vec<Uuid> = members
        .iter()
        .filter_map(|(preview, at)| previews[*preview].reminders[*at].reminder_id.parse().ok())
        .collect();
    let statement_id = statement::statement_id(&ids).to_string();
    let mut planned = pb::PlannedStatement {
        statement_id: statement_id.clone(),
        debtor_id: debtor_id.to_string(),
        ..Default::default()
    };
    for (n, (preview, at)) in members.iter().enumerate() {
        let invoice_id = previews[*preview].invoice_id.clone();
        let reminder = &mut previews[*preview].reminders[*at];
        reminder.statement_id = statement_id.clone();
        if n == 0 {
            planned.channel = reminder.channel;
            planned.fire_at = reminder.fire_at;
            planned.fire_at_local = reminder.fire_at_local.clone();
        }
        planned.covered.push(pb::CoveredPreview {
            reminder_id: reminder.reminder_id.clone(),
            invoice_id,
            step: reminder.step.clone(),
            template_id: reminder.template_id.clone(),
        });
    }
    planned
}
