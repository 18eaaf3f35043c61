//! The ChannelsService gRPC API.

use recobro_proto::v1::channels_service_server::ChannelsService;
use recobro_proto::v1::{Delivery, ListDeliveriesRequest, ListDeliveriesResponse};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::ChannelsError;
use crate::store;

pub struct Channels {
    pub pool: PgPool,
}

#[tonic::async_trait]
impl ChannelsService for Channels {
    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let request = request.into_inner();
        if request.tenant_id.trim().is_empty() {
            return Err(ChannelsError::InvalidArgument {
                field: "tenant_id".into(),
                reason: "is required".into(),
            }
            .into());
        }
        let debtor_id =
            Uuid::parse_str(request.debtor_id.trim()).map_err(|_| ChannelsError::InvalidArgument {
                field: "debtor_id".into(),
                reason: "is not a UUID".into(),
            })?;
        let deliveries = store::deliveries(&self.pool, &request.tenant_id, debtor_id)
            .await
            .map_err(ChannelsError::from)?;
        Ok(Response::new(ListDeliveriesResponse {
            deliveries: deliveries
                .iter()
                .map(|delivery| Delivery {
                    record: Some(delivery.record()),
                    subject: delivery.subject.clone(),
                    body: delivery.body.clone(),
                })
                .collect(),
        }))
    }
}
