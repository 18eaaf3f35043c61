//! End-to-end: the three real binaries over real Kafka, Redis and PostgreSQL.
//! Needs the local stack (`deploy/local/up.sh`) and the binaries (`cargo build --bins`);
//! `make test` does both.

mod helpers;

use std::time::Duration;

use chrono::{Days, Utc};
use helpers::{Stack, encode, post_json};
use recobro_common::time;
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::channels_service_client::ChannelsServiceClient;
use recobro_proto::v1::scheduling_service_client::SchedulingServiceClient;
use recobro_proto::v1::{self as pb, account_event};

const HOP: Duration = Duration::from_secs(60);

fn invoice_event(
    stack: &Stack,
    event_id: &str,
    kind: pb::InvoiceEventKind,
    version: i64,
    due_in_days: i64,
) -> pb::InvoiceEvent {
    let today = Utc::now().date_naive();
    let due = if due_in_days >= 0 {
        today.checked_add_days(Days::new(due_in_days as u64))
    } else {
        today.checked_sub_days(Days::new(due_in_days.unsigned_abs()))
    }
    .expect("date");
    pb::InvoiceEvent {
        event_id: event_id.to_string(),
        tenant_id: stack.tenant.clone(),
        kind: kind as i32,
        version,
        occurred_at: Some(time::timestamp(Utc::now())),
        debtor: Some(pb::DebtorRecord {
            external_id: "D-1".into(),
            name: "Ferretería El Tornillo SAS".into(),
            kind: pb::DebtorKind::Company as i32,
            time_zone: "America/Bogota".into(),
            locale: "es-CO".into(),
            country: "CO".into(),
            email: "tesoreria@tornillo.example".into(),
            phone: "+573001234567".into(),
        }),
        invoice: Some(pb::InvoiceRecord {
            external_id: "F-1".into(),
            number: "FE-0001".into(),
            amount: Some(pb::Money {
                amount_minor: 1_250_000_00,
                currency: "COP".into(),
            }),
            issue_date: Some(time::date(due - chrono::Duration::days(30))),
            due_date: Some(time::date(due)),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reminder_travels_from_the_erp_to_the_debtors_reply() {
    let stack = Stack::start().await;
    let account_events = stack.follow(&stack.topics.account_events);
    let reminders = stack.follow(&stack.topics.reminders_due);
    let deliveries = stack.follow(&stack.topics.deliveries);
    let responses = stack.follow(&stack.topics.responses);

    // 1. The ERP publishes an invoice ten days overdue, and (as brokers do) delivers it twice.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!(
        "00-{trace_id}-{}-01",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let event = invoice_event(&stack, "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    for _ in 0..2 {
        stack
            .publish(
                &stack.topics.erp_invoices,
                "D-1",
                &encode(&event),
                Some(&traceparent),
            )
            .await;
    }

    // 2. accounts stores it and publishes the change, continuing the ERP's trace.
    let changed = account_events.find(HOP, |_| true).await;
    assert_eq!(
        changed.trace_id(),
        Some(trace_id.as_str()),
        "accounts continues the ERP event's trace"
    );
    let changed: pb::AccountEvent = changed.decode();
    let Some(account_event::Change::InvoiceChanged(changed)) = changed.change else {
        panic!("an invoice change")
    };
    let invoice = changed.invoice.expect("invoice");
    assert_eq!(invoice.number, "FE-0001");
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let debtor = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: invoice.debtor_id.clone(),
        })
        .await
        .expect("the debtor is in the ledger")
        .into_inner();
    assert_eq!(
        debtor.balance,
        vec![pb::Money {
            amount_minor: 1_250_000_00,
            currency: "COP".into()
        }]
    );

    // 3. scheduling plans the ladder; only the latest step already due fires.
    let reminder = reminders.find(HOP, |_| true).await;
    let reminder_trace = reminder
        .trace_id()
        .expect("reminders carry trace context")
        .to_string();
    assert_eq!(
        reminder.key, invoice.debtor_id,
        "keyed by debtor so one debtor's events keep their order"
    );
    let reminder: pb::ReminderDue = reminder.decode();
    assert_eq!(
        (reminder.step.as_str(), reminder.template_id.as_str()),
        ("overdue-7", "overdue")
    );
    assert_eq!(reminder.invoice_id, invoice.invoice_id);
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let planned = scheduling
        .list_reminders(pb::ListRemindersRequest {
            tenant_id: stack.tenant.clone(),
            invoice_id: invoice.invoice_id.clone(),
        })
        .await
        .expect("reminders")
        .into_inner()
        .reminders;
    let state_of = |step: &str| {
        planned
            .iter()
            .find(|r| r.step == step)
            .map(|r| r.state())
            .expect("step planned")
    };
    assert_eq!(state_of("preventive"), pb::ReminderState::Skipped);
    assert_eq!(state_of("overdue-1"), pb::ReminderState::Skipped);
    assert_eq!(state_of("overdue-7"), pb::ReminderState::Emitted);
    assert_eq!(state_of("final-15"), pb::ReminderState::Pending);

    // 4. channels checks the contact budget in Redis, delivers through the sandbox and records it.
    let delivery = deliveries.find(HOP, |_| true).await;
    assert_eq!(
        delivery.trace_id(),
        Some(reminder_trace.as_str()),
        "the reminder's trace reaches the delivery"
    );
    let delivery: pb::DeliveryRecord = delivery.decode();
    assert_eq!(delivery.reminder_id, reminder.reminder_id);
    assert_eq!(
        delivery.status(),
        pb::DeliveryStatus::Sent,
        "reason: {}",
        delivery.reason
    );
    assert_eq!(delivery.provider, "sandbox-email");
    let mut redis = redis::Client::open(helpers::redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let local_day = Utc::now().with_timezone(&chrono_tz_bogota()).date_naive();
    let used: Option<i64> = redis::cmd("GET")
        .arg(format!(
            "{}:{{d:{}}}:day:{local_day}",
            stack.redis_prefix, invoice.debtor_id
        ))
        .query_async(&mut redis)
        .await
        .expect("read the contact budget");
    assert_eq!(used, Some(1), "one contact counted on the debtor's local day");
    let mut channels = ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let sent = channels
        .list_deliveries(pb::ListDeliveriesRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: invoice.debtor_id.clone(),
        })
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    assert_eq!(sent.len(), 1, "the duplicate ERP event caused no second reminder");
    assert_eq!(sent[0].subject, "Factura FE-0001 vencida");
    assert!(sent[0].body.contains("1.250.000,00 COP"), "{}", sent[0].body);
    assert!(sent[0].body.contains("Ferretería El Tornillo SAS"));

    // 5. The debtor answers; the reply is classified and published.
    let (status, body) = post_json(
        stack.http_port,
        "/webhooks/sandbox/replies",
        &format!(
            r#"{{"reminder_id":"{}","text":"Ya pagué la factura ayer"}}"#,
            reminder.reminder_id
        ),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let response: pb::DebtorResponse = responses.find(HOP, |_| true).await.decode();
    assert_eq!(response.intent(), pb::ResponseIntent::AlreadyPaid);
    assert_eq!(response.debtor_id, invoice.debtor_id);
    assert_eq!(response.reminder_id, reminder.reminder_id);

    // The duplicate ERP event had no second effect anywhere.
    let later_changes = account_events.drain(Duration::from_secs(2)).await;
    assert!(
        later_changes.is_empty(),
        "a redelivered event published {} more changes",
        later_changes.len()
    );
}

fn chrono_tz_bogota() -> chrono::FixedOffset {
    // Colombia has no daylight saving time: UTC-5 all year.
    chrono::FixedOffset::west_opt(5 * 3600).expect("offset")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_parked_with_their_reason_and_do_not_block_the_next() {
    let stack = Stack::start().await;
    let dead_letters = stack.follow(&stack.topics.dead_letter);
    let account_events = stack.follow(&stack.topics.account_events);

    stack
        .publish(&stack.topics.erp_invoices, "D-1", b"\xff\xfenot protobuf", None)
        .await;
    let mut bad_currency = invoice_event(&stack, "evt-bad", pb::InvoiceEventKind::Issued, 1, 5);
    bad_currency
        .invoice
        .as_mut()
        .and_then(|i| i.amount.as_mut())
        .expect("amount")
        .currency = "PESOS".into();
    stack
        .publish(&stack.topics.erp_invoices, "D-1", &encode(&bad_currency), None)
        .await;
    let good = invoice_event(&stack, "evt-good", pb::InvoiceEventKind::Issued, 1, 5);
    stack
        .publish(&stack.topics.erp_invoices, "D-1", &encode(&good), None)
        .await;

    let first = dead_letters.find(HOP, |_| true).await;
    assert!(
        first
            .header("recobro-dlq-reason")
            .expect("reason")
            .contains("not a recobro.v1.InvoiceEvent")
    );
    assert_eq!(
        first.header("recobro-dlq-topic"),
        Some(stack.topics.erp_invoices.as_str())
    );
    assert_eq!(
        first.payload, b"\xff\xfenot protobuf",
        "the original bytes are kept"
    );
    let second = dead_letters.find(HOP, |_| true).await;
    let reason = second.header("recobro-dlq-reason").expect("reason");
    assert!(
        reason.contains("invoice.amount.currency"),
        "the reason names the field: {reason}"
    );

    let changed: pb::AccountEvent = account_events.find(HOP, |_| true).await.decode();
    assert_eq!(
        changed.tenant_id, stack.tenant,
        "the valid event after them went through"
    );

    // The gRPC API names bad fields and never shows one tenant another's debtors.
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let err = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: "not-a-uuid".into(),
        })
        .await
        .expect_err("invalid id");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("debtor_id"), "{}", err.message());
    let err = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: "someone-else".into(),
            debtor_id: changed.debtor_id.clone(),
        })
        .await
        .expect_err("another tenant's debtor");
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_stops_the_ladder_and_an_older_update_cannot_reopen_it() {
    let stack = Stack::start().await;
    let account_events = stack.follow(&stack.topics.account_events);

    let issued = invoice_event(&stack, "evt-1", pb::InvoiceEventKind::Issued, 1, 20);
    stack
        .publish(&stack.topics.erp_invoices, "D-1", &encode(&issued), None)
        .await;
    let paid = invoice_event(&stack, "evt-2", pb::InvoiceEventKind::Paid, 2, 20);
    stack
        .publish(&stack.topics.erp_invoices, "D-1", &encode(&paid), None)
        .await;
    // Arrives late, from before the payment.
    let stale = invoice_event(&stack, "evt-3", pb::InvoiceEventKind::Updated, 1, 20);
    stack
        .publish(&stack.topics.erp_invoices, "D-1", &encode(&stale), None)
        .await;

    let first: pb::AccountEvent = account_events.find(HOP, |_| true).await.decode();
    let Some(account_event::Change::InvoiceChanged(first)) = first.change else {
        panic!("an invoice change")
    };
    let invoice = first.invoice.expect("invoice");
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let deadline = tokio::time::Instant::now() + HOP;
    loop {
        let planned = scheduling
            .list_reminders(pb::ListRemindersRequest {
                tenant_id: stack.tenant.clone(),
                invoice_id: invoice.invoice_id.clone(),
            })
            .await
            .map(|r| r.into_inner().reminders)
            .unwrap_or_default();
        if planned.len() == 4 && planned.iter().all(|r| r.state() == pb::ReminderState::Cancelled) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reminders not all cancelled: {planned:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rest = account_events.drain(Duration::from_secs(2)).await;
    assert_eq!(rest.len(), 1, "the payment is published; the stale update is not");

    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let invoices = accounts
        .list_invoices(pb::ListInvoicesRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: invoice.debtor_id.clone(),
        })
        .await
        .expect("invoices")
        .into_inner()
        .invoices;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0].status(), pb::InvoiceStatus::Paid);
    assert_eq!(invoices[0].version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_service_and_exits_cleanly() {
    let mut stack = Stack::start().await;
    for name in ["accounts", "scheduling", "channels"] {
        let service = stack.service(name);
        let pid = service.child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(25);
        let status = loop {
            if let Some(status) = service.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} did not exit within 25 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.success(), "{name} exited with {status}");
    }
}
