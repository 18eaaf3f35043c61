//! The ChannelsService gRPC API.

use chrono::Utc;
use recobro_common::rules::Rulebook;
use recobro_common::{channel_from_name, time};
use recobro_proto::v1::channels_service_server::ChannelsService;
use recobro_proto::v1::{
    CapUsage, ContactDecision, ContactVerdict, Delivery, ExplainContactsRequest, ExplainContactsResponse,
    GetContactBudgetRequest, GetContactBudgetResponse, ListDeliveriesRequest, ListDeliveriesResponse,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::budget::ContactBudget;
use crate::error::ChannelsError;
use crate::store;

pub struct Channels {
    pub pool: PgPool,
    pub budget: ContactBudget,
    pub rulebook: Rulebook,
}

fn invalid(field: &str, reason: &str) -> ChannelsError {
    ChannelsError::InvalidArgument {
        field: field.into(),
        reason: reason.into(),
    }
}

fn tenant_and_debtor(tenant_id: &str, debtor_id: &str) -> Result<(String, Uuid), ChannelsError> {
    if tenant_id.trim().is_empty() {
        return Err(invalid("tenant_id", "is required"));
    }
    let debtor_id = Uuid::parse_str(debtor_id.trim()).map_err(|_| invalid("debtor_id", "is not a UUID"))?;
    Ok((tenant_id.trim().to_string(), debtor_id))
}

#[tonic::async_trait]
impl ChannelsService for Channels {
    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let request = request.into_inner();
        let (tenant_id, debtor_id) = tenant_and_debtor(&request.tenant_id, &request.debtor_id)?;
        let deliveries = store::deliveries(&self.pool, &tenant_id, debtor_id)
            .await
            .map_err(ChannelsError::from)?;
        Ok(Response::new(ListDeliveriesResponse {
            deliveries: deliveries
                .iter()
                .map(|delivery| Delivery {
                    record: Some(delivery.record()),
                    subject: delivery.subject.clone(),
                    body: delivery.body.clone(),
                })
                .collect(),
        }))
    }

    async fn explain_contacts(
        &self,
        request: Request<ExplainContactsRequest>,
    ) -> Result<Response<ExplainContactsResponse>, Status> {
        let request = request.into_inner();
        let (tenant_id, debtor_id) = tenant_and_debtor(&request.tenant_id, &request.debtor_id)?;
        let from = request
            .from
            .as_ref()
            .map(|t| time::from_timestamp(t).ok_or_else(|| invalid("from", "is not a valid time")));
        let to = request
            .to
            .as_ref()
            .map(|t| time::from_timestamp(t).ok_or_else(|| invalid("to", "is not a valid time")));
        let rows = store::decisions(
            &self.pool,
            &tenant_id,
            debtor_id,
            from.transpose()?,
            to.transpose()?,
        )
        .await
        .map_err(ChannelsError::from)?;
        let decisions = rows
            .into_iter()
            .map(|row| ContactDecision {
                reminder_id: row.reminder_id.to_string(),
                channel: channel_from_name(&row.channel) as i32,
                verdict: match row.verdict.as_str() {
                    "allowed" => ContactVerdict::Allowed,
                    "deferred" => ContactVerdict::Deferred,
                    _ => ContactVerdict::Suppressed,
                } as i32,
                not_before: row.not_before.map(time::timestamp),
                rule: row.rule,
                pack: row.pack,
                reason: row.reason,
                decided_at: Some(time::timestamp(row.decided_at)),
            })
            .collect();
        Ok(Response::new(ExplainContactsResponse { decisions }))
    }

    async fn get_contact_budget(
        &self,
        request: Request<GetContactBudgetRequest>,
    ) -> Result<Response<GetContactBudgetResponse>, Status> {
        let request = request.into_inner();
        let (tenant_id, debtor_id) = tenant_and_debtor(&request.tenant_id, &request.debtor_id)?;
        let (zone, country, region) = store::debtor(&self.pool, &tenant_id, debtor_id)
            .await
            .map_err(ChannelsError::from)?
            .ok_or_else(|| ChannelsError::NotFound {
                what: format!("debtor {debtor_id}"),
            })?;
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
        let rules = self
            .rulebook
            .for_debtor(&tenant_id, &country, Some(region.as_str()));
        let usage = self
            .budget
            .usage(&rules, debtor_id, tz, Utc::now())
            .await
            .map_err(ChannelsError::from)?;
        Ok(Response::new(GetContactBudgetResponse {
            caps: usage
                .into_iter()
                .map(|(pack, cap, used)| CapUsage {
                    pack,
                    rule: cap.id.clone(),
                    window: cap.window.name(),
                    channels: cap.channels.clone().unwrap_or_else(|| vec!["all".into()]),
                    used,
                    max: i64::from(cap.max),
                })
                .collect(),
            packs: rules.packs().iter().map(|p| p.label()).collect(),
        }))
    }
}
