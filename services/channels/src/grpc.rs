//! The ChannelsService gRPC API.

use chrono::Utc;
use recobro_common::grpc::Refusal;
use recobro_common::identity::{Caller, MethodScopes, Scope};
use recobro_common::page::{PageRequest, parse_time_id_key, time_id_key};
use recobro_common::time;
use recobro_proto::v1::channels_service_server::ChannelsService;
use recobro_proto::v1::{
    self as pb, CapUsage, ContactDecision, Delivery, ExplainContactsRequest, ExplainContactsResponse,
    GetContactBudgetRequest, GetContactBudgetResponse, ListDeliveriesRequest, ListDeliveriesResponse,
};
use recobro_rules::Rulebook;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::ChannelsError;
use crate::store;

pub struct Channels {
    pub pool: PgPool,
    pub rulebook: Rulebook,
    /// The same dispatcher the Kafka consumer uses: one-off messages follow the same rules.
    pub dispatcher: std::sync::Arc<crate::delivery::Dispatcher>,
}

fn invalid(field: &str, reason: &str) -> ChannelsError {
    Refusal::invalid(field, reason).into()
}

/// The caller's tenant (a request naming another is refused) and the debtor asked about.
fn tenant_and_debtor(caller: &Caller, tenant_id: &str, debtor_id: &str) -> Result<(String, Uuid), Status> {
    let tenant_id = caller.tenant_for(tenant_id)?;
    let debtor_id = Uuid::parse_str(debtor_id.trim()).map_err(|_| invalid("debtor_id", "is not a UUID"))?;
    Ok((tenant_id, debtor_id))
}

impl Channels {
    /// `NOT_FOUND` for a debtor this tenant does not have (another tenant's, or none): asked
    /// only when a list came back empty, so a debtor's own empty history still reads as empty
    /// and nobody learns whether another tenant's id exists.
    async fn known_debtor(&self, tenant_id: &str, debtor_id: Uuid) -> Result<(), ChannelsError> {
        store::debtor_place(&self.pool, tenant_id, debtor_id)
            .await?
            .map(|_| ())
            .ok_or_else(|| Refusal::not_found(format!("debtor {debtor_id}")).into())
    }
}

/// The scope each method needs; the guard refuses the rest (see `recobro_common::identity`).
pub fn method_scopes() -> MethodScopes {
    MethodScopes::new(
        "recobro.v1.ChannelsService",
        &[
            ("ListDeliveries", Scope::Read),
            ("ExplainContacts", Scope::Read),
            ("GetContactBudget", Scope::Read),
            ("SendMessage", Scope::Send),
            ("GetConversation", Scope::Read),
            ("ListTemplates", Scope::Read),
            ("PutTemplate", Scope::Templates),
            ("DeleteTemplate", Scope::Templates),
        ],
    )
}

#[tonic::async_trait]
impl ChannelsService for Channels {
    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let (tenant_id, debtor_id) = tenant_and_debtor(&caller, &request.tenant_id, &request.debtor_id)?;
        let query = format!("ListDeliveries|{tenant_id}|{debtor_id}");
        let page = PageRequest::parse(request.page_size, &request.page_token, &query)
            .map_err(ChannelsError::from)?;
        // The key is (time in microseconds, reminder id).
        let after = page.after_key(parse_time_id_key).map_err(ChannelsError::from)?;
        let deliveries = store::deliveries(&self.pool, &tenant_id, debtor_id, after, page.limit())
            .await
            .map_err(ChannelsError::from)?;
        if deliveries.is_empty() {
            self.known_debtor(&tenant_id, debtor_id).await?;
        }
        let (deliveries, next_page_token) = page.page(deliveries, &query, |delivery| {
            time_id_key(delivery.at, delivery.reminder_id)
        });
        Ok(Response::new(ListDeliveriesResponse {
            next_page_token,
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
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let (tenant_id, debtor_id) = tenant_and_debtor(&caller, &request.tenant_id, &request.debtor_id)?;
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
        if rows.is_empty() {
            self.known_debtor(&tenant_id, debtor_id).await?;
        }
        let mut decisions = Vec::with_capacity(rows.len());
        for row in rows {
            decisions.push(ContactDecision {
                reminder_id: row.reminder_id.to_string(),
                channel: pb::Channel::from(store::stored_channel(&row.channel).map_err(ChannelsError::from)?)
                    as i32,
                verdict: store::stored_verdict(&row.verdict).map_err(ChannelsError::from)? as i32,
                not_before: row.not_before.map(time::timestamp),
                rule: row.rule,
                pack: row.pack,
                reason: row.reason,
                decided_at: Some(time::timestamp(row.decided_at)),
                covered_reminder_ids: row.covered.iter().map(Uuid::to_string).collect(),
            });
        }
        Ok(Response::new(ExplainContactsResponse { decisions }))
    }

    async fn get_contact_budget(
        &self,
        request: Request<GetContactBudgetRequest>,
    ) -> Result<Response<GetContactBudgetResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let (tenant_id, debtor_id) = tenant_and_debtor(&caller, &request.tenant_id, &request.debtor_id)?;
        let (zone, country, region) = store::debtor_place(&self.pool, &tenant_id, debtor_id)
            .await
            .map_err(ChannelsError::from)?
            .ok_or_else(|| ChannelsError::from(Refusal::not_found(format!("debtor {debtor_id}"))))?;
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
        let rules = self
            .rulebook
            .for_debtor(&tenant_id, &country, Some(region.as_str()));
        let usage = self
            .dispatcher
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
                    channels: match &cap.channels {
                        Some(channels) => channels.iter().map(|c| c.as_str().to_string()).collect(),
                        None => vec!["all".into()],
                    },
                    used,
                    max: i64::from(cap.max),
                })
                .collect(),
            packs: rules.packs().iter().map(|p| p.label()).collect(),
        }))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let key = request.idempotency_key.trim();
        if key.is_empty() {
            return Err(invalid(
                "idempotency_key",
                "is required, so that a retried call sends once",
            )
            .into());
        }
        let debtor_id =
            Uuid::parse_str(request.debtor_id.trim()).map_err(|_| invalid("debtor_id", "is not a UUID"))?;
        let channel = match pb::Channel::try_from(request.channel) {
            Ok(pb::Channel::Unspecified) | Err(_) => {
                return Err(invalid("channel", "must be EMAIL, SMS or WHATSAPP").into());
            }
            Ok(channel) => channel,
        };
        let point_id = match request.point_id.trim() {
            "" => None,
            id => Some(Uuid::parse_str(id).map_err(|_| invalid("point_id", "is not a UUID"))?),
        };
        let contact_role = match pb::ContactRole::try_from(request.contact_role) {
            Ok(role) => crate::recipient::role_name(role).unwrap_or_default(),
            Err(_) => return Err(invalid("contact_role", "is not a known contact role").into()),
        };
        if point_id.is_some() && !contact_role.is_empty() {
            return Err(invalid("point_id", "goes without a contact_role: one or the other").into());
        }
        // The debtor as the ledger has them, once the view has caught up with accounts.
        self.dispatcher
            .ledger
            .caught_up()
            .await
            .map_err(|failure| Status::unavailable(failure.to_string()))?;
        let record = store::debtors_among(&self.pool, &[(tenant_id.clone(), debtor_id)])
            .await
            .map_err(ChannelsError::from)?
            .remove(&(tenant_id.clone(), debtor_id))
            .ok_or_else(|| ChannelsError::from(Refusal::not_found(format!("debtor {debtor_id}"))))?;
        let debtor = record.debtor.unwrap_or_default();
        let invoice = match request.invoice_id.trim() {
            "" => pb::Invoice::default(),
            id => {
                let invoice_id = Uuid::parse_str(id).map_err(|_| invalid("invoice_id", "is not a UUID"))?;
                match store::invoice(&self.pool, &tenant_id, invoice_id)
                    .await
                    .map_err(ChannelsError::from)?
                {
                    Some((owner, invoice)) if owner == debtor_id => invoice,
                    _ => {
                        return Err(ChannelsError::from(Refusal::not_found(format!(
                            "invoice {invoice_id} of debtor {debtor_id}"
                        )))
                        .into());
                    }
                }
            }
        };
        match (request.template_id.is_empty(), request.text.trim().is_empty()) {
            (true, true) => return Err(invalid("template_id", "or text is required").into()),
            (false, false) => {
                return Err(invalid("text", "goes without a template_id: one or the other").into());
            }
            (true, false) if channel == pb::Channel::Email => {
                return Err(invalid(
                    "text",
                    "free-form text goes by SMS or WhatsApp; email uses templates",
                )
                .into());
            }
            // An SMS body ends at 1,600 characters; the opt-out line needs its room.
            (true, false) if request.text.chars().count() > 1400 => {
                return Err(invalid("text", "is longer than 1400 characters").into());
            }
            (true, false) => {}
            (false, true) if crate::templates::statement::form_of(&request.template_id).is_some() => {
                return Err(invalid(
                    "template_id",
                    "is a statement template: a statement covers several invoices and is not a one-off message",
                )
                .into());
            }
            (false, true) => {
                // Found the way delivery looks it up: the tenant's wording in the debtor's
                // language, the shipped one, or the tenant's Spanish.
                let own =
                    store::wordings_among(&self.pool, &[(tenant_id.clone(), request.template_id.clone())])
                        .await
                        .map_err(ChannelsError::from)?;
                match crate::templates::invoice_variable(
                    &tenant_id,
                    &request.template_id,
                    &debtor.locale,
                    &own,
                ) {
                    None => {
                        return Err(invalid(
                            "template_id",
                            "is not a known template in the debtor's language or Spanish (see ListTemplates)",
                        )
                        .into());
                    }
                    Some(Some(variable)) if invoice.invoice_id.is_empty() => {
                        return Err(invalid(
                            "invoice_id",
                            &format!(
                                "is required: template {:?} says the invoice's {variable}",
                                request.template_id
                            ),
                        )
                        .into());
                    }
                    Some(_) => {}
                }
            }
        }
        // The caller's key, scoped by tenant, is the reminder id: retries find the same one.
        let reminder_id = Uuid::new_v5(&debtor_id, format!("one-off/{tenant_id}/{key}").as_bytes());
        let event = pb::ReminderDue {
            reminder_id: reminder_id.to_string(),
            tenant_id: tenant_id.clone(),
            debtor_id: debtor_id.to_string(),
            invoice_id: invoice.invoice_id.clone(),
            step: "one-off".into(),
            channel: request.channel,
            template_id: request.template_id,
            text: request.text.trim().to_string(),
            due_at: Some(time::timestamp(Utc::now())),
            invoice: Some(invoice),
            contact_role: contact_role.to_string(),
            point_id: point_id.map(|id| id.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        let reminder = crate::delivery::parse(event).map_err(Status::internal)?;
        // In a task of its own: a caller who hangs up must not cut a provider call short (it
        // would be recorded as of unknown outcome).
        let dispatcher = self.dispatcher.clone();
        tokio::spawn(async move {
            dispatcher
                .deliver_all(std::slice::from_ref(&reminder), Utc::now())
                .await
        })
        .await
        .map_err(|err| Status::internal(format!("delivery stopped: {err}")))?
        .map_err(|failure| Status::unavailable(failure.to_string()))?;
        let record = match store::delivery(&self.pool, reminder_id)
            .await
            .map_err(ChannelsError::from)?
        {
            Some(delivery) => delivery.record(),
            None => {
                let decision = store::last_decision(&self.pool, reminder_id)
                    .await
                    .map_err(ChannelsError::from)?
                    .ok_or_else(|| Status::internal("the message was neither recorded nor decided"))?;
                pb::DeliveryRecord {
                    reminder_id: reminder_id.to_string(),
                    tenant_id,
                    debtor_id: debtor_id.to_string(),
                    channel: pb::Channel::from(
                        store::stored_channel(&decision.channel).map_err(ChannelsError::from)?,
                    ) as i32,
                    status: pb::DeliveryStatus::Deferred as i32,
                    reason: decision.reason,
                    not_before: decision.not_before.map(time::timestamp),
                    rule: decision.rule,
                    pack: decision.pack,
                    at: Some(time::timestamp(decision.decided_at)),
                    ..Default::default()
                }
            }
        };
        Ok(Response::new(pb::SendMessageResponse {
            reminder_id: reminder_id.to_string(),
            record: Some(record),
        }))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::GetConversationResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let (tenant_id, debtor_id) = tenant_and_debtor(&caller, &request.tenant_id, &request.debtor_id)?;
        let query = format!("GetConversation|{tenant_id}|{debtor_id}");
        let page = PageRequest::parse(request.page_size, &request.page_token, &query)
            .map_err(ChannelsError::from)?;
        // The key is (time in microseconds, inbound, delivery or response id).
        let after = page.after_key(conversation_key).map_err(ChannelsError::from)?;
        let rows = store::conversation(&self.pool, &tenant_id, debtor_id, after.as_ref(), page.limit())
            .await
            .map_err(ChannelsError::from)?;
        if rows.is_empty() {
            self.known_debtor(&tenant_id, debtor_id).await?;
        }
        let (rows, next_page_token) = page.page(rows, &query, |row| {
            format!("{} {} {}", row.at.timestamp_micros(), row.inbound, row.id)
        });
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let channel = store::stored_channel(&row.channel).map_err(ChannelsError::from)?;
            entries.push(pb::ConversationEntry {
                at: Some(time::timestamp(row.at)),
                channel: pb::Channel::from(channel) as i32,
                inbound: row.inbound,
                text: row.text,
                status: row.status,
                reminder_id: row.reminder_id.map(|id| id.to_string()).unwrap_or_default(),
            });
        }
        Ok(Response::new(pb::GetConversationResponse {
            entries,
            next_page_token,
        }))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let query = format!("ListTemplates|{tenant_id}");
        let page = PageRequest::parse(request.page_size, &request.page_token, &query)
            .map_err(ChannelsError::from)?;
        let own = store::tenant_wordings(&self.pool, &tenant_id)
            .await
            .map_err(ChannelsError::from)?;
        // The tenant's own wordings, then the shipped ones it has not reworded.
        let mut templates: Vec<pb::Template> = own
            .iter()
            .map(|((tenant_id, template_id, language), wording)| pb::Template {
                template_id: template_id.clone(),
                language: language.clone(),
                subject: wording.subject.clone(),
                body: wording.body.clone(),
                tenant_id: tenant_id.clone(),
                version: wording.version,
            })
            .collect();
        templates.extend(
            crate::templates::all()
                .into_iter()
                .filter(|(template_id, language, _, _)| {
                    !own.contains_key(&(tenant_id.clone(), template_id.to_string(), language.to_string()))
                })
                .map(|(template_id, language, subject, body)| pb::Template {
                    template_id: template_id.into(),
                    language: language.into(),
                    subject: subject.into(),
                    body: body.into(),
                    ..Default::default()
                }),
        );
        // By template id, then Spanish, Portuguese, English: the control character sorts before
        // any character of an id, so "a" comes before "ab" as it would alone.
        let order = |language: &str| ["es", "pt", "en"].iter().position(|l| *l == language);
        let (templates, next_page_token) = page.page_of(templates, &query, |t| {
            format!("{}\u{1f}{}", t.template_id, order(&t.language).unwrap_or(9))
        });
        Ok(Response::new(pb::ListTemplatesResponse {
            templates,
            next_page_token,
        }))
    }

    async fn put_template(
        &self,
        request: Request<pb::PutTemplateRequest>,
    ) -> Result<Response<pb::Template>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let tenant_id = tenant_id.as_str();
        crate::templates::check_wording(
            &request.template_id,
            &request.language,
            &request.subject,
            &request.body,
        )
        .map_err(|(field, reason)| invalid(field, &reason))?;
        let version = store::put_template(
            &self.pool,
            tenant_id,
            &request.template_id,
            &request.language,
            &request.subject,
            &request.body,
        )
        .await
        .map_err(ChannelsError::from)?;
        tracing::info!(tenant_id, template_id = %request.template_id, language = %request.language, version, "template reworded");
        Ok(Response::new(pb::Template {
            template_id: request.template_id,
            language: request.language,
            subject: request.subject,
            body: request.body,
            tenant_id: tenant_id.to_string(),
            version,
        }))
    }

    async fn delete_template(
        &self,
        request: Request<pb::DeleteTemplateRequest>,
    ) -> Result<Response<pb::DeleteTemplateResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        crate::templates::check_id_and_language(&request.template_id, &request.language)
            .map_err(|(field, reason)| invalid(field, &reason))?;
        let deleted = store::delete_template(&self.pool, &tenant_id, &request.template_id, &request.language)
            .await
            .map_err(ChannelsError::from)?;
        if !deleted {
            return Err(ChannelsError::from(Refusal::not_found(format!(
                "the tenant's wording of {:?} in {:?}",
                request.template_id, request.language
            )))
            .into());
        }
        Ok(Response::new(pb::DeleteTemplateResponse { deleted }))
    }
}

/// The (time, reminder id) a page of deliveries starts after, from its token's key.
fn conversation_key(key: &str) -> Option<store::ConversationKey> {
    let mut parts = key.splitn(3, ' ');
    let (micros, inbound, id) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        inbound.parse().ok()?,
        id.parse().ok()?,
    ))
}
