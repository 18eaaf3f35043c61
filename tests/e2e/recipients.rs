//! A message goes only where the ledger says: consented points of the debtor, never a
//! retired, withdrawn or unknown one, never under a legal hold, never through a provider that
//! refuses the tenant's role; and a STOP withdraws the point in the ledger itself.

use std::time::Duration;

use recobro_proto::v1::{self as pb};

use crate::channels::{
    AUTH_TOKEN, post_form, sendgrid, sendgrid_stand_in, twilio_signature, twilio_stand_in,
};
use crate::helpers::{Stack, encode};
use crate::ledger::{ledger_invoice, until_channels_knows_invoice, us_company};
use crate::{HOP, debtor_id, invoice_of};

const TWILIO_FROM: &str = "+15005550006";

pub(crate) fn twilio(api_base: String) -> Vec<(&'static str, String)> {
    vec![
        ("RECOBRO_SMS_PROVIDER", "twilio".into()),
        ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000e2e".into()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.into()),
        ("TWILIO_FROM", TWILIO_FROM.into()),
        ("TWILIO_API_BASE", api_base),
    ]
}

/// A template email about one of the debtor's invoices.
pub(crate) fn email(stack: &Stack, key: &str, debtor_id: &str, invoice_id: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        idempotency_key: key.into(),
        tenant_id: stack.tenant.clone(),
        debtor_id: debtor_id.into(),
        invoice_id: invoice_id.into(),
        channel: pb::Channel::Email as i32,
        template_id: "overdue".into(),
        ..Default::default()
    }
}

/// A free-form text by SMS (it names no invoice).
pub(crate) fn sms(stack: &Stack, key: &str, debtor_id: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        idempotency_key: key.into(),
        tenant_id: stack.tenant.clone(),
        debtor_id: debtor_id.into(),
        channel: pb::Channel::Sms as i32,
        text: "Hola, le escribimos de Acme por su cuenta. Llámenos al 600 123 456.".into(),
        ..Default::default()
    }
}

pub(crate) fn points(debtor: &pb::GetDebtorResponse) -> Vec<pb::ContactPoint> {
    debtor.contacts.iter().flat_map(|c| c.points.clone()).collect()
}

/// Waits for accounts to publish the debtor's record changed for `reason`: from then on,
/// channels decides on it (its fence waits for everything on the topic).
async fn until_published(follower: &crate::helpers::Follower, debtor_id: &str, reason: &str) {
    follower
        .find(HOP, |r| {
            let event: pb::AccountEvent = r.decode();
            event.debtor_id == debtor_id
                && matches!(&event.change, Some(pb::account_event::Change::DebtorChanged(c)) if c.reason == reason)
        })
        .await;
}

pub(crate) fn suppressed_because(record: &pb::DeliveryRecord, rule: &str, words: &str) {
    assert_eq!(record.status(), pb::DeliveryStatus::Suppressed, "{record:?}");
    assert_eq!(record.rule, rule, "{record:?}");
    assert!(record.reason.contains(words), "{record:?}");
    assert!(
        !record.reason.contains('@') && !record.reason.contains("+1"),
        "no address in {record:?}"
    );
}

/// Waits until `GetDebtor` shows the point withdrawn; returns the debtor as it is then.
pub(crate) async fn until_withdrawn(stack: &Stack, debtor_id: &str, point_id: &str) -> pb::GetDebtorResponse {
    let mut accounts = stack.accounts().await;
    let deadline = tokio::time::Instant::now() + HOP;
    loop {
        let record = accounts
            .get_debtor(pb::GetDebtorRequest {
                tenant_id: stack.tenant.clone(),
                debtor_id: debtor_id.to_string(),
            })
            .await
            .expect("debtor")
            .into_inner();
        let withdrawn = points(&record)
            .iter()
            .any(|p| p.point_id == point_id && p.consent() == pb::Consent::Withdrawn);
        if withdrawn {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never withdrawn in the ledger"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tenant of its own on the stack, with clients that act as it.
struct OtherTenant {
    tenant: String,
    accounts: pb::accounts_service_client::AccountsServiceClient<crate::helpers::Grpc>,
    channels: pb::channels_service_client::ChannelsServiceClient<crate::helpers::Grpc>,
}

impl OtherTenant {
    async fn new(stack: &Stack, name: &str, role: pb::TenantRole) -> OtherTenant {
        let tenant = format!("{name}-{}", stack.id);
        stack
            .accounts()
            .await
            .upsert_tenant(pb::UpsertTenantRequest {
                tenant: Some(pb::Tenant {
                    tenant_id: tenant.clone(),
                    name: format!("{name} S.A."),
                    role: role as i32,
                }),
            })
            .await
            .expect("another tenant");
        let token = stack.token(crate::pki::claims(Some(&tenant), crate::pki::ALL_SCOPES));
        let as_it = |port| crate::pki::channel(port, crate::pki::ClientCert::Client, Some(&token));
        OtherTenant {
            accounts: pb::accounts_service_client::AccountsServiceClient::new(
                as_it(stack.accounts_port).await,
            ),
            channels: pb::channels_service_client::ChannelsServiceClient::new(
                as_it(stack.channels_port).await,
            ),
            tenant,
        }
    }

    /// Puts a debtor of this tenant in the ledger; returns its id.
    async fn debtor(&mut self, debtor: pb::DebtorInput) -> String {
        self.accounts
            .upsert_debtor(pb::UpsertDebtorRequest {
                tenant_id: self.tenant.clone(),
                debtor: Some(debtor),
            })
            .await
            .expect("debtor")
            .into_inner()
            .debtor
            .expect("debtor")
            .debtor_id
    }

    /// Sends `request` as this tenant once channels knows the debtor (NotFound until then).
    async fn send(&mut self, request: pb::SendMessageRequest) -> pb::DeliveryRecord {
        let request = pb::SendMessageRequest {
            tenant_id: self.tenant.clone(),
            ..request
        };
        let deadline = tokio::time::Instant::now() + HOP;
        loop {
            match self.channels.send_message(request.clone()).await {
                Ok(answer) => return answer.into_inner().record.expect("record"),
                Err(status)
                    if status.code() == tonic::Code::NotFound && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => panic!("{status}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_erp_moves_an_address_and_nothing_goes_to_a_retired_withdrawn_unknown_point_or_under_a_hold() {
    let (base, mail) = sendgrid_stand_in(Duration::ZERO).await;
    let stack = Stack::start_configured(None, sendgrid(base)).await;
    let deliveries = stack.follow(&stack.topics.deliveries);
    let ledger = stack.follow(&stack.topics.account_events);
    // The ERP first knows the debtor at an old address, with an invoice due in two months...
    let mut first = invoice_of(&stack, "F-1", "evt-1", pb::InvoiceEventKind::Issued, 1, 60);
    first.debtor.as_mut().expect("debtor").email = "old@tornillo.example".into();
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&first), None)
        .await;
    let debtor = debtor_id(&stack.tenant, "D-1");
    until_published(&ledger, &debtor, "erp").await;
    // ...then moves it to a new one, with an overdue invoice.
    let mut second = invoice_of(&stack, "F-2", "evt-2", pb::InvoiceEventKind::Issued, 1, -10);
    second.debtor.as_mut().expect("debtor").email = "new@tornillo.example".into();
    stack
        .publish(&stack.erp_topic, "D-1", &encode(&second), None)
        .await;
    let sent: pb::DeliveryRecord = deliveries.find(HOP, |_| true).await.decode();
    assert_eq!(
        (sent.status(), sent.channel()),
        (pb::DeliveryStatus::Sent, pb::Channel::Email),
        "{sent:?}"
    );
    assert_eq!(
        *mail.recipients.lock().expect("lock"),
        ["new@tornillo.example"],
        "only the ERP's current address"
    );

    let invoice = crate::invoice_id(&stack.tenant, "F-2");
    let mut accounts = stack.accounts().await;
    let record = accounts
        .get_debtor(pb::GetDebtorRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor.clone(),
        })
        .await
        .expect("debtor")
        .into_inner();
    let all = points(&record);
    let old = all
        .iter()
        .find(|p| p.address == "old@tornillo.example")
        .expect("the old point is kept as history");
    assert!(
        old.retired_at.is_some() && !old.retired_reason.is_empty(),
        "{old:?}"
    );
    let phone = all
        .iter()
        .find(|p| p.channel() == pb::Channel::Sms)
        .expect("the ERP's phone");

    // A contact point withdrawn in the ledger.
    accounts
        .set_consent(pb::SetConsentRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor.clone(),
            point_id: phone.point_id.clone(),
            consent: pb::Consent::Withdrawn as i32,
            source: "call center".into(),
        })
        .await
        .expect("withdrawn");
    until_published(&ledger, &debtor, "consent").await;

    let mut channels = stack.channels().await;
    let sender = channels.clone();
    let send = move |request: pb::SendMessageRequest| {
        let mut channels = sender.clone();
        async move {
            channels
                .send_message(request)
                .await
                .expect("answered")
                .into_inner()
                .record
                .expect("record")
        }
    };
    let withdrawn = send(sms(&stack, "sms-1", &debtor)).await;
    suppressed_because(&withdrawn, "consent", "withdrawn");
    assert!(withdrawn.reason.contains(&phone.point_id), "{withdrawn:?}");
    let retired = send(pb::SendMessageRequest {
        point_id: old.point_id.clone(),
        ..email(&stack, "old-1", &debtor, &invoice)
    })
    .await;
    suppressed_because(&retired, "consent", "retired");
    let unknown = send(pb::SendMessageRequest {
        point_id: uuid::Uuid::new_v4().to_string(),
        ..email(&stack, "unknown-1", &debtor, &invoice)
    })
    .await;
    suppressed_because(&unknown, "recipient", "not one of the debtor's contact points");

    // A legal hold stops everything, then lifting it lets messages go again.
    let hold = accounts
        .set_legal_hold(pb::SetLegalHoldRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor.clone(),
            hold: true,
            reason: "served in collection lawsuit 2026-123".into(),
            source: "court notice".into(),
        })
        .await
        .expect("held")
        .into_inner();
    assert!(hold.legal_hold.is_some(), "{hold:?}");
    until_published(&ledger, &debtor, "legal_hold").await;
    let held = send(email(&stack, "held-1", &debtor, &invoice)).await;
    suppressed_because(&held, "legal-hold", "court notice");
    let explained = channels
        .explain_contacts(pb::ExplainContactsRequest {
            tenant_id: stack.tenant.clone(),
            debtor_id: debtor.clone(),
            ..Default::default()
        })
        .await
        .expect("explained")
        .into_inner()
        .decisions;
    for rule in ["consent", "recipient", "legal-hold"] {
        assert!(
            explained
                .iter()
                .any(|d| d.rule == rule && d.verdict() == pb::ContactVerdict::Suppressed),
            "{rule} in {explained:?}"
        );
    }
    assert_eq!(
        mail.recipients.lock().expect("lock").len(),
        1,
        "nothing else reached the provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_by_sms_withdraws_that_point_in_the_ledger_and_only_that_channel_stops() {
    let (api, texts) = twilio_stand_in().await;
    let stack = Stack::start_configured(None, twilio(api)).await;
    let responses = stack.follow(&stack.topics.responses);
    let stored = stack.ledger_debtor(us_company("D-STOP", "es-US")).await;
    let debtor = stored.debtor.as_ref().expect("debtor").debtor_id.clone();
    let invoice = ledger_invoice(&stack, "D-STOP", "INV-STOP", "FE-STOP", 60)
        .await
        .invoice_id;
    let sms_point = points(&stored)
        .into_iter()
        .find(|p| p.channel() == pb::Channel::Sms)
        .expect("an SMS point");
    let mut channels = stack.channels().await;
    let first = channels
        .send_message(sms(&stack, "sms-1", &debtor))
        .await
        .expect("sent")
        .into_inner()
        .record
        .expect("record");
    assert_eq!(first.status(), pb::DeliveryStatus::Sent, "{first:?}");
    assert_eq!(texts.lock().expect("lock").len(), 1);

    let url = format!("http://127.0.0.1:{}/webhooks/twilio", stack.http_port);
    let stop = [
        ("MessageSid", "SMstop00000000000000000000000000001"),
        ("From", sms_point.address.as_str()),
        ("To", TWILIO_FROM),
        ("Body", "STOP"),
    ];
    assert_eq!(
        post_form(stack.http_port, &stop, &twilio_signature(&url, &stop)).await,
        204
    );
    let response: pb::DebtorResponse = responses.find(HOP, |_| true).await.decode();
    assert_eq!(
        (
            response.intent(),
            response.point_id.as_str(),
            response.source.as_str()
        ),
        (pb::ResponseIntent::OptOut, sms_point.point_id.as_str(), "reply")
    );
    // Twilio retries a webhook it got no answer to: the same message is one response.
    assert_eq!(
        post_form(stack.http_port, &stop, &twilio_signature(&url, &stop)).await,
        204
    );
    assert!(
        responses.drain(Duration::from_secs(2)).await.is_empty(),
        "a retried webhook is recorded once"
    );

    // The ledger records it, with where it came from.
    let record = until_withdrawn(&stack, &debtor, &sms_point.point_id).await;
    let withdrawn = points(&record)
        .into_iter()
        .find(|p| p.point_id == sms_point.point_id)
        .expect("the point");
    assert!(!withdrawn.consent_source.is_empty(), "{withdrawn:?}");
    assert!(withdrawn.consent_at.is_some(), "{withdrawn:?}");

    let again = channels
        .send_message(sms(&stack, "sms-2", &debtor))
        .await
        .expect("answered")
        .into_inner()
        .record
        .expect("record");
    suppressed_because(&again, "consent", "withdrawn");
    assert_eq!(texts.lock().expect("lock").len(), 1, "no second text");
    // Email was not withdrawn: it is judged by the rules as before (today's budget is spent by
    // the first text, so it waits), never refused for consent.
    until_channels_knows_invoice(&mut channels, &email(&stack, "email-1", &debtor, &invoice)).await;
    let mail = channels
        .send_message(email(&stack, "email-1", &debtor, &invoice))
        .await
        .expect("answered")
        .into_inner()
        .record
        .expect("record");
    assert_ne!(mail.status(), pb::DeliveryStatus::Suppressed, "{mail:?}");
    assert!(
        matches!(
            mail.status(),
            pb::DeliveryStatus::Sent | pb::DeliveryStatus::Deferred
        ),
        "{mail:?}"
    );

    // Another tenant writing to the same person from the same number: the STOP holds there too.
    let mut other = OtherTenant::new(&stack, "other", pb::TenantRole::Creditor).await;
    let theirs = other.debtor(us_company("D-SAME-PERSON", "es-US")).await;
    let shared = other.send(sms(&stack, "other-1", &theirs)).await;
    suppressed_because(&shared, "sender-opt-out", "every tenant using that sender");
    assert_eq!(
        texts.lock().expect("lock").len(),
        1,
        "no text from the shared sender"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_refuses_sms_for_an_agencys_us_debtors_and_carries_a_creditors() {
    let (api, texts) = twilio_stand_in().await;
    let stack = Stack::start_configured(None, twilio(api)).await;
    // The stack's tenant collects its own receivables.
    let creditors = stack.ledger_debtor(us_company("D-OWN", "en-US")).await;
    let creditors = creditors.debtor.expect("debtor").debtor_id;
    let mut channels = stack.channels().await;
    let own = channels
        .send_message(sms(&stack, "own-1", &creditors))
        .await
        .expect("sent")
        .into_inner()
        .record
        .expect("record");
    assert_eq!(own.status(), pb::DeliveryStatus::Sent, "{own:?}");

    // An agency collecting for others, with a US debtor of its own.
    let mut agency = OtherTenant::new(&stack, "agency", pb::TenantRole::Agency).await;
    let theirs = agency
        .debtor(pb::DebtorInput {
            kind: pb::DebtorKind::Consumer as i32,
            ..us_company("D-THEIRS", "en-US")
        })
        .await;
    let refused = agency.send(sms(&stack, "theirs-1", &theirs)).await;
    assert_eq!(refused.status(), pb::DeliveryStatus::Suppressed, "{refused:?}");
    assert!(refused.pack.starts_with("eligibility@"), "{refused:?}");
    assert!(
        refused.reason.contains("30863"),
        "the policy's source: {refused:?}"
    );
    assert_eq!(
        texts.lock().expect("lock").len(),
        1,
        "only the creditor's text went out"
    );
    let explained = agency
        .channels
        .explain_contacts(pb::ExplainContactsRequest {
            tenant_id: agency.tenant.clone(),
            debtor_id: theirs.clone(),
            ..Default::default()
        })
        .await
        .expect("explained")
        .into_inner()
        .decisions;
    assert!(
        explained
            .iter()
            .any(|d| d.pack == refused.pack && d.rule == refused.rule),
        "{explained:?}"
    );
}
