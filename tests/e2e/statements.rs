//! Statements end to end: a company's invoices falling due together reach it as one message
//! that names each of them with the total, counted once in its contact budget, and every
//! invoice's reminder recorded as delivered through it; a consumer still gets one per invoice;
//! an invoice paid or disputed between planning and sending is left out, and totals are per
//! currency.

use std::time::Duration;

use recobro_proto::v1::channels_service_client::ChannelsServiceClient;
use recobro_proto::v1::scheduling_service_client::SchedulingServiceClient;
use recobro_proto::v1::{self as pb};

use recobro_proto::v1::accounts_service_client::AccountsServiceClient;

use crate::accounts::reminders_until;
use crate::helpers::{Stack, encode};
use crate::scheduling::as_published;
use crate::{HOP, debtor_id, invoice_id, invoice_of};

/// Publishes `count` invoices of debtor `debtor` (a company unless `consumer`), each due
/// eight days ago (the "overdue-7" step of each is due now), the n-th for n hundred thousand
/// pesos.
async fn publish_invoices(stack: &Stack, debtor: &str, consumer: bool, count: usize) -> Vec<String> {
    let pesos = |n: usize| pb::Money {
        amount_minor: n as i64 * 100_000_00,
        currency: "COP".into(),
    };
    publish_invoices_due(stack, debtor, consumer, count, -8, pesos).await
}

/// Publishes `count` invoices of debtor `debtor` due in `due_in_days`, the n-th (from 1) for
/// `amount(n)`.
async fn publish_invoices_due(
    stack: &Stack,
    debtor: &str,
    consumer: bool,
    count: usize,
    due_in_days: i64,
    amount: impl Fn(usize) -> pb::Money,
) -> Vec<String> {
    let mut ids = Vec::new();
    for event in invoice_events(stack, debtor, consumer, count, due_in_days, amount) {
        stack
            .publish(&stack.erp_topic, debtor, &encode(&event), None)
            .await;
        let external = &event.invoice.as_ref().expect("invoice").external_id;
        ids.push(invoice_id(&stack.tenant, external));
    }
    ids
}

/// The ERP events of `publish_invoices_due`.
fn invoice_events(
    stack: &Stack,
    debtor: &str,
    consumer: bool,
    count: usize,
    due_in_days: i64,
    amount: impl Fn(usize) -> pb::Money,
) -> Vec<pb::InvoiceEvent> {
    let mut events = Vec::new();
    for n in 1..=count {
        let external = format!("{debtor}-F{n}");
        let mut event = invoice_of(
            stack,
            &external,
            &format!("evt-{external}"),
            pb::InvoiceEventKind::Issued,
            1,
            due_in_days,
        );
        let record = event.debtor.as_mut().expect("debtor");
        record.external_id = debtor.into();
        if consumer {
            record.kind = pb::DebtorKind::Consumer as i32;
            record.name = "María Fernanda López".into();
        }
        event.invoice.as_mut().expect("invoice").amount = Some(amount(n));
        events.push(event);
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_invoices_due_together_reach_a_company_as_one_statement_counted_once() {
    let stack = Stack::start().await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let invoices = publish_invoices(&stack, "D-1", false, 6).await;

    let record: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(record.status(), pb::DeliveryStatus::Sent, "{}", record.reason);
    assert_eq!(record.covered_reminder_ids.len(), 6, "{record:?}");
    // Every invoice's due step went out through it, and nothing else went to the debtor.
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    for invoice in &invoices {
        let reminders = scheduling
            .list_reminders(pb::ListRemindersRequest {
                tenant_id: stack.tenant.clone(),
                invoice_id: invoice.clone(),
                ..Default::default()
            })
            .await
            .expect("reminders")
            .into_inner()
            .reminders;
        let step = reminders
            .iter()
            .find(|r| r.step == "overdue-7")
            .expect("overdue-7 planned");
        assert_eq!(step.state(), pb::ReminderState::Emitted);
        assert!(
            record.covered_reminder_ids.contains(&step.reminder_id),
            "{invoice}'s reminder is covered: {record:?}"
        );
    }
    let others = deliveries.drain(Duration::from_secs(4)).await;
    assert!(
        others.is_empty(),
        "one message, not one per invoice: {} more",
        others.len()
    );

    let mut channels = ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let sent = channels
        .list_deliveries(pb::ListDeliveriesRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: record.debtor_id.clone(),
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    assert_eq!(sent.len(), 1);
    let statement = &sent[0];
    assert_eq!(statement.subject, "Estado de cuenta: 6 facturas pendientes");
    for n in 1..=6 {
        assert_eq!(
            statement.body.matches(&format!("Factura FE-D-1-F{n}:")).count(),
            1,
            "{}",
            statement.body
        );
    }
    // 100,000 + 200,000 + ... + 600,000 pesos, as CLDR's es-US writes them.
    assert!(
        statement.body.contains("COP\u{a0}2,100,000"),
        "{}",
        statement.body
    );
    let covered = &statement.record.as_ref().expect("record").covered_reminder_ids;
    assert_eq!(
        covered, &record.covered_reminder_ids,
        "ListDeliveries shows what it covered"
    );
    let budget = channels
        .get_contact_budget(pb::GetContactBudgetRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: record.debtor_id.clone(),
        })
        .await
        .expect("budget")
        .into_inner();
    let daily: Vec<_> = budget
        .caps
        .iter()
        .filter(|cap| cap.window == "local_day")
        .collect();
    assert!(
        !daily.is_empty() && daily.iter().all(|cap| cap.used == 1),
        "one contact counted for six invoices: {daily:?}"
    );
    // The audit finds each invoice's reminder in the statement's decision.
    let decisions = channels
        .explain_contacts(pb::ExplainContactsRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: record.debtor_id.clone(),
            ..Default::default()
        })
        .await
        .expect("decisions")
        .into_inner()
        .decisions;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0].reminder_id, record.reminder_id);
    assert_eq!(decisions[0].verdict(), pb::ContactVerdict::Allowed);
    assert_eq!(decisions[0].covered_reminder_ids, record.covered_reminder_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_under_a_strategy_that_does_not_consolidate_gets_one_message_per_invoice() {
    let stack = Stack::start().await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    publish_invoices(&stack, "D-7", true, 2).await;
    let first: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    let second: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    for record in [&first, &second] {
        assert!(record.covered_reminder_ids.is_empty(), "{record:?}");
    }
    assert_ne!(first.reminder_id, second.reminder_id);
    // The second the same day is the contact budget's to decide, as before statements.
    assert_eq!(first.status(), pb::DeliveryStatus::Sent, "{}", first.reason);
    assert_eq!(second.status(), pb::DeliveryStatus::Deferred, "{}", second.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_paid_or_disputed_after_planning_are_left_out_and_totals_are_per_currency() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let deliveries = stack.follow(&stack.topics.deliveries);
    // Due in forty days: nothing fires now; the statement below is what scheduling would have
    // emitted for them before the payment and the dispute.
    let money = |n: usize| match n {
        1..=3 => pb::Money {
            amount_minor: n as i64 * 100_000_00,
            currency: "COP".into(),
        },
        _ => pb::Money {
            amount_minor: n as i64 * 100_00,
            currency: "USD".into(),
        },
    };
    let invoices = publish_invoices_due(&stack, "D-5", false, 6, 40, money).await;
    let mut covered = Vec::new();
    for invoice in &invoices {
        let planned = reminders_until(&stack, &tenant, invoice, |r| !r.is_empty()).await;
        covered.push(planned[0].reminder_id.clone());
    }
    let debtor = debtor_id(&tenant, "D-5");
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let mut snapshots = accounts
        .list_invoices(pb::ListInvoicesRequest {
            tenant_id: tenant.clone(),
            debtor_id: debtor.clone(),
            ..Default::default()
        })
        .await
        .expect("invoices")
        .into_inner()
        .invoices;
    snapshots.sort_by_key(|i| i.number.clone());
    assert_eq!(snapshots.len(), 6);

    // Between planning and sending: the second is paid in full, the fifth disputed.
    let paid = &snapshots[1];
    accounts
        .record_settlement(pb::RecordSettlementRequest {
            tenant_id: tenant.clone(),
            invoice_id: paid.invoice_id.clone(),
            kind: pb::SettlementKind::Payment as i32,
            external_id: "pay-F2".into(),
            amount: paid.amount.clone(),
            on: Some(recobro_common::time::date(chrono::Utc::now().date_naive())),
        })
        .await
        .expect("payment");
    let disputed = &snapshots[4];
    accounts
        .open_dispute(pb::OpenDisputeRequest {
            tenant_id: tenant.clone(),
            invoice_id: disputed.invoice_id.clone(),
            reason: "mercancía devuelta".into(),
        })
        .await
        .expect("dispute");
    // Accounts has published both (scheduling has applied them).
    reminders_until(&stack, &tenant, &paid.invoice_id, |r| {
        r.iter().all(|r| r.state() == pb::ReminderState::Cancelled)
    })
    .await;
    reminders_until(&stack, &tenant, &disputed.invoice_id, |r| {
        r.iter().all(|r| r.state() == pb::ReminderState::Paused)
    })
    .await;

    let statement_id = uuid::Uuid::new_v4().to_string();
    let statement = pb::ReminderDue {
        reminder_id: statement_id.clone(),
        tenant_id: tenant.clone(),
        debtor_id: debtor.clone(),
        step: "overdue-7".into(),
        channel: pb::Channel::Email as i32,
        template_id: "overdue".into(),
        covered: snapshots
            .iter()
            .zip(&covered)
            .map(|(invoice, reminder_id)| pb::CoveredReminder {
                reminder_id: reminder_id.clone(),
                step: "overdue-7".into(),
                template_id: "overdue".into(),
                invoice: Some(invoice.clone()),
            })
            .collect(),
        ..Default::default()
    };
    stack
        .publish(&stack.topics.reminders_due, &debtor, &encode(&statement), None)
        .await;

    let mut records: Vec<pb::DeliveryRecord> = Vec::new();
    while records.len() < 3 {
        records.push(deliveries.find(HOP, |_| true).await.decode());
    }
    let sent = records
        .iter()
        .find(|r| r.reminder_id == statement_id)
        .expect("the statement's record");
    assert_eq!(sent.status(), pb::DeliveryStatus::Sent, "{}", sent.reason);
    let still_owed: Vec<&String> = [0, 2, 3, 5].iter().map(|&n| &covered[n]).collect();
    assert_eq!(
        sent.covered_reminder_ids.iter().collect::<Vec<_>>(),
        still_owed,
        "it covers the four still owed"
    );
    for (n, rule) in [(1, "invoice-paid"), (4, "invoice-disputed")] {
        let left_out = records
            .iter()
            .find(|r| r.reminder_id == covered[n])
            .unwrap_or_else(|| panic!("a record for the left-out reminder {n}: {records:?}"));
        assert_eq!(left_out.status(), pb::DeliveryStatus::Suppressed);
        assert!(
            left_out.reason.contains(&snapshots[n].invoice_id),
            "{}",
            left_out.reason
        );
        assert_eq!(left_out.rule, rule);
    }

    let mut channels = ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let body = channels
        .list_deliveries(pb::ListDeliveriesRequest {
            tenant_id: tenant.clone(),
            debtor_id: debtor.clone(),
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries
        .into_iter()
        .find(|d| d.record.as_ref().is_some_and(|r| r.reminder_id == statement_id))
        .expect("the statement in ListDeliveries")
        .body;
    for (n, named) in [(1, true), (2, false), (3, true), (4, true), (5, false), (6, true)] {
        assert_eq!(
            body.contains(&format!("Factura FE-D-5-F{n}:")),
            named,
            "F{n}: {body}"
        );
    }
    // 100,000 + 300,000 pesos and 400 + 600 dollars, never added together.
    let total = body
        .lines()
        .find(|line| line.starts_with("Total"))
        .unwrap_or_else(|| panic!("a total line: {body}"));
    assert!(total.contains("COP\u{a0}400,000"), "{total}");
    assert!(total.contains(" + ") && total.contains("1,000.00"), "{total}");

    // A statement of only the paid and the disputed one: nothing is left, nothing is sent.
    let nothing_left = pb::ReminderDue {
        reminder_id: uuid::Uuid::new_v4().to_string(),
        covered: [1, 4].iter().map(|&n| statement.covered[n].clone()).collect(),
        ..statement.clone()
    };
    stack
        .publish(&stack.topics.reminders_due, &debtor, &encode(&nothing_left), None)
        .await;
    let record: pb::DeliveryRecord = deliveries
        .find(HOP, |r| {
            r.decode::<pb::DeliveryRecord>().reminder_id == nothing_left.reminder_id
        })
        .await
        .decode();
    assert_eq!(record.status(), pb::DeliveryStatus::Suppressed, "{record:?}");
    assert_eq!(record.rule, "invoices-settled");
    assert!(
        deliveries.drain(Duration::from_secs(3)).await.is_empty(),
        "the left-out reminders were recorded once, by the first statement"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_shows_the_statement_as_it_goes_out() {
    let stack = Stack::start().await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let pesos = |n: usize| pb::Money {
        amount_minor: n as i64 * 100_000_00,
        currency: "COP".into(),
    };
    let events = invoice_events(&stack, "D-8", false, 4, -8, pesos);
    let consumer = invoice_events(&stack, "D-9", true, 2, -8, pesos);
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let preview = scheduling
        .preview_schedule(pb::PreviewScheduleRequest {
            items: events
                .iter()
                .chain(&consumer)
                .map(|e| as_published(&stack, e))
                .collect(),
            ..Default::default()
        })
        .await
        .expect("preview")
        .into_inner();
    // Each later step of the four falls on the same day too: a statement per step's day.
    let first = preview
        .statements
        .iter()
        .min_by_key(|s| s.fire_at.as_ref().map(|t| (t.seconds, t.nanos)))
        .expect("a planned statement");
    assert_eq!(first.covered.len(), 4, "{first:?}");
    assert!(first.covered.iter().all(|c| c.step == "overdue-7"), "{first:?}");
    assert_eq!(first.debtor_id, debtor_id(&stack.tenant, "D-8"));
    for covered in &first.covered {
        let invoice = preview
            .previews
            .iter()
            .find(|p| p.invoice_id == covered.invoice_id)
            .expect("its invoice's preview");
        let reminder = invoice
            .reminders
            .iter()
            .find(|r| r.reminder_id == covered.reminder_id)
            .expect("the covered reminder");
        assert_eq!(
            reminder.statement_id, first.statement_id,
            "points at its statement"
        );
    }
    // The consumer's invoices in the same call are never in one: their strategy does not
    // consolidate consumers.
    let theirs = debtor_id(&stack.tenant, "D-9");
    assert!(preview.statements.iter().all(|s| s.debtor_id != theirs));
    for invoice in preview.previews.iter().skip(4) {
        assert!(invoice.reminders.iter().all(|r| r.statement_id.is_empty()));
    }
    assert!(
        preview.statements.iter().all(|s| s.covered.len() > 1),
        "a reminder alone goes alone"
    );

    for event in &events {
        stack.publish(&stack.erp_topic, "D-8", &encode(event), None).await;
    }
    let record: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(
        record.reminder_id, first.statement_id,
        "the id the preview showed"
    );
    let mut covered = record.covered_reminder_ids.clone();
    covered.sort();
    let mut previewed: Vec<String> = first.covered.iter().map(|c| c.reminder_id.clone()).collect();
    previewed.sort();
    assert_eq!(covered, previewed, "what the preview showed it covers");
}
