//! Statements end to end: a company's invoices falling due together reach it as one message
//! that names each of them with the total, counted once in its contact budget, and every
//! invoice's reminder recorded as delivered through it; a consumer still gets one per invoice.

use std::time::Duration;

use recobro_proto::v1::channels_service_client::ChannelsServiceClient;
use recobro_proto::v1::scheduling_service_client::SchedulingServiceClient;
use recobro_proto::v1::{self as pb};

use crate::helpers::{Stack, encode};
use crate::{HOP, invoice_id, invoice_of};

/// Publishes `count` invoices of debtor `debtor` (a company unless `consumer`), each due
/// eight days ago (the "overdue-7" step of each is due now).
async fn publish_invoices(stack: &Stack, debtor: &str, consumer: bool, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 1..=count {
        let external = format!("{debtor}-F{n}");
        let mut event = invoice_of(
            stack,
            &external,
            &format!("evt-{external}"),
            pb::InvoiceEventKind::Issued,
            1,
            -8,
        );
        let record = event.debtor.as_mut().expect("debtor");
        record.external_id = debtor.into();
        if consumer {
            record.kind = pb::DebtorKind::Consumer as i32;
            record.name = "María Fernanda López".into();
        }
        event.invoice.as_mut().expect("invoice").amount = Some(pb::Money {
            amount_minor: n as i64 * 100_000_00,
            currency: "COP".into(),
        });
        stack
            .publish(&stack.erp_topic, debtor, &encode(&event), None)
            .await;
        ids.push(invoice_id(&stack.tenant, &external));
    }
    ids
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
