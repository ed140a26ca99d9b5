//! The sync's reads of the copy: versions by id, and a type's copy in id order (the `byType` index).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use jiff::Timestamp;
use tracing::instrument;

use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use domain::ports::{StoreError, StoredCopy};
use domain::sync::StoredVersion;

use super::batch::BATCH_GET_ATTEMPTS;
use super::codec::stored_state;
use super::{DynamoObjectStore, item, read_failed, type_key};

/// BatchGetItem takes at most 100 keys.
const BATCH_GET_KEYS: usize = 100;

impl StoredCopy for DynamoObjectStore {
    #[instrument(skip_all, fields(%tenant, object_type, ids = ids.len()))]
    async fn versions(
        &self,
        tenant: &TenantId,
        object_type: &str,
        ids: &[i64],
    ) -> Result<Vec<StoredVersion>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET_KEYS) {
            let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|&object_id| {
                    let key = ObjectKey {
                        tenant: tenant.clone(),
                        object_type: object_type.to_owned(),
                        object_id,
                    };
                    HashMap::from([(item::KEY.to_owned(), AttributeValue::S(key.to_string()))])
                })
                .collect();
            for _ in 0..BATCH_GET_ATTEMPTS {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .projection_expression(VERSION_PROJECTION)
                    .set_expression_attribute_names(Some(version_projection_names()))
                    .build()
                    .map_err(|source| StoreError::Rejected {
                        source: Box::new(source),
                    })?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table_name, request)
                    .send()
                    .await
                    .map_err(read_failed)?;
                if let Some(items) = output
                    .responses
                    .as_ref()
                    .and_then(|r| r.get(&self.table_name))
                {
                    found.extend(items.iter().filter_map(stored_version));
                }
                keys = output
                    .unprocessed_keys
                    .and_then(|mut unprocessed| unprocessed.remove(&self.table_name))
                    .map(|left| left.keys)
                    .unwrap_or_default();
                if keys.is_empty() {
                    break;
                }
            }
            if !keys.is_empty() {
                return Err(StoreError::Throttled {
                    source: format!("{} keys were left unprocessed", keys.len()).into(),
                });
            }
        }
        Ok(found)
    }

    #[instrument(skip_all, fields(%tenant, object_type, after_id, limit))]
    async fn stored_after(
        &self,
        tenant: &TenantId,
        object_type: &str,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        let mut names = version_projection_names();
        names.insert("#typeKey".into(), item::TYPE_KEY.into());
        loop {
            let page_limit = i32::try_from(limit - found.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .query()
                .table_name(&self.table_name)
                .index_name(item::BY_TYPE_INDEX)
                .key_condition_expression("#typeKey = :typeKey AND #objectId > :after")
                .set_expression_attribute_names(Some(names.clone()))
                .expression_attribute_values(
                    ":typeKey",
                    AttributeValue::S(type_key(tenant, object_type)),
                )
                .expression_attribute_values(":after", AttributeValue::N(after_id.to_string()))
                .projection_expression(VERSION_PROJECTION)
                .limit(page_limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(read_failed)?;
            found.extend(output.items().iter().filter_map(stored_version));
            start = output.last_evaluated_key;
            if start.is_none() || found.len() >= limit {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

const VERSION_PROJECTION: &str = "#objectId, #version, #versionUnknown, #deleted, #updatedAt";

fn version_projection_names() -> HashMap<String, String> {
    [
        item::OBJECT_ID,
        item::VERSION,
        item::VERSION_UNKNOWN,
        item::DELETED,
        item::UPDATED_AT,
    ]
    .into_iter()
    .map(|name| (format!("#{name}"), name.to_owned()))
    .collect()
}

/// What the sync compares of a stored item. An item whose write time cannot be read is treated as
/// written now, so it is never taken for deleted.
pub fn stored_version(item: &HashMap<String, AttributeValue>) -> Option<StoredVersion> {
    let id = item.get(item::OBJECT_ID)?.as_n().ok()?.parse().ok()?;
    let updated_at = item
        .get(item::UPDATED_AT)
        .and_then(|v| v.as_s().ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(Timestamp::now);
    // An item the rule cannot read is no copy to compare: the sync fetches its object again.
    let state = stored_state(item).ok()?;
    Some(StoredVersion::of(id, &state, updated_at))
}
