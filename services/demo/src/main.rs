//! A demo ERP connector: publishes a small portfolio of invoices for a fresh tenant, then shows
//! the reminders they cause, each debtor's plan in their own time, and the debtors' replies with
//! what they change: a claimed-paid hold, a promise, a dispute, an opt-out, and the work queue.

use std::time::Duration;

use chrono::{Days, Utc};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedHeaders;
use recobro_common::config::{Env, ProcessEnv, Topics};
use recobro_common::identity::client::{self, ClientTls};
use recobro_common::kafka::KafkaSettings;
use recobro_common::secret::Secret;
use recobro_common::{kafka, time};
use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::channels_service_client::ChannelsServiceClient;
use recobro_proto::v1::scheduling_service_client::SchedulingServiceClient;
use recobro_proto::v1::{self as pb};
use recobro_token::{Claims, Signer};

/// The demo tenant's ERP connector principal (deploy/local/up.sh gives it a password).
const CONNECTOR: &str = "erp-demo";

/// One invoice of the demo portfolio; `due_in_days` is negative when it is already overdue.
/// Accounts with the same debtor name are one debtor's invoices (a company's reach it as one
/// statement).
#[derive(Clone, Copy)]
struct Account {
    debtor: &'static str,
    kind: pb::DebtorKind,
    zone: &'static str,
    locale: &'static str,
    country: &'static str,
    number: &'static str,
    amount_minor: i64,
    currency: &'static str,
    due_in_days: i64,
}

#[rustfmt::skip]
const PORTFOLIO: &[Account] = &[
    Account { debtor: "Ferretería El Tornillo SAS", kind: pb::DebtorKind::Company, zone: "America/Bogota", locale: "es-CO", country: "CO", number: "FE-1001", amount_minor: 1_250_000_00, currency: "COP", due_in_days: -20 },
    Account { debtor: "Ferretería El Tornillo SAS", kind: pb::DebtorKind::Company, zone: "America/Bogota", locale: "es-CO", country: "CO", number: "FE-1017", amount_minor: 830_000_00, currency: "COP", due_in_days: -20 },
    Account { debtor: "Ferretería El Tornillo SAS", kind: pb::DebtorKind::Company, zone: "America/Bogota", locale: "es-CO", country: "CO", number: "FE-1023", amount_minor: 2_100_000_00, currency: "COP", due_in_days: -12 },
    Account { debtor: "Distribuidora Andina SAC", kind: pb::DebtorKind::Company, zone: "America/Lima", locale: "es-PE", country: "PE", number: "F001-2002", amount_minor: 4_830_50, currency: "PEN", due_in_days: -9 },
    Account { debtor: "María Fernanda López", kind: pb::DebtorKind::Consumer, zone: "America/Mexico_City", locale: "es-MX", country: "MX", number: "A-3003", amount_minor: 12_999_00, currency: "MXN", due_in_days: -2 },
    Account { debtor: "Constructora Austral SpA", kind: pb::DebtorKind::Company, zone: "America/Santiago", locale: "es-CL", country: "CL", number: "F-4004", amount_minor: 2_450_000, currency: "CLP", due_in_days: 0 },
    Account { debtor: "Panadería Hermanos Ruiz SL", kind: pb::DebtorKind::Company, zone: "Europe/Madrid", locale: "es-ES", country: "ES", number: "2026/5005", amount_minor: 1_840_75, currency: "EUR", due_in_days: 2 },
    Account { debtor: "Comercial Paulista Ltda", kind: pb::DebtorKind::Company, zone: "America/Sao_Paulo", locale: "pt-BR", country: "BR", number: "NF-6006", amount_minor: 7_420_90, currency: "BRL", due_in_days: 3 },
    Account { debtor: "Riverside Supplies LLC", kind: pb::DebtorKind::Company, zone: "America/New_York", locale: "en-US", country: "US", number: "INV-7007", amount_minor: 3_200_00, currency: "USD", due_in_days: 10 },
    Account { debtor: "Jorge Ramírez", kind: pb::DebtorKind::Consumer, zone: "America/Bogota", locale: "es-CO", country: "CO", number: "FE-8008", amount_minor: 380_000_00, currency: "COP", due_in_days: 30 },
];

/// A TLS channel with a token of `scope` for the demo tenant, minted with the local stack's dev
/// key (`deploy/local/pki.sh`), as a real client would get one from its issuer.
async fn grpc(env: &impl Env, url: &str, tenant: &str, scope: &str) -> anyhow::Result<client::Authorized> {
    let signer = Signer::from_pem(
        &std::fs::read(env.required("RECOBRO_DEV_SIGNING_KEY")?)?,
        &env.required("RECOBRO_DEV_SIGNING_KID")?,
    )?;
    let token = signer.mint(&Claims {
        issuer: env.required("RECOBRO_TOKEN_ISSUER")?,
        audience: env.required("RECOBRO_TOKEN_AUDIENCE")?,
        subject: "recobro-demo".into(),
        tenant_claim: env.or("RECOBRO_TENANT_CLAIM", "tenant_id"),
        tenant: Some(tenant.to_string()),
        scope: scope.into(),
        lifetime: Duration::from_secs(900),
        age: Duration::ZERO,
        bound_to: None,
    })?;
    let ca = env.required("RECOBRO_DEV_CA")?;
    let tls = ClientTls::from_files(std::path::Path::new(&ca), None)?;
    Ok(client::connect(url, &tls, Some(&token)).await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = ProcessEnv;
    // The local stack's admin principal (deploy/local/env.sh): it onboards the tenant's topic.
    let admin = KafkaSettings::from_env(&env, "admin")?;
    let topics = Topics::with_prefix(&env.or("RECOBRO_TOPIC_PREFIX", ""));
    let accounts_url = env.or("RECOBRO_ACCOUNTS_URL", "https://localhost:50051");
    let scheduling_url = env.or("RECOBRO_SCHEDULING_URL", "https://localhost:50052");
    let channels_url = env.or("RECOBRO_CHANNELS_URL", "https://localhost:50053");
    let webhooks = env.or("RECOBRO_WEBHOOKS_ADDR", "127.0.0.1:8080");
    let tenant = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);

    // Onboarding, as an operator does it: the tenant in the ledger, then its ERP topic, which
    // only its connector (`erp-demo`, made by deploy/local/up.sh) may write.
    AccountsServiceClient::new(grpc(&env, &accounts_url, &tenant, "recobro:admin").await?)
        .upsert_tenant(pb::UpsertTenantRequest {
            tenant: Some(pb::Tenant {
                tenant_id: tenant.clone(),
                name: "Demo Distribuidora".into(),
                role: pb::TenantRole::Creditor as i32,
            }),
        })
        .await?;
    let erp_topic = topics.erp_invoices_of(&tenant);
    recobro_testkit::create_topics(&admin, &[(&erp_topic, 6)]).await?;
    recobro_testkit::grant(
        &admin,
        &recobro_testkit::acl::connector(&topics, CONNECTOR, &tenant),
    )
    .await?;
    let connector = KafkaSettings {
        username: CONNECTOR.into(),
        password: Secret::from_file(
            &env,
            "RECOBRO_DEMO_CONNECTOR_PASSWORD_FILE",
            "erp-demo-kafka-password",
        )?,
        ..admin.clone()
    };

    // Follow deliveries from now on, before publishing, so none is missed.
    let deliveries: StreamConsumer = admin
        .client_config()
        .set("group.id", format!("recobro-demo-{tenant}"))
        .set("auto.offset.reset", "latest")
        .create()?;
    deliveries.subscribe(&[&topics.deliveries])?;
    while deliveries.assignment()?.count() == 0 {
        let _ = tokio::time::timeout(Duration::from_millis(200), deliveries.recv()).await;
    }

    // Published as the connector: the broker refuses it any other tenant's topic.
    let producer = kafka::producer(&connector)?;
    let today = Utc::now().date_naive();
    // One more debtor, wherever it is midday now: contact rules allow its reminder whatever the
    // hour and day the demo runs, so the demo always shows a message and its payment link.
    let midday: &'static str =
        Box::leak(recobro_common::time::zone_at_local_hour(Utc::now(), 12).into_boxed_str());
    let portfolio: Vec<Account> = PORTFOLIO
        .iter()
        .copied()
        .chain(std::iter::once(Account {
            debtor: "Coastal Traders Inc",
            kind: pb::DebtorKind::Company,
            zone: midday,
            locale: "en-US",
            country: "US",
            number: "INV-9009",
            amount_minor: 980_00,
            currency: "USD",
            due_in_days: -3,
        }))
        .collect();
    println!(
        "publishing {} invoices for tenant {tenant} to {}",
        portfolio.len(),
        erp_topic
    );
    for (index, account) in portfolio.iter().enumerate() {
        let (name, zone, number, due_in) =
            (account.debtor, account.zone, account.number, &account.due_in_days);
        // The debtor's ERP id: that of its first invoice in the portfolio.
        let customer = portfolio
            .iter()
            .position(|other| other.debtor == name)
            .unwrap_or(index);
        let due = if *due_in >= 0 {
            today.checked_add_days(Days::new(*due_in as u64))
        } else {
            today.checked_sub_days(Days::new(due_in.unsigned_abs()))
        }
        .expect("a date near today");
        let event = pb::InvoiceEvent {
            event_id: format!("{tenant}-evt-{index}"),
            tenant_id: tenant.clone(),
            kind: pb::InvoiceEventKind::Issued as i32,
            version: 1,
            occurred_at: Some(time::timestamp(Utc::now())),
            debtor: Some(pb::DebtorRecord {
                external_id: format!("C-{customer}"),
                name: name.to_string(),
                kind: account.kind as i32,
                time_zone: zone.to_string(),
                locale: account.locale.to_string(),
                country: account.country.to_string(),
                email: format!("cobranza{customer}@cliente.example"),
                phone: String::new(),
                region: String::new(),
                ..Default::default()
            }),
            invoice: Some(pb::InvoiceRecord {
                external_id: number.to_string(),
                number: number.to_string(),
                amount: Some(pb::Money {
                    amount_minor: account.amount_minor,
                    currency: account.currency.to_string(),
                }),
                issue_date: Some(time::date(due - chrono::Duration::days(30))),
                due_date: Some(time::date(due)),
            }),
            credit_note: None,
        };
        let key = format!("C-{customer}");
        kafka::publish(
            &producer,
            &erp_topic,
            &key,
            &event.encode_to_vec(),
            OwnedHeaders::new(),
        )
        .await?;
        println!("  {number:<10} {name:<28} {zone:<20} due {due} ({due_in:+} days)");
    }

    println!("\nreminders delivered (sandbox provider), as they happen:");
    let mut channels = ChannelsServiceClient::new(grpc(&env, &channels_url, &tenant, "recobro:read").await?);
    let mut delivered = Vec::new();
    // Quiet for 8 s after the last delivery (or 90 s in all) means the current steps are done.
    // The first one may take longer: accounts reads a new tenant's topic only once its next
    // look at the broker's topics finds it (within 10 s).
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        let quiet = Duration::from_secs(if delivered.is_empty() { 40 } else { 8 });
        let Ok(message) = tokio::time::timeout(quiet, deliveries.recv()).await else {
            break;
        };
        let record = pb::DeliveryRecord::decode(message?.payload().unwrap_or_default())?;
        if record.tenant_id != tenant {
            continue;
        }
        let all = channels
            .list_deliveries(pb::ListDeliveriesRequest {
                tenant_id: tenant.clone(),
                debtor_id: record.debtor_id.clone(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .deliveries;
        let Some(delivery) = all
            .into_iter()
            .find(|d| d.record.as_ref().map(|r| &r.reminder_id) == Some(&record.reminder_id))
        else {
            continue;
        };
        println!(
            "  [{:?}] {}{}",
            record.status(),
            delivery.subject,
            if record.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", record.reason)
            }
        );
        delivered.push((record, delivery));
    }
    if let Some((_, first)) = delivered.first() {
        println!("\nthe first message in full:\n---\n{}\n---", first.body);
    }
    if let Some((record, statement)) = delivered
        .iter()
        .find(|(record, _)| !record.covered_reminder_ids.is_empty())
    {
        println!(
            "\na statement: one message for {} invoices, one contact in the budget:\n---\n{}\n---",
            record.covered_reminder_ids.len(),
            statement.body
        );
    }

    println!("\neach invoice's ladder, in the debtor's local time:");
    let mut scheduling =
        SchedulingServiceClient::new(grpc(&env, &scheduling_url, &tenant, "recobro:read").await?);
    for Account { number, .. } in &portfolio {
        let invoice_id = recobro_common::ids::invoice_id(&tenant, number).to_string();
        let Ok(plan) = scheduling
            .list_reminders(pb::ListRemindersRequest {
                tenant_id: tenant.clone(),
                invoice_id: invoice_id.clone(),
                ..Default::default()
            })
            .await
        else {
            println!("  {number}: not planned yet");
            continue;
        };
        let steps: Vec<String> = plan
            .into_inner()
            .reminders
            .iter()
            .map(|r| format!("{} {} {}", r.step, short_state(r.state()), &r.fire_at_local[..16]))
            .collect();
        println!("  {number:<10} {}", steps.join(" | "));
    }

    // Each reply goes to the message about its invoice when that one was sent (else to another
    // sent message nobody answered yet).
    let replies = [
        ("Ya pagué, les envío el comprobante", "A-3003"),
        ("Pago el viernes", "F001-2002"),
        ("no reconozco esta factura", "F-4004"),
        ("BAJA", "FE-1001"),
    ];
    println!("\ndebtors reply:");
    let sent: Vec<&(pb::DeliveryRecord, pb::Delivery)> = delivered
        .iter()
        .filter(|(record, _)| record.status() == pb::DeliveryStatus::Sent)
        .collect();
    let mut answered: Vec<&str> = Vec::new();
    for (text, number) in replies {
        let about = |(_, delivery): &&&(pb::DeliveryRecord, pb::Delivery)| {
            delivery.subject.contains(number) || delivery.body.contains(number)
        };
        let unanswered = |(record, _): &&&(pb::DeliveryRecord, pb::Delivery)| {
            !answered.contains(&record.reminder_id.as_str())
        };
        let Some((record, delivery)) = sent
            .iter()
            .find(|d| about(d) && unanswered(d))
            .or_else(|| sent.iter().find(|d| unanswered(d)))
            .copied()
        else {
            println!("  {text:?}: no sent message left to answer");
            continue;
        };
        answered.push(&record.reminder_id);
        let body = serde_json::json!({ "reminder_id": record.reminder_id, "text": text }).to_string();
        let answer = post(&webhooks, "/webhooks/sandbox/replies", &body).await?;
        println!("  {text:?} to \"{}\" -> {answer}", delivery.subject);
    }

    // Accounts acts on each reply within a moment (claimed-paid hold, promise, dispute) and
    // queues what a person must see.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut ledger = AccountsServiceClient::new(grpc(&env, &accounts_url, &tenant, "recobro:read").await?);
    println!("\nwhat the replies changed:");
    let mut seen_debtors = Vec::new();
    for (record, _) in &sent {
        if !answered.contains(&record.reminder_id.as_str()) || seen_debtors.contains(&record.debtor_id) {
            continue;
        }
        seen_debtors.push(record.debtor_id.clone());
        let invoices = ledger
            .list_invoices(pb::ListInvoicesRequest {
                tenant_id: tenant.clone(),
                debtor_id: record.debtor_id.clone(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .invoices;
        for invoice in invoices {
            let date = |d: &Option<pb::Date>| {
                d.as_ref()
                    .map(|d| format!("{}-{:02}-{:02}", d.year, d.month, d.day))
            };
            let mut case = Vec::new();
            if let Some(until) = date(&invoice.claimed_paid_until) {
                case.push(format!("claimed paid, reminders paused through {until}"));
            }
            if let Some(promised) = date(&invoice.promised_date) {
                case.push(format!("promise to pay on {promised}, ladder paused"));
            }
            if invoice.disputed {
                case.push("disputed, ladder paused".to_string());
            }
            if case.is_empty() {
                case.push("ladder goes on".to_string());
            }
            println!("  {:<10} {}", invoice.number, case.join("; "));
        }
    }
    let queue = ledger
        .list_work_items(pb::ListWorkItemsRequest {
            tenant_id: tenant.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .work_items;
    println!(
        "\nthe collectors' work queue ({} items, soonest due first):",
        queue.len()
    );
    for item in queue {
        let due = item
            .due_at
            .as_ref()
            .and_then(time::from_timestamp)
            .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        println!(
            "  {:<16} due {due}  {:?}: {}",
            item.kind().as_str_name().trim_start_matches("WORK_ITEM_KIND_"),
            item.reply_text,
            item.reason
        );
    }
    // The debtor pays through the link in a reminder: the sandbox's checkout, then the ledger
    // settles the invoice and its remaining reminders are cancelled.
    if let Some((number, link)) = delivered
        .iter()
        .filter(|(record, _)| record.covered_reminder_ids.is_empty())
        .find_map(|(_, delivery)| {
            let number = portfolio
                .iter()
                .map(|a| a.number)
                .find(|number| delivery.body.contains(number))?;
            let start = delivery.body.find("/pay/")?;
            let from = delivery.body[..start].rfind("http")?;
            let link: String = delivery.body[from..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            Some((number, link))
        })
    {
        println!("\nthe debtor of {number} opens the payment link in that reminder:\n  {link}");
        match pay_in_sandbox(&link).await {
            Ok(checkout) => println!(
                "  -> 303 to the checkout {checkout}\n  -> \"pay\" pressed there (sandbox: no money moves)"
            ),
            Err(err) => println!("  the payment did not go through: {err}"),
        }
        let mut ledger =
            AccountsServiceClient::new(grpc(&env, &accounts_url, &tenant, "recobro:read").await?);
        let invoice_id = recobro_common::ids::invoice_id(&tenant, number).to_string();
        // The debtor's ERP id is that of its first invoice in the portfolio (as published above).
        let debtor = portfolio
            .iter()
            .find(|a| a.number == number)
            .map(|a| a.debtor)
            .unwrap_or_default();
        let customer = portfolio
            .iter()
            .position(|a| a.debtor == debtor)
            .unwrap_or_default();
        let debtor_id = recobro_common::ids::debtor_id(&tenant, &format!("C-{customer}")).to_string();
        let started = tokio::time::Instant::now();
        let mut paid = false;
        while started.elapsed() < Duration::from_secs(30) && !paid {
            let invoices = ledger
                .list_invoices(pb::ListInvoicesRequest {
                    tenant_id: tenant.clone(),
                    debtor_id: debtor_id.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .invoices;
            paid = invoices
                .iter()
                .any(|i| i.invoice_id == invoice_id && i.status() == pb::InvoiceStatus::Paid);
            if !paid {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        println!(
            "  ledger: {number} {}",
            if paid {
                "PAID; its remaining reminders are cancelled"
            } else {
                "not paid yet"
            }
        );
        // Scheduling hears of it through accounts' events.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut scheduling =
            SchedulingServiceClient::new(grpc(&env, &scheduling_url, &tenant, "recobro:read").await?);
        let plan = scheduling
            .list_reminders(pb::ListRemindersRequest {
                tenant_id: tenant.clone(),
                invoice_id,
                ..Default::default()
            })
            .await?
            .into_inner()
            .reminders;
        let steps: Vec<String> = plan
            .iter()
            .map(|r| format!("{} {}", r.step, short_state(r.state())))
            .collect();
        println!("  its ladder now: {}", steps.join(" | "));
    }

    println!("\ndone. Services keep running; `make down` stops everything.");
    Ok(())
}

/// Opens a payment link as a browser does (no redirect followed), then presses the sandbox
/// checkout's "pay": returns the checkout's address.
async fn pay_in_sandbox(link: &str) -> anyhow::Result<String> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let opened = browser.get(link).send().await?;
    anyhow::ensure!(
        opened.status().as_u16() == 303,
        "the link answered {}",
        opened.status()
    );
    let checkout = opened
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let page = browser.get(&checkout).send().await?.text().await?;
    anyhow::ensure!(page.contains("id=\"pay\""), "the checkout page has no pay button");
    let paid = browser.post(&checkout).send().await?;
    anyhow::ensure!(paid.status().is_success(), "paying answered {}", paid.status());
    Ok(checkout)
}

fn short_state(state: pb::ReminderState) -> &'static str {
    match state {
        pb::ReminderState::Pending => "pending",
        pb::ReminderState::Emitted => "EMITTED",
        pb::ReminderState::Cancelled => "cancelled",
        pb::ReminderState::Skipped => "skipped",
        pb::ReminderState::Paused => "paused",
        pb::ReminderState::Unspecified => "?",
    }
}

async fn post(addr: &str, path: &str, body: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(response))
}
