//! `SyncRecords` on the table: one method per question or record the sync keeps.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::{SignedDuration, Timestamp};
use tracing::instrument;

use super::codec::*;
use super::keys::*;
use super::{DynamoSyncRecords, failed};
use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use domain::ports::{StoreError, SyncRecords};
use domain::sync::drift::{DriftFinding, FINDING_KEPT_FOR, Held};
use domain::sync::{
    Listed, ListedStretch, ListedWindow, RunState, StepRecorded, StepReport, bucket_end,
    by_listed_bucket, listed_bucket,
};
use domain::sync::{PageMemory, RunStart};

impl SyncRecords for DynamoSyncRecords {
    #[instrument(skip_all, fields(tenant = %run.tenant, run_id = %run.run_id))]
    async fn start_run(&self, run: &RunStart) -> Result<(), StoreError> {
        let not_reconcilable = run
            .not_reconcilable
            .iter()
            .map(|(object_type, reason)| (object_type.clone(), s(reason.clone())))
            .collect();
        self.client
            .put_item()
            .table_name(&self.table_name)
            .item(item::KEY, s(run_key(&run.tenant)))
            .item(item::SORT, s(run.run_id.clone()))
            .item(item::MODE, s(run.mode.as_str().to_owned()))
            .item(item::STATE, s(RunState::Running.as_str().to_owned()))
            .item(item::STARTED_AT, s(run.started_at.to_string()))
            .item(item::STEPS, n(0))
            .item(
                item::TYPES,
                AttributeValue::L(run.types.iter().cloned().map(s).collect()),
            )
            .item(item::NOT_RECONCILABLE, AttributeValue::M(not_reconcilable))
            .item(item::EXPIRES_AT, expires_in(RUN_RECORD_DAYS))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", item::KEY)
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    #[instrument(skip_all, fields(%tenant, run_id))]
    async fn run_state(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> Result<Option<RunState>, StoreError> {
        Ok(self
            .recorded_run(tenant, run_id)
            .await?
            .and_then(|run| run.state))
    }

    #[instrument(skip_all, fields(%tenant, run_id, step, object_type = %report.object_type))]
    async fn record_step(
        &self,
        tenant: &TenantId,
        run_id: &str,
        step: u32,
        report: &StepReport,
    ) -> Result<StepRecorded, StoreError> {
        self.count_step(tenant, run_id, step, report).await
    }

    async fn page_memory(
        &self,
        tenant: &TenantId,
        page: &str,
    ) -> Result<Option<PageMemory>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(page_key(tenant)))
            .key(item::SORT, s(page.to_owned()))
            .send()
            .await
            .map_err(failed)?;
        Ok(output.item.and_then(|item| {
            let digest = item.get(item::DIGEST)?.as_s().ok()?.clone();
            let ids = item.get(item::IDS)?.as_b().ok()?;
            let versions = item.get(item::VERSIONS)?.as_b().ok()?;
            Some(PageMemory {
                digest,
                objects: unpack_objects(ids.as_ref(), versions.as_ref())?,
                confirmed: item
                    .get(item::CONFIRMED)
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
            })
        }))
    }

    async fn remember_page(
        &self,
        tenant: &TenantId,
        page: &str,
        memory: &PageMemory,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table_name)
            .item(item::KEY, s(page_key(tenant)))
            .item(item::SORT, s(page.to_owned()))
            .item(item::DIGEST, s(memory.digest.clone()))
            .item(
                item::IDS,
                AttributeValue::B(Blob::new(pack_ids(
                    &memory.objects.iter().map(|o| o.id).collect::<Vec<_>>(),
                ))),
            )
            .item(
                item::VERSIONS,
                AttributeValue::B(Blob::new(pack_versions(&memory.objects))),
            )
            .item(item::CONFIRMED, AttributeValue::Bool(memory.confirmed))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn remembered_windows(
        &self,
        tenant: &TenantId,
        object_type: &str,
    ) -> Result<Vec<ListedWindow>, StoreError> {
        // A memory that cannot be read is no memory: the listing starts over every date.
        Ok(self
            .json_item(format!("windows#{tenant}"), object_type, item::WINDOWS)
            .await?
            .unwrap_or_default())
    }

    async fn remember_windows(
        &self,
        tenant: &TenantId,
        object_type: &str,
        windows: &[ListedWindow],
    ) -> Result<(), StoreError> {
        self.put_json_item(
            format!("windows#{tenant}"),
            object_type,
            item::WINDOWS,
            windows,
        )
        .await
    }

    async fn confirm_pages(&self, tenant: &TenantId, pages: &[String]) -> Result<(), StoreError> {
        for page in pages {
            self.update_of(page_key(tenant), page.clone())
                .update_expression("SET #confirmed = :yes")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#confirmed", item::CONFIRMED)
                .expression_attribute_names("#pk", item::KEY)
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .send()
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    async fn record_listed(
        &self,
        tenant: &TenantId,
        run_id: &str,
        page: &str,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        let object_type = page.split('/').next().unwrap_or_default();
        for (bucket, ids) in by_listed_bucket(ids) {
            self.client
                .put_item()
                .table_name(&self.table_name)
                .item(item::KEY, s(listed_key(tenant, run_id, object_type)))
                .item(item::SORT, s(format!("{}#{page}", bucket_sort_key(bucket))))
                .item(item::IDS, AttributeValue::B(Blob::new(pack_ids(&ids))))
                .item(item::EXPIRES_AT, expires_in(LISTED_IDS_DAYS))
                .send()
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    async fn listed_after(
        &self,
        tenant: &TenantId,
        run_id: &str,
        object_type: &str,
        after_id: i64,
        budget: usize,
    ) -> Result<ListedStretch, StoreError> {
        let mut stretch = ListedStretch::default();
        let first = bucket_sort_key(listed_bucket(after_id.saturating_add(1)));
        let (mut read, mut current) = (0, None);
        let mut start = None;
        'pages: loop {
            let output = self
                .client
                .query()
                .table_name(&self.table_name)
                .key_condition_expression("#pk = :pk AND #sk >= :first")
                .expression_attribute_names("#pk", item::KEY)
                .expression_attribute_names("#sk", item::SORT)
                .expression_attribute_values(":pk", s(listed_key(tenant, run_id, object_type)))
                .expression_attribute_values(":first", s(first.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(failed)?;
            for page in output.items() {
                let Some(bucket) = page
                    .get(item::SORT)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|key| bucket_of_sort_key(key))
                else {
                    continue;
                };
                // Whole buckets only: stop at a bucket boundary once the budget is read.
                if current.is_some_and(|current| current != bucket) && read >= budget {
                    stretch.complete_to = Some(bucket_end(bucket - 1));
                    break 'pages;
                }
                current = Some(bucket);
                if let Some(bytes) = page.get(item::IDS).and_then(|v| v.as_b().ok()) {
                    let before = stretch.ids.len();
                    stretch
                        .ids
                        .extend(unpack_ids(bytes.as_ref()).filter(|&id| id > after_id));
                    read += stretch.ids.len() - before;
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        stretch.ids.sort_unstable();
        stretch.ids.dedup();
        Ok(stretch)
    }

    async fn known_unstorable(
        &self,
        tenant: &TenantId,
        object_type: &str,
    ) -> Result<Vec<Listed>, StoreError> {
        // A memory that cannot be read is no memory: those objects are fetched (and found
        // unstorable) once more.
        Ok(self
            .json_item(format!("unstorable#{tenant}"), object_type, item::OBJECTS)
            .await?
            .unwrap_or_default())
    }

    async fn remember_unstorable(
        &self,
        tenant: &TenantId,
        object_type: &str,
        objects: &[Listed],
    ) -> Result<(), StoreError> {
        if objects.is_empty() {
            return Ok(());
        }
        let mut known = self.known_unstorable(tenant, object_type).await?;
        known.retain(|old| !objects.iter().any(|new| new.id == old.id));
        known.extend_from_slice(objects);
        let keep_from = known.len().saturating_sub(UNSTORABLE_REMEMBERED);
        self.put_json_item(
            format!("unstorable#{tenant}"),
            object_type,
            item::OBJECTS,
            &known[keep_from..],
        )
        .await
    }

    async fn record_marker(&self, tenant: &TenantId, run_id: &str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table_name)
            .item(item::KEY, s(marker_key(tenant)))
            .item(item::SORT, s(run_id.to_owned()))
            .item(item::EXPIRES_AT, expires_in(LISTED_IDS_DAYS))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn marker_seen(&self, tenant: &TenantId, run_id: &str) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(marker_key(tenant)))
            .key(item::SORT, s(run_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(output.item.is_some())
    }

    async fn record_drift(
        &self,
        tenant: &TenantId,
        object_type: &str,
        run_id: &str,
        findings: &[DriftFinding],
    ) -> Result<(), StoreError> {
        let expires = expires_after(
            SignedDuration::try_from(FINDING_KEPT_FOR).unwrap_or(SignedDuration::MAX),
        );
        for chunk in findings.chunks(crate::dynamodb::WRITE_BATCH) {
            let items = chunk
                .iter()
                .map(|finding| {
                    HashMap::from([
                        (item::KEY.to_owned(), s(drift_key(tenant))),
                        (
                            item::SORT.to_owned(),
                            s(drift_sort_key(object_type, finding.id)),
                        ),
                        (item::HELD.to_owned(), s(finding.held.to_string())),
                        (item::RUN.to_owned(), s(run_id.to_owned())),
                        (item::EXPIRES_AT.to_owned(), expires.clone()),
                    ])
                })
                .collect();
            crate::dynamodb::put_items(&self.client, &self.table_name, items).await?;
        }
        Ok(())
    }

    async fn settle_drift(
        &self,
        key: &ObjectKey,
        held: Held,
    ) -> Result<Option<String>, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(drift_key(&key.tenant)))
            .key(
                item::SORT,
                s(drift_sort_key(&key.object_type, key.object_id)),
            )
            .condition_expression("#held = :held")
            .expression_attribute_names("#held", item::HELD)
            .expression_attribute_values(":held", s(held.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(
                output
                    .attributes
                    .as_ref()
                    .and_then(|old| text(old, item::RUN))
                    .unwrap_or_default(),
            )),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(failed(error)),
        }
    }

    async fn confirm_complete(
        &self,
        tenant: &TenantId,
        object_type: &str,
        listing_began: Timestamp,
    ) -> Result<(), StoreError> {
        let result = self
            .update_of(confirmed_key(tenant), object_type.to_owned())
            .update_expression("SET #at = :at")
            .condition_expression("attribute_not_exists(#at) OR #at < :at")
            .expression_attribute_names("#at", item::CONFIRMED_AT)
            .expression_attribute_values(":at", n(listing_began.as_second()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A later listing confirmed it already: the confirmation only moves forward.
            Err(error) if crate::dynamodb::refused_by_condition(&error) => Ok(()),
            Err(error) => Err(failed(error)),
        }
    }

    async fn confirmed_complete(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", item::KEY)
            .expression_attribute_values(":pk", s(confirmed_key(tenant)))
            .send()
            .await
            .map_err(failed)?;
        Ok(output
            .items()
            .iter()
            .filter_map(|found| {
                let object_type = found.get(item::SORT)?.as_s().ok()?.clone();
                let seconds: i64 = found.get(item::CONFIRMED_AT)?.as_n().ok()?.parse().ok()?;
                Some((object_type, Timestamp::from_second(seconds).ok()?))
            })
            .collect())
    }
}
