//! Strategies end to end: preview equals what is emitted, segment rules and arms, escalation
//! steps, steps that reach the contact role they target, and a legal hold that holds them all.

use std::time::Duration;

use chrono::Utc;
use recobro_common::time;
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::scheduling_service_client::SchedulingServiceClient;
use recobro_proto::v1::{self as pb};

use crate::accounts::{invoice, ledger_with_debtor};
use crate::helpers::{Stack, encode};
use crate::{HOP, debtor_id, invoice_id, invoice_of};

/// What accounts will publish for `event`, for asking scheduling's preview about it.
pub(crate) fn as_published(stack: &Stack, event: &pb::InvoiceEvent) -> pb::InvoiceChanged {
    let record = event.invoice.clone().expect("invoice");
    let debtor = event.debtor.clone().expect("debtor");
    let debtor_id = debtor_id(&stack.tenant, &debtor.external_id);
    pb::InvoiceChanged {
        invoice: Some(pb::Invoice {
            invoice_id: invoice_id(&stack.tenant, &record.external_id),
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor_id.clone(),
            external_id: record.external_id,
            number: record.number,
            outstanding: record.amount.clone(),
            amount: record.amount,
            issue_date: record.issue_date,
            due_date: record.due_date,
            status: pb::InvoiceStatus::Open as i32,
            version: event.version,
            revision: 1,
            ..Default::default()
        }),
        debtor: Some(pb::Debtor {
            debtor_id,
            tenant_id: stack.tenant.clone(),
            external_id: debtor.external_id,
            name: debtor.name,
            kind: debtor.kind,
            time_zone: debtor.time_zone,
            locale: debtor.locale,
            country: debtor.country,
            email: debtor.email,
            ..Default::default()
        }),
        reason: "erp".into(),
    }
}

async fn planned(
    stack: &Stack,
    invoice: &str,
    done: impl Fn(&[pb::PlannedReminder]) -> bool,
) -> Vec<pb::PlannedReminder> {
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let deadline = tokio::time::Instant::now() + HOP;
    loop {
        let reminders = scheduling
            .list_reminders(pb::ListRemindersRequest {
                tenant_id: stack.tenant.clone(),
                invoice_id: invoice.into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().reminders)
            .unwrap_or_default();
        if !reminders.is_empty() && done(&reminders) {
            return reminders;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never planned as expected: {reminders:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_is_exactly_what_is_planned_and_emitted() {
    let stack = Stack::start().await;
    let reminders = stack.follow(&stack.topics.reminders_due);
    let event = invoice_of(&stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let preview = scheduling
        .preview_schedule(pb::PreviewScheduleRequest {
            items: vec![as_published(&stack, &event)],
            strategy_id: String::new(),
            as_of: Some(time::timestamp(Utc::now())),
        })
        .await
        .expect("preview")
        .into_inner()
        .previews
        .remove(0);
    assert_eq!(preview.strategy_id, "standard");
    assert_eq!(preview.reminders.len(), 5);

    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let emitted: pb::ReminderDue = reminders.find(HOP, |_| true).await.decode();
    let stored = planned(&stack, &preview.invoice_id, |r| {
        r.iter().any(|r| r.state() == pb::ReminderState::Emitted)
    })
    .await;
    for expected in &preview.reminders {
        let actual = stored
            .iter()
            .find(|r| r.step == expected.step)
            .expect("the same steps");
        assert_eq!(actual.reminder_id, expected.reminder_id, "{}", expected.step);
        assert_eq!(
            (&actual.strategy_id, &actual.arm, &actual.action),
            (&expected.strategy_id, &expected.arm, &expected.action)
        );
        match expected.state() {
            // The step due now fires at once; the preview's "now" is a moment earlier.
            pb::ReminderState::Pending if actual.state() == pb::ReminderState::Emitted => {
                assert_eq!(
                    emitted.step, expected.step,
                    "the step preview put first is the one emitted"
                );
            }
            pb::ReminderState::Pending => assert_eq!(actual.fire_at, expected.fire_at, "{}", expected.step),
            state => assert_eq!(actual.state(), state, "{}", expected.step),
        }
    }
    assert_eq!(
        (emitted.strategy_id.as_str(), emitted.arm.as_str()),
        (preview.strategy_id.as_str(), preview.arm.as_str())
    );

    // Pages of two follow each other to the same reminders, in the same order.
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let (mut paged, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page = scheduling
            .list_reminders(pb::ListRemindersRequest {
                tenant_id: stack.tenant.clone(),
                invoice_id: preview.invoice_id.clone(),
                page_size: 2,
                page_token: token,
            })
            .await
            .expect("a page")
            .into_inner();
        assert!(page.reminders.len() <= 2);
        paged.extend(page.reminders.into_iter().map(|r| r.reminder_id));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let whole: Vec<String> = stored.iter().map(|r| r.reminder_id.clone()).collect();
    assert_eq!(paged, whole);
    assert_eq!(pages, whole.len().div_ceil(2));

    // Strategies, one per page, by id.
    let all = scheduling
        .list_strategies(pb::ListStrategiesRequest::default())
        .await
        .expect("strategies")
        .into_inner();
    assert!(all.next_page_token.is_empty() && all.strategies.len() >= 2);
    let (mut ids, mut token) = (Vec::new(), String::new());
    loop {
        let page = scheduling
            .list_strategies(pb::ListStrategiesRequest {
                page_size: 1,
                page_token: token,
            })
            .await
            .expect("a page")
            .into_inner();
        assert_eq!(page.strategies.len(), 1);
        ids.push(page.strategies[0].strategy_id.clone());
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut sorted: Vec<String> = all.strategies.iter().map(|s| s.strategy_id.clone()).collect();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_b2b_invoices_follow_their_strategy_and_a_late_one_hears_the_final_notice_before_any_escalation()
 {
    let stack = Stack::start().await;
    let reminders = stack.follow(&stack.topics.reminders_due);
    let escalations = stack.follow(&stack.topics.escalations);
    let mut event = invoice_of(&stack, "F-9", "evt-1", pb::InvoiceEventKind::Issued, 1, -16);
    event.debtor.as_mut().expect("debtor").kind = pb::DebtorKind::Company as i32;
    event.invoice.as_mut().expect("invoice").amount = Some(pb::Money {
        amount_minor: 25_000_000_00,
        currency: "COP".into(),
    });
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let preview = scheduling
        .preview_schedule(pb::PreviewScheduleRequest {
            items: vec![as_published(&stack, &event)],
            ..Default::default()
        })
        .await
        .expect("preview")
        .into_inner()
        .previews
        .remove(0);
    assert_eq!(preview.strategy_id, "b2b-large");
    assert!(["champion", "early-sms"].contains(&preview.arm.as_str()));
    // Forcing a strategy answers "what if".
    let forced = scheduling
        .preview_schedule(pb::PreviewScheduleRequest {
            items: vec![as_published(&stack, &event)],
            strategy_id: "standard".into(),
            as_of: None,
        })
        .await
        .expect("forced preview")
        .into_inner();
    assert_eq!(forced.previews[0].strategy_id, "standard");
    // Dates no ladder can plan are refused, naming the field, and the service goes on.
    let mut far = as_published(&stack, &event);
    far.invoice.as_mut().expect("invoice").due_date = Some(pb::Date {
        year: 262142,
        month: 12,
        day: 31,
    });
    let err = scheduling
        .preview_schedule(pb::PreviewScheduleRequest {
            items: vec![far],
            ..Default::default()
        })
        .await
        .expect_err("a due date in year 262142");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("invoice.due_date"), "{}", err.message());
    let err = scheduling
        .preview_schedule(pb::PreviewScheduleRequest {
            items: vec![as_published(&stack, &event)],
            strategy_id: String::new(),
            as_of: Some(prost_types::Timestamp {
                seconds: 8_000_000_000_000,
                nanos: 0,
            }),
        })
        .await
        .expect_err("an as_of in year 255,000");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("as_of"), "{}", err.message());
    // A portfolio larger than one call may plan is refused, naming the limit.
    let err = scheduling
        .preview_schedule(pb::PreviewScheduleRequest {
            items: vec![as_published(&stack, &event); 1_001],
            ..Default::default()
        })
        .await
        .expect_err("1,001 invoices in one preview");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("items") && err.message().contains("1000"),
        "{}",
        err.message()
    );

    // 16 days late: both the final notice (day 10) and the hand-off (day 15) have passed. The
    // final notice goes now; the hand-off waits the strategy's three days after it.
    let previewed = |step: &str| {
        preview
            .reminders
            .iter()
            .find(|r| r.step == step)
            .unwrap_or_else(|| panic!("{step} previewed"))
            .clone()
    };
    let secs = |r: &pb::PlannedReminder| r.fire_at.as_ref().map(|t| t.seconds).unwrap_or_default();
    assert!(
        secs(&previewed("collector-15")) >= secs(&previewed("overdue-10")) + 3 * 86_400,
        "{preview:?}"
    );
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&event), None)
        .await;
    let reminder: pb::ReminderDue = reminders.find(HOP, |_| true).await.decode();
    assert_eq!(
        (reminder.step.as_str(), reminder.template_id.as_str()),
        ("overdue-10", "final_notice")
    );
    assert_eq!(
        (reminder.strategy_id.as_str(), reminder.arm.as_str()),
        ("b2b-large", preview.arm.as_str()),
        "the debtor's arm never flips"
    );
    assert_eq!(reminder.invoice_id, preview.invoice_id);
    let stored = planned(&stack, &preview.invoice_id, |r| {
        r.iter().any(|r| r.state() == pb::ReminderState::Emitted)
    })
    .await;
    let step = |name: &str| stored.iter().find(|r| r.step == name).expect("stored");
    let emitted_at = reminder.due_at.as_ref().map(|t| t.seconds).unwrap_or_default();
    assert_eq!(step("collector-15").state(), pb::ReminderState::Pending);
    assert!(
        secs(step("collector-15")) >= emitted_at + 3 * 86_400,
        "{stored:?}"
    );
    assert!(
        escalations.next(Duration::from_secs(3)).await.is_none(),
        "no hand-off with the final notice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_reaches_the_contact_role_it_targets_and_never_one_who_opted_out() {
    let stack = Stack::start().await;
    let reminders = stack.follow(&stack.topics.reminders_due);
    let tenant = stack.tenant.clone();
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    accounts
        .upsert_tenant(pb::UpsertTenantRequest {
            tenant: Some(pb::Tenant {
                tenant_id: tenant.clone(),
                name: "Acme".into(),
                role: pb::TenantRole::Creditor as i32,
            }),
        })
        .await
        .expect("tenant");
    let contact = |name: &str, role: pb::ContactRole, email: &str| pb::Contact {
        name: name.into(),
        role: role as i32,
        points: vec![pb::ContactPoint {
            channel: pb::Channel::Email as i32,
            address: email.into(),
            consent_source: "contract".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let debtor = accounts
        .upsert_debtor(pb::UpsertDebtorRequest {
            tenant_id: tenant.clone(),
            debtor: Some(pb::DebtorInput {
                external_id: "C-1".into(),
                name: "Riverside Supplies LLC".into(),
                kind: pb::DebtorKind::Company as i32,
                time_zone: stack.debtor_zone.clone(),
                locale: "en-US".into(),
                country: "US".into(),
                contacts: vec![
                    contact(
                        "Tess Treasury",
                        pb::ContactRole::Treasury,
                        "treasury@riverside.example",
                    ),
                    contact(
                        "Amy Payables",
                        pb::ContactRole::AccountsPayable,
                        "ap@riverside.example",
                    ),
                ],
                ..Default::default()
            }),
        })
        .await
        .expect("debtor")
        .into_inner();
    let invoice = |id: &str| pb::UpsertInvoiceRequest {
        tenant_id: tenant.clone(),
        invoice: Some(pb::InvoiceInput {
            debtor_external_id: "C-1".into(),
            external_id: id.into(),
            number: id.into(),
            amount: Some(pb::Money {
                amount_minor: 500_00,
                currency: "USD".into(),
            }),
            issue_date: Some(time::date(Utc::now().date_naive() - chrono::Duration::days(40))),
            due_date: Some(time::date(Utc::now().date_naive() - chrono::Duration::days(10))),
        }),
    };
    accounts.upsert_invoice(invoice("INV-1")).await.expect("invoice");
    let first: pb::ReminderDue = reminders.find(HOP, |_| true).await.decode();
    assert_eq!(
        (first.contact_role.as_str(), first.recipient.as_str()),
        ("accounts_payable", "ap@riverside.example"),
        "the step's first role"
    );

    // Accounts payable asks not to be emailed: the next step goes to treasury.
    let ap_point = debtor
        .contacts
        .iter()
        .find(|c| c.role() == pb::ContactRole::AccountsPayable)
        .and_then(|c| c.points.first())
        .expect("point")
        .point_id
        .clone();
    accounts
        .set_consent(pb::SetConsentRequest {
            tenant_id: tenant.clone(),
            debtor_id: String::new(),
            point_id: ap_point,
            consent: pb::Consent::Withdrawn as i32,
            source: "phone call".into(),
        })
        .await
        .expect("withdrawn");
    accounts.upsert_invoice(invoice("INV-2")).await.expect("invoice");
    let second: pb::ReminderDue = reminders
        .find(HOP, |r| {
            r.decode::<pb::ReminderDue>().invoice.map(|i| i.number) == Some("INV-2".into())
        })
        .await
        .decode();
    assert_eq!(
        (second.contact_role.as_str(), second.recipient.as_str()),
        ("treasury", "treasury@riverside.example")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_holds_every_reminder_instalments_too_until_it_is_lifted() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let (mut accounts, debtor) = ledger_with_debtor(&stack, &tenant).await;
    let debtor_id = debtor.debtor.expect("debtor").debtor_id;
    // Not yet due, so every step is still pending when the hold arrives.
    let ladder = invoice(&mut accounts, &tenant, "F-1", 500_000_00, 20).await;
    let in_plan = invoice(&mut accounts, &tenant, "F-2", 400_000_00, 20).await;
    let instalment = |days: i64| pb::Instalment {
        due_date: Some(time::date(Utc::now().date_naive() + chrono::Duration::days(days))),
        amount: Some(pb::Money {
            amount_minor: 200_000_00,
            currency: "COP".into(),
        }),
    };
    accounts
        .create_payment_plan(pb::CreatePaymentPlanRequest {
            tenant_id: tenant.clone(),
            invoice_ids: vec![in_plan.invoice_id.clone()],
            instalments: vec![instalment(30), instalment(60)],
        })
        .await
        .expect("plan");
    let is = |state: pb::ReminderState| move |r: &pb::PlannedReminder| r.state() == state;
    let instalments_only = |r: &pb::PlannedReminder| r.action == "instalment";
    planned(&stack, &ladder.invoice_id, |r| {
        r.iter().all(is(pb::ReminderState::Pending))
    })
    .await;
    planned(&stack, &in_plan.invoice_id, |r| {
        r.iter().filter(|r| instalments_only(r)).count() == 2
            && r.iter()
                .filter(|r| instalments_only(r))
                .all(is(pb::ReminderState::Pending))
    })
    .await;

    let set_hold = |hold: bool| pb::SetLegalHoldRequest {
        tenant_id: tenant.clone(),
        debtor_id: debtor_id.clone(),
        hold,
        reason: "served in collection lawsuit 2026-123".into(),
        source: "court notice".into(),
    };
    accounts.set_legal_hold(set_hold(true)).await.expect("held");
    for invoice in [&ladder, &in_plan] {
        planned(&stack, &invoice.invoice_id, |r| {
            r.iter().all(is(pb::ReminderState::Paused))
        })
        .await;
    }

    // Lifted: the ladder resumes as after a resolved dispute; the plan's instalments resume and
    // its invoice's ladder stays held by the plan.
    accounts.set_legal_hold(set_hold(false)).await.expect("lifted");
    planned(&stack, &ladder.invoice_id, |r| {
        r.iter().all(is(pb::ReminderState::Pending))
    })
    .await;
    planned(&stack, &in_plan.invoice_id, |r| {
        r.iter().all(|r| {
            let expected = if instalments_only(r) {
                pb::ReminderState::Pending
            } else {
                pb::ReminderState::Paused
            };
            r.state() == expected
        })
    })
    .await;
}
