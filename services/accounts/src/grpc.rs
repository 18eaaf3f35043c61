//! The AccountsService gRPC API.

use recobro_proto::v1::accounts_service_server::AccountsService;
use recobro_proto::v1::{
    GetDebtorRequest, GetDebtorResponse, ListInvoicesRequest, ListInvoicesResponse, Money,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain;
use crate::error::AccountsError;
use crate::store;

pub struct Accounts {
    pub pool: PgPool,
}

#[tonic::async_trait]
impl AccountsService for Accounts {
    async fn get_debtor(
        &self,
        request: Request<GetDebtorRequest>,
    ) -> Result<Response<GetDebtorResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = domain::tenant("tenant_id", &request.tenant_id)?;
        let debtor_id = domain::uuid("debtor_id", &request.debtor_id)?;
        let debtor = store::debtor(&self.pool, &tenant_id, debtor_id)
            .await
            .map_err(AccountsError::from)?
            .ok_or_else(|| AccountsError::NotFound {
                what: format!("debtor {debtor_id}"),
            })?;
        let invoices = store::invoices(&self.pool, &tenant_id, debtor_id)
            .await
            .map_err(AccountsError::from)?;
        let mut balance: Vec<Money> = Vec::new();
        for invoice in invoices.iter().filter(|invoice| invoice.status == "open") {
            match balance
                .iter_mut()
                .find(|money| money.currency == invoice.currency)
            {
                Some(money) => money.amount_minor += invoice.amount_minor,
                None => balance.push(Money {
                    amount_minor: invoice.amount_minor,
                    currency: invoice.currency.clone(),
                }),
            }
        }
        balance.sort_by(|a, b| a.currency.cmp(&b.currency));
        Ok(Response::new(GetDebtorResponse {
            debtor: Some(debtor.to_proto()),
            balance,
        }))
    }

    async fn list_invoices(
        &self,
        request: Request<ListInvoicesRequest>,
    ) -> Result<Response<ListInvoicesResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = domain::tenant("tenant_id", &request.tenant_id)?;
        let debtor_id = domain::uuid("debtor_id", &request.debtor_id)?;
        let invoices = store::invoices(&self.pool, &tenant_id, debtor_id)
            .await
            .map_err(AccountsError::from)?;
        Ok(Response::new(ListInvoicesResponse {
            invoices: invoices.iter().map(|invoice| invoice.to_proto()).collect(),
        }))
    }
}
