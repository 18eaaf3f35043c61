//! Opt-outs that channels received (a STOP or BAJA, a one-click unsubscribe, a bounce, a
//! complaint), read from `channel.responses.v1`: each withdraws consent for the contact point it
//! concerns, once per response id. A consent recorded after the opt-out was received stands
//! (the debtor granted it again). The debtor's record and open invoices are then published
//! again, so that channels and scheduling follow.
//!
//! Only channels may write that topic (broker ACL), so a response's tenant is trusted; its
//! point must still be that tenant's. A response that does not decode or names another
//! tenant's point is parked with the reason. Every other intent is a reply `listening` acts on.
//!
//! An opt-out channels read from a weak signal (`opt_out_unsure`) is honoured the same way, and
//! also queues an UNSURE_OPT_OUT work item: a person confirms it with the debtor, and grants
//! consent again (`SetConsent`) if the debtor did not mean it.

use std::collections::HashMap;

use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::kafka::{self, BatchHandler, Failure};
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain;
use crate::error::AccountsError;
use crate::events::{self, DebtorChange};
use crate::listening::{self, Applied, ListeningSettings, Reply};
use crate::states::WorkKind;
use crate::store::{self, NewWorkItem};

/// Where an opt-out came from when channels does not say.
const DEFAULT_SOURCE: &str = "reply";

pub struct OptOutIngest {
    pub pool: PgPool,
    pub account_events_topic: String,
    /// How soon a person should confirm an opt-out read from a weak signal.
    pub unsure_sla: Duration,
}

/// The consumer of `channel.responses.v1`: opt-outs withdraw consent, replies act on the case.
pub struct ResponseIngest {
    pub opt_outs: OptOutIngest,
    pub listening: ListeningSettings,
}

/// An opt-out that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct OptOut {
    pub response_id: String,
    pub tenant_id: String,
    /// The debtor channels says it concerns, if it says.
    pub debtor_id: Option<Uuid>,
    pub point_id: Uuid,
    pub source: String,
    pub received_at: DateTime<Utc>,
    /// Read from a weak signal: a person confirms it.
    pub unsure: bool,
    /// What the debtor wrote, for that person (empty for a bounce or an unsubscribe).
    pub text: String,
}

/// What a response asks of the ledger: an opt-out of one point, or nothing (`None`).
pub fn parse(payload: &[u8]) -> Result<Option<OptOut>, String> {
    let response = pb::DebtorResponse::decode(payload)
        .map_err(|err| format!("not a recobro.v1.DebtorResponse: {err}"))?;
    // An opt-out naming no point (a STOP to a sender number) is channels' alone to keep.
    if response.intent() != pb::ResponseIntent::OptOut || response.point_id.trim().is_empty() {
        return Ok(None);
    }
    let refused = |err: AccountsError| err.to_string();
    let response_id = response.response_id.trim();
    if response_id.is_empty() {
        return Err("response_id is required: an opt-out is applied once per response".into());
    }
    let tenant_id = domain::tenant("tenant_id", &response.tenant_id).map_err(refused)?;
    let point_id = domain::uuid("point_id", &response.point_id).map_err(refused)?;
    let debtor_id = if response.debtor_id.trim().is_empty() {
        None
    } else {
        Some(domain::uuid("debtor_id", &response.debtor_id).map_err(refused)?)
    };
    let received_at = response
        .received_at
        .as_ref()
        .and_then(recobro_common::time::from_timestamp)
        .ok_or("received_at is required: it decides whether a later consent stands")?;
    let source = match response.source.trim() {
        "" => DEFAULT_SOURCE,
        source => source,
    };
    Ok(Some(OptOut {
        response_id: response_id.to_string(),
        tenant_id,
        debtor_id,
        point_id,
        source: source.to_string(),
        received_at,
        unsure: response.opt_out_unsure,
        text: response.text,
    }))
}

impl BatchHandler for ResponseIngest {
    async fn handle_batch(&self, messages: &[BorrowedMessage<'_>]) -> Result<Vec<(usize, String)>, Failure> {
        let mut rejected = Vec::new();
        let mut opt_outs = Vec::new();
        let mut replies = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            let payload = message.payload().unwrap_or_default();
            match parse(payload) {
                Ok(Some(opt_out)) => opt_outs.push((index, opt_out, kafka::message_traceparent(message))),
                Ok(None) => match listening::parse(payload) {
                    Ok(Some(reply)) => replies.push((index, reply, kafka::message_traceparent(message))),
                    Ok(None) => {}
                    Err(reason) => rejected.push((index, reason)),
                },
                Err(reason) => rejected.push((index, reason)),
            }
        }
        let refused = self
            .opt_outs
            .apply(&opt_outs)
            .await
            .map_err(|err| err.failure())?;
        rejected.extend(refused);
        let refused = self.act_on(&replies).await.map_err(|err| err.failure())?;
        rejected.extend(refused);
        rejected.sort_by_key(|(index, _)| *index);
        Ok(rejected)
    }
}

impl ResponseIngest {
    /// Acts on a batch of replies in one transaction; returns those refused, by index, with why.
    #[tracing::instrument(skip_all, fields(replies = replies.len()))]
    pub async fn act_on(
        &self,
        replies: &[(usize, Reply, Option<String>)],
    ) -> Result<Vec<(usize, String)>, AccountsError> {
        let mut refused = Vec::new();
        if replies.is_empty() {
            return Ok(refused);
        }
        let mut tx = self.opt_outs.pool.begin().await?;
        let mut changed = Vec::new();
        for (index, reply, trace) in replies {
            let mut applied = Applied::default();
            match listening::apply(&mut tx, &self.listening, reply, &mut applied).await? {
                Ok(()) => changed.extend(
                    applied
                        .changed
                        .into_iter()
                        .map(|(invoice_id, why)| (invoice_id, why, trace.clone())),
                ),
                Err(reason) => refused.push((*index, reason)),
            }
        }
        listening::publish(&mut tx, changed, &self.opt_outs.account_events_topic).await?;
        tx.commit().await?;
        Ok(refused)
    }
}

impl OptOutIngest {
    /// Applies a batch of opt-outs (by their index in the batch, with their trace) in one
    /// transaction; returns those refused, by index, with why.
    #[tracing::instrument(skip_all, fields(opt_outs = opt_outs.len()))]
    pub async fn apply(
        &self,
        opt_outs: &[(usize, OptOut, Option<String>)],
    ) -> Result<Vec<(usize, String)>, AccountsError> {
        let mut refused = Vec::new();
        if opt_outs.is_empty() {
            return Ok(refused);
        }
        let mut tx = self.pool.begin().await?;
        // Each debtor changed, with the trace of the last opt-out that changed it.
        let mut changed: HashMap<Uuid, Option<String>> = HashMap::new();
        for (index, opt_out, trace) in opt_outs {
            let OptOut {
                response_id,
                tenant_id,
                point_id,
                ..
            } = opt_out;
            let Some(debtor_id) = store::lock_debtor_of_point(&mut tx, tenant_id, *point_id).await? else {
                refused.push((
                    *index,
                    format!("point {point_id} is not a contact point of tenant {tenant_id}"),
                ));
                continue;
            };
            if let Some(named) = opt_out.debtor_id
                && named != debtor_id
            {
                refused.push((
                    *index,
                    format!("point {point_id} is not a contact point of debtor {named}"),
                ));
                continue;
            }
            if !store::first_time_response(&mut tx, tenant_id, response_id).await? {
                continue;
            }
            let withdrawn = store::withdraw_as_of(
                &mut tx,
                tenant_id,
                *point_id,
                &opt_out.source,
                opt_out.received_at,
            )
            .await?;
            tracing::info!(%tenant_id, %debtor_id, %point_id, %response_id, withdrawn, unsure = opt_out.unsure, "opt-out applied");
            if opt_out.unsure && withdrawn {
                let now = Utc::now();
                store::insert_work_item(
                    &mut tx,
                    &NewWorkItem {
                        tenant_id,
                        kind: WorkKind::UnsureOptOut,
                        debtor_id,
                        invoice_ids: &[],
                        response_id: Some(response_id),
                        promise_id: None,
                        escalation_id: None,
                        reply_text: &opt_out.text,
                        reason: &format!("a reply read as an opt-out from a weak signal: consent for point {point_id} is withdrawn; confirm it with the debtor and grant it again (SetConsent) only if they did not mean it"),
                        created_at: now,
                        due_at: listening::due_after(now, self.unsure_sla),
                    },
                )
                .await?;
            }
            if withdrawn {
                changed.insert(debtor_id, trace.clone());
            }
        }
        let mut debtors: Vec<(Uuid, Option<String>)> = changed.into_iter().collect();
        debtors.sort_by_key(|(id, _)| *id);
        for (debtor_id, trace) in debtors {
            events::publish_debtor_and_open_invoices(
                &mut tx,
                debtor_id,
                DebtorChange::OptOut,
                DebtorChange::OptOut.as_str(),
                &self.account_events_topic,
                trace,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(refused)
    }
}

#[cfg(test)]
mod tests {
    use recobro_common::time::timestamp;

    use super::*;

    fn opt_out() -> pb::DebtorResponse {
        pb::DebtorResponse {
            response_id: "resp-1".into(),
            tenant_id: "acme".into(),
            debtor_id: Uuid::from_u128(1).to_string(),
            channel: pb::Channel::Sms as i32,
            intent: pb::ResponseIntent::OptOut as i32,
            received_at: Some(timestamp(
                DateTime::from_timestamp(1_790_000_000, 0).expect("time"),
            )),
            point_id: Uuid::from_u128(2).to_string(),
            source: "sendgrid bounce".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_opt_out_of_a_point_is_read_with_its_source_and_time() {
        let parsed = parse(&opt_out().encode_to_vec())
            .expect("valid")
            .expect("an opt-out");
        assert_eq!(parsed.tenant_id, "acme");
        assert_eq!(parsed.point_id, Uuid::from_u128(2));
        assert_eq!(parsed.debtor_id, Some(Uuid::from_u128(1)));
        assert_eq!(parsed.source, "sendgrid bounce");
        assert_eq!(parsed.received_at.timestamp(), 1_790_000_000);
    }

    #[test]
    fn a_reply_that_does_not_say_its_source_is_a_reply() {
        let mut response = opt_out();
        response.source = " ".into();
        response.debtor_id.clear();
        let parsed = parse(&response.encode_to_vec())
            .expect("valid")
            .expect("an opt-out");
        assert_eq!(parsed.source, "reply");
        assert_eq!(parsed.debtor_id, None);
    }

    #[test]
    fn other_intents_and_opt_outs_without_a_point_are_not_the_ledgers() {
        for intent in [
            pb::ResponseIntent::AlreadyPaid,
            pb::ResponseIntent::PromiseToPay,
            pb::ResponseIntent::Dispute,
            pb::ResponseIntent::Other,
            pb::ResponseIntent::Unspecified,
        ] {
            let mut response = opt_out();
            response.intent = intent as i32;
            assert_eq!(parse(&response.encode_to_vec()), Ok(None), "{intent:?}");
        }
        let mut response = opt_out();
        response.point_id.clear();
        assert_eq!(parse(&response.encode_to_vec()), Ok(None));
    }

    #[test]
    fn what_cannot_be_applied_is_refused_with_why() {
        assert!(
            parse(b"\xff\xff\xff")
                .expect_err("garbage")
                .starts_with("not a recobro.v1.DebtorResponse")
        );
        type Breaker = fn(&mut pb::DebtorResponse);
        let cases: [(&str, Breaker); 5] = [
            ("point_id", |r| r.point_id = "+573001234567".into()),
            ("debtor_id", |r| r.debtor_id = "D-1".into()),
            ("tenant_id", |r| r.tenant_id = "a b".into()),
            ("response_id", |r| r.response_id.clear()),
            ("received_at", |r| r.received_at = None),
        ];
        for (field, break_it) in cases {
            let mut response = opt_out();
            break_it(&mut response);
            let reason = parse(&response.encode_to_vec()).expect_err(field);
            assert!(reason.starts_with(field), "{field}: {reason}");
            assert!(
                !reason.contains("+573001234567"),
                "no address in a reason: {reason}"
            );
        }
    }
}
