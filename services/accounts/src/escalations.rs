//! A ladder's escalations (`collections.escalations.v1`), once each: a `collector` step queues a
//! work item for a person; an agency, credit bureau or legal step is recorded as a hand-off
//! whose state the creditor follows (`ListHandoffs`, `UpdateHandoff`). An escalation that does
//! not decode, names a kind this version does not know, or a debtor or invoice the tenant does
//! not have is parked with the reason.

use chrono::Utc;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::kafka::{BatchHandler, Failure};
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain;
use crate::error::AccountsError;
use crate::listening::WorkSla;
use crate::states::{EscalationKind, WorkKind};
use crate::store::{self, NewWorkItem};

pub struct EscalationIngest {
    pub pool: PgPool,
    pub sla: WorkSla,
}

/// An escalation that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub escalation_id: String,
    pub tenant_id: String,
    pub debtor_id: Uuid,
    pub invoice_id: Uuid,
    pub kind: EscalationKind,
    pub step: String,
}

pub fn parse(payload: &[u8]) -> Result<Escalation, String> {
    let escalation =
        pb::Escalation::decode(payload).map_err(|err| format!("not a recobro.v1.Escalation: {err}"))?;
    let refused = |err: AccountsError| err.to_string();
    let escalation_id = escalation.escalation_id.trim();
    if escalation_id.is_empty() {
        return Err("escalation_id is required: each escalation is recorded once".into());
    }
    Ok(Escalation {
        escalation_id: escalation_id.to_string(),
        tenant_id: domain::tenant("tenant_id", &escalation.tenant_id).map_err(refused)?,
        debtor_id: domain::uuid("debtor_id", &escalation.debtor_id).map_err(refused)?,
        invoice_id: domain::uuid("invoice_id", &escalation.invoice_id).map_err(refused)?,
        kind: escalation
            .kind
            .trim()
            .parse()
            .map_err(|err| format!("kind: {err}"))?,
        step: escalation.step.trim().to_string(),
    })
}

impl BatchHandler for EscalationIngest {
    async fn handle_batch(&self, messages: &[BorrowedMessage<'_>]) -> Result<Vec<(usize, String)>, Failure> {
        let mut rejected = Vec::new();
        let mut escalations = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            match parse(message.payload().unwrap_or_default()) {
                Ok(escalation) => escalations.push((index, escalation)),
                Err(reason) => rejected.push((index, reason)),
            }
        }
        rejected.extend(self.apply(&escalations).await.map_err(|err| err.failure())?);
        rejected.sort_by_key(|(index, _)| *index);
        Ok(rejected)
    }
}

impl EscalationIngest {
    /// Records a batch in one transaction; returns those refused, by index, with why.
    #[tracing::instrument(skip_all, fields(escalations = escalations.len()))]
    pub async fn apply(
        &self,
        escalations: &[(usize, Escalation)],
    ) -> Result<Vec<(usize, String)>, AccountsError> {
        let mut refused = Vec::new();
        if escalations.is_empty() {
            return Ok(refused);
        }
        let mut tx = self.pool.begin().await?;
        for (index, escalation) in escalations {
            let Escalation {
                escalation_id,
                tenant_id,
                debtor_id,
                invoice_id,
                kind,
                step,
            } = escalation;
            let owner = store::debtor_of_invoice(&mut tx, *invoice_id).await?;
            if owner.as_ref().map(|(tenant, debtor)| (tenant.as_str(), *debtor))
                != Some((tenant_id.as_str(), *debtor_id))
            {
                refused.push((
                    *index,
                    format!(
                        "invoice {invoice_id} is not an invoice of debtor {debtor_id} of tenant {tenant_id}"
                    ),
                ));
                continue;
            }
            let new = match kind.target() {
                None => {
                    let now = Utc::now();
                    store::insert_work_item(
                        &mut tx,
                        &NewWorkItem {
                            tenant_id,
                            kind: WorkKind::Collector,
                            debtor_id: *debtor_id,
                            invoice_ids: &[*invoice_id],
                            response_id: None,
                            promise_id: None,
                            escalation_id: Some(escalation_id),
                            reply_text: "",
                            reason: &format!("the ladder's {step} step hands the case to a collector"),
                            created_at: now,
                            due_at: self.sla.due(WorkKind::Collector, now),
                        },
                    )
                    .await?
                    .is_some()
                }
                Some(_) => {
                    store::insert_handoff(
                        &mut tx,
                        tenant_id,
                        escalation_id,
                        *debtor_id,
                        *invoice_id,
                        *kind,
                        step,
                    )
                    .await?
                }
            };
            tracing::info!(%tenant_id, %debtor_id, %invoice_id, kind = kind.as_str(), new, "escalation recorded");
        }
        tx.commit().await?;
        Ok(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escalation() -> pb::Escalation {
        pb::Escalation {
            escalation_id: Uuid::from_u128(9).to_string(),
            tenant_id: "acme".into(),
            debtor_id: Uuid::from_u128(1).to_string(),
            invoice_id: Uuid::from_u128(2).to_string(),
            kind: "legal".into(),
            step: "legal-60".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_escalation_is_read_with_its_kind() {
        let parsed = parse(&escalation().encode_to_vec()).expect("valid");
        assert_eq!(parsed.kind, EscalationKind::Legal);
        assert_eq!(parsed.kind.target(), Some(pb::HandoffTarget::Legal));
        assert_eq!(parsed.step, "legal-60");
        let mut collector = escalation();
        collector.kind = "collector".into();
        assert_eq!(
            parse(&collector.encode_to_vec()).expect("valid").kind.target(),
            None
        );
    }

    #[test]
    fn what_cannot_be_recorded_is_refused_naming_the_field() {
        type Breaker = fn(&mut pb::Escalation);
        let cases: [(&str, Breaker); 5] = [
            ("kind", |e| e.kind = "collections agency".into()),
            ("escalation_id", |e| e.escalation_id.clear()),
            ("debtor_id", |e| e.debtor_id = "D-1".into()),
            ("invoice_id", |e| e.invoice_id.clear()),
            ("tenant_id", |e| e.tenant_id = "a b".into()),
        ];
        for (field, break_it) in cases {
            let mut escalation = escalation();
            break_it(&mut escalation);
            let reason = parse(&escalation.encode_to_vec()).expect_err(field);
            assert!(reason.starts_with(field), "{field}: {reason}");
        }
        assert!(
            parse(b"\xff\xff")
                .expect_err("garbage")
                .starts_with("not a recobro.v1.Escalation")
        );
    }
}
