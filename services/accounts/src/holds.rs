//! Legal holds (`SetLegalHold`): while one stands, nobody contacts the debtor out of court
//! (scheduling holds every reminder, channels sends nothing). Placing a hold where one stands
//! returns the standing one, and lifting where none stands changes nothing; a real change
//! publishes the debtor's record and its open invoices again, in the same transaction.

use recobro_common::grpc::Refusal;
use recobro_proto::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, LegalHold};
use crate::error::AccountsError;
use crate::events::{self, DebtorChange};
use crate::store;

/// The longest reason or source a hold keeps, in characters.
const MAX_TEXT: usize = 200;

/// A `SetLegalHoldRequest` that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRequest {
    pub debtor_id: Uuid,
    pub action: HoldAction,
    /// Why, and on whose word (required to place a hold, optional to lift one).
    pub reason: String,
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldAction {
    Place,
    Lift,
}

/// What a request did: the log says which, and only a change is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Placed,
    AlreadyStanding,
    Lifted,
    NoneStanding,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Placed => "placed",
            Outcome::AlreadyStanding => "already standing",
            Outcome::Lifted => "lifted",
            Outcome::NoneStanding => "none standing",
        }
    }
}

fn text(field: &str, value: &str, required: bool) -> Result<String, AccountsError> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(Refusal::invalid(field, "is required to place a legal hold").into());
    }
    if value.chars().count() > MAX_TEXT {
        return Err(Refusal::invalid(field, format!("is longer than {MAX_TEXT} characters")).into());
    }
    Ok(value.to_string())
}

impl HoldRequest {
    pub fn parse(request: &pb::SetLegalHoldRequest) -> Result<HoldRequest, AccountsError> {
        let debtor_id = domain::uuid("debtor_id", &request.debtor_id)?;
        let action = if request.hold {
            HoldAction::Place
        } else {
            HoldAction::Lift
        };
        let placing = action == HoldAction::Place;
        Ok(HoldRequest {
            debtor_id,
            action,
            reason: text("reason", &request.reason, placing)?,
            source: text("source", &request.source, placing)?,
        })
    }
}

/// Places or lifts the hold on a debtor of the tenant; returns the hold standing afterwards.
pub async fn set_legal_hold(
    pool: &PgPool,
    account_events_topic: &str,
    tenant_id: &str,
    request: &HoldRequest,
) -> Result<pb::LegalHoldState, AccountsError> {
    let debtor_id = request.debtor_id;
    let mut tx = pool.begin().await?;
    // Locked first: two requests for one debtor decide one after the other.
    store::lock_debtor(&mut tx, tenant_id, debtor_id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("debtor {debtor_id}")))?;
    let standing = store::standing_hold(&mut tx, debtor_id).await?;
    let (hold, outcome): (Option<LegalHold>, Outcome) = match (request.action, standing) {
        (HoldAction::Place, Some(standing)) => (Some(standing), Outcome::AlreadyStanding),
        (HoldAction::Place, None) => {
            let placed =
                store::place_hold(&mut tx, tenant_id, debtor_id, &request.reason, &request.source).await?;
            (Some(placed), Outcome::Placed)
        }
        (HoldAction::Lift, Some(_)) => {
            store::lift_hold(&mut tx, debtor_id, &request.reason, &request.source).await?;
            (None, Outcome::Lifted)
        }
        (HoldAction::Lift, None) => (None, Outcome::NoneStanding),
    };
    if matches!(outcome, Outcome::Placed | Outcome::Lifted) {
        events::publish_debtor_and_open_invoices(
            &mut tx,
            debtor_id,
            DebtorChange::LegalHold,
            DebtorChange::LegalHold.as_str(),
            account_events_topic,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    // Ids only: a hold's reason may name people.
    tracing::info!(tenant_id, %debtor_id, outcome = outcome.as_str(), "legal hold");
    Ok(pb::LegalHoldState {
        debtor_id: debtor_id.to_string(),
        legal_hold: hold.as_ref().map(LegalHold::to_proto),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(hold: bool, reason: &str, source: &str) -> pb::SetLegalHoldRequest {
        pb::SetLegalHoldRequest {
            tenant_id: "acme".into(),
            debtor_id: Uuid::from_u128(7).to_string(),
            hold,
            reason: reason.into(),
            source: source.into(),
        }
    }

    fn field_of(err: AccountsError) -> String {
        match err {
            AccountsError::Refused(Refusal::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn placing_needs_a_reason_and_a_source() {
        let placed = HoldRequest::parse(&request(true, " served in lawsuit 2026-123 ", "court notice"))
            .expect("valid");
        assert_eq!(placed.action, HoldAction::Place);
        assert_eq!(placed.reason, "served in lawsuit 2026-123");
        assert_eq!(placed.debtor_id, Uuid::from_u128(7));
        let no_reason = HoldRequest::parse(&request(true, "  ", "court notice")).expect_err("no reason");
        assert_eq!(field_of(no_reason), "reason");
        let no_source = HoldRequest::parse(&request(true, "bankruptcy", "")).expect_err("no source");
        assert_eq!(field_of(no_source), "source");
    }

    #[test]
    fn lifting_may_say_why_but_need_not() {
        let lifted = HoldRequest::parse(&request(false, "", "")).expect("valid");
        assert_eq!(lifted.action, HoldAction::Lift);
        assert_eq!((lifted.reason.as_str(), lifted.source.as_str()), ("", ""));
    }

    #[test]
    fn texts_are_limited_to_200_characters_not_bytes() {
        let accented = "á".repeat(200);
        assert!(HoldRequest::parse(&request(true, &accented, "court notice")).is_ok());
        let long = "a".repeat(201);
        for (reason, source, field) in [
            (long.as_str(), "court notice", "reason"),
            ("bankruptcy", long.as_str(), "source"),
        ] {
            let err = HoldRequest::parse(&request(true, reason, source)).expect_err("too long");
            assert_eq!(field_of(err), field);
        }
        let err = HoldRequest::parse(&request(false, &long, "")).expect_err("too long to lift");
        assert_eq!(field_of(err), "reason");
    }

    #[test]
    fn the_debtor_id_must_be_a_uuid() {
        let mut bad = request(true, "bankruptcy", "court notice");
        bad.debtor_id = "D-1".into();
        assert_eq!(
            field_of(HoldRequest::parse(&bad).expect_err("not a UUID")),
            "debtor_id"
        );
    }
}
