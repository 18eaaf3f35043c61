//! The ledger through its gRPC API and the ERP topic, with scheduling reacting to it.

use std::time::Duration;

use crate::helpers::Grpc;
use chrono::{Days, NaiveDate, Utc};
use recobro_common::time;
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::scheduling_service_client::SchedulingServiceClient;
use recobro_proto::v1::{self as pb, account_event};

use crate::HOP;
use crate::helpers::{Stack, encode};

fn day(offset: i64) -> NaiveDate {
    let today = Utc::now().date_naive();
    if offset >= 0 {
        today + Days::new(offset as u64)
    } else {
        today - Days::new(offset.unsigned_abs())
    }
}

fn cop(amount_minor: i64) -> Option<pb::Money> {
    Some(pb::Money {
        amount_minor,
        currency: "COP".into(),
    })
}

/// A tenant with one company debtor (two contacts) in the United States zone where it is midday.
pub(crate) async fn ledger_with_debtor(
    stack: &Stack,
    tenant: &str,
) -> (AccountsServiceClient<Grpc>, pb::GetDebtorResponse) {
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    accounts
        .upsert_tenant(pb::UpsertTenantRequest {
            tenant: Some(pb::Tenant {
                tenant_id: tenant.into(),
                name: "Acme".into(),
                role: pb::TenantRole::Creditor as i32,
            }),
        })
        .await
        .expect("tenant");
    let point = |channel: pb::Channel, address: &str, preferred: bool| pb::ContactPoint {
        channel: channel as i32,
        address: address.into(),
        consent_source: "signed contract".into(),
        preferred,
        ..Default::default()
    };
    let debtor = accounts
        .upsert_debtor(pb::UpsertDebtorRequest {
            tenant_id: tenant.into(),
            debtor: Some(pb::DebtorInput {
                external_id: "C-1".into(),
                name: "Riverside Supplies LLC".into(),
                kind: pb::DebtorKind::Company as i32,
                time_zone: stack.debtor_zone.clone(),
                locale: "es-US".into(),
                country: "US".into(),
                segment: "smb".into(),
                contacts: vec![
                    pb::Contact {
                        name: "Ana Pérez".into(),
                        role: pb::ContactRole::AccountsPayable as i32,
                        points: vec![point(pb::Channel::Email, "ap@riverside.example", true)],
                        ..Default::default()
                    },
                    pb::Contact {
                        name: "Luis Gómez".into(),
                        role: pb::ContactRole::Treasury as i32,
                        points: vec![point(pb::Channel::Sms, "+13055550123", false)],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        })
        .await
        .expect("debtor")
        .into_inner();
    (accounts, debtor)
}

pub(crate) async fn invoice(
    accounts: &mut AccountsServiceClient<Grpc>,
    tenant: &str,
    id: &str,
    amount: i64,
    due: i64,
) -> pb::Invoice {
    accounts
        .upsert_invoice(pb::UpsertInvoiceRequest {
            tenant_id: tenant.into(),
            invoice: Some(pb::InvoiceInput {
                debtor_external_id: "C-1".into(),
                external_id: id.into(),
                number: format!("FE-{id}"),
                amount: cop(amount),
                issue_date: Some(time::date(day(due - 30))),
                due_date: Some(time::date(day(due))),
            }),
        })
        .await
        .expect("invoice")
        .into_inner()
}

/// What the debtor owes per currency, as GetDebtor shows it: (ISO 4217 code, minor units).
async fn balance(
    accounts: &mut AccountsServiceClient<Grpc>,
    tenant: &str,
    debtor_id: &str,
) -> Vec<(String, i64)> {
    let view = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: tenant.into(),
            debtor_id: debtor_id.into(),
        })
        .await
        .expect("debtor")
        .into_inner();
    view.balance
        .into_iter()
        .map(|m| (m.currency, m.amount_minor))
        .collect()
}

fn settlement(
    tenant: &str,
    invoice: &pb::Invoice,
    kind: pb::SettlementKind,
    id: &str,
    amount: i64,
) -> pb::RecordSettlementRequest {
    pb::RecordSettlementRequest {
        tenant_id: tenant.into(),
        invoice_id: invoice.invoice_id.clone(),
        kind: kind as i32,
        external_id: id.into(),
        amount: cop(amount),
        on: Some(time::date(day(0))),
    }
}

fn owed(invoice: &pb::Invoice) -> i64 {
    invoice.outstanding.as_ref().map(|m| m.amount_minor).unwrap_or(-1)
}

/// Polls scheduling until every reminder of the invoice satisfies `done`.
pub(crate) async fn reminders_until(
    stack: &Stack,
    tenant: &str,
    invoice_id: &str,
    done: impl Fn(&[pb::PlannedReminder]) -> bool,
) -> Vec<pb::PlannedReminder> {
    let mut scheduling = SchedulingServiceClient::new(stack.grpc(stack.scheduling_port).await);
    let deadline = tokio::time::Instant::now() + HOP;
    loop {
        let planned = scheduling
            .list_reminders(pb::ListRemindersRequest {
                tenant_id: tenant.into(),
                invoice_id: invoice_id.into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().reminders)
            .unwrap_or_default();
        if !planned.is_empty() && done(&planned) {
            return planned;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reminders never reached the expected state: {planned:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_credit_notes_and_write_offs_reduce_what_is_owed_once_each() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let (mut accounts, debtor) = ledger_with_debtor(&stack, &tenant).await;
    assert_eq!(debtor.contacts.len(), 2, "both contacts stored with their roles");
    let invoice = invoice(&mut accounts, &tenant, "F-1", 1_000_000_00, 10).await;
    assert_eq!(owed(&invoice), 1_000_000_00);

    let paid = accounts
        .record_settlement(settlement(
            &tenant,
            &invoice,
            pb::SettlementKind::Payment,
            "pay-1",
            300_000_00,
        ))
        .await
        .expect("payment")
        .into_inner();
    assert_eq!(owed(&paid), 700_000_00);
    let retried = accounts
        .record_settlement(settlement(
            &tenant,
            &invoice,
            pb::SettlementKind::Payment,
            "pay-1",
            300_000_00,
        ))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(
        owed(&retried),
        700_000_00,
        "the same payment retried is recorded once"
    );
    let credited = accounts
        .record_settlement(settlement(
            &tenant,
            &invoice,
            pb::SettlementKind::CreditNote,
            "nc-1",
            200_000_00,
        ))
        .await
        .expect("credit note")
        .into_inner();
    assert_eq!(owed(&credited), 500_000_00);

    // What the debtor owes sums its open invoices per currency, less what settled them.
    self::invoice(&mut accounts, &tenant, "F-2", 200_000_00, 5).await;
    let in_dollars = pb::UpsertInvoiceRequest {
        tenant_id: tenant.clone(),
        invoice: Some(pb::InvoiceInput {
            debtor_external_id: "C-1".into(),
            external_id: "F-3".into(),
            number: "FE-F-3".into(),
            amount: Some(pb::Money {
                amount_minor: 123_45,
                currency: "USD".into(),
            }),
            issue_date: Some(time::date(day(-20))),
            due_date: Some(time::date(day(10))),
        }),
    };
    accounts
        .upsert_invoice(in_dollars)
        .await
        .expect("an invoice in another currency");
    assert_eq!(
        balance(&mut accounts, &tenant, &invoice.debtor_id).await,
        vec![("COP".into(), 700_000_00), ("USD".into(), 123_45)],
        "per currency, sorted by code"
    );

    let mut wrong = settlement(&tenant, &invoice, pb::SettlementKind::Payment, "pay-2", 1);
    wrong.amount = Some(pb::Money {
        amount_minor: 1,
        currency: "USD".into(),
    });
    let err = accounts
        .record_settlement(wrong)
        .await
        .expect_err("currency mismatch");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("amount.currency"), "{}", err.message());

    let written_off = accounts
        .record_settlement(settlement(
            &tenant,
            &invoice,
            pb::SettlementKind::WriteOff,
            "wo-1",
            500_000_00,
        ))
        .await
        .expect("write-off")
        .into_inner();
    assert_eq!(owed(&written_off), 0);
    assert_eq!(
        written_off.status(),
        pb::InvoiceStatus::Paid,
        "nothing left to collect closes the invoice"
    );
    assert!(written_off.revision > invoice.revision);
    assert_eq!(
        balance(&mut accounts, &tenant, &invoice.debtor_id).await,
        vec![("COP".into(), 200_000_00), ("USD".into(), 123_45)],
        "a paid invoice owes nothing"
    );
    // Scheduling stops the ladder of a settled invoice.
    reminders_until(&stack, &tenant, &invoice.invoice_id, |r| {
        r.iter().all(|r| r.state() != pb::ReminderState::Pending)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_pauses_only_that_invoice_until_it_is_resolved() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let (mut accounts, _) = ledger_with_debtor(&stack, &tenant).await;
    let disputed = invoice(&mut accounts, &tenant, "F-1", 500_000_00, 20).await;
    let other = invoice(&mut accounts, &tenant, "F-2", 800_000_00, 20).await;
    reminders_until(&stack, &tenant, &disputed.invoice_id, |r| r.len() == 5).await;

    let dispute = accounts
        .open_dispute(pb::OpenDisputeRequest {
            tenant_id: tenant.clone(),
            invoice_id: disputed.invoice_id.clone(),
            reason: "mercancía devuelta".into(),
        })
        .await
        .expect("dispute")
        .into_inner();
    let again = accounts
        .open_dispute(pb::OpenDisputeRequest {
            tenant_id: tenant.clone(),
            invoice_id: disputed.invoice_id.clone(),
            reason: "otra".into(),
        })
        .await
        .expect_err("one open dispute per invoice");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    reminders_until(&stack, &tenant, &disputed.invoice_id, |r| {
        r.iter().all(|r| r.state() == pb::ReminderState::Paused)
    })
    .await;
    let untouched = reminders_until(&stack, &tenant, &other.invoice_id, |r| r.len() == 5).await;
    assert!(
        untouched.iter().all(|r| r.state() == pb::ReminderState::Pending),
        "the other invoice keeps its ladder: {untouched:?}"
    );

    accounts
        .resolve_dispute(pb::ResolveDisputeRequest {
            tenant_id: tenant.clone(),
            dispute_id: dispute.dispute_id.clone(),
            resolution: "sin fundamento".into(),
        })
        .await
        .expect("resolved");
    reminders_until(&stack, &tenant, &disputed.invoice_id, |r| {
        r.iter().all(|r| r.state() == pb::ReminderState::Pending)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promise_pauses_the_ladder_and_a_payment_in_full_keeps_it() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let account_events = stack.follow(&stack.topics.account_events);
    let (mut accounts, _) = ledger_with_debtor(&stack, &tenant).await;
    let invoice = invoice(&mut accounts, &tenant, "F-1", 250_000_00, 20).await;
    reminders_until(&stack, &tenant, &invoice.invoice_id, |r| r.len() == 5).await;

    let mut too_much = pb::RecordPromiseRequest {
        tenant_id: tenant.clone(),
        invoice_id: invoice.invoice_id.clone(),
        promised_date: Some(time::date(day(0))),
        amount: cop(300_000_00),
    };
    let err = accounts
        .record_promise(too_much.clone())
        .await
        .expect_err("more than owed");
    assert!(err.message().contains("amount.amount_minor"), "{}", err.message());
    too_much.amount = cop(250_000_00);
    accounts.record_promise(too_much).await.expect("promise");
    reminders_until(&stack, &tenant, &invoice.invoice_id, |r| {
        r.iter().all(|r| r.state() == pb::ReminderState::Paused)
    })
    .await;

    accounts
        .record_settlement(settlement(
            &tenant,
            &invoice,
            pb::SettlementKind::Payment,
            "pay-1",
            250_000_00,
        ))
        .await
        .expect("payment");
    let kept = account_events
        .find(HOP, |r| {
            let event: pb::AccountEvent = r.decode();
            matches!(event.change, Some(account_event::Change::InvoiceChanged(ref c)) if c.reason == "promise_kept")
        })
        .await;
    let event: pb::AccountEvent = kept.decode();
    let Some(account_event::Change::InvoiceChanged(changed)) = event.change else {
        panic!("a change")
    };
    assert!(
        changed.invoice.expect("invoice").promised_date.is_none(),
        "a kept promise is no longer open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_plan_must_add_up_and_replaces_the_ladder() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let (mut accounts, _) = ledger_with_debtor(&stack, &tenant).await;
    // Not yet due, so every step is still pending when the plan arrives.
    let first = invoice(&mut accounts, &tenant, "F-1", 600_000_00, 15).await;
    let second = invoice(&mut accounts, &tenant, "F-2", 400_000_00, 25).await;
    for invoice in [&first, &second] {
        reminders_until(&stack, &tenant, &invoice.invoice_id, |r| {
            r.iter().all(|r| r.state() == pb::ReminderState::Pending)
        })
        .await;
    }
    let instalment = |days: i64, amount: i64| pb::Instalment {
        due_date: Some(time::date(day(days))),
        amount: cop(amount),
    };
    let mut request = pb::CreatePaymentPlanRequest {
        tenant_id: tenant.clone(),
        invoice_ids: vec![first.invoice_id.clone(), second.invoice_id.clone()],
        instalments: vec![instalment(10, 500_000_00), instalment(40, 400_000_00)],
    };
    let err = accounts
        .create_payment_plan(request.clone())
        .await
        .expect_err("short by 100.000");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("instalments") && err.message().contains("100000000"),
        "{}",
        err.message()
    );
    // More instalments than a plan may have: refused, naming the field and the limit.
    request.instalments = (1..=121).map(|n| instalment(n, 1)).collect();
    let err = accounts
        .create_payment_plan(request.clone())
        .await
        .expect_err("121 instalments");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("instalments") && err.message().contains("120"),
        "{}",
        err.message()
    );
    request.instalments = vec![instalment(40, 500_000_00), instalment(10, 500_000_00)];
    let err = accounts
        .create_payment_plan(request.clone())
        .await
        .expect_err("dates must rise");
    assert!(
        err.message().contains("instalments[1].due_date"),
        "{}",
        err.message()
    );
    // The first instalment is due tomorrow: its reminder (two days before) goes out at once.
    request.instalments = vec![instalment(1, 500_000_00), instalment(40, 500_000_00)];
    let plan = accounts
        .create_payment_plan(request.clone())
        .await
        .expect("plan")
        .into_inner();
    assert!(!plan.plan_id.is_empty());
    let again = accounts
        .create_payment_plan(request)
        .await
        .expect_err("already in a plan");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    // The ladder is held; the plan's instalments are reminded instead, once per plan.
    let mut instalments = Vec::new();
    for invoice in [&first, &second] {
        let planned = reminders_until(&stack, &tenant, &invoice.invoice_id, |r| {
            r.iter()
                .filter(|r| r.action != "instalment")
                .all(|r| r.state() == pb::ReminderState::Paused)
        })
        .await;
        instalments.extend(planned.into_iter().filter(|r| r.action == "instalment"));
    }
    let mut steps: Vec<&str> = instalments.iter().map(|r| r.step.as_str()).collect();
    steps.sort();
    assert_eq!(steps, ["instalment-1", "instalment-2"], "{instalments:?}");
    let deliveries = stack.follow(&stack.topics.deliveries);
    let delivered: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(delivered.status(), pb::DeliveryStatus::Sent, "{delivered:?}");
    let mut channels = recobro_proto::v1::channels_service_client::ChannelsServiceClient::new(
        stack.grpc(stack.channels_port).await,
    );
    let sent = channels
        .list_deliveries(pb::ListDeliveriesRequest {
            tenant_id: tenant.clone(),
            debtor_id: first.debtor_id.clone(),
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    assert!(
        sent[0]
            .subject
            .starts_with("Cuota de su plan de pagos: COP\u{a0}500,000"),
        "{}",
        sent[0].subject
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_never_reads_or_changes_another_tenants_ledger() {
    let stack = Stack::start().await;
    let (mut accounts, debtor) = ledger_with_debtor(&stack, &stack.tenant).await;
    let invoice = invoice(&mut accounts, &stack.tenant, "F-1", 100_000_00, 5).await;
    let intruder = format!("{}-other", stack.tenant);
    accounts
        .upsert_tenant(pb::UpsertTenantRequest {
            tenant: Some(pb::Tenant {
                tenant_id: intruder.clone(),
                name: "Other".into(),
                role: pb::TenantRole::Agency as i32,
            }),
        })
        .await
        .expect("second tenant");
    let debtor_id = debtor.debtor.expect("debtor").debtor_id;

    // A request naming another tenant than the token's is refused outright.
    let named = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: intruder.clone(),
            debtor_id: debtor_id.clone(),
        })
        .await
        .expect_err("naming another tenant");
    assert_eq!(named.code(), tonic::Code::PermissionDenied);

    // The other tenant, with its own valid token, finds nothing of ours and changes nothing.
    let token = stack.token(crate::pki::claims(Some(&intruder), crate::pki::ALL_SCOPES));
    let mut other = AccountsServiceClient::new(
        crate::pki::channel(stack.accounts_port, crate::pki::ClientCert::Client, Some(&token)).await,
    );
    let read = other
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: intruder.clone(),
            debtor_id: debtor_id.clone(),
        })
        .await
        .expect_err("read");
    assert_eq!(read.code(), tonic::Code::NotFound);
    let listed = other
        .list_invoices(pb::ListInvoicesRequest {
            tenant_id: String::new(),
            debtor_id: debtor_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("list");
    assert_eq!(
        listed.code(),
        tonic::Code::NotFound,
        "as for a debtor that does not exist"
    );
    let paid = other
        .record_settlement(settlement(
            &intruder,
            &invoice,
            pb::SettlementKind::Payment,
            "p",
            1,
        ))
        .await
        .expect_err("pay");
    assert_eq!(paid.code(), tonic::Code::NotFound);
    let disputed = other
        .open_dispute(pb::OpenDisputeRequest {
            tenant_id: intruder.clone(),
            invoice_id: invoice.invoice_id.clone(),
            reason: "x".into(),
        })
        .await
        .expect_err("dispute");
    assert_eq!(disputed.code(), tonic::Code::NotFound);
    let ours = accounts
        .list_invoices(pb::ListInvoicesRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id,
            ..Default::default()
        })
        .await
        .expect("our invoices")
        .into_inner();
    assert_eq!(ours.invoices.len(), 1);
    assert_eq!(ours.invoices[0].status, pb::InvoiceStatus::Open as i32, "unpaid");
    assert!(!ours.invoices[0].disputed, "undisputed");

    // A token for a tenant that was never created reads nothing.
    let token = stack.token(crate::pki::claims(Some("nobody"), "recobro:read"));
    let mut nobody = AccountsServiceClient::new(
        crate::pki::channel(stack.accounts_port, crate::pki::ClientCert::Client, Some(&token)).await,
    );
    let unknown = nobody
        .get_kpis(pb::GetKpisRequest::default())
        .await
        .expect_err("unknown tenant");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_import_reports_each_bad_line_and_imports_the_rest() {
    let stack = Stack::start().await;
    let (mut accounts, _) = ledger_with_debtor(&stack, &stack.tenant).await;
    let csv = "debtor_id,debtor_name,kind,time_zone,locale,country,email,phone,invoice_id,invoice_number,amount,currency,issue_date,due_date\n\
        D-1,Ferretería El Tornillo SAS,company,America/Bogota,es-CO,CO,tesoreria@tornillo.example,,F-10,FE-10,\"1.250.000,50\",COP,2026-10-01,2026-10-31\n\
        D-2,Panadería Ruiz SL,company,Europe/Madrid,es-ES,ES,,612345678,F-20,2026/20,\"1.840,75\",EUR,2026-10-01,2026-10-31\n\
        D-3,Constructora Austral SpA,company,America/Santiago,es-CL,CL,pagos@austral.example,,F-30,F-30,2450000,CLP,2026-10-01,2026-10-31\n\
        D-4,Comercial Paulista Ltda,company,America/Sao_Paulo,pt-BR,BR,financeiro@paulista.example,,F-40,NF-40,12.5,XYZ,2026-10-01,2026-10-31\n";
    let file = std::env::temp_dir().join(format!("{}-import.csv", stack.id));
    std::fs::write(&file, csv).expect("write csv");
    let output = std::process::Command::new(crate::helpers::bin("recobro-import"))
        .args([
            "--tenant",
            &stack.tenant,
            "--accounts",
            &format!("https://localhost:{}", stack.accounts_port),
        ])
        .arg(&file)
        .env(
            "RECOBRO_TOKEN",
            stack.token(crate::pki::claims(Some(&stack.tenant), "recobro:write")),
        )
        .env("RECOBRO_CA", &crate::pki::pki().ca)
        .env_remove("RECOBRO_CLIENT_CERT")
        .env_remove("RECOBRO_DEV_CLIENT_CERT")
        .output()
        .expect("run recobro-import");
    let report =
        String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "rejected rows make it exit 1: {report}"
    );
    assert!(
        report.contains("line 3: phone"),
        "the server's reason with its line: {report}"
    );
    assert!(
        report.contains("line 5: currency"),
        "the local reason with its line: {report}"
    );
    assert!(report.contains("imported 2 rows, rejected 2"), "{report}");
    for (external, amount) in [("D-1", 1_250_000_50), ("D-3", 2_450_000)] {
        let debtor_id = crate::debtor_id(&stack.tenant, external);
        let invoices = accounts
            .list_invoices(pb::ListInvoicesRequest {
                tenant_id: stack.tenant.clone(),
                debtor_id,
                ..Default::default()
            })
            .await
            .expect("invoices")
            .into_inner()
            .invoices;
        assert_eq!(invoices.len(), 1, "{external}");
        assert_eq!(
            invoices[0].amount.as_ref().map(|m| m.amount_minor),
            Some(amount),
            "{external}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_credit_note_sent_twice_is_applied_once() {
    let stack = Stack::start().await;
    let account_events = stack.follow(&stack.topics.account_events);
    let mut issued = crate::invoice_event(&stack, "evt-1", pb::InvoiceEventKind::Issued, 1, -10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&issued), None)
        .await;
    issued.event_id = "evt-2".into();
    issued.kind = pb::InvoiceEventKind::CreditNote as i32;
    issued.credit_note = Some(pb::CreditNoteRecord {
        external_id: "NC-9".into(),
        amount: cop(250_000_00),
        issue_date: None,
    });
    for event_id in ["evt-2", "evt-3"] {
        issued.event_id = event_id.into();
        stack
            .publish(&stack.erp_topic, "D-1", &encode(&issued), None)
            .await;
    }
    let mut last = None;
    while let Some(received) = account_events.next(Duration::from_secs(5)).await {
        let event: pb::AccountEvent = received.decode();
        if let Some(account_event::Change::InvoiceChanged(changed)) = event.change {
            last = Some(changed);
        }
    }
    let last = last.expect("changes published");
    assert_eq!(last.reason, "credit_note");
    assert_eq!(
        last.invoice.and_then(|i| i.outstanding).map(|m| m.amount_minor),
        Some(1_000_000_00),
        "1.250.000 - 250.000, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_for_a_small_portfolio() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let (mut accounts, _) = ledger_with_debtor(&stack, &tenant).await;
    invoice(&mut accounts, &tenant, "F-1", 100_000_00, 10).await;
    let late = invoice(&mut accounts, &tenant, "F-2", 300_000_00, -40).await;
    accounts
        .record_settlement(settlement(
            &tenant,
            &late,
            pb::SettlementKind::Payment,
            "p-1",
            100_000_00,
        ))
        .await
        .expect("payment");
    let kpis = accounts
        .get_kpis(pb::GetKpisRequest {
            tenant_id: tenant.clone(),
            segment: "smb".into(),
            as_of: None,
        })
        .await
        .expect("kpis")
        .into_inner();
    assert_eq!(kpis.currencies.len(), 1);
    let cop = &kpis.currencies[0];
    let aging = cop.aging.expect("aging");
    assert_eq!((aging.current, aging.days_31_60), (100_000_00, 200_000_00));
    assert_eq!(
        (cop.outstanding_minor, cop.overdue_minor),
        (300_000_00, 200_000_00)
    );
    let ratio = cop.delinquency_ratio.expect("ratio");
    assert!((ratio - 2.0 / 3.0).abs() < 1e-9, "{ratio}");
    let other_segment = accounts
        .get_kpis(pb::GetKpisRequest {
            tenant_id: tenant.clone(),
            segment: "enterprise".into(),
            as_of: None,
        })
        .await
        .expect("kpis")
        .into_inner();
    assert!(
        other_segment.currencies.is_empty(),
        "segments filter the portfolio"
    );
}

/// GetDebtor once `done` holds (the debtor may not exist yet), within a hop.
async fn debtor_until(
    accounts: &mut AccountsServiceClient<Grpc>,
    tenant: &str,
    debtor_id: &str,
    done: impl Fn(&pb::GetDebtorResponse) -> bool,
) -> pb::GetDebtorResponse {
    let deadline = tokio::time::Instant::now() + HOP;
    loop {
        let view = accounts
            .get_debtor(pb::GetDebtorRequest {
                tenant_id: tenant.into(),
                debtor_id: debtor_id.into(),
            })
            .await
            .map(|r| r.into_inner());
        if let Ok(view) = &view
            && done(view)
        {
            return view.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the debtor never reached the expected state: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The debtor's contact point with this address, whatever its state.
fn point_at<'a>(view: &'a pb::GetDebtorResponse, address: &str) -> Option<&'a pb::ContactPoint> {
    view.contacts
        .iter()
        .flat_map(|contact| contact.points.iter())
        .find(|point| point.address == address)
}

fn email_routes(view: &pb::GetDebtorResponse) -> Vec<String> {
    view.debtor
        .iter()
        .flat_map(|debtor| debtor.routes.iter())
        .filter(|route| route.channel() == pb::Channel::Email)
        .map(|route| route.address.clone())
        .collect()
}

/// The ERP's address of debtor D-1 (`crate::invoice_event`), and the one it changes to.
const ERP_EMAIL: &str = "tesoreria@tornillo.example";
const NEW_EMAIL: &str = "cartera@tornillo.example";

/// The ERP's next event about D-1's invoice, with the debtor's email as given.
fn erp_update(stack: &Stack, event_id: &str, version: i64, email: &str) -> pb::InvoiceEvent {
    let mut event = crate::invoice_event(stack, event_id, pb::InvoiceEventKind::Updated, version, 10);
    event.debtor.as_mut().expect("debtor").email = email.into();
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_record_with_a_new_email_retires_the_old_address() {
    let stack = Stack::start().await;
    let account_events = stack.follow(&stack.topics.account_events);
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let debtor_id = crate::debtor_id(&stack.tenant, "D-1");
    let issued = crate::invoice_event(&stack, "evt-1", pb::InvoiceEventKind::Issued, 1, 10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&issued), None)
        .await;
    debtor_until(&mut accounts, &stack.tenant, &debtor_id, |v| {
        point_at(v, ERP_EMAIL).is_some()
    })
    .await;

    let changed = erp_update(&stack, "evt-2", 2, NEW_EMAIL);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&changed), None)
        .await;
    let view = debtor_until(&mut accounts, &stack.tenant, &debtor_id, |v| {
        point_at(v, NEW_EMAIL).is_some()
    })
    .await;
    let old = point_at(&view, ERP_EMAIL).expect("the old address is kept as history");
    assert!(old.retired_at.is_some(), "{old:?}");
    assert_eq!(old.retired_reason, "replaced by the ERP record");
    assert!(!old.preferred);
    let new = point_at(&view, NEW_EMAIL).expect("the new address");
    assert_eq!(new.consent(), pb::Consent::Granted);
    assert_eq!(new.consent_source, "erp");
    assert!(new.preferred && new.retired_at.is_none(), "{new:?}");
    assert_eq!(view.debtor.as_ref().expect("debtor").email, NEW_EMAIL);
    assert_eq!(
        email_routes(&view),
        [NEW_EMAIL],
        "messages go only to the ERP's current address"
    );

    // What channels reads says the same: the old point retired, with why.
    let published = account_events
        .find(HOP, |r| {
            let event: pb::AccountEvent = r.decode();
            matches!(event.change, Some(account_event::Change::DebtorChanged(ref c))
                if c.contacts.iter().flat_map(|c| &c.points).any(|p| p.address == NEW_EMAIL))
        })
        .await;
    assert_eq!(published.key, debtor_id, "keyed by debtor");
    let Some(account_event::Change::DebtorChanged(record)) = published.decode::<pb::AccountEvent>().change
    else {
        panic!("a debtor change")
    };
    assert_eq!(record.reason, "erp");
    assert!(
        record.revision >= 2,
        "the second version of the record: {}",
        record.revision
    );
    let points: Vec<&pb::ContactPoint> = record.contacts.iter().flat_map(|c| &c.points).collect();
    let retired = points
        .iter()
        .find(|p| p.address == ERP_EMAIL)
        .expect("retired points are published too");
    assert_eq!(retired.retired_reason, "replaced by the ERP record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_address_stays_withdrawn_whatever_the_erp_sends_again() {
    let stack = Stack::start().await;
    let mut accounts = AccountsServiceClient::new(stack.grpc(stack.accounts_port).await);
    let tenant = stack.tenant.clone();
    let debtor_id = crate::debtor_id(&tenant, "D-1");
    let issued = crate::invoice_event(&stack, "evt-1", pb::InvoiceEventKind::Issued, 1, 10);
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&issued), None)
        .await;
    let view = debtor_until(&mut accounts, &tenant, &debtor_id, |v| {
        point_at(v, ERP_EMAIL).is_some()
    })
    .await;
    let point_id = point_at(&view, ERP_EMAIL).expect("email").point_id.clone();
    accounts
        .set_consent(pb::SetConsentRequest {
            tenant_id: tenant.clone(),
            debtor_id: debtor_id.clone(),
            point_id: point_id.clone(),
            consent: pb::Consent::Withdrawn as i32,
            source: "debtor letter".into(),
        })
        .await
        .expect("withdrawn");

    // The same record again: applied (the invoice's new version shows it), consent kept.
    stack
        .publish(
            &stack.erp_topic,
            "D-1",
            &encode(&erp_update(&stack, "evt-2", 2, ERP_EMAIL)),
            None,
        )
        .await;
    let deadline = tokio::time::Instant::now() + HOP;
    loop {
        let invoices = accounts
            .list_invoices(pb::ListInvoicesRequest {
                tenant_id: tenant.clone(),
                debtor_id: debtor_id.clone(),
                ..Default::default()
            })
            .await
            .expect("invoices")
            .into_inner()
            .invoices;
        if invoices.iter().any(|i| i.version == 2) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "evt-2 never applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let view = debtor_until(&mut accounts, &tenant, &debtor_id, |_| true).await;
    let point = point_at(&view, ERP_EMAIL).expect("email");
    assert_eq!(
        point.consent(),
        pb::Consent::Withdrawn,
        "a re-sync never re-grants"
    );
    assert_eq!(point.consent_source, "debtor letter");
    assert!(email_routes(&view).is_empty(), "{view:?}");

    // Replaced, then given again: current again, and still withdrawn.
    stack
        .publish(
            &stack.erp_topic,
            "D-1",
            &encode(&erp_update(&stack, "evt-3", 3, NEW_EMAIL)),
            None,
        )
        .await;
    // Applied before the next: events of one batch leave only the debtor's last record.
    debtor_until(&mut accounts, &tenant, &debtor_id, |v| {
        point_at(v, NEW_EMAIL).is_some_and(|p| p.retired_at.is_none())
    })
    .await;
    stack
        .publish(
            &stack.erp_topic,
            "D-1",
            &encode(&erp_update(&stack, "evt-4", 4, ERP_EMAIL)),
            None,
        )
        .await;
    let view = debtor_until(&mut accounts, &tenant, &debtor_id, |v| {
        point_at(v, NEW_EMAIL).is_some_and(|p| p.retired_at.is_some())
    })
    .await;
    let point = point_at(&view, ERP_EMAIL).expect("email");
    assert!(point.retired_at.is_none(), "the ERP's address again: {point:?}");
    assert_eq!(point.consent(), pb::Consent::Withdrawn);
    assert_eq!(point.consent_source, "debtor letter");
    assert!(email_routes(&view).is_empty(), "{view:?}");
    assert_eq!(view.debtor.as_ref().expect("debtor").email, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_pauses_the_debtors_invoices_until_it_is_lifted() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let (mut accounts, debtor) = ledger_with_debtor(&stack, &tenant).await;
    let debtor_id = debtor.debtor.expect("debtor").debtor_id;
    let invoice = invoice(&mut accounts, &tenant, "F-1", 500_000_00, 20).await;
    reminders_until(&stack, &tenant, &invoice.invoice_id, |r| r.len() == 5).await;
    let hold = |hold: bool, reason: &str, source: &str| pb::SetLegalHoldRequest {
        tenant_id: tenant.clone(),
        debtor_id: debtor_id.clone(),
        hold,
        reason: reason.into(),
        source: source.into(),
    };

    let too_long = "x".repeat(201);
    let mut not_a_uuid = hold(true, "bankruptcy", "court notice");
    not_a_uuid.debtor_id = "C-1".into();
    for (request, field) in [
        (hold(true, "", "court notice"), "reason"),
        (hold(true, "bankruptcy", " "), "source"),
        (hold(true, &too_long, "court notice"), "reason"),
        (hold(true, "bankruptcy", &too_long), "source"),
        (not_a_uuid, "debtor_id"),
    ] {
        let err = accounts.set_legal_hold(request).await.expect_err(field);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{field}");
        assert!(err.message().starts_with(field), "{field}: {}", err.message());
    }
    let mut unknown = hold(true, "bankruptcy", "court notice");
    unknown.debtor_id = uuid::Uuid::new_v4().to_string();
    let err = accounts.set_legal_hold(unknown).await.expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);

    let placed = accounts
        .set_legal_hold(hold(
            true,
            "served in collection lawsuit 2026-123",
            "court notice",
        ))
        .await
        .expect("placed")
        .into_inner();
    assert_eq!(placed.debtor_id, debtor_id);
    let standing = placed.legal_hold.expect("a hold stands");
    assert_eq!(standing.reason, "served in collection lawsuit 2026-123");
    assert_eq!(standing.source, "court notice");
    assert!(standing.since.is_some());
    let again = accounts
        .set_legal_hold(hold(true, "bankruptcy", "debtor letter"))
        .await
        .expect("placed again")
        .into_inner();
    assert_eq!(
        again.legal_hold,
        Some(standing.clone()),
        "placing where one stands returns the standing one"
    );
    let view = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: tenant.clone(),
            debtor_id: debtor_id.clone(),
        })
        .await
        .expect("debtor")
        .into_inner();
    assert_eq!(view.legal_hold, Some(standing));
    assert!(view.debtor.expect("debtor").legal_hold);
    reminders_until(&stack, &tenant, &invoice.invoice_id, |r| {
        r.iter().all(|r| r.state() == pb::ReminderState::Paused)
    })
    .await;

    // Another tenant can neither see nor lift it.
    let intruder = format!("{tenant}-other");
    accounts
        .upsert_tenant(pb::UpsertTenantRequest {
            tenant: Some(pb::Tenant {
                tenant_id: intruder.clone(),
                name: "Other".into(),
                role: pb::TenantRole::Creditor as i32,
            }),
        })
        .await
        .expect("second tenant");
    let token = stack.token(crate::pki::claims(Some(&intruder), crate::pki::ALL_SCOPES));
    let mut other = AccountsServiceClient::new(
        crate::pki::channel(stack.accounts_port, crate::pki::ClientCert::Client, Some(&token)).await,
    );
    let mut theirs = hold(false, "", "");
    theirs.tenant_id = intruder;
    let err = other.set_legal_hold(theirs).await.expect_err("not theirs");
    assert_eq!(err.code(), tonic::Code::NotFound);

    let lifted = accounts
        .set_legal_hold(hold(false, "lawsuit withdrawn", "court notice"))
        .await
        .expect("lifted")
        .into_inner();
    assert_eq!(lifted.legal_hold, None);
    let again = accounts
        .set_legal_hold(hold(false, "", ""))
        .await
        .expect("lifting where none stands")
        .into_inner();
    assert_eq!(again.legal_hold, None);
    let view = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: tenant.clone(),
            debtor_id: debtor_id.clone(),
        })
        .await
        .expect("debtor")
        .into_inner();
    assert_eq!(view.legal_hold, None);
    assert!(!view.debtor.expect("debtor").legal_hold);
    reminders_until(&stack, &tenant, &invoice.invoice_id, |r| {
        r.iter().all(|r| r.state() == pb::ReminderState::Pending)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_out_channels_received_withdraws_that_point_with_its_source() {
    let stack = Stack::start().await;
    let tenant = stack.tenant.clone();
    let dead_letters = stack.follow(&stack.topics.dead_letter);
    let (mut accounts, view) = ledger_with_debtor(&stack, &tenant).await;
    let debtor_id = view.debtor.as_ref().expect("debtor").debtor_id.clone();
    let email = point_at(&view, "ap@riverside.example")
        .expect("email")
        .point_id
        .clone();
    let sms = point_at(&view, "+13055550123").expect("sms").point_id.clone();
    // As channels publishes them: keyed by debtor (one partition keeps their order).
    let opt_out =
        |response_id: &str, tenant_id: &str, point_id: &str, source: &str, at: chrono::DateTime<Utc>| {
            pb::DebtorResponse {
                response_id: response_id.into(),
                tenant_id: tenant_id.into(),
                debtor_id: debtor_id.clone(),
                channel: pb::Channel::Email as i32,
                text: "unsubscribe".into(),
                intent: pb::ResponseIntent::OptOut as i32,
                received_at: Some(time::timestamp(at)),
                point_id: point_id.into(),
                source: source.into(),
                ..Default::default()
            }
        };
    let received_at = Utc::now();
    stack
        .publish(
            &stack.topics.responses,
            &debtor_id,
            &encode(&opt_out(
                "r-1",
                &tenant,
                &email,
                "one-click unsubscribe",
                received_at,
            )),
            None,
        )
        .await;
    let view = debtor_until(&mut accounts, &tenant, &debtor_id, |v| {
        point_at(v, "ap@riverside.example").is_some_and(|p| p.consent() == pb::Consent::Withdrawn)
    })
    .await;
    let withdrawn = point_at(&view, "ap@riverside.example").expect("email");
    assert_eq!(withdrawn.consent_source, "one-click unsubscribe");
    assert_eq!(
        withdrawn.consent_at.map(|t| t.seconds),
        Some(received_at.timestamp()),
        "withdrawn as of when it was received"
    );
    assert!(email_routes(&view).is_empty(), "{view:?}");
    let other = point_at(&view, "+13055550123").expect("sms");
    assert_eq!(other.consent(), pb::Consent::Granted, "only that point");

    // Granted again afterwards: an opt-out received before the grant does not undo it.
    accounts
        .set_consent(pb::SetConsentRequest {
            tenant_id: tenant.clone(),
            debtor_id: debtor_id.clone(),
            point_id: email.clone(),
            consent: pb::Consent::Granted as i32,
            source: "debtor call".into(),
        })
        .await
        .expect("granted again");
    for response in [
        opt_out("r-2", &tenant, &email, "reply", received_at),
        opt_out("r-3", &tenant, &sms, "reply", Utc::now()),
    ] {
        stack
            .publish(&stack.topics.responses, &debtor_id, &encode(&response), None)
            .await;
    }
    let view = debtor_until(&mut accounts, &tenant, &debtor_id, |v| {
        point_at(v, "+13055550123").is_some_and(|p| p.consent() == pb::Consent::Withdrawn)
    })
    .await;
    let email_point = point_at(&view, "ap@riverside.example").expect("email");
    assert_eq!(email_point.consent(), pb::Consent::Granted, "{email_point:?}");
    assert_eq!(email_point.consent_source, "debtor call");
    assert_eq!(
        point_at(&view, "+13055550123").expect("sms").consent_source,
        "reply"
    );

    // A response naming another tenant's point is parked with why, and changes nothing.
    stack
        .publish(
            &stack.topics.responses,
            &debtor_id,
            &encode(&opt_out("r-4", "someone-else", &email, "reply", Utc::now())),
            None,
        )
        .await;
    let parked = dead_letters
        .find(HOP, |r| r.header("recobro-dlq-service") == Some("accounts"))
        .await;
    let reason = parked.header("recobro-dlq-reason").expect("reason");
    assert!(
        reason.contains("not a contact point of tenant someone-else"),
        "{reason}"
    );
    let view = debtor_until(&mut accounts, &tenant, &debtor_id, |_| true).await;
    assert_eq!(
        point_at(&view, "ap@riverside.example").expect("email").consent(),
        pb::Consent::Granted
    );
}
