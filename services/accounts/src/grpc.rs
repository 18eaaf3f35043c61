//! The AccountsService gRPC API. Every call names its tenant, and every query is scoped by it:
//! another tenant's debtor or invoice is simply not found.

use std::collections::HashMap;

use chrono::{Datelike as _, NaiveDate, Utc};
use recobro_common::grpc::Refusal;
use recobro_common::identity::{Caller, MethodScopes, Scope};
use recobro_common::page::PageRequest;
use recobro_common::time;
use recobro_proto::v1::accounts_service_server::AccountsService;
use recobro_proto::v1::{self as pb, Money};
use sqlx::PgPool;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::domain::{self, Contact, LegalHold};
use crate::error::AccountsError;
use crate::events::{self, DebtorChange};
use crate::handoffs;
use crate::holds::{self, HoldRequest};
use crate::kpi;
use crate::states::{Consent, InvoiceStatus, SettlementKind, TenantRole};
use crate::store::{self, NewSettlement};
use crate::work_queue::WorkQueue;

/// Records one `BulkImport` stream may carry: an import that big is split by the caller, so one
/// call never holds a connection for long (see the server's deadline).
pub const MAX_IMPORT_RECORDS: i64 = 100_000;

pub struct Accounts {
    pub pool: PgPool,
    pub account_events_topic: String,
    /// Days a promise may run late before it counts as broken.
    pub promise_grace_days: i32,
}

fn invalid(field: &str, reason: &str) -> AccountsError {
    Refusal::invalid(field, reason).into()
}

fn not_found(what: String) -> AccountsError {
    Refusal::not_found(what).into()
}

fn failed_precondition(why: String) -> AccountsError {
    Refusal::FailedPrecondition(why).into()
}

impl Accounts {
    async fn existing_tenant(&self, field_value: &str) -> Result<String, AccountsError> {
        let tenant_id = domain::tenant("tenant_id", field_value)?;
        if !store::tenant_exists(&self.pool, &tenant_id).await? {
            return Err(not_found(format!("tenant {tenant_id}")));
        }
        Ok(tenant_id)
    }

    async fn debtor_view(
        &self,
        tenant_id: &str,
        debtor_id: Uuid,
    ) -> Result<pb::GetDebtorResponse, AccountsError> {
        let store::DebtorView { debtor, balance } = store::debtor_view(&self.pool, tenant_id, debtor_id)
            .await?
            .ok_or_else(|| not_found(format!("debtor {debtor_id}")))?;
        let balance = balance
            .into_iter()
            .map(|(currency, amount_minor)| Money {
                amount_minor,
                currency,
            })
            .collect();
        Ok(pb::GetDebtorResponse {
            debtor: Some(debtor.to_proto()),
            balance,
            contacts: debtor.contacts.iter().map(Contact::to_proto).collect(),
            legal_hold: debtor.legal_hold.as_ref().map(LegalHold::to_proto),
        })
    }

    /// Runs `change` on one locked invoice of the tenant and publishes the new state.
    async fn change_invoice<F>(
        &self,
        tenant_id: &str,
        invoice_id: Uuid,
        reason: &str,
        change: F,
    ) -> Result<pb::Invoice, AccountsError>
    where
        F: AsyncFnOnce(&mut store::Tx<'_>, &domain::InvoiceState) -> Result<bool, AccountsError>,
    {
        let mut tx = self.pool.begin().await?;
        let state = store::lock_invoice(&mut tx, tenant_id, invoice_id)
            .await?
            .ok_or_else(|| not_found(format!("invoice {invoice_id}")))?;
        if change(&mut tx, &state).await? {
            events::publish_changes(
                &mut tx,
                &[invoice_id],
                true,
                reason,
                &self.account_events_topic,
                &HashMap::new(),
            )
            .await?;
        }
        let state = store::invoice_states(&mut tx, Some(tenant_id), &[invoice_id])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| not_found(format!("invoice {invoice_id}")))?;
        tx.commit().await?;
        Ok(state.to_proto())
    }

    async fn import_one(&self, tenant_id: &str, record: &pb::ImportRecord) -> Result<(), AccountsError> {
        let tenant_id = domain::tenant("tenant_id", tenant_id)?;
        if record.debtor.is_none() && record.invoice.is_none() {
            return Err(invalid("debtor", "a record needs a debtor, an invoice or both"));
        }
        let debtor = record
            .debtor
            .as_ref()
            .map(|d| domain::parse_debtor_input(&tenant_id, Some(d), "import"))
            .transpose()?;
        let invoice = record
            .invoice
            .as_ref()
            .map(|i| domain::parse_invoice_input(&tenant_id, Some(i)))
            .transpose()?;
        let mut tx = self.pool.begin().await?;
        if let Some(debtor) = &debtor {
            // A file repeats a debtor on each of its invoices' rows: published only if changed.
            let changed = store::upsert_debtors(&mut tx, &[debtor]).await?;
            events::publish_debtor_changes(
                &mut tx,
                &changed,
                DebtorChange::Import,
                &self.account_events_topic,
                &HashMap::new(),
            )
            .await?;
        }
        if let Some(invoice) = &invoice {
            if store::debtor_in_tx(&mut tx, &tenant_id, invoice.debtor_id)
                .await?
                .is_none()
            {
                return Err(not_found("invoice.debtor_external_id: debtor".to_string()));
            }
            let changed = store::upsert_invoices(&mut tx, &[invoice]).await?;
            events::publish_changes(
                &mut tx,
                &changed,
                false,
                "import",
                &self.account_events_topic,
                &HashMap::new(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn parse_date(field: &str, date: Option<&pb::Date>) -> Result<NaiveDate, AccountsError> {
    domain::required_date(field, date)
}

/// The scope each method needs; the guard refuses the rest (see `recobro_common::identity`).
pub fn method_scopes() -> MethodScopes {
    MethodScopes::new(
        "recobro.v1.AccountsService",
        &[
            ("UpsertTenant", Scope::Admin),
            ("UpsertDebtor", Scope::Write),
            ("GetDebtor", Scope::Read),
            ("SetConsent", Scope::Write),
            ("SetLegalHold", Scope::Write),
            ("UpsertInvoice", Scope::Write),
            ("ListInvoices", Scope::Read),
            ("RecordSettlement", Scope::Write),
            ("CreatePaymentPlan", Scope::Write),
            ("RecordPromise", Scope::Write),
            ("OpenDispute", Scope::Write),
            ("ResolveDispute", Scope::Write),
            ("BulkImport", Scope::Write),
            ("GetKpis", Scope::Read),
            ("ListWorkItems", Scope::Read),
            ("ClaimWorkItem", Scope::Write),
            ("AddWorkItemNote", Scope::Write),
            ("ResolveWorkItem", Scope::Write),
            ("ListHandoffs", Scope::Read),
            ("UpdateHandoff", Scope::Write),
        ],
    )
}

/// What one payment plan may hold: ten years of monthly instalments, and the invoices of one
/// debtor a collector would reasonably settle together. Larger is refused, not truncated.
const MAX_INSTALMENTS: usize = 120;
const MAX_PLAN_INVOICES: usize = 500;

#[tonic::async_trait]
impl AccountsService for Accounts {
    async fn upsert_tenant(
        &self,
        request: Request<pb::UpsertTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let tenant = request
            .into_inner()
            .tenant
            .ok_or_else(|| invalid("tenant", "is required"))?;
        let tenant_id = domain::tenant("tenant.tenant_id", &tenant.tenant_id)?;
        let role = TenantRole::from_wire(tenant.role)
            .ok_or_else(|| invalid("tenant.role", "must be CREDITOR or AGENCY"))?;
        let mut tx = self.pool.begin().await.map_err(AccountsError::from)?;
        store::upsert_tenant(&mut tx, &tenant_id, tenant.name.trim(), role)
            .await
            .map_err(AccountsError::from)?;
        // Channels reads the role (which providers an agency may use).
        events::publish_tenant_change(&mut tx, &tenant_id, role, &self.account_events_topic)
            .await
            .map_err(AccountsError::from)?;
        tx.commit().await.map_err(AccountsError::from)?;
        Ok(Response::new(pb::Tenant {
            tenant_id,
            name: tenant.name.trim().to_string(),
            role: tenant.role,
        }))
    }

    async fn upsert_debtor(
        &self,
        request: Request<pb::UpsertDebtorRequest>,
    ) -> Result<Response<pb::GetDebtorResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = self
            .existing_tenant(&caller.tenant_for(&request.tenant_id)?)
            .await?;
        let debtor = domain::parse_debtor_input(&tenant_id, request.debtor.as_ref(), "api")?;
        let mut tx = self.pool.begin().await.map_err(AccountsError::from)?;
        store::upsert_debtors(&mut tx, &[&debtor])
            .await
            .map_err(AccountsError::from)?;
        // Published even when nothing changed: the caller states the record as it is now, and
        // a consumer that missed it (or predates it) gets it again.
        events::publish_debtor_and_open_invoices(
            &mut tx,
            debtor.debtor_id,
            DebtorChange::Api,
            "debtor",
            &self.account_events_topic,
            None,
        )
        .await
        .map_err(AccountsError::from)?;
        tx.commit().await.map_err(AccountsError::from)?;
        Ok(Response::new(
            self.debtor_view(&tenant_id, debtor.debtor_id).await?,
        ))
    }

    async fn get_debtor(
        &self,
        request: Request<pb::GetDebtorRequest>,
    ) -> Result<Response<pb::GetDebtorResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let debtor_id = domain::uuid("debtor_id", &request.debtor_id)?;
        Ok(Response::new(self.debtor_view(&tenant_id, debtor_id).await?))
    }

    async fn set_consent(
        &self,
        request: Request<pb::SetConsentRequest>,
    ) -> Result<Response<pb::ContactPoint>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let point_id = domain::uuid("point_id", &request.point_id)?;
        let consent = Consent::from_wire(request.consent)
            .ok_or_else(|| invalid("consent", "must be GRANTED or WITHDRAWN"))?;
        let source = request.source.trim();
        if source.is_empty() {
            return Err(invalid(
                "source",
                "is required: say where the consent or opt-out came from",
            )
            .into());
        }
        let mut tx = self.pool.begin().await.map_err(AccountsError::from)?;
        let (debtor_id, point) = store::set_consent(&mut tx, &tenant_id, point_id, consent, source)
            .await
            .map_err(AccountsError::from)?
            .ok_or_else(|| not_found(format!("contact point {point_id}")))?;
        events::publish_debtor_and_open_invoices(
            &mut tx,
            debtor_id,
            DebtorChange::Consent,
            "consent",
            &self.account_events_topic,
            None,
        )
        .await
        .map_err(AccountsError::from)?;
        tx.commit().await.map_err(AccountsError::from)?;
        tracing::info!(%tenant_id, %debtor_id, %point_id, consent = consent.as_str(), "consent set");
        Ok(Response::new(point.to_proto()))
    }

    async fn set_legal_hold(
        &self,
        request: Request<pb::SetLegalHoldRequest>,
    ) -> Result<Response<pb::LegalHoldState>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let hold = HoldRequest::parse(&request)?;
        let state = holds::set_legal_hold(&self.pool, &self.account_events_topic, &tenant_id, &hold).await?;
        Ok(Response::new(state))
    }

    async fn upsert_invoice(
        &self,
        request: Request<pb::UpsertInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = self
            .existing_tenant(&caller.tenant_for(&request.tenant_id)?)
            .await?;
        let invoice = domain::parse_invoice_input(&tenant_id, request.invoice.as_ref())?;
        let mut tx = self.pool.begin().await.map_err(AccountsError::from)?;
        if store::debtor_in_tx(&mut tx, &tenant_id, invoice.debtor_id)
            .await
            .map_err(AccountsError::from)?
            .is_none()
        {
            return Err(not_found("debtor of invoice.debtor_external_id".to_string()).into());
        }
        let changed = store::upsert_invoices(&mut tx, &[&invoice])
            .await
            .map_err(AccountsError::from)?;
        events::publish_changes(
            &mut tx,
            &changed,
            false,
            "api",
            &self.account_events_topic,
            &HashMap::new(),
        )
        .await
        .map_err(AccountsError::from)?;
        let state = store::invoice_states(&mut tx, Some(&tenant_id), &[invoice.invoice_id])
            .await
            .map_err(AccountsError::from)?;
        tx.commit().await.map_err(AccountsError::from)?;
        let state = state
            .into_iter()
            .next()
            .ok_or_else(|| not_found(format!("invoice {}", invoice.invoice_id)))?;
        Ok(Response::new(state.to_proto()))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let debtor_id = domain::uuid("debtor_id", &request.debtor_id)?;
        let query = format!("ListInvoices|{tenant_id}|{debtor_id}");
        let page = PageRequest::parse(request.page_size, &request.page_token, &query)
            .map_err(AccountsError::from)?;
        // The key is (due date, number, id), separated by a character no number holds.
        let after = page.after_key(invoice_key).map_err(AccountsError::from)?;
        let mut conn = self.pool.acquire().await.map_err(AccountsError::from)?;
        let invoices = store::invoices_page(&mut conn, &tenant_id, debtor_id, after.as_ref(), page.limit())
            .await
            .map_err(AccountsError::from)?;
        // Another tenant's debtor, or none, is NOT_FOUND; our debtor without invoices is empty.
        if invoices.is_empty()
            && store::debtor(&mut conn, &tenant_id, debtor_id)
                .await
                .map_err(AccountsError::from)?
                .is_none()
        {
            return Err(not_found(format!("debtor {debtor_id}")).into());
        }
        let (invoices, next_page_token) = page.page(invoices, &query, |state| {
            let invoice = &state.invoice;
            format!(
                "{}\u{1f}{}\u{1f}{}",
                invoice.due_date, invoice.number, invoice.invoice_id
            )
        });
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: invoices.iter().map(|s| s.to_proto()).collect(),
            next_page_token,
        }))
    }

    async fn record_settlement(
        &self,
        request: Request<pb::RecordSettlementRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let invoice_id = domain::uuid("invoice_id", &request.invoice_id)?;
        let (kind, reason) = match pb::SettlementKind::try_from(request.kind) {
            Ok(pb::SettlementKind::Payment) => (SettlementKind::Payment, "payment"),
            Ok(pb::SettlementKind::CreditNote) => (SettlementKind::CreditNote, "credit_note"),
            Ok(pb::SettlementKind::WriteOff) => (SettlementKind::WriteOff, "write_off"),
            _ => return Err(invalid("kind", "must be PAYMENT, CREDIT_NOTE or WRITE_OFF").into()),
        };
        let external_id = request.external_id.trim().to_string();
        if external_id.is_empty() {
            return Err(invalid(
                "external_id",
                "is required, so that a retried call is recorded once",
            )
            .into());
        }
        let amount = domain::money_of("amount", request.amount.as_ref())?;
        if amount.amount_minor == 0 {
            return Err(invalid("amount.amount_minor", "must be positive").into());
        }
        let on = parse_date("on", request.on.as_ref())?;
        let invoice = self
            .change_invoice(&tenant_id, invoice_id, reason, async |tx, state| {
                if state.invoice.currency != amount.currency {
                    return Err(invalid(
                        "amount.currency",
                        &format!("differs from the invoice's {}", state.invoice.currency),
                    ));
                }
                if state.invoice.status == InvoiceStatus::Cancelled {
                    return Err(failed_precondition(format!("invoice {invoice_id} is cancelled")));
                }
                let settlement = NewSettlement {
                    kind,
                    external_id: &external_id,
                    amount_minor: amount.amount_minor,
                    currency: &amount.currency,
                    on,
                };
                Ok(store::settle(tx, &tenant_id, invoice_id, &settlement).await?)
            })
            .await?;
        Ok(Response::new(invoice))
    }

    async fn create_payment_plan(
        &self,
        request: Request<pb::CreatePaymentPlanRequest>,
    ) -> Result<Response<pb::PaymentPlan>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        if request.invoice_ids.is_empty() {
            return Err(invalid("invoice_ids", "at least one invoice is required").into());
        }
        if request.invoice_ids.len() > MAX_PLAN_INVOICES {
            return Err(invalid(
                "invoice_ids",
                &format!("a plan covers at most {MAX_PLAN_INVOICES} invoices"),
            )
            .into());
        }
        if request.instalments.len() > MAX_INSTALMENTS {
            return Err(invalid(
                "instalments",
                &format!("a plan has at most {MAX_INSTALMENTS} instalments"),
            )
            .into());
        }
        let mut ids = Vec::new();
        for (index, id) in request.invoice_ids.iter().enumerate() {
            ids.push(domain::uuid(&format!("invoice_ids[{index}]"), id)?);
        }
        if request.instalments.is_empty() {
            return Err(invalid("instalments", "at least one instalment is required").into());
        }
        let mut instalments = Vec::new();
        for (index, instalment) in request.instalments.iter().enumerate() {
            let due = parse_date(
                &format!("instalments[{index}].due_date"),
                instalment.due_date.as_ref(),
            )?;
            let amount = domain::money_of(
                &format!("instalments[{index}].amount"),
                instalment.amount.as_ref(),
            )?;
            if amount.amount_minor == 0 {
                return Err(invalid(
                    &format!("instalments[{index}].amount.amount_minor"),
                    "must be positive",
                )
                .into());
            }
            if instalments
                .last()
                .is_some_and(|(previous, _, _)| *previous >= due)
            {
                return Err(invalid(
                    &format!("instalments[{index}].due_date"),
                    "must be after the previous instalment's",
                )
                .into());
            }
            instalments.push((due, amount.amount_minor, amount.currency));
        }
        let mut tx = self.pool.begin().await.map_err(AccountsError::from)?;
        let mut owed = 0i64;
        let mut debtor = None;
        for id in &ids {
            let state = store::lock_invoice(&mut tx, &tenant_id, *id)
                .await
                .map_err(AccountsError::from)?
                .ok_or_else(|| not_found(format!("invoice {id}")))?;
            if state.invoice.status != InvoiceStatus::Open {
                return Err(failed_precondition(format!("invoice {id} is not open")).into());
            }
            if state.plan_id.is_some() {
                return Err(failed_precondition(format!("invoice {id} already has a payment plan")).into());
            }
            if *debtor.get_or_insert(state.invoice.debtor_id) != state.invoice.debtor_id {
                return Err(
                    invalid("invoice_ids", "all invoices of a plan must belong to one debtor").into(),
                );
            }
            if instalments
                .iter()
                .any(|(_, _, currency)| *currency != state.invoice.currency)
            {
                return Err(invalid(
                    "instalments",
                    &format!("must be in the invoices' currency, {}", state.invoice.currency),
                )
                .into());
            }
            owed += state.outstanding_minor();
        }
        let planned: i64 = instalments.iter().map(|(_, amount, _)| amount).sum();
        if planned != owed {
            return Err(invalid(
                "instalments",
                &format!("add up to {planned} but the invoices owe {owed} (minor units)"),
            )
            .into());
        }
        let debtor = debtor.ok_or_else(|| invalid("invoice_ids", "is required"))?;
        let plan_id = store::create_plan(&mut tx, &tenant_id, debtor, &ids, &instalments)
            .await
            .map_err(AccountsError::from)?;
        events::publish_changes(
            &mut tx,
            &ids,
            true,
            "payment_plan",
            &self.account_events_topic,
            &HashMap::new(),
        )
        .await
        .map_err(AccountsError::from)?;
        tx.commit().await.map_err(AccountsError::from)?;
        Ok(Response::new(pb::PaymentPlan {
            plan_id: plan_id.to_string(),
            invoice_ids: request.invoice_ids,
            instalments: request.instalments,
        }))
    }

    async fn record_promise(
        &self,
        request: Request<pb::RecordPromiseRequest>,
    ) -> Result<Response<pb::Promise>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let invoice_id = domain::uuid("invoice_id", &request.invoice_id)?;
        let promised_date = parse_date("promised_date", request.promised_date.as_ref())?;
        let today = Utc::now().date_naive();
        if promised_date < today {
            return Err(invalid("promised_date", "is in the past").into());
        }
        if promised_date > today + chrono::Duration::days(120) {
            return Err(invalid(
                "promised_date",
                "is more than 120 days away: offer a payment plan instead",
            )
            .into());
        }
        let amount = domain::money_of("amount", request.amount.as_ref())?;
        if amount.amount_minor == 0 {
            return Err(invalid("amount.amount_minor", "must be positive").into());
        }
        let grace = self.promise_grace_days;
        let mut promise_id = None;
        self.change_invoice(&tenant_id, invoice_id, "promise_made", async |tx, state| {
            if state.invoice.currency != amount.currency {
                return Err(invalid(
                    "amount.currency",
                    &format!("differs from the invoice's {}", state.invoice.currency),
                ));
            }
            if state.invoice.status != InvoiceStatus::Open {
                return Err(failed_precondition(format!("invoice {invoice_id} is not open")));
            }
            if amount.amount_minor > state.outstanding_minor() {
                return Err(invalid(
                    "amount.amount_minor",
                    "is more than the invoice still owes",
                ));
            }
            promise_id =
                Some(store::insert_promise(tx, &tenant_id, invoice_id, promised_date, &amount, grace).await?);
            Ok(true)
        })
        .await?;
        Ok(Response::new(pb::Promise {
            promise_id: promise_id.map(|id| id.to_string()).unwrap_or_default(),
            invoice_id: invoice_id.to_string(),
            promised_date: Some(time::date(promised_date)),
            amount: Some(amount),
            state: pb::PromiseState::Open as i32,
        }))
    }

    async fn open_dispute(
        &self,
        request: Request<pb::OpenDisputeRequest>,
    ) -> Result<Response<pb::Dispute>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let invoice_id = domain::uuid("invoice_id", &request.invoice_id)?;
        let reason = request.reason.trim().to_string();
        if reason.is_empty() {
            return Err(invalid("reason", "is required").into());
        }
        let mut dispute_id = None;
        self.change_invoice(&tenant_id, invoice_id, "dispute_opened", async |tx, _state| {
            dispute_id = store::open_dispute(tx, &tenant_id, invoice_id, &reason).await?;
            if dispute_id.is_none() {
                return Err(failed_precondition(format!(
                    "invoice {invoice_id} already has an open dispute"
                )));
            }
            Ok(true)
        })
        .await?;
        Ok(Response::new(pb::Dispute {
            dispute_id: dispute_id.map(|id| id.to_string()).unwrap_or_default(),
            invoice_id: invoice_id.to_string(),
            reason,
            open: true,
            resolution: String::new(),
        }))
    }

    async fn resolve_dispute(
        &self,
        request: Request<pb::ResolveDisputeRequest>,
    ) -> Result<Response<pb::Dispute>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let dispute_id = domain::uuid("dispute_id", &request.dispute_id)?;
        let resolution = request.resolution.trim().to_string();
        if resolution.is_empty() {
            return Err(invalid("resolution", "is required").into());
        }
        let mut tx = self.pool.begin().await.map_err(AccountsError::from)?;
        let (invoice_id, reason) = store::resolve_dispute(&mut tx, &tenant_id, dispute_id, &resolution)
            .await
            .map_err(AccountsError::from)?
            .ok_or_else(|| not_found(format!("open dispute {dispute_id}")))?;
        events::publish_changes(
            &mut tx,
            &[invoice_id],
            true,
            "dispute_resolved",
            &self.account_events_topic,
            &HashMap::new(),
        )
        .await
        .map_err(AccountsError::from)?;
        tx.commit().await.map_err(AccountsError::from)?;
        Ok(Response::new(pb::Dispute {
            dispute_id: dispute_id.to_string(),
            invoice_id: invoice_id.to_string(),
            reason,
            open: false,
            resolution,
        }))
    }

    async fn bulk_import(
        &self,
        request: Request<Streaming<pb::ImportRecord>>,
    ) -> Result<Response<pb::ImportSummary>, Status> {
        let caller = Caller::of(&request)?;
        let mut stream = request.into_inner();
        let mut summary = pb::ImportSummary::default();
        while let Some(record) = stream.message().await? {
            if summary.accepted + summary.rejected >= MAX_IMPORT_RECORDS {
                return Err(Status::invalid_argument(format!(
                    "records: one BulkImport stream takes at most {MAX_IMPORT_RECORDS} records; the first \
                     {MAX_IMPORT_RECORDS} were handled ({} accepted, {} rejected): send the rest in another stream",
                    summary.accepted, summary.rejected
                )));
            }
            // A record for another tenant stops the whole import: nothing is guessed.
            let tenant_id = caller.tenant_for(&record.tenant_id)?;
            match self.import_one(&tenant_id, &record).await {
                Ok(()) => summary.accepted += 1,
                Err(AccountsError::Refused(Refusal::InvalidArgument { field, reason })) => {
                    summary.rejected += 1;
                    summary.errors.push(pb::ImportError {
                        line: record.line,
                        field,
                        reason,
                    });
                }
                Err(AccountsError::Refused(Refusal::NotFound { what })) => {
                    summary.rejected += 1;
                    summary.errors.push(pb::ImportError {
                        line: record.line,
                        field: String::new(),
                        reason: format!("{what} not found"),
                    });
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(Response::new(summary))
    }

    async fn get_kpis(
        &self,
        request: Request<pb::GetKpisRequest>,
    ) -> Result<Response<pb::GetKpisResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = self
            .existing_tenant(&caller.tenant_for(&request.tenant_id)?)
            .await?;
        let as_of = match request.as_of.as_ref() {
            Some(date) => parse_date("as_of", Some(date))?,
            None => Utc::now().date_naive(),
        };
        let segment = Some(request.segment.trim()).filter(|s| !s.is_empty());
        let (receivables, promises) = store::portfolio(&self.pool, &tenant_id, segment)
            .await
            .map_err(AccountsError::from)?;
        let aging = kpi::aging(&receivables, as_of);
        let delinquency = kpi::delinquency_ratio(&receivables, as_of);
        let dso = kpi::dso_countback(&receivables, as_of);
        let month_start = as_of.with_day0(0).unwrap_or(as_of);
        let cei = kpi::cei(&receivables, month_start, as_of);
        let currencies = aging
            .iter()
            .map(|(currency, buckets)| pb::CurrencyKpis {
                currency: currency.clone(),
                aging: Some(pb::Aging {
                    current: buckets.current,
                    days_1_30: buckets.d1_30,
                    days_31_60: buckets.d31_60,
                    days_61_90: buckets.d61_90,
                    days_over_90: buckets.d90_plus,
                }),
                outstanding_minor: buckets.total(),
                overdue_minor: buckets.overdue(),
                delinquency_ratio: delinquency.get(currency).copied().flatten(),
                dso_days: dso.get(currency).copied().flatten(),
                cei_percent: cei.get(currency).copied().flatten(),
            })
            .collect();
        Ok(Response::new(pb::GetKpisResponse {
            currencies,
            promise_kept_rate: kpi::promise_kept_rate(&promises, as_of),
        }))
    }

    async fn list_work_items(
        &self,
        request: Request<pb::ListWorkItemsRequest>,
    ) -> Result<Response<pb::ListWorkItemsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        Ok(Response::new(self.work_queue().list(&tenant_id, &request).await?))
    }

    async fn claim_work_item(
        &self,
        request: Request<pb::ClaimWorkItemRequest>,
    ) -> Result<Response<pb::WorkItem>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let item = self
            .work_queue()
            .claim(&tenant_id, &request.work_item_id, &caller.subject)
            .await?;
        Ok(Response::new(item))
    }

    async fn add_work_item_note(
        &self,
        request: Request<pb::AddWorkItemNoteRequest>,
    ) -> Result<Response<pb::WorkItem>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let item = self
            .work_queue()
            .note(&tenant_id, &request.work_item_id, &caller.subject, &request.text)
            .await?;
        Ok(Response::new(item))
    }

    async fn resolve_work_item(
        &self,
        request: Request<pb::ResolveWorkItemRequest>,
    ) -> Result<Response<pb::WorkItem>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let item = self
            .work_queue()
            .resolve(&tenant_id, &request, &caller.subject)
            .await?;
        Ok(Response::new(item))
    }

    async fn list_handoffs(
        &self,
        request: Request<pb::ListHandoffsRequest>,
    ) -> Result<Response<pb::ListHandoffsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        Ok(Response::new(
            handoffs::list(&self.pool, &tenant_id, &request).await?,
        ))
    }

    async fn update_handoff(
        &self,
        request: Request<pb::UpdateHandoffRequest>,
    ) -> Result<Response<pb::Handoff>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let tenant_id = caller.tenant_for(&request.tenant_id)?;
        let handoff = handoffs::update(&self.pool, &tenant_id, &request, &caller.subject).await?;
        Ok(Response::new(handoff))
    }
}

impl Accounts {
    fn work_queue(&self) -> WorkQueue<'_> {
        WorkQueue {
            pool: &self.pool,
            account_events_topic: &self.account_events_topic,
            promise_grace_days: self.promise_grace_days,
        }
    }
}

/// The (due date, number, id) a page of invoices starts after, from its token's key.
fn invoice_key(key: &str) -> Option<store::InvoiceKey> {
    let mut parts = key.split('\u{1f}');
    let due = parts.next()?.parse().ok()?;
    let number = parts.next()?.to_string();
    let id = parts.next()?.parse().ok()?;
    Some((due, number, id))
}
