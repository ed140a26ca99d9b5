//! The CLI's work on the copy: a type counted, a company purged, an object's value forgotten.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use tracing::instrument;

use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use domain::item::StoredValue;
use domain::ports::StoreError;

use super::batch::{WRITE_BATCH, delete_keys};
use super::codec::stored_item;
use super::write::write_failed;
use super::{DynamoObjectStore, item, read_failed, refused_by_condition, type_key};

/// A company's copy as an operator sees it: counted per type, and erased when it is removed.
impl DynamoObjectStore {
    /// The items (tombstones included) of one type of one company, counted on the `byType` index.
    #[instrument(skip_all, fields(tenant = %tenant, object_type))]
    pub async fn count_of_type(
        &self,
        tenant: &TenantId,
        object_type: &str,
    ) -> Result<u64, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(item::BY_TYPE_INDEX)
            .key_condition_expression("#typeKey = :typeKey")
            .expression_attribute_names("#typeKey", item::TYPE_KEY)
            .expression_attribute_values(
                ":typeKey",
                AttributeValue::S(type_key(tenant, object_type)),
            )
            .select(aws_sdk_dynamodb::types::Select::Count)
            .into_paginator()
            .send();
        let mut total = 0;
        while let Some(page) = pages.next().await {
            total += u64::try_from(page.map_err(read_failed)?.count).unwrap_or_default();
        }
        Ok(total)
    }

    /// Deletes every item of one company, tombstones included, and nothing of any other (a scan
    /// on `tenant`, deletes 25 at a time); `progress` hears the running count. A company's items
    /// all carry its tenant, so a second purge finds nothing.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn purge_tenant(
        &self,
        tenant: &TenantId,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table_name)
            .filter_expression("#tenant = :tenant")
            .projection_expression("#pk")
            .expression_attribute_names("#tenant", item::TENANT)
            .expression_attribute_names("#pk", item::KEY)
            .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_string()))
            .into_paginator()
            .send();
        let mut deleted = 0;
        while let Some(page) = pages.next().await {
            let keys: Vec<AttributeValue> = page
                .map_err(read_failed)?
                .items()
                .iter()
                .filter_map(|found| found.get(item::KEY).cloned())
                .collect();
            for chunk in keys.chunks(WRITE_BATCH) {
                self.delete_batch(chunk).await?;
                deleted += chunk.len() as u64;
                progress(deleted);
            }
        }
        Ok(deleted)
    }

    async fn delete_batch(&self, keys: &[AttributeValue]) -> Result<(), StoreError> {
        let keys = keys
            .iter()
            .map(|key| HashMap::from([(item::KEY.to_owned(), key.clone())]))
            .collect();
        delete_keys(&self.client, &self.table_name, keys).await
    }
}

/// What `forget` erased from an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The version it was forgotten at: only a newer one is stored again.
    pub version: Option<i64>,
    pub deleted: bool,
    pub value: Option<StoredValue>,
    pub last_value: Option<StoredValue>,
    /// It had been forgotten before (this run found nothing more to erase on the item).
    pub again: bool,
}

impl DynamoObjectStore {
    /// Erases an object's value and `lastValue` and marks it forgotten (`dedup::decide` then refuses
    /// what is not a newer version); none when the copy holds no such object. The large values
    /// those attributes pointed at are the caller's to delete (`claim::values_prefix`).
    #[instrument(skip_all, fields(%key))]
    pub async fn forget(
        &self,
        key: &ObjectKey,
        now: Timestamp,
    ) -> Result<Option<Erased>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(item::KEY, AttributeValue::S(key.to_string()))
            // updatedAt moves on, as with every write: the mirror orders images by it.
            .update_expression(
                "SET #forgottenAt = :now, #updatedAt = :now REMOVE #value, #lastValue, #payloadHash",
            )
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", item::KEY)
            .expression_attribute_names("#forgottenAt", item::FORGOTTEN_AT)
            .expression_attribute_names("#updatedAt", item::UPDATED_AT)
            .expression_attribute_names("#value", item::VALUE)
            .expression_attribute_names("#lastValue", item::LAST_VALUE)
            .expression_attribute_names("#payloadHash", item::PAYLOAD_HASH)
            .expression_attribute_values(":now", AttributeValue::S(now.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(error) if refused_by_condition(&error) => return Ok(None),
            Err(error) => return Err(write_failed(error)),
        };
        let erased = stored_item(&old).map_err(|source| StoreError::Rejected {
            source: Box::new(source),
        })?;
        Ok(Some(Erased {
            version: erased.state.version,
            deleted: erased.state.deleted,
            value: erased.value,
            last_value: erased.last_value,
            again: erased.state.forgotten,
        }))
    }
}
