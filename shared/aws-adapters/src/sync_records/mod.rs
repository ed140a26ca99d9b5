//! `SyncRecords` on DynamoDB: one table (`pk`, `sk`) holds three kinds of item.
//! - A run record per company and run (`run#<tenant>`, run id): mode, state, steps counted, counts
//!   per type (`<type>:<count>`), failures. Each step is counted once: the update is conditional on
//!   the number of steps counted so far.
//! - A page's memory (`page#<tenant>`, page key): the `versionDigest` Tripletex gave the page, its
//!   ids and their versions, so that a 304 page is still compared with the copy. A memory written
//!   before versions were kept is no memory: its page is listed in full once.
//! - The date windows a type's last complete listing used (`windows#<tenant>`, the type), as JSON,
//!   so that the next run starts from them.
//! - The ids a run listed (`listed#<tenant>#<run>#<type>`, bucket then page key: one item per id
//!   bucket and page), read back bucket by bucket, in id order, by the check of the copy once the
//!   listing of the type is complete; they expire after a week.
//! - The objects a fetch found the worker can never store (`unstorable#<tenant>`, the type), as
//!   JSON `[{id, version}]`, so that they are not fetched again at the same version.
//! - The markers of reconciliations the worker reached (`marker#<tenant>`, the run id), kept a week.
//! - What reconciliations counted as drift (`drift#<tenant>`, `<type>#<id>`): what each finding
//!   brought the copy to and its run, until the worker settles it (its webhook came after all) or
//!   it expires (`drift::FINDING_KEPT_FOR`).
//! - When a type's copy was last confirmed complete (`confirmed#<tenant>`, the type): epoch seconds
//!   of the listing's start, only ever moved forward.

mod codec;
mod keys;
mod port;
mod step;

pub use codec::{read_confirmation, read_drift_finding, read_run};
pub use keys::*;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

use codec::*;
use domain::ids::TenantId;
use domain::ports::StoreError;
use domain::sync::RecordedRun;
use domain::sync::RunState;

#[derive(Debug, Clone)]
pub struct DynamoSyncRecords {
    client: Client,
    table_name: String,
}

impl DynamoSyncRecords {
    /// Deletes every record the sync keeps of a company (run records, page memory, listed ids,
    /// date windows, known unstorable objects, confirmations), so that a company added again is
    /// listed and compared from nothing; the number of items deleted.
    pub async fn purge_tenant(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let partitions = [
            run_key(tenant),
            page_key(tenant),
            format!("windows#{tenant}"),
            format!("unstorable#{tenant}"),
            confirmed_key(tenant),
            marker_key(tenant),
            drift_key(tenant),
        ];
        let mut values: HashMap<String, AttributeValue> = partitions
            .iter()
            .enumerate()
            .map(|(at, key)| (format!(":p{at}"), s(key.clone())))
            .collect();
        let listed = format!(":p{}", partitions.len());
        values.insert(listed.clone(), s(format!("listed#{tenant}#")));
        let named: Vec<String> = (0..partitions.len()).map(|at| format!(":p{at}")).collect();
        let filter = format!(
            "#pk IN ({}) OR begins_with(#pk, {listed})",
            named.join(", ")
        );
        crate::dynamodb::delete_scanned(
            &self.client,
            &self.table_name,
            [item::KEY, item::SORT],
            &filter,
            HashMap::from([("#pk".to_owned(), item::KEY.to_owned())]),
            values,
        )
        .await
    }
}

impl DynamoSyncRecords {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    /// A value kept as JSON in one attribute of one item; none when the item, the attribute or its
    /// JSON is missing or unreadable.
    pub(super) async fn json_item<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
        sort: &str,
        attribute: &str,
    ) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(key))
            .key(item::SORT, s(sort.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(output
            .item
            .and_then(|item| item.get(attribute).and_then(|v| v.as_s().ok()).cloned())
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    pub(super) async fn put_json_item<T: serde::Serialize + ?Sized>(
        &self,
        key: String,
        sort: &str,
        attribute: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(value).map_err(|source| StoreError::Rejected {
            source: Box::new(source),
        })?;
        self.client
            .put_item()
            .table_name(&self.table_name)
            .item(item::KEY, s(key))
            .item(item::SORT, s(sort.to_owned()))
            .item(attribute, s(text))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// An update of one item, by its keys.
    pub(super) fn update_of(
        &self,
        key: String,
        sort: String,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(key))
            .key(item::SORT, s(sort))
    }

    /// Sets the final state from the failures counted; written again if the step is delivered again.
    pub(super) async fn finish(
        &self,
        tenant: &TenantId,
        run_id: &str,
        failed_types: u64,
    ) -> Result<RunState, StoreError> {
        let state = RunState::ended(failed_types);
        self.update_of(run_key(tenant), run_id.to_owned())
            .update_expression(
                "SET #state = :state, #finishedAt = if_not_exists(#finishedAt, :now)",
            )
            .expression_attribute_names("#state", item::STATE)
            .expression_attribute_names("#finishedAt", item::FINISHED_AT)
            .expression_attribute_values(":state", s(state.as_str().to_owned()))
            .expression_attribute_values(":now", s(Timestamp::now().to_string()))
            .send()
            .await
            .map_err(failed)?;
        Ok(state)
    }
}

impl DynamoSyncRecords {
    /// One run's record, read consistently (a follower sees each step as soon as it is counted).
    pub async fn recorded_run(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> Result<Option<RecordedRun>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(run_key(tenant)))
            .key(item::SORT, s(run_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(output.item.as_ref().and_then(read_run))
    }
}

pub(super) fn failed<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    crate::dynamodb::read_failed(error)
}
