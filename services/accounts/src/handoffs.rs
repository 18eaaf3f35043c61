//! Where each hand-off stands: listed for the creditor, and moved by a person when the agency,
//! bureau or legal team accepts or returns the case. Sent → accepted → returned, or sent →
//! returned; asking again for the state it is in returns it as it is.

use recobro_common::grpc::Refusal;
use recobro_common::page::{PageRequest, parse_time_id_key, time_id_key};
use recobro_common::time;
use recobro_proto::v1 as pb;
use sqlx::PgPool;

use crate::domain;
use crate::error::AccountsError;
use crate::states::HandoffState;
use crate::store::{self, HandoffRow};
use crate::work_queue;

pub async fn list(
    pool: &PgPool,
    tenant_id: &str,
    request: &pb::ListHandoffsRequest,
) -> Result<pb::ListHandoffsResponse, AccountsError> {
    let state = match request.state() {
        pb::HandoffState::Unspecified => None,
        state => Some(
            HandoffState::try_from(state)
                .map_err(|()| Refusal::invalid("state", "is not a state this version knows"))?,
        ),
    };
    let query = format!("ListHandoffs|{tenant_id}|{:?}", state.map(HandoffState::as_str));
    let page = PageRequest::parse(request.page_size, &request.page_token, &query)?;
    let after = page.after_key(parse_time_id_key)?;
    let mut tx = store::snapshot(pool).await?;
    let rows = store::handoffs(&mut tx, tenant_id, state, after, page.limit()).await?;
    tx.commit().await?;
    let (rows, next_page_token) = page.page(rows, &query, |row| time_id_key(row.created_at, row.handoff_id));
    Ok(pb::ListHandoffsResponse {
        handoffs: rows.iter().map(to_proto).collect(),
        next_page_token,
    })
}

pub async fn update(
    pool: &PgPool,
    tenant_id: &str,
    request: &pb::UpdateHandoffRequest,
    who: &str,
) -> Result<pb::Handoff, AccountsError> {
    let handoff_id = domain::uuid("handoff_id", &request.handoff_id)?;
    let wanted = match request.state() {
        pb::HandoffState::Accepted => HandoffState::Accepted,
        pb::HandoffState::Returned => HandoffState::Returned,
        _ => return Err(Refusal::invalid("state", "must be ACCEPTED or RETURNED").into()),
    };
    let note = work_queue::note_text("note", &request.note)?.unwrap_or_default();
    let mut tx = pool.begin().await?;
    let current = store::lock_handoff(&mut tx, tenant_id, handoff_id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("hand-off {handoff_id}")))?;
    match (current.state, wanted) {
        (now, wanted) if now == wanted => {}
        (HandoffState::Sent, _) | (HandoffState::Accepted, HandoffState::Returned) => {
            store::set_handoff_state(&mut tx, handoff_id, wanted, who, &note).await?;
            tracing::info!(%tenant_id, %handoff_id, state = wanted.as_str(), "hand-off moved");
        }
        (now, wanted) => {
            return Err(Refusal::FailedPrecondition(format!(
                "hand-off {handoff_id} is {}: it cannot become {}",
                now.as_str(),
                wanted.as_str()
            ))
            .into());
        }
    }
    let updated = store::lock_handoff(&mut tx, tenant_id, handoff_id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("hand-off {handoff_id}")))?;
    tx.commit().await?;
    Ok(to_proto(&updated))
}

fn to_proto(row: &HandoffRow) -> pb::Handoff {
    pb::Handoff {
        handoff_id: row.handoff_id.to_string(),
        tenant_id: row.tenant_id.clone(),
        escalation_id: row.escalation_id.clone(),
        debtor_id: row.debtor_id.to_string(),
        invoice_id: row.invoice_id.to_string(),
        target: row.target.target().unwrap_or(pb::HandoffTarget::Unspecified) as i32,
        state: pb::HandoffState::from(row.state) as i32,
        step: row.step.clone(),
        created_at: Some(time::timestamp(row.created_at)),
        updated_at: Some(time::timestamp(row.updated_at)),
        updated_by: row.updated_by.clone(),
        note: row.note.clone(),
    }
}
