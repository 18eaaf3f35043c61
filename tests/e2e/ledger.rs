//! Debtors in the ledger for tests that start at channels: put there through accounts' API (and
//! waited for until channels' view of the ledger holds them), or, for tests that need thousands,
//! published as the records accounts itself publishes.

use std::time::Duration;

use recobro_proto::v1::accounts_service_client::AccountsServiceClient;
use recobro_proto::v1::channels_service_client::ChannelsServiceClient;
use recobro_proto::v1::{self as pb};

use crate::helpers::{Grpc, Stack};

impl Stack {
    pub async fn accounts(&self) -> AccountsServiceClient<Grpc> {
        AccountsServiceClient::new(self.grpc(self.accounts_port).await)
    }

    pub async fn channels(&self) -> ChannelsServiceClient<Grpc> {
        ChannelsServiceClient::new(self.grpc(self.channels_port).await)
    }

    /// Puts a debtor in the ledger through accounts, and waits until channels knows them.
    pub async fn ledger_debtor(&self, debtor: pb::DebtorInput) -> pb::GetDebtorResponse {
        let stored = self
            .accounts()
            .await
            .upsert_debtor(pb::UpsertDebtorRequest {
                tenant_id: self.tenant.clone(),
                debtor: Some(debtor),
            })
            .await
            .expect("upsert the debtor")
            .into_inner();
        let debtor_id = stored.debtor.as_ref().expect("debtor").debtor_id.clone();
        self.until_channels_knows(&debtor_id).await;
        stored
    }

    /// Waits until channels' view of the ledger holds the debtor (its contact budget answers).
    pub async fn until_channels_knows(&self, debtor_id: &str) {
        let mut channels = self.channels().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let known = channels
                .get_contact_budget(pb::GetContactBudgetRequest {
                    tenant_id: self.tenant.clone(),
                    debtor_id: debtor_id.to_string(),
                })
                .await;
            match known {
                Ok(_) => return,
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => panic!("contact budget: {status}"),
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "channels never heard of debtor {debtor_id}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The record accounts publishes for a debtor with one granted email point (for tests that
    /// need thousands of debtors at channels and nothing else of the ledger).
    pub fn debtor_record(&self, debtor_id: &str, n: usize) -> pb::AccountEvent {
        pb::AccountEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: self.tenant.clone(),
            debtor_id: debtor_id.to_string(),
            change: Some(pb::account_event::Change::DebtorChanged(pb::DebtorChanged {
                debtor: Some(pb::Debtor {
                    debtor_id: debtor_id.to_string(),
                    tenant_id: self.tenant.clone(),
                    name: format!("Cliente {n}"),
                    time_zone: self.debtor_zone.clone(),
                    locale: "es-US".into(),
                    country: "US".into(),
                    ..Default::default()
                }),
                contacts: vec![pb::Contact {
                    contact_id: uuid::Uuid::new_v4().to_string(),
                    name: format!("Cliente {n}"),
                    role: pb::ContactRole::Other as i32,
                    points: vec![pb::ContactPoint {
                        point_id: uuid::Uuid::new_v4().to_string(),
                        channel: pb::Channel::Email as i32,
                        address: format!("cartera{n}@cliente.example"),
                        consent: pb::Consent::Granted as i32,
                        consent_source: "erp".into(),
                        preferred: true,
                        ..Default::default()
                    }],
                }],
                revision: 1,
                reason: "erp".into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }
}

/// A company in the United States with an accounts-payable contact reachable by email and SMS.
pub fn us_company(external_id: &str, locale: &str) -> pb::DebtorInput {
    pb::DebtorInput {
        external_id: external_id.into(),
        name: "Riverside Supplies LLC".into(),
        kind: pb::DebtorKind::Company as i32,
        time_zone: crate::helpers::zone_at_local_hour(12),
        locale: locale.into(),
        country: "US".into(),
        contacts: vec![pb::Contact {
            name: "Accounts payable".into(),
            role: pb::ContactRole::AccountsPayable as i32,
            points: vec![
                pb::ContactPoint {
                    channel: pb::Channel::Email as i32,
                    address: "ap@riverside.example".into(),
                    preferred: true,
                    ..Default::default()
                },
                pb::ContactPoint {
                    channel: pb::Channel::Sms as i32,
                    address: "+15125550100".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// An invoice of the debtor through accounts, due in `due_in_days` (far enough that no ladder
/// step falls due during a test).
pub async fn ledger_invoice(
    stack: &Stack,
    debtor_external_id: &str,
    external_id: &str,
    number: &str,
    due_in_days: i64,
) -> pb::Invoice {
    let today = chrono::Utc::now().date_naive();
    stack
        .accounts()
        .await
        .upsert_invoice(pb::UpsertInvoiceRequest {
            tenant_id: stack.tenant.clone(),
            invoice: Some(pb::InvoiceInput {
                debtor_external_id: debtor_external_id.into(),
                external_id: external_id.into(),
                number: number.into(),
                amount: Some(pb::Money {
                    amount_minor: 1_234_50,
                    currency: "USD".into(),
                }),
                issue_date: Some(recobro_common::time::date(today)),
                due_date: Some(recobro_common::time::date(
                    today + chrono::Duration::days(due_in_days),
                )),
            }),
        })
        .await
        .expect("upsert the invoice")
        .into_inner()
}

/// Waits until channels has heard of the invoice `request` names (accounts' outbox relays it
/// within milliseconds): probes with a template that does not exist, which SendMessage refuses
/// after finding the invoice and before anything is sent.
pub async fn until_channels_knows_invoice(
    channels: &mut ChannelsServiceClient<Grpc>,
    request: &pb::SendMessageRequest,
) {
    let probe = pb::SendMessageRequest {
        idempotency_key: "probe".into(),
        template_id: "no-such-template".into(),
        text: String::new(),
        ..request.clone()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = channels
            .send_message(probe.clone())
            .await
            .expect_err("an unknown template is refused");
        match status.code() {
            tonic::Code::NotFound if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tonic::Code::InvalidArgument => return,
            _ => panic!("channels never heard of the invoice: {status}"),
        }
    }
}
