//! Every gRPC call has an owner: TLS, a token from the trusted issuer, the scope the method
//! needs, the token's own tenant, and the client certificate a bound token names. Each RPC of
//! the three services is called by every kind of wrong caller, and nothing changes.

use std::collections::BTreeMap;
use std::time::Duration;

use prost::Message as _;
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::channels_service_client::ChannelsServiceClient;
use recobro_proto::v1::scheduling_service_client::SchedulingServiceClient;
use recobro_proto::v1::{self as pb};
use tonic::{Code, Status};

use crate::helpers::{Grpc, Stack};
use crate::pki::{ALL_SCOPES, ClientCert, SigningKey, channel, claims};

/// Every RPC with the scope it needs: the contract the README states.
const RPCS: [(&str, &str, &str); 31] = [
    ("AccountsService", "UpsertTenant", "recobro:admin"),
    ("AccountsService", "UpsertDebtor", "recobro:write"),
    ("AccountsService", "GetDebtor", "recobro:read"),
    ("AccountsService", "SetConsent", "recobro:write"),
    ("AccountsService", "SetLegalHold", "recobro:write"),
    ("AccountsService", "UpsertInvoice", "recobro:write"),
    ("AccountsService", "ListInvoices", "recobro:read"),
    ("AccountsService", "RecordSettlement", "recobro:write"),
    ("AccountsService", "CreatePaymentPlan", "recobro:write"),
    ("AccountsService", "RecordPromise", "recobro:write"),
    ("AccountsService", "OpenDispute", "recobro:write"),
    ("AccountsService", "ResolveDispute", "recobro:write"),
    ("AccountsService", "BulkImport", "recobro:write"),
    ("AccountsService", "GetKpis", "recobro:read"),
    ("AccountsService", "ListWorkItems", "recobro:read"),
    ("AccountsService", "ClaimWorkItem", "recobro:write"),
    ("AccountsService", "AddWorkItemNote", "recobro:write"),
    ("AccountsService", "ResolveWorkItem", "recobro:write"),
    ("AccountsService", "ListHandoffs", "recobro:read"),
    ("AccountsService", "UpdateHandoff", "recobro:write"),
    ("SchedulingService", "ListReminders", "recobro:read"),
    ("SchedulingService", "PreviewSchedule", "recobro:read"),
    ("SchedulingService", "ListStrategies", "recobro:read"),
    ("ChannelsService", "ListDeliveries", "recobro:read"),
    ("ChannelsService", "ExplainContacts", "recobro:read"),
    ("ChannelsService", "GetContactBudget", "recobro:read"),
    ("ChannelsService", "SendMessage", "recobro:send"),
    ("ChannelsService", "GetConversation", "recobro:read"),
    ("ChannelsService", "ListTemplates", "recobro:read"),
    ("ChannelsService", "PutTemplate", "recobro:templates"),
    ("ChannelsService", "DeleteTemplate", "recobro:templates"),
];

struct Clients {
    accounts: AccountsServiceClient<Grpc>,
    scheduling: SchedulingServiceClient<Grpc>,
    channels: ChannelsServiceClient<Grpc>,
}

async fn clients(stack: &Stack, cert: ClientCert, token: Option<&str>) -> Clients {
    Clients {
        accounts: AccountsServiceClient::new(channel(stack.accounts_port, cert, token).await),
        scheduling: SchedulingServiceClient::new(channel(stack.scheduling_port, cert, token).await),
        channels: ChannelsServiceClient::new(channel(stack.channels_port, cert, token).await),
    }
}

/// The ids a call names: the victim tenant's own.
struct Target {
    tenant: String,
    debtor_id: String,
    invoice_id: String,
    work_item_id: String,
    handoff_id: String,
}

/// A date a week from now: valid wherever a request needs one.
fn soon() -> pb::Date {
    recobro_common::time::date(chrono::Utc::now().date_naive() + chrono::Days::new(7))
}

/// Calls one RPC with a valid request that names the target; only the code matters here.
#[allow(clippy::too_many_lines)]
async fn call(clients: &mut Clients, method: &str, target: &Target) -> Result<(), Status> {
    let tenant_id = target.tenant.clone();
    let debtor_id = target.debtor_id.clone();
    let invoice_id = target.invoice_id.clone();
    let a = &mut clients.accounts;
    let s = &mut clients.scheduling;
    let c = &mut clients.channels;
    match method {
        "UpsertTenant" => a
            .upsert_tenant(pb::UpsertTenantRequest {
                tenant: Some(pb::Tenant {
                    tenant_id,
                    name: "Renamed by an intruder".into(),
                    role: pb::TenantRole::Agency as i32,
                }),
            })
            .await
            .map(|_| ()),
        "UpsertDebtor" => a
            .upsert_debtor(pb::UpsertDebtorRequest {
                tenant_id,
                debtor: Some(pb::DebtorInput {
                    external_id: "C-1".into(),
                    name: "Renamed".into(),
                    kind: pb::DebtorKind::Company as i32,
                    time_zone: "America/Bogota".into(),
                    locale: "es-CO".into(),
                    country: "CO".into(),
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
        "GetDebtor" => a
            .get_debtor(pb::GetDebtorRequest { tenant_id, debtor_id })
            .await
            .map(|_| ()),
        "SetConsent" => a
            .set_consent(pb::SetConsentRequest {
                tenant_id,
                debtor_id,
                point_id: uuid::Uuid::new_v4().to_string(),
                consent: pb::Consent::Withdrawn as i32,
                source: "intruder".into(),
            })
            .await
            .map(|_| ()),
        "SetLegalHold" => a
            .set_legal_hold(pb::SetLegalHoldRequest {
                tenant_id,
                debtor_id,
                hold: true,
                reason: "intruder".into(),
                source: "intruder".into(),
            })
            .await
            .map(|_| ()),
        "UpsertInvoice" => a
            .upsert_invoice(pb::UpsertInvoiceRequest {
                tenant_id,
                invoice: Some(pb::InvoiceInput {
                    debtor_external_id: "C-1".into(),
                    external_id: "F-9".into(),
                    number: "F-9".into(),
                    amount: Some(pb::Money {
                        amount_minor: 1,
                        currency: "COP".into(),
                    }),
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
        "ListInvoices" => a
            .list_invoices(pb::ListInvoicesRequest {
                tenant_id,
                debtor_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "RecordSettlement" => a
            .record_settlement(pb::RecordSettlementRequest {
                tenant_id,
                invoice_id,
                kind: pb::SettlementKind::WriteOff as i32,
                external_id: "intruder".into(),
                amount: Some(pb::Money {
                    amount_minor: 1,
                    currency: "COP".into(),
                }),
                on: Some(soon()),
            })
            .await
            .map(|_| ()),
        "CreatePaymentPlan" => a
            .create_payment_plan(pb::CreatePaymentPlanRequest {
                tenant_id,
                invoice_ids: vec![invoice_id],
                instalments: vec![pb::Instalment {
                    due_date: Some(soon()),
                    amount: Some(pb::Money {
                        amount_minor: 1,
                        currency: "COP".into(),
                    }),
                }],
            })
            .await
            .map(|_| ()),
        "RecordPromise" => a
            .record_promise(pb::RecordPromiseRequest {
                tenant_id,
                invoice_id,
                promised_date: Some(soon()),
                amount: Some(pb::Money {
                    amount_minor: 1,
                    currency: "COP".into(),
                }),
            })
            .await
            .map(|_| ()),
        "OpenDispute" => a
            .open_dispute(pb::OpenDisputeRequest {
                tenant_id,
                invoice_id,
                reason: "intruder".into(),
            })
            .await
            .map(|_| ()),
        "ResolveDispute" => a
            .resolve_dispute(pb::ResolveDisputeRequest {
                tenant_id,
                dispute_id: uuid::Uuid::new_v4().to_string(),
                resolution: "intruder".into(),
            })
            .await
            .map(|_| ()),
        "BulkImport" => {
            let record = pb::ImportRecord {
                tenant_id,
                line: 2,
                debtor: Some(pb::DebtorInput {
                    external_id: "C-2".into(),
                    name: "Imported by an intruder".into(),
                    kind: pb::DebtorKind::Consumer as i32,
                    time_zone: "America/Bogota".into(),
                    locale: "es-CO".into(),
                    country: "CO".into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            a.bulk_import(tokio_stream::iter(vec![record])).await.map(|_| ())
        }
        "GetKpis" => a
            .get_kpis(pb::GetKpisRequest {
                tenant_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "ListWorkItems" => a
            .list_work_items(pb::ListWorkItemsRequest {
                tenant_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "ClaimWorkItem" => a
            .claim_work_item(pb::ClaimWorkItemRequest {
                tenant_id,
                work_item_id: target.work_item_id.clone(),
            })
            .await
            .map(|_| ()),
        "AddWorkItemNote" => a
            .add_work_item_note(pb::AddWorkItemNoteRequest {
                tenant_id,
                work_item_id: target.work_item_id.clone(),
                text: "intruder".into(),
            })
            .await
            .map(|_| ()),
        "ResolveWorkItem" => a
            .resolve_work_item(pb::ResolveWorkItemRequest {
                tenant_id,
                work_item_id: target.work_item_id.clone(),
                outcome: pb::WorkItemOutcome::NoAction as i32,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "ListHandoffs" => a
            .list_handoffs(pb::ListHandoffsRequest {
                tenant_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "UpdateHandoff" => a
            .update_handoff(pb::UpdateHandoffRequest {
                tenant_id,
                handoff_id: target.handoff_id.clone(),
                state: pb::HandoffState::Returned as i32,
                note: "intruder".into(),
            })
            .await
            .map(|_| ()),
        "ListReminders" => s
            .list_reminders(pb::ListRemindersRequest {
                tenant_id,
                invoice_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "PreviewSchedule" => s
            .preview_schedule(pb::PreviewScheduleRequest {
                items: vec![pb::InvoiceChanged {
                    invoice: Some(pb::Invoice {
                        tenant_id,
                        invoice_id,
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "ListStrategies" => s
            .list_strategies(pb::ListStrategiesRequest::default())
            .await
            .map(|_| ()),
        "ListDeliveries" => c
            .list_deliveries(pb::ListDeliveriesRequest {
                tenant_id,
                debtor_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "ExplainContacts" => c
            .explain_contacts(pb::ExplainContactsRequest {
                tenant_id,
                debtor_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "GetContactBudget" => c
            .get_contact_budget(pb::GetContactBudgetRequest { tenant_id, debtor_id })
            .await
            .map(|_| ()),
        "SendMessage" => c
            .send_message(pb::SendMessageRequest {
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                tenant_id,
                channel: pb::Channel::Sms as i32,
                text: "Pague ya".into(),
                debtor_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "GetConversation" => c
            .get_conversation(pb::GetConversationRequest {
                tenant_id,
                debtor_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "ListTemplates" => c
            .list_templates(pb::ListTemplatesRequest {
                tenant_id,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "PutTemplate" => c
            .put_template(pb::PutTemplateRequest {
                tenant_id,
                template_id: "preventive".into(),
                language: "es".into(),
                subject: "Pague aquí".into(),
                body: "https://phishing.example {opt_out}".into(),
            })
            .await
            .map(|_| ()),
        "DeleteTemplate" => c
            .delete_template(pb::DeleteTemplateRequest {
                tenant_id,
                template_id: "preventive".into(),
                language: "es".into(),
            })
            .await
            .map(|_| ()),
        other => panic!("no call for {other}"),
    }
}

/// Rows per table in the three services' schemas: what a refused call must leave unchanged.
async fn table_sizes(stack: &Stack) -> BTreeMap<String, i64> {
    let pool = stack.database_as(None).await.expect("database");
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
         WHERE table_schema IN ('accounts', 'scheduling', 'channels') AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    let mut sizes = BTreeMap::new();
    for (schema, table) in tables {
        let (rows,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM \"{schema}\".\"{table}\""))
            .fetch_one(&pool)
            .await
            .expect("count");
        sizes.insert(format!("{schema}.{table}"), rows);
    }
    pool.close().await;
    sizes
}

fn without(scope: &str) -> String {
    ALL_SCOPES
        .split(' ')
        .filter(|s| *s != scope)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_matrix_covers_every_rpc_the_protos_declare() {
    let set =
        prost_types::FileDescriptorSet::decode(recobro_proto::v1::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut declared: Vec<(String, String)> = set
        .file
        .iter()
        .filter(|file| file.package() == "recobro.v1")
        .flat_map(|file| file.service.iter())
        .flat_map(|service| {
            service
                .method
                .iter()
                .map(move |m| (service.name().to_string(), m.name().to_string()))
        })
        .collect();
    declared.sort();
    let mut covered: Vec<(String, String)> = RPCS
        .iter()
        .map(|(s, m, _)| (s.to_string(), m.to_string()))
        .collect();
    covered.sort();
    assert_eq!(covered, declared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_refuses_every_wrong_caller_and_changes_nothing() {
    let stack = Stack::start().await;
    let (mut accounts, debtor) = crate::accounts::ledger_with_debtor(&stack, &stack.tenant).await;
    let invoice = crate::accounts::invoice(&mut accounts, &stack.tenant, "F-1", 100_000_00, 5).await;
    let target = Target {
        tenant: stack.tenant.clone(),
        debtor_id: debtor.debtor.expect("debtor").debtor_id,
        invoice_id: invoice.invoice_id,
        work_item_id: uuid::Uuid::new_v4().to_string(),
        handoff_id: uuid::Uuid::new_v4().to_string(),
    };
    // Let the ledger's events reach scheduling and settle before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = table_sizes(&stack).await;

    let forger = SigningKey::with_kid(&stack.signing.kid);
    let mut expired = claims(Some(&stack.tenant), ALL_SCOPES);
    expired.age = Duration::from_secs(7200);
    let mut wrong_audience = claims(Some(&stack.tenant), ALL_SCOPES);
    wrong_audience.audience = "another-api".into();
    let other_tenant = format!("{}-other", stack.tenant);
    let mut bound_elsewhere = claims(Some(&stack.tenant), ALL_SCOPES);
    bound_elsewhere.bound_to = Some(std::fs::read(&crate::pki::pki().other_client.0).expect("cert"));
    let cases: Vec<(&str, Option<String>, ClientCert)> = vec![
        ("no token", None, ClientCert::Client),
        (
            "bad signature",
            Some(
                forger
                    .signer()
                    .mint(&claims(Some(&stack.tenant), ALL_SCOPES))
                    .expect("mint"),
            ),
            ClientCert::Client,
        ),
        ("expired", Some(stack.token(expired)), ClientCert::Client),
        (
            "wrong audience",
            Some(stack.token(wrong_audience)),
            ClientCert::Client,
        ),
        (
            "another tenant",
            Some(stack.token(claims(Some(&other_tenant), &without("recobro:admin")))),
            ClientCert::Client,
        ),
        (
            "bound to another certificate",
            Some(stack.token(bound_elsewhere.clone())),
            ClientCert::Client,
        ),
        (
            "bound, no certificate",
            Some(stack.token(bound_elsewhere)),
            ClientCert::None,
        ),
    ];
    for (case, token, cert) in &cases {
        let mut callers = clients(&stack, *cert, token.as_deref()).await;
        for (service, method, _) in RPCS {
            let got = call(&mut callers, method, &target).await;
            let expected = match *case {
                "another tenant" if method == "ListStrategies" => None,
                "another tenant" => Some(Code::PermissionDenied),
                _ => Some(Code::Unauthenticated),
            };
            match expected {
                Some(code) => assert_eq!(
                    got.as_ref().map_err(Status::code).err(),
                    Some(code),
                    "{case}: {service}/{method}: {got:?}"
                ),
                None => assert!(got.is_ok(), "{case}: {service}/{method} is global: {got:?}"),
            }
        }
    }
    // Each method without its scope, with everything else right.
    for (service, method, scope) in RPCS {
        let token = stack.token(claims(Some(&stack.tenant), &without(scope)));
        let mut callers = clients(&stack, ClientCert::Client, Some(&token)).await;
        let got = call(&mut callers, method, &target).await;
        assert_eq!(
            got.as_ref().map_err(Status::code).err(),
            Some(Code::PermissionDenied),
            "missing {scope}: {service}/{method}: {got:?}"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        table_sizes(&stack).await,
        before,
        "a refused call changed nothing"
    );

    // The right caller gets through the guard on every method (its answer may still be a
    // validation error: the point is that it is not refused as a caller).
    let token = stack.token(claims(Some(&stack.tenant), ALL_SCOPES));
    let mut owner = clients(&stack, ClientCert::Client, Some(&token)).await;
    for (service, method, _) in RPCS {
        if let Err(status) = call(&mut owner, method, &target).await {
            assert!(
                !matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied),
                "the owner is refused on {service}/{method}: {status:?}"
            );
        }
    }
    // A token bound to the certificate it comes with is accepted.
    let mut bound = claims(Some(&stack.tenant), "recobro:read");
    bound.bound_to = Some(std::fs::read(&crate::pki::pki().client.0).expect("cert"));
    let token = stack.token(bound);
    let mut holder = clients(&stack, ClientCert::Client, Some(&token)).await;
    holder
        .channels
        .list_templates(pb::ListTemplatesRequest::default())
        .await
        .expect("a bound token over its own certificate");
}

/// The RPCs that take a debtor's, an invoice's, a dispute's, a work item's or a hand-off's id. The others act on the
/// caller's own tenant (its debtors, invoices, templates, KPIs) or on none.
const BY_ID: [&str; 19] = [
    "GetDebtor",
    "SetConsent",
    "SetLegalHold",
    "ListInvoices",
    "RecordSettlement",
    "CreatePaymentPlan",
    "RecordPromise",
    "OpenDispute",
    "ResolveDispute",
    "ListReminders",
    "ListDeliveries",
    "ExplainContacts",
    "GetContactBudget",
    "SendMessage",
    "GetConversation",
    "ClaimWorkItem",
    "AddWorkItemNote",
    "ResolveWorkItem",
    "UpdateHandoff",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_caller_finds_none_of_our_ids_and_changes_nothing() {
    let stack = Stack::start().await;
    let (mut accounts, debtor) = crate::accounts::ledger_with_debtor(&stack, &stack.tenant).await;
    let invoice = crate::accounts::invoice(&mut accounts, &stack.tenant, "F-1", 100_000_00, 5).await;
    let debtor_id = debtor.debtor.expect("debtor").debtor_id;
    // A reply nobody understood: a work item of ours.
    let reply = pb::DebtorResponse {
        response_id: "r-1".into(),
        tenant_id: stack.tenant.clone(),
        debtor_id: debtor_id.clone(),
        intent: pb::ResponseIntent::Other as i32,
        text: "hola".into(),
        received_at: Some(recobro_common::time::timestamp(chrono::Utc::now())),
        invoice_ids: vec![invoice.invoice_id.clone()],
        ..Default::default()
    };
    stack
        .publish(
            &stack.topics.responses,
            &debtor_id,
            &crate::helpers::encode(&reply),
            None,
        )
        .await;
    // And a case handed to legal: a hand-off of ours.
    let to_legal = pb::Escalation {
        escalation_id: "esc-1".into(),
        tenant_id: stack.tenant.clone(),
        debtor_id: debtor_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        kind: "legal".into(),
        step: "legal-60".into(),
        ..Default::default()
    };
    stack
        .publish(
            &stack.topics.escalations,
            &debtor_id,
            &crate::helpers::encode(&to_legal),
            None,
        )
        .await;
    let deadline = tokio::time::Instant::now() + crate::HOP;
    let work_item_id = loop {
        let items = accounts
            .list_work_items(pb::ListWorkItemsRequest::default())
            .await
            .expect("our work items")
            .into_inner()
            .work_items;
        if let Some(item) = items.first() {
            break item.work_item_id.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply never queued an item"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let handoff_id = loop {
        let handoffs = accounts
            .list_handoffs(pb::ListHandoffsRequest::default())
            .await
            .expect("our hand-offs")
            .into_inner()
            .handoffs;
        if let Some(handoff) = handoffs.first() {
            break handoff.handoff_id.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the escalation never made a hand-off"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Our ids, and no tenant named: the caller's own tenant, from its token.
    let ours = Target {
        tenant: String::new(),
        debtor_id: debtor_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        work_item_id,
        handoff_id,
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = table_sizes(&stack).await;
    let view = |accounts: &mut AccountsServiceClient<Grpc>| {
        let request = pb::GetDebtorRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor_id.clone(),
        };
        let mut accounts = accounts.clone();
        async move {
            accounts
                .get_debtor(request)
                .await
                .expect("our debtor")
                .into_inner()
        }
    };
    let ours_before = view(&mut accounts).await;

    let other_tenant = format!("{}-other", stack.tenant);
    let token = stack.token(claims(Some(&other_tenant), &without("recobro:admin")));
    let mut intruder = clients(&stack, ClientCert::Client, Some(&token)).await;
    let mut answers = Vec::new();
    for method in BY_ID {
        let got = call(&mut intruder, method, &ours).await;
        answers.push((
            method,
            got.as_ref().map_err(Status::code).err(),
            format!("{got:?}"),
        ));
    }
    let wrong: Vec<_> = answers
        .iter()
        .filter(|(_, code, _)| *code != Some(Code::NotFound))
        .collect();
    assert!(wrong.is_empty(), "with our ids, as another tenant: {wrong:#?}");
    let theirs = intruder
        .accounts
        .list_work_items(pb::ListWorkItemsRequest::default())
        .await
        .expect("their own queue")
        .into_inner()
        .work_items;
    assert!(
        theirs.is_empty(),
        "another tenant sees our work items: {theirs:?}"
    );
    let theirs = intruder
        .accounts
        .list_handoffs(pb::ListHandoffsRequest::default())
        .await
        .expect("their own hand-offs")
        .into_inner()
        .handoffs;
    assert!(theirs.is_empty(), "another tenant sees our hand-offs: {theirs:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(table_sizes(&stack).await, before, "no row added or removed");
    assert_eq!(
        view(&mut accounts).await,
        ours_before,
        "our debtor and invoices unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_works_without_a_restart_and_a_removed_one_stops_working() {
    let stack = Stack::start().await;
    let old_token = stack.token(claims(Some(&stack.tenant), "recobro:read"));
    let new_key = SigningKey::generate();
    let new_token = new_key
        .signer()
        .mint(&claims(Some(&stack.tenant), "recobro:read"))
        .expect("mint");
    let list = |token: String| {
        let port = stack.channels_port;
        async move {
            let mut channels =
                ChannelsServiceClient::new(channel(port, ClientCert::Client, Some(&token)).await);
            channels
                .list_templates(pb::ListTemplatesRequest::default())
                .await
                .map(|_| ())
        }
    };
    list(old_token.clone()).await.expect("the current key");
    let refused = list(new_token.clone())
        .await
        .expect_err("a key the issuer has not published");
    assert_eq!(refused.code(), Code::Unauthenticated);

    // The issuer publishes the new key beside the old one, then drops the old one.
    crate::pki::write_jwks(&stack.jwks, &[&stack.signing, &new_key]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    list(new_token.clone())
        .await
        .expect("the new key, without a restart");
    list(old_token.clone())
        .await
        .expect("the old key while it is still published");
    crate::pki::write_jwks(&stack.jwks, &[&new_key]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let removed = list(old_token).await.expect_err("a key the issuer removed");
    assert_eq!(removed.code(), Code::Unauthenticated);
    list(new_token).await.expect("the new key still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_in_plaintext_on_its_own_port_and_nothing_else_does() {
    let stack = Stack::start().await;
    // The gRPC port speaks only TLS: a plaintext client gets nothing.
    let plaintext =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", stack.accounts_port))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .await;
    if let Ok(channel) = plaintext {
        let mut accounts = AccountsServiceClient::new(channel);
        let got = accounts.get_kpis(pb::GetKpisRequest::default()).await;
        assert!(got.is_err(), "a plaintext call must not be answered: {got:?}");
    }
    // Each service's health port answers in plaintext, for kubelet's probes, and serves
    // nothing else.
    for (port, service) in stack.health_ports.into_iter().zip([
        "recobro.v1.AccountsService",
        "recobro.v1.SchedulingService",
        "recobro.v1.ChannelsService",
    ]) {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("plaintext health port");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health in plaintext")
            .into_inner();
        assert_eq!(
            status.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        let api = AccountsServiceClient::new(channel)
            .get_kpis(pb::GetKpisRequest::default())
            .await;
        assert_eq!(
            api.expect_err("no API on the health port").code(),
            Code::Unimplemented
        );
    }
    // Health on the TLS port needs no token either.
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        channel(stack.accounts_port, ClientCert::None, None).await,
    );
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "recobro.v1.AccountsService".into(),
        })
        .await
        .expect("health without a token")
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

/// Serves a JWKS file over HTTPS (the run's server certificate), reading it at every request,
/// as an issuer's `jwks_uri` would.
async fn serve_jwks_over_https(path: std::path::PathBuf) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = crate::pki::pki();
    let chain = vec![CertificateDer::from_pem_file(&pki.server_cert).expect("cert")];
    let key = PrivateKeyDer::from_pem_file(&pki.server_key).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, path) = (acceptor.clone(), path.clone());
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0_u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = std::fs::read_to_string(&path).expect("JWKS file");
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_the_issuers_https_jwks_url_trusting_a_private_ca() {
    let key = SigningKey::generate();
    let path = crate::pki::pki().dir.join(format!("jwks-url-{}.json", key.kid));
    crate::pki::write_jwks(&path, &[&key]);
    let port = serve_jwks_over_https(path).await;
    // Channels reads its keys from the URL; the others from the stack's file.
    let stack = Stack::start_configured(
        None,
        vec![
            (
                "RECOBRO_JWKS",
                format!("https://localhost:{port}/.well-known/jwks.json"),
            ),
            ("RECOBRO_JWKS_CA", crate::pki::pki().ca.display().to_string()),
        ],
    )
    .await;
    let token = key
        .signer()
        .mint(&claims(Some(&stack.tenant), "recobro:read"))
        .expect("mint");
    let mut channels =
        ChannelsServiceClient::new(channel(stack.channels_port, ClientCert::Client, Some(&token)).await);
    channels
        .list_templates(pb::ListTemplatesRequest::default())
        .await
        .expect("a token signed with a key the URL publishes");
    // The stack's own file key is not the URL's: refused by channels, accepted by accounts.
    let file_token = stack.token(claims(Some(&stack.tenant), "recobro:read"));
    let mut channels =
        ChannelsServiceClient::new(channel(stack.channels_port, ClientCert::Client, Some(&file_token)).await);
    let refused = channels
        .list_templates(pb::ListTemplatesRequest::default())
        .await
        .expect_err("a key the URL does not publish");
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_speaks_v1_and_v1alpha_lists_only_its_own_service_and_needs_a_token() {
    use tonic_reflection::pb::{v1, v1alpha};
    let stack = Stack::start_configured(None, vec![("RECOBRO_GRPC_REFLECTION", "true".into())]).await;
    let token = stack.token(claims(Some(&stack.tenant), "recobro:read"));
    let expected = vec![
        "grpc.health.v1.Health".to_string(),
        "recobro.v1.ChannelsService".to_string(),
    ];

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(
        channel(stack.channels_port, ClientCert::Client, Some(&token)).await,
    );
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("v1 reflection")
        .into_inner();
    let answer = answers.message().await.expect("answer").expect("one answer");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("a list of services");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, expected);

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(
        channel(stack.channels_port, ClientCert::Client, Some(&token)).await,
    );
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("v1alpha reflection, as ghz speaks it")
        .into_inner();
    let answer = answers.message().await.expect("answer").expect("one answer");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("a list of services");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, expected);

    // An error's google.rpc.BadRequest detail is described too, with every file it imports,
    // so a reflection client (grpcurl, ghz) decodes it without proto files of its own.
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(
        channel(stack.channels_port, ClientCert::Client, Some(&token)).await,
    );
    let mut wanted = vec![
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "google.rpc.BadRequest".to_string(),
        ),
    ];
    let mut described = std::collections::BTreeSet::new();
    let mut messages = std::collections::BTreeSet::new();
    while let Some(request) = wanted.pop() {
        let mut answers = client
            .server_reflection_info(tokio_stream::iter(vec![v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(request.clone()),
            }]))
            .await
            .expect("reflection")
            .into_inner();
        let answer = answers.message().await.expect("answer").expect("one answer");
        let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
            answer.message_response
        else {
            panic!("{request:?} is not described: {:?}", answer.message_response);
        };
        for bytes in files.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a file descriptor");
            let package = file.package().to_string();
            messages.extend(
                file.message_type
                    .iter()
                    .map(|m| format!("{package}.{}", m.name())),
            );
            for dependency in &file.dependency {
                if !described.contains(dependency) {
                    wanted.push(v1::server_reflection_request::MessageRequest::FileByFilename(
                        dependency.clone(),
                    ));
                }
            }
            described.insert(file.name().to_string());
        }
    }
    assert!(messages.contains("google.rpc.BadRequest"), "{messages:?}");

    // Without a token, reflection is refused like any API.
    let mut anonymous = v1::server_reflection_client::ServerReflectionClient::new(
        channel(stack.channels_port, ClientCert::Client, None).await,
    );
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let refused = anonymous
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated);
}
