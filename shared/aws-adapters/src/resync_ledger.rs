//! `ResyncLedger` on DynamoDB: one item per re-enabled subscription and time, which the resync reads.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use tracing::instrument;

use domain::ports::{LedgerError, ResyncLedger};
use domain::resync::ResyncRequest;

/// Attribute names of a resync item. `pk` = `tenant#subscriptionId`, `requestedAt` sorts a
/// subscription's requests in time.
pub mod item {
    pub const KEY: &str = "pk";
    pub const REQUESTED_AT: &str = "requestedAt";
    pub const TENANT: &str = "tenant";
    pub const SUBSCRIPTION_ID: &str = "subscriptionId";
    pub const EVENT: &str = "event";
    pub const OBJECT_TYPE: &str = "objectType";
    pub const PREVIOUS_STATUS: &str = "previousStatus";
    pub const WINDOW_FROM: &str = "windowFrom";
    pub const WINDOW_TO: &str = "windowTo";
    /// `PENDING` until a resync has fetched the window.
    pub const STATE: &str = "state";
}

#[derive(Debug, Clone)]
pub struct DynamoResyncLedger {
    client: Client,
    table_name: String,
}

impl DynamoResyncLedger {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }
}

impl ResyncLedger for DynamoResyncLedger {
    #[instrument(skip_all, fields(tenant = %request.tenant, subscription_id = request.subscription_id))]
    async fn record(&self, request: &ResyncRequest) -> Result<(), LedgerError> {
        let s = |text: String| AttributeValue::S(text);
        self.client
            .put_item()
            .table_name(&self.table_name)
            .item(
                item::KEY,
                s(format!("{}#{}", request.tenant, request.subscription_id)),
            )
            .item(item::REQUESTED_AT, s(request.window_to.to_string()))
            .item(item::TENANT, s(request.tenant.to_string()))
            .item(
                item::SUBSCRIPTION_ID,
                AttributeValue::N(request.subscription_id.to_string()),
            )
            .item(item::EVENT, s(request.event.clone()))
            .item(item::OBJECT_TYPE, s(request.object_type.clone()))
            .item(item::PREVIOUS_STATUS, s(request.previous_status.clone()))
            .item(item::WINDOW_FROM, s(request.window_from.to_string()))
            .item(item::WINDOW_TO, s(request.window_to.to_string()))
            .item(item::STATE, s("PENDING".to_owned()))
            .send()
            .await
            .map_err(|source| LedgerError {
                source: Box::new(source),
            })?;
        Ok(())
    }
}
