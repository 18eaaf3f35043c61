//! What the debtor answers changes the case (issue 19): a reply to a delivered reminder, through
//! channels' webhook, classified, published on `channel.responses.v1` and acted on by accounts;
//! a person reads the work queue and can undo what a reply did.

use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, Utc, Weekday};
use recobro_common::time;
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::{self as pb};

use crate::accounts::reminders_until;
use crate::helpers::{Grpc, Stack, encode, post_json};
use crate::{HOP, debtor_id, invoice_id, invoice_of};

/// Invoice F-1 of D-1, ten days overdue, its first reminder delivered; answered with `text`.
/// Returns the published response.
async fn answered(stack: &Stack, text: &str) -> pb::DebtorResponse {
    let deliveries = stack.follow(&stack.topics.deliveries);
    let responses = stack.follow(&stack.topics.responses);
    let event = invoice_of(stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let sent: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(sent.status(), pb::DeliveryStatus::Sent, "{sent:?}");
    let body = serde_json::json!({ "reminder_id": sent.reminder_id, "text": text }).to_string();
    let (status, answer) = post_json(stack.http_port, "/webhooks/sandbox/replies", &body).await;
    assert_eq!(status, 202, "{answer}");
    let response: pb::DebtorResponse = responses.find(HOP, |_| true).await.decode();
    assert_eq!(
        response.invoice_ids,
        [invoice_id(&stack.tenant, "F-1")],
        "the response names the invoice the reminder was about"
    );
    response
}

pub(crate) async fn accounts(stack: &Stack) -> AccountsServiceClient<Grpc> {
    AccountsServiceClient::new(stack.grpc(stack.accounts_port).await)
}

/// The tenant's work items, once `done` holds.
pub(crate) async fn work_items_until(
    accounts: &mut AccountsServiceClient<Grpc>,
    tenant: &str,
    done: impl Fn(&[pb::WorkItem]) -> bool,
) -> Vec<pb::WorkItem> {
    let deadline = tokio::time::Instant::now() + HOP;
    loop {
        let items = accounts
            .list_work_items(pb::ListWorkItemsRequest {
                tenant_id: tenant.into(),
                ..Default::default()
            })
            .await
            .expect("work items")
            .into_inner()
            .work_items;
        if done(&items) {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "work queue never got there: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Invoice F-1 as accounts has it, once `done` holds.
pub(crate) async fn invoice_until(
    accounts: &mut AccountsServiceClient<Grpc>,
    stack: &Stack,
    done: impl Fn(&pb::Invoice) -> bool,
) -> pb::Invoice {
    let deadline = tokio::time::Instant::now() + HOP;
    let wanted = invoice_id(&stack.tenant, "F-1");
    loop {
        let invoices = accounts
            .list_invoices(pb::ListInvoicesRequest {
                tenant_id: stack.tenant.clone(),
                debtor_id: debtor_id(&stack.tenant, "D-1"),
                ..Default::default()
            })
            .await
            .expect("invoices")
            .into_inner()
            .invoices;
        let invoice = invoices
            .into_iter()
            .find(|invoice| invoice.invoice_id == wanted)
            .expect("F-1");
        if done(&invoice) {
            return invoice;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "F-1 never got there: {invoice:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The debtor's local date now.
fn debtor_today(stack: &Stack) -> NaiveDate {
    let zone: chrono_tz::Tz = stack.debtor_zone.parse().expect("zone");
    Utc::now().with_timezone(&zone).date_naive()
}

fn no_pending(reminders: &[pb::PlannedReminder]) -> bool {
    reminders.iter().all(|r| r.state() != pb::ReminderState::Pending)
}

fn some_pending(reminders: &[pb::PlannedReminder]) -> bool {
    reminders.iter().any(|r| r.state() == pb::ReminderState::Pending)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ya_pague_holds_the_invoice_once_and_a_person_can_lift_the_hold() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let response = answered(&stack, "Ya pagué, les envío el comprobante").await;
    assert_eq!(response.intent(), pb::ResponseIntent::AlreadyPaid);
    let mut accounts = accounts(&stack).await;

    // The invoice is held for the configured five days of the debtor's calendar, its ladder
    // paused, and a person is asked to confirm the payment.
    let until = debtor_today(&stack).checked_add_days(Days::new(5)).expect("date");
    let held = invoice_until(&mut accounts, &stack, |i| i.claimed_paid_until.is_some()).await;
    assert_eq!(held.claimed_paid_until, Some(time::date(until)));
    let f1 = invoice_id(&tenant, "F-1");
    reminders_until(&stack, &tenant, &f1, no_pending).await;
    let items = work_items_until(&mut accounts, &tenant, |items| !items.is_empty()).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item.kind(), pb::WorkItemKind::ClaimedPaid);
    assert_eq!(item.state(), pb::WorkItemState::Open);
    assert_eq!(item.invoice_ids, std::slice::from_ref(&f1));
    assert_eq!(item.debtor_id, debtor_id(&tenant, "D-1"));
    assert_eq!(item.response_id, response.response_id);
    assert_eq!(item.reply_text, "Ya pagué, les envío el comprobante");
    let created = item
        .created_at
        .as_ref()
        .and_then(time::from_timestamp)
        .expect("created");
    let due = item.due_at.as_ref().and_then(time::from_timestamp).expect("due");
    assert_eq!(due - created, chrono::Duration::hours(24), "the claimed-paid SLA");

    // The same response again (a redelivery) acts once: a later reply in the same partition
    // shows the first was read again before it.
    let key = debtor_id(&tenant, "D-1");
    stack
        .publish(&stack.topics.responses, &key, &encode(&response), None)
        .await;
    let later = pb::DebtorResponse {
        response_id: format!("{}-later", response.response_id),
        intent: pb::ResponseIntent::Other as i32,
        text: "¿me pueden llamar?".into(),
        ..response.clone()
    };
    stack
        .publish(&stack.topics.responses, &key, &encode(&later), None)
        .await;
    let items = work_items_until(&mut accounts, &tenant, |items| items.len() >= 2).await;
    let kinds: Vec<pb::WorkItemKind> = items.iter().map(|i| i.kind()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == pb::WorkItemKind::ClaimedPaid)
            .count(),
        1,
        "{items:?}"
    );
    assert!(kinds.contains(&pb::WorkItemKind::Reply), "{items:?}");
    let revision = invoice_until(&mut accounts, &stack, |_| true).await.revision;
    assert_eq!(
        revision, held.revision,
        "the redelivered response changed the invoice again"
    );

    // A person takes the item and finds no payment: the hold is lifted, the ladder resumes,
    // and the item keeps who did it.
    let claimed = accounts
        .claim_work_item(pb::ClaimWorkItemRequest {
            tenant_id: tenant.clone(),
            work_item_id: item.work_item_id.clone(),
        })
        .await
        .expect("claim")
        .into_inner();
    assert_eq!(claimed.state(), pb::WorkItemState::Claimed);
    assert_eq!(claimed.assignee, "e2e-client", "the token's subject");
    // Another collector cannot take it.
    let mut colleague = {
        let mut claims = crate::pki::claims(Some(&tenant), crate::pki::ALL_SCOPES);
        claims.subject = "collector-2".into();
        let token = stack.token(claims);
        let channel =
            crate::pki::channel(stack.accounts_port, crate::pki::ClientCert::Client, Some(&token)).await;
        AccountsServiceClient::new(channel)
    };
    let taken = colleague
        .claim_work_item(pb::ClaimWorkItemRequest {
            tenant_id: tenant.clone(),
            work_item_id: item.work_item_id.clone(),
        })
        .await
        .expect_err("held by someone else");
    assert_eq!(taken.code(), tonic::Code::FailedPrecondition, "{taken:?}");
    let confirmed = accounts
        .resolve_work_item(pb::ResolveWorkItemRequest {
            tenant_id: tenant.clone(),
            work_item_id: item.work_item_id.clone(),
            outcome: pb::WorkItemOutcome::ConfirmedPaid as i32,
            ..Default::default()
        })
        .await
        .expect_err("confirmed paid with the invoice still open");
    assert_eq!(confirmed.code(), tonic::Code::FailedPrecondition, "{confirmed:?}");
    let resolved = accounts
        .resolve_work_item(pb::ResolveWorkItemRequest {
            tenant_id: tenant.clone(),
            work_item_id: item.work_item_id.clone(),
            outcome: pb::WorkItemOutcome::NotPaid as i32,
            note: "no payment in the bank statement".into(),
            ..Default::default()
        })
        .await
        .expect("resolve")
        .into_inner();
    assert_eq!(resolved.state(), pb::WorkItemState::Resolved);
    assert_eq!(resolved.outcome(), pb::WorkItemOutcome::NotPaid);
    assert_eq!(resolved.assignee, claimed.assignee);
    assert_eq!(resolved.notes.len(), 1);
    assert_eq!(resolved.notes[0].author, claimed.assignee);
    let lifted = invoice_until(&mut accounts, &stack, |i| i.claimed_paid_until.is_none()).await;
    assert!(lifted.revision > held.revision);
    reminders_until(&stack, &tenant, &f1, some_pending).await;

    // Claimed paid again, and this time the payment is recorded: it ends the hold by itself,
    // and the item can be confirmed.
    let again = pb::DebtorResponse {
        response_id: format!("{}-again", response.response_id),
        text: "ya pague todo".into(),
        ..response.clone()
    };
    stack
        .publish(&stack.topics.responses, &key, &encode(&again), None)
        .await;
    let held = invoice_until(&mut accounts, &stack, |i| i.claimed_paid_until.is_some()).await;
    let owed = held.outstanding.clone().expect("outstanding");
    accounts
        .record_settlement(pb::RecordSettlementRequest {
            tenant_id: tenant.clone(),
            invoice_id: f1.clone(),
            kind: pb::SettlementKind::Payment as i32,
            external_id: "bank-1".into(),
            amount: Some(owed),
            on: Some(time::date(Utc::now().date_naive())),
        })
        .await
        .expect("payment");
    let paid = invoice_until(&mut accounts, &stack, |i| i.claimed_paid_until.is_none()).await;
    assert_eq!(paid.status(), pb::InvoiceStatus::Paid);
    let items = work_items_until(&mut accounts, &tenant, |items| items.len() >= 3).await;
    let second = items
        .iter()
        .find(|i| i.response_id == again.response_id)
        .expect("the second claim's item");
    let confirmed = accounts
        .resolve_work_item(pb::ResolveWorkItemRequest {
            tenant_id: tenant.clone(),
            work_item_id: second.work_item_id.clone(),
            outcome: pb::WorkItemOutcome::ConfirmedPaid as i32,
            ..Default::default()
        })
        .await
        .expect("confirmed once paid")
        .into_inner();
    assert_eq!(confirmed.outcome(), pb::WorkItemOutcome::ConfirmedPaid);

    // The queue filters by state and kind.
    let open = accounts
        .list_work_items(pb::ListWorkItemsRequest {
            tenant_id: tenant.clone(),
            state: pb::WorkItemState::Open as i32,
            ..Default::default()
        })
        .await
        .expect("open items")
        .into_inner()
        .work_items;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].kind(), pb::WorkItemKind::Reply);
}

/// The next `weekday` strictly after `today`.
fn next(today: NaiveDate, weekday: Weekday) -> NaiveDate {
    (1..=7)
        .filter_map(|days| today.checked_add_days(Days::new(days)))
        .find(|day| day.weekday() == weekday)
        .expect("within a week")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pago_el_viernes_records_a_promise_for_the_debtors_next_friday_and_pauses_the_ladder() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let response = answered(&stack, "pago el viernes sin falta 🙏").await;
    assert_eq!(response.intent(), pb::ResponseIntent::PromiseToPay);
    let mut accounts = accounts(&stack).await;
    let friday = next(debtor_today(&stack), Weekday::Fri);
    let promised = invoice_until(&mut accounts, &stack, |i| i.promised_date.is_some()).await;
    assert_eq!(promised.promised_date, Some(time::date(friday)));
    reminders_until(&stack, &tenant, &invoice_id(&tenant, "F-1"), no_pending).await;

    // A promise with no date that can be read goes to a person instead.
    let key = debtor_id(&tenant, "D-1");
    let vague = pb::DebtorResponse {
        response_id: format!("{}-vague", response.response_id),
        text: "apenas pueda le pago".into(),
        ..response.clone()
    };
    stack
        .publish(&stack.topics.responses, &key, &encode(&vague), None)
        .await;
    let items = work_items_until(&mut accounts, &tenant, |items| !items.is_empty()).await;
    assert_eq!(items.len(), 1, "a clear promise queues nothing: {items:?}");
    assert_eq!(items[0].kind(), pb::WorkItemKind::UnclearPromise);
    assert_eq!(items[0].response_id, vague.response_id);
    let still = invoice_until(&mut accounts, &stack, |_| true).await;
    assert_eq!(
        still.promised_date,
        Some(time::date(friday)),
        "the vague reply changed the promise"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reconozco_esta_factura_opens_a_dispute_and_a_person_can_reject_it() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let response = answered(&stack, "no reconozco esta factura").await;
    assert_eq!(response.intent(), pb::ResponseIntent::Dispute);
    let mut accounts = accounts(&stack).await;
    let f1 = invoice_id(&tenant, "F-1");
    let disputed = invoice_until(&mut accounts, &stack, |i| i.disputed).await;
    reminders_until(&stack, &tenant, &f1, no_pending).await;
    let items = work_items_until(&mut accounts, &tenant, |items| !items.is_empty()).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].kind(), pb::WorkItemKind::Dispute);
    let due = items[0]
        .due_at
        .as_ref()
        .and_then(time::from_timestamp)
        .expect("due");
    let created = items[0]
        .created_at
        .as_ref()
        .and_then(time::from_timestamp)
        .expect("created");
    assert_eq!(due - created, chrono::Duration::hours(48), "the dispute SLA");

    // Resolving it needs an outcome; rejecting the dispute resumes the ladder.
    let missing = accounts
        .resolve_work_item(pb::ResolveWorkItemRequest {
            tenant_id: tenant.clone(),
            work_item_id: items[0].work_item_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("no outcome");
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    assert!(missing.message().starts_with("outcome"), "{missing:?}");
    let request = pb::ResolveWorkItemRequest {
        tenant_id: tenant.clone(),
        work_item_id: items[0].work_item_id.clone(),
        outcome: pb::WorkItemOutcome::DisputeRejected as i32,
        ..Default::default()
    };
    let resolved = accounts
        .resolve_work_item(request.clone())
        .await
        .expect("resolve")
        .into_inner();
    assert_eq!(resolved.outcome(), pb::WorkItemOutcome::DisputeRejected);
    // Retried, the same resolution returns the item as it is.
    let again = accounts
        .resolve_work_item(request)
        .await
        .expect("retried")
        .into_inner();
    assert_eq!(again.resolved_at, resolved.resolved_at);
    let resumed = invoice_until(&mut accounts, &stack, |i| !i.disputed).await;
    assert!(resumed.revision > disputed.revision);
    reminders_until(&stack, &tenant, &f1, some_pending).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalations_queue_collectors_and_record_hand_offs_that_a_person_moves() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let dead_letters = stack.follow(&stack.topics.dead_letter);
    let (mut accounts, debtor) = crate::accounts::ledger_with_debtor(&stack, &tenant).await;
    let invoice = crate::accounts::invoice(&mut accounts, &tenant, "F-1", 100_000_00, -30).await;
    let debtor_id = debtor.debtor.expect("debtor").debtor_id;
    let escalation = |id: &str, kind: &str, step: &str| pb::Escalation {
        escalation_id: id.into(),
        tenant_id: tenant.clone(),
        debtor_id: debtor_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        kind: kind.into(),
        step: step.into(),
        ..Default::default()
    };
    let to_collector = escalation("esc-1", "collector", "collector-20");
    let to_legal = escalation("esc-2", "legal", "legal-60");
    for event in [
        &to_collector,
        &to_legal,
        &to_collector,
        &to_legal,
        &escalation("esc-3", "bailiff", "x"),
    ] {
        stack
            .publish(&stack.topics.escalations, &debtor_id, &encode(event), None)
            .await;
    }
    // A kind this version does not know is parked, naming the field.
    let parked = dead_letters
        .find(HOP, |r| r.header("recobro-dlq-service") == Some("accounts"))
        .await;
    let reason = parked.header("recobro-dlq-reason").expect("reason");
    assert!(reason.starts_with("kind"), "{reason}");

    // The collector step is one work item (redelivered, still one), due after its SLA.
    let items = work_items_until(&mut accounts, &tenant, |items| !items.is_empty()).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].kind(), pb::WorkItemKind::Collector);
    assert_eq!(items[0].invoice_ids, std::slice::from_ref(&invoice.invoice_id));
    let created = items[0]
        .created_at
        .as_ref()
        .and_then(time::from_timestamp)
        .expect("created");
    let due = items[0]
        .due_at
        .as_ref()
        .and_then(time::from_timestamp)
        .expect("due");
    assert_eq!(due - created, chrono::Duration::hours(48), "the collector SLA");

    // The legal step is one hand-off, sent; a person records it accepted, then returned.
    let handoffs = accounts
        .list_handoffs(pb::ListHandoffsRequest {
            tenant_id: tenant.clone(),
            ..Default::default()
        })
        .await
        .expect("hand-offs")
        .into_inner()
        .handoffs;
    assert_eq!(handoffs.len(), 1, "{handoffs:?}");
    let handoff = &handoffs[0];
    assert_eq!(handoff.target(), pb::HandoffTarget::Legal);
    assert_eq!(handoff.state(), pb::HandoffState::Sent);
    assert_eq!(handoff.escalation_id, "esc-2");
    let update = |state: pb::HandoffState| pb::UpdateHandoffRequest {
        tenant_id: tenant.clone(),
        handoff_id: handoff.handoff_id.clone(),
        state: state as i32,
        note: "expediente 2026-118".into(),
    };
    let accepted = accounts
        .update_handoff(update(pb::HandoffState::Accepted))
        .await
        .expect("accepted")
        .into_inner();
    assert_eq!(accepted.state(), pb::HandoffState::Accepted);
    assert_eq!(accepted.updated_by, "e2e-client");
    let returned = accounts
        .update_handoff(update(pb::HandoffState::Returned))
        .await
        .expect("returned")
        .into_inner();
    assert_eq!(returned.state(), pb::HandoffState::Returned);
    let back = accounts
        .update_handoff(update(pb::HandoffState::Accepted))
        .await
        .expect_err("a returned case is not accepted again");
    assert_eq!(back.code(), tonic::Code::FailedPrecondition);
    let sent = accounts
        .update_handoff(update(pb::HandoffState::Sent))
        .await
        .expect_err("only ACCEPTED or RETURNED");
    assert_eq!(sent.code(), tonic::Code::InvalidArgument);
    let returned_only = accounts
        .list_handoffs(pb::ListHandoffsRequest {
            tenant_id: tenant.clone(),
            state: pb::HandoffState::Returned as i32,
            ..Default::default()
        })
        .await
        .expect("returned hand-offs")
        .into_inner()
        .handoffs;
    assert_eq!(returned_only.len(), 1);
}

/// A reply no rule placed but that speaks of stopping and of calls is honoured as an opt-out
/// and a person is asked, within a day, to confirm it with the debtor.
#[tokio::test]
async fn a_reply_that_might_be_an_opt_out_is_honoured_and_a_person_confirms_it() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let text = "me tienen arto con tantas llamadas";
    let response = answered(&stack, text).await;
    assert_eq!(response.intent(), pb::ResponseIntent::OptOut);
    assert!(response.opt_out_unsure, "{response:?}");
    let mut accounts = accounts(&stack).await;
    let items = work_items_until(&mut accounts, &tenant, |items| !items.is_empty()).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item.kind(), pb::WorkItemKind::UnsureOptOut);
    assert_eq!(item.debtor_id, debtor_id(&tenant, "D-1"));
    assert_eq!(item.response_id, response.response_id);
    assert_eq!(item.reply_text, text);
    let created = item
        .created_at
        .as_ref()
        .and_then(time::from_timestamp)
        .expect("created");
    let due = item.due_at.as_ref().and_then(time::from_timestamp).expect("due");
    assert_eq!(
        due - created,
        chrono::Duration::hours(24),
        "the unsure opt-out SLA"
    );
    // The point it came from is withdrawn: the debtor has no consented route left on it.
    let debtor = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: tenant.clone(),
            debtor_id: debtor_id(&tenant, "D-1"),
        })
        .await
        .expect("debtor")
        .into_inner();
    let withdrawn: Vec<&pb::ContactPoint> = debtor
        .contacts
        .iter()
        .flat_map(|c| &c.points)
        .filter(|p| p.point_id == response.point_id)
        .collect();
    assert_eq!(withdrawn.len(), 1, "{debtor:?}");
    assert_eq!(withdrawn[0].consent(), pb::Consent::Withdrawn);
}
