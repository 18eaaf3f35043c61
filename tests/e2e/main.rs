//! End-to-end: the three real binaries over real Kafka, Redis and PostgreSQL.
//! Needs the local stack (`deploy/local/up.sh`) and the binaries (`cargo build --bins`);
//! `make test` does both.

mod accounts;
mod channels;
mod clients;
mod consent;
mod helpers;
mod identity;
mod ledger;
mod limits;
mod listening;
mod metrics;
mod migrations;
mod payments;
mod pki;
mod recipients;
mod scheduling;
mod statements;
mod traces;
mod trust;

use std::time::Duration;

use chrono::{Days, Utc};
use helpers::{RedisRelay, Stack, encode, post_json};
use recobro_common::time;
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::channels_service_client::ChannelsServiceClient;
use recobro_proto::v1::scheduling_service_client::SchedulingServiceClient;
use recobro_proto::v1::{self as pb, account_event};

pub(crate) const HOP: Duration = Duration::from_secs(60);

/// An invoice of debtor D-1: a consumer in the United States (contact allowed 08:00-21:00 every
/// day), placed in a time zone where it is midday now so the test never depends on the hour.
pub(crate) fn invoice_event(
    stack: &Stack,
    event_id: &str,
    kind: pb::InvoiceEventKind,
    version: i64,
    due_in_days: i64,
) -> pb::InvoiceEvent {
    invoice_of(stack, "F-1", event_id, kind, version, due_in_days)
}

pub(crate) fn invoice_of(
    stack: &Stack,
    invoice: &str,
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
            time_zone: stack.debtor_zone.clone(),
            locale: "es-US".into(),
            country: "US".into(),
            email: "tesoreria@tornillo.example".into(),
            phone: "+573001234567".into(),
            region: String::new(),
            ..Default::default()
        }),
        invoice: Some(pb::InvoiceRecord {
            external_id: invoice.into(),
            number: format!("FE-{invoice}"),
            amount: Some(pb::Money {
                amount_minor: 1_250_000_00,
                currency: "COP".into(),
            }),
            issue_date: Some(time::date(due - chrono::Duration::days(30))),
            due_date: Some(time::date(due)),
        }),
        credit_note: None,
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
            .publish(&stack.erp_topic, "D-1", &encode(&event), Some(&traceparent))
            .await;
    }

    // 2. accounts stores it and publishes the change, continuing the ERP's trace.
    let changed = account_events.find(HOP, is_invoice_change).await;
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
    assert_eq!(invoice.number, "FE-F-1");
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
            ..Default::default()
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
    let mut channels = ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let budget = channels
        .get_contact_budget(pb::GetContactBudgetRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: invoice.debtor_id.clone(),
        })
        .await
        .expect("the debtor's budget")
        .into_inner();
    let daily: Vec<_> = budget
        .caps
        .iter()
        .filter(|cap| cap.window == "local_day")
        .collect();
    assert!(
        !daily.is_empty() && daily.iter().all(|cap| cap.used == 1),
        "one contact counted today: {daily:?}"
    );
    assert!(
        budget.packs.iter().any(|pack| pack.starts_with("US@")),
        "{:?}",
        budget.packs
    );
    let sent = channels
        .list_deliveries(pb::ListDeliveriesRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: invoice.debtor_id.clone(),
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    assert_eq!(sent.len(), 1, "the duplicate ERP event caused no second reminder");
    assert_eq!(sent[0].subject, "Factura FE-F-1 vencida");
    // CLDR's es-US writes pesos with the ISO code, US separators and no cents when none are owed.
    assert!(sent[0].body.contains("COP\u{a0}1,250,000"), "{}", sent[0].body);
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

    // The duplicate ERP event had no second effect anywhere. (The tenant's role, published when
    // the stack made the tenant, is keyed by tenant: on another partition it may arrive late.)
    // The reply's own change is the one expected: the invoice held as claimed paid.
    let later_changes: Vec<_> = account_events
        .drain(Duration::from_secs(2))
        .await
        .into_iter()
        .filter(|r| r.decode::<pb::AccountEvent>().debtor_id == invoice.debtor_id)
        .filter(|r| {
            !matches!(
                r.decode::<pb::AccountEvent>().change,
                Some(account_event::Change::InvoiceChanged(c)) if c.reason == "claimed_paid"
                    && c.invoice.as_ref().is_some_and(|i| i.claimed_paid_until.is_some())
            )
        })
        .collect();
    assert!(
        later_changes.is_empty(),
        "a redelivered event published more changes: {:?}",
        later_changes
            .iter()
            .map(|r| {
                let event: pb::AccountEvent = r.decode();
                match event.change {
                    Some(account_event::Change::DebtorChanged(c)) => {
                        format!("debtor {} r{}", c.reason, c.revision)
                    }
                    Some(account_event::Change::InvoiceChanged(c)) => format!("invoice {}", c.reason),
                    other => format!("{other:?}"),
                }
            })
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_parked_with_their_reason_and_do_not_block_the_next() {
    let stack = Stack::start().await;
    let dead_letters = stack.follow(&stack.topics.dead_letter);
    let account_events = stack.follow(&stack.topics.account_events);

    stack
        .publish(&stack.erp_topic, "D-1", b"\xff\xfenot protobuf", None)
        .await;
    let mut bad_currency = invoice_event(&stack, "evt-bad", pb::InvoiceEventKind::Issued, 1, 5);
    bad_currency
        .invoice
        .as_mut()
        .and_then(|i| i.amount.as_mut())
        .expect("amount")
        .currency = "PESOS".into();
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&bad_currency), None)
        .await;
    // A due date no calendar arithmetic survives (chrono panics past year 262142).
    let mut far_future = invoice_event(&stack, "evt-far", pb::InvoiceEventKind::Issued, 1, 5);
    far_future.invoice.as_mut().expect("invoice").due_date = Some(pb::Date {
        year: 262142,
        month: 12,
        day: 31,
    });
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&far_future), None)
        .await;
    let good = invoice_event(&stack, "evt-good", pb::InvoiceEventKind::Issued, 1, 5);
    stack.publish(&stack.erp_topic, "D-1", &encode(&good), None).await;

    let first = dead_letters.find(HOP, |_| true).await;
    assert!(
        first
            .header("recobro-dlq-reason")
            .expect("reason")
            .contains("not a recobro.v1.InvoiceEvent")
    );
    assert_eq!(first.header("recobro-dlq-topic"), Some(stack.erp_topic.as_str()));
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
    let third = dead_letters.find(HOP, |_| true).await;
    let reason = third.header("recobro-dlq-reason").expect("reason");
    assert!(
        reason.contains("invoice.due_date") && reason.contains("262142"),
        "the reason names the field: {reason}"
    );

    let changed: pb::AccountEvent = account_events.find(HOP, is_invoice_change).await.decode();
    assert_eq!(
        changed.tenant_id, stack.tenant,
        "the valid event after them went through"
    );

    // The gRPC API names bad fields and never shows one tenant another's debtors.
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let err = accounts
        .upsert_invoice(pb::UpsertInvoiceRequest {
            tenant_id: stack.tenant.clone(),
            invoice: Some(pb::InvoiceInput {
                debtor_external_id: "D-1".into(),
                external_id: "F-FAR".into(),
                number: "FE-FAR".into(),
                amount: Some(pb::Money {
                    amount_minor: 100_00,
                    currency: "COP".into(),
                }),
                issue_date: Some(time::date(Utc::now().date_naive())),
                due_date: Some(pb::Date {
                    year: 262142,
                    month: 1,
                    day: 1,
                }),
            }),
        })
        .await
        .expect_err("a due date out of reach");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("invoice.due_date"), "{}", err.message());
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
        .expect_err("another tenant named");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let token = stack.token(crate::pki::claims(Some("someone-else"), "recobro:read"));
    let mut someone_else = AccountsServiceClient::new(
        crate::pki::channel(stack.accounts_port, crate::pki::ClientCert::Client, Some(&token)).await,
    );
    let err = someone_else
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: String::new(),
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
        .publish(&stack.erp_topic, "D-1", &encode(&issued), None)
        .await;
    let paid = invoice_event(&stack, "evt-2", pb::InvoiceEventKind::Paid, 2, 20);
    stack.publish(&stack.erp_topic, "D-1", &encode(&paid), None).await;
    // Arrives late, from before the payment.
    let stale = invoice_event(&stack, "evt-3", pb::InvoiceEventKind::Updated, 1, 20);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&stale), None)
        .await;

    let first: pb::AccountEvent = account_events.find(HOP, is_invoice_change).await.decode();
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
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().reminders)
            .unwrap_or_default();
        if planned.len() == 5 && planned.iter().all(|r| r.state() == pb::ReminderState::Cancelled) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reminders not all cancelled: {planned:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rest = account_events.drain(Duration::from_secs(2)).await;
    assert_eq!(
        rest.iter().filter(|r| is_invoice_change(r)).count(),
        1,
        "the payment is published; the stale update is not"
    );

    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let invoices = accounts
        .list_invoices(pb::ListInvoicesRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: invoice.debtor_id.clone(),
            ..Default::default()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reminder_the_same_day_is_deferred_until_the_budget_allows() {
    let stack = Stack::start().await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    for (index, invoice) in ["F-1", "F-2"].iter().enumerate() {
        let mut event = invoice_of(
            &stack,
            invoice,
            &format!("evt-{index}"),
            pb::InvoiceEventKind::Issued,
            1,
            -10,
        );
        // A consumer: a company's two invoices due the same day would go as one statement.
        event.debtor.as_mut().expect("debtor").kind = pb::DebtorKind::Consumer as i32;
        stack
            .publish(&stack.erp_topic, "D-1", &encode(&event), None)
            .await;
    }
    let first: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    let second: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    let mut outcomes = [first.status(), second.status()];
    outcomes.sort();
    assert_eq!(
        outcomes,
        [pb::DeliveryStatus::Sent, pb::DeliveryStatus::Deferred],
        "{first:?} {second:?}"
    );
    let deferred = if first.status() == pb::DeliveryStatus::Deferred {
        first
    } else {
        second
    };
    assert!(deferred.reason.contains("per local_day"), "{}", deferred.reason);
    assert!(
        !deferred.rule.is_empty() && deferred.pack.contains('@'),
        "the rule and pack are named: {deferred:?}"
    );
    let not_before = deferred
        .not_before
        .as_ref()
        .and_then(time::from_timestamp)
        .expect("not_before");
    // Tomorrow, when the day's budget resets, at the first allowed hour (08:00 in the US).
    let zone: chrono_tz::Tz = stack.debtor_zone.parse().expect("zone");
    let local = not_before.with_timezone(&zone);
    assert_eq!(
        local.date_naive(),
        Utc::now().with_timezone(&zone).date_naive() + chrono::Duration::days(1)
    );
    assert_eq!(local.format("%H:%M").to_string(), "08:00");

    // Scheduling put the reminder back to pending for exactly that moment.
    let mut channels = ChannelsServiceClient::new(stack.grpc(stack.channels_port).await);
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let deferred_reminder = deferred.reminder_id.clone();
    let deadline = tokio::time::Instant::now() + HOP;
    loop {
        let mut found = None;
        for invoice in ["F-1", "F-2"] {
            let invoice_id = invoice_id(&stack.tenant, invoice);
            let planned = scheduling
                .list_reminders(pb::ListRemindersRequest {
                    tenant_id: stack.tenant.clone(),
                    invoice_id,
                    ..Default::default()
                })
                .await
                .expect("reminders")
                .into_inner()
                .reminders;
            found = found.or(planned.into_iter().find(|r| r.reminder_id == deferred_reminder));
        }
        let reminder = found.expect("the deferred reminder is planned");
        if reminder.state() == pb::ReminderState::Pending {
            assert_eq!(
                reminder.fire_at.as_ref().and_then(time::from_timestamp),
                Some(not_before)
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never rescheduled: {reminder:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // And the audit says why, for both.
    let decisions = channels
        .explain_contacts(pb::ExplainContactsRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: deferred.debtor_id.clone(),
            from: None,
            to: None,
        })
        .await
        .expect("decisions")
        .into_inner()
        .decisions;
    let verdicts: Vec<pb::ContactVerdict> = decisions.iter().map(|d| d.verdict()).collect();
    assert!(
        verdicts.contains(&pb::ContactVerdict::Allowed) && verdicts.contains(&pb::ContactVerdict::Deferred),
        "{decisions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_out_reply_stops_that_channel_at_once() {
    let stack = Stack::start().await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let responses = stack.follow(&stack.topics.responses);
    let first = invoice_of(&stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&first), None)
        .await;
    let sent: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(sent.status(), pb::DeliveryStatus::Sent);
    let (status, body) = post_json(
        stack.http_port,
        "/webhooks/sandbox/replies",
        &format!(r#"{{"reminder_id":"{}","text":"BAJA"}}"#, sent.reminder_id),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let reply: pb::DebtorResponse = responses.find(HOP, |_| true).await.decode();
    assert_eq!(reply.intent(), pb::ResponseIntent::OptOut);

    let second = invoice_of(&stack, "F-2", "evt-2", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&second), None)
        .await;
    let next: pb::DeliveryRecord = deliveries
        .find(HOP, |r| {
            r.decode::<pb::DeliveryRecord>().reminder_id != sent.reminder_id
        })
        .await
        .decode();
    // Never to the address that opted out: refused for consent if the reminder was planned
    // for email before accounts recorded the opt-out, else planned for the debtor's phone.
    match next.channel() {
        pb::Channel::Email => {
            assert_eq!(next.status(), pb::DeliveryStatus::Suppressed, "{next:?}");
            assert_eq!(next.rule, "consent", "{next:?}");
            assert!(next.reason.contains("withdrawn"), "{}", next.reason);
        }
        // The day's budget is spent by the first message: it waits, it is not refused.
        _ => assert_ne!(next.status(), pb::DeliveryStatus::Suppressed, "{next:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_nobody_is_contacted_and_nothing_is_lost() {
    let relay = RedisRelay::start().await;
    let stack = Stack::start_with(Some(format!("rediss://127.0.0.1:{}", relay.port))).await;
    let reminders = stack.follow(&stack.topics.reminders_due);
    let deliveries = stack.follow(&stack.topics.deliveries);
    relay.cut();

    let event = invoice_event(&stack, "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let reminder: pb::ReminderDue = reminders.find(HOP, |_| true).await.decode();
    // The reminder reached channels, but without Redis nobody is contacted.
    assert!(
        deliveries.next(Duration::from_secs(6)).await.is_none(),
        "a delivery happened without the contact budget"
    );

    relay.restore();
    let delivered: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(
        delivered.reminder_id, reminder.reminder_id,
        "the same reminder, not lost"
    );
    assert_eq!(delivered.status(), pb::DeliveryStatus::Sent);
}

/// accounts' id of an ERP record, for looking one up.
/// An invoice's change on accounts.events.v1 (not a debtor's or tenant's record).
pub(crate) fn is_invoice_change(received: &helpers::Received) -> bool {
    let event: pb::AccountEvent = received.decode();
    matches!(event.change, Some(account_event::Change::InvoiceChanged(_)))
}

pub(crate) fn invoice_id(tenant: &str, external_id: &str) -> String {
    recobro_common::ids::invoice_id(tenant, external_id).to_string()
}

pub(crate) fn debtor_id(tenant: &str, external_id: &str) -> String {
    recobro_common::ids::debtor_id(tenant, external_id).to_string()
}
