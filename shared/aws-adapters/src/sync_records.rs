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

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use jiff::{SignedDuration, Timestamp};
use tracing::instrument;

use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use domain::ports::{StoreError, SyncRecords};
use domain::sync::drift::{DriftFinding, FINDING_KEPT_FOR, Held};
use domain::sync::{
    Listed, ListedStretch, ListedWindow, RunState, StepRecorded, StepReport, bucket_end,
    by_listed_bucket, listed_bucket,
};
use domain::sync::{PageMemory, RecordedRun, RunMode, RunStart, TypeCounts};

pub mod item {
    pub const KEY: &str = "pk";
    pub const SORT: &str = "sk";
    pub const MODE: &str = "mode";
    pub const STATE: &str = "state";
    pub const STARTED_AT: &str = "startedAt";
    pub const FINISHED_AT: &str = "finishedAt";
    pub const STEPS: &str = "steps";
    pub const TYPES: &str = "types";
    pub const NOT_RECONCILABLE: &str = "notReconcilable";
    pub const FAILURES: &str = "failures";
    pub const FAILED_TYPES: &str = "failedTypes";
    /// On a run record: objects found unstorable, `<type>: id <id> version <v>: <reason>`.
    pub const UNSTORABLE: &str = "unstorable";
    pub const DIGEST: &str = "digest";
    pub const IDS: &str = "ids";
    /// On a page's memory: the version of each of its ids, in the same order (`pack_versions`).
    pub const VERSIONS: &str = "versions";
    /// On a page's memory: its objects are all queued, so its digest may be sent.
    pub const CONFIRMED: &str = "confirmed";
    pub const WINDOWS: &str = "windows";
    /// Epoch seconds; the table's TTL attribute.
    pub const EXPIRES_AT: &str = "expiresAt";
    /// On the unstorable objects of a type: `[{id, version}]` as JSON.
    pub const OBJECTS: &str = "objects";
    /// On a type's confirmation: epoch seconds of the start of the listing that proved it complete.
    pub const CONFIRMED_AT: &str = domain::sync::freshness::CONFIRMED_AT;
    /// On a drift finding: what it brought the copy to (`drift::Held`, `7` or `deleted`).
    pub const HELD: &str = "held";
    /// On a drift finding: the run that counted it.
    pub const RUN: &str = "run";
}

/// The partition key of a company's confirmations, one item per type.
pub fn confirmed_key(tenant: &TenantId) -> String {
    format!("{}{tenant}", domain::sync::freshness::CONFIRMED_KEY_PREFIX)
}

const RUN_RECORD_DAYS: i64 = 90;
/// The most unstorable objects remembered per type (the newest kept): about 40 bytes of JSON each,
/// well inside DynamoDB's 400 KB item.
const UNSTORABLE_REMEMBERED: usize = 8_000;
const LISTED_IDS_DAYS: i64 = 7;

/// The partition key of a company's run records, before the tenant.
pub const RUN_KEY_PREFIX: &str = "run#";

pub fn run_key(tenant: &TenantId) -> String {
    format!("{RUN_KEY_PREFIX}{tenant}")
}

fn page_key(tenant: &TenantId) -> String {
    format!("page#{tenant}")
}

/// The partition of a company's markers the worker reached (`sync::marker`), one item per run.
pub fn marker_key(tenant: &TenantId) -> String {
    format!("{MARKER_KEY_PREFIX}{tenant}")
}

/// The partition key of a company's markers, before the tenant: items of the sync table the worker
/// may write.
pub const MARKER_KEY_PREFIX: &str = "marker#";

/// The partition of a company's drift findings (`sync::drift`), one item per object.
pub fn drift_key(tenant: &TenantId) -> String {
    format!("{DRIFT_KEY_PREFIX}{tenant}")
}

/// The partition key of a company's drift findings, before the tenant: items of the sync table the
/// worker may delete.
pub const DRIFT_KEY_PREFIX: &str = "drift#";

fn drift_sort_key(object_type: &str, id: i64) -> String {
    format!("{object_type}#{id}")
}

fn listed_key(tenant: &TenantId, run_id: &str, object_type: &str) -> String {
    format!("listed#{tenant}#{run_id}#{object_type}")
}

/// A bucket as a sort key that sorts as the bucket does (negative ones included).
fn bucket_sort_key(bucket: i64) -> String {
    format!("{:016x}", (bucket as u64) ^ (1 << 63))
}

fn bucket_of_sort_key(key: &str) -> Option<i64> {
    let bits = u64::from_str_radix(key.get(..16)?, 16).ok()?;
    Some((bits ^ (1 << 63)) as i64)
}

/// The attribute a count of one type is kept in: `customer:fetched`.
pub fn count_attribute(object_type: &str, count: &str) -> String {
    format!("{object_type}:{count}")
}

/// Ids as 8 little-endian bytes each: a page of 1,000 is 8 KB.
pub fn pack_ids(ids: &[i64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

/// A page's versions as 8 little-endian bytes each, `i64::MIN` for an object listed without one.
pub fn pack_versions(objects: &[Listed]) -> Vec<u8> {
    objects
        .iter()
        .flat_map(|object| object.version.unwrap_or(i64::MIN).to_le_bytes())
        .collect()
}

/// A page's objects from its packed ids and versions; none when the two do not match.
pub fn unpack_objects(ids: &[u8], versions: &[u8]) -> Option<Vec<Listed>> {
    if ids.len() != versions.len() || ids.len() % 8 != 0 {
        return None;
    }
    Some(
        unpack_ids(ids)
            .zip(unpack_ids(versions))
            .map(|(id, version)| Listed {
                id,
                version: (version != i64::MIN).then_some(version),
            })
            .collect(),
    )
}

pub fn unpack_ids(bytes: &[u8]) -> impl Iterator<Item = i64> + '_ {
    bytes.chunks_exact(8).map(|chunk| {
        let mut id = [0; 8];
        id.copy_from_slice(chunk);
        i64::from_le_bytes(id)
    })
}

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
    async fn json_item<T: serde::de::DeserializeOwned>(
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

    async fn put_json_item<T: serde::Serialize + ?Sized>(
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

    /// Sets the final state from the failures counted; written again if the step is delivered again.
    async fn finish(
        &self,
        tenant: &TenantId,
        run_id: &str,
        failed_types: u64,
    ) -> Result<RunState, StoreError> {
        let state = RunState::ended(failed_types);
        self.client
            .update_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(run_key(tenant)))
            .key(item::SORT, s(run_id.to_owned()))
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

fn s(text: String) -> AttributeValue {
    AttributeValue::S(text)
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

fn expires_in(days: i64) -> AttributeValue {
    expires_after(SignedDuration::from_hours(24 * days))
}

/// The TTL attribute of an item kept this long from now.
fn expires_after(kept: SignedDuration) -> AttributeValue {
    let at = Timestamp::now().checked_add(kept).unwrap_or(Timestamp::MAX);
    n(at.as_second())
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn texts(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// A run record read back as `start_run` and `record_step` write it; none for the table's other
/// items.
pub fn read_run(item: &HashMap<String, AttributeValue>) -> Option<RecordedRun> {
    let tenant = text(item, item::KEY)?
        .strip_prefix(RUN_KEY_PREFIX)?
        .to_owned();
    let types = texts(item, item::TYPES);
    let counts = types
        .iter()
        .map(|object_type| {
            let mut counts = TypeCounts::default();
            for (name, value) in counts.named_mut() {
                *value = number(item, &count_attribute(object_type, name));
            }
            (object_type.clone(), counts)
        })
        .collect();
    Some(RecordedRun {
        tenant,
        run_id: text(item, item::SORT)?,
        mode: text(item, item::MODE).and_then(|mode| RunMode::parse(&mode)),
        state: text(item, item::STATE).and_then(|state| RunState::parse(&state)),
        started_at: text(item, item::STARTED_AT),
        finished_at: text(item, item::FINISHED_AT),
        steps: number(item, item::STEPS),
        types,
        counts,
        failures: texts(item, item::FAILURES),
    })
}

/// A type's confirmation read back: the company, the type, and when the listing that proved its
/// copy complete began; none for the table's other items.
pub fn read_confirmation(
    item: &HashMap<String, AttributeValue>,
) -> Option<(String, String, Timestamp)> {
    let tenant = text(item, item::KEY)?
        .strip_prefix(domain::sync::freshness::CONFIRMED_KEY_PREFIX)?
        .to_owned();
    let seconds = item.get(item::CONFIRMED_AT)?.as_n().ok()?.parse().ok()?;
    Some((
        tenant,
        text(item, item::SORT)?,
        Timestamp::from_second(seconds).ok()?,
    ))
}

/// A drift finding not settled yet, read from a scan of the table (as `status` reads it): its
/// company, its type and the run that counted it.
pub fn read_drift_finding(
    item: &HashMap<String, AttributeValue>,
) -> Option<(String, String, String)> {
    let tenant = text(item, item::KEY)?
        .strip_prefix(DRIFT_KEY_PREFIX)?
        .to_owned();
    let sort = text(item, item::SORT)?;
    let (object_type, _) = sort.rsplit_once('#')?;
    Some((tenant, object_type.to_owned(), text(item, item::RUN)?))
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
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(run_key(tenant)))
            .key(item::SORT, s(run_id.to_owned()))
            .condition_expression("#steps = :step")
            .expression_attribute_names("#steps", item::STEPS)
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":next", n(step + 1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut adds = Vec::new();
        for (index, (name, value)) in report.counts.named().into_iter().enumerate() {
            if value == 0 {
                continue;
            }
            update = update
                .expression_attribute_names(
                    format!("#c{index}"),
                    count_attribute(&report.object_type, name),
                )
                .expression_attribute_values(format!(":c{index}"), n(value));
            adds.push(format!("#c{index} :c{index}"));
        }
        let mut sets = vec!["#steps = :next".to_owned()];
        if let Some(failure) = &report.failure {
            update = update
                .expression_attribute_names("#failures", item::FAILURES)
                .expression_attribute_names("#failedTypes", item::FAILED_TYPES)
                .expression_attribute_values(
                    ":failure",
                    AttributeValue::L(vec![s(format!("{}: {failure}", report.object_type))]),
                )
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":one", n(1));
            sets.push(
                "#failures = list_append(if_not_exists(#failures, :none), :failure)".to_owned(),
            );
            adds.push("#failedTypes :one".to_owned());
        }
        if !report.unstorable.is_empty() {
            update = update
                .expression_attribute_names("#unstorable", item::UNSTORABLE)
                .expression_attribute_values(
                    ":unstorable",
                    AttributeValue::L(
                        report
                            .unstorable
                            .iter()
                            .map(|reason| s(format!("{}: {reason}", report.object_type)))
                            .collect(),
                    ),
                )
                .expression_attribute_values(":nothing", AttributeValue::L(Vec::new()));
            sets.push(
                "#unstorable = list_append(if_not_exists(#unstorable, :nothing), :unstorable)"
                    .to_owned(),
            );
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !adds.is_empty() {
            expression.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        let recorded = match update.update_expression(expression).send().await {
            Ok(output) => {
                let failed_types = output
                    .attributes
                    .as_ref()
                    .map_or(0, |item| number(item, item::FAILED_TYPES));
                let state = if report.finished {
                    self.finish(tenant, run_id, failed_types).await?
                } else {
                    RunState::Running
                };
                StepRecorded::Applied { state }
            }
            Err(error) => {
                let refused_by = match error.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(refusal)) => {
                        Some(refusal.item().cloned())
                    }
                    _ => None,
                };
                match refused_by {
                    None => return Err(failed(error)),
                    Some(Some(item)) if number(&item, item::STEPS) == u64::from(step) + 1 => {
                        let state = if report.finished {
                            self.finish(tenant, run_id, number(&item, item::FAILED_TYPES))
                                .await?
                        } else {
                            RunState::Running
                        };
                        StepRecorded::AlreadyApplied { state }
                    }
                    Some(_) => StepRecorded::Stale,
                }
            }
        };
        Ok(recorded)
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
            self.client
                .update_item()
                .table_name(&self.table_name)
                .key(item::KEY, s(page_key(tenant)))
                .key(item::SORT, s(page.clone()))
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
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(item::KEY, s(confirmed_key(tenant)))
            .key(item::SORT, s(object_type.to_owned()))
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

fn failed<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    crate::dynamodb::read_failed(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pack_into_eight_bytes_each_and_back() {
        let ids = [1, -2, i64::MAX, 40_000_000_123];
        let packed = pack_ids(&ids);
        assert_eq!(packed.len(), 32);
        assert_eq!(unpack_ids(&packed).collect::<Vec<_>>(), ids);
    }

    #[test]
    fn bucket_sort_keys_sort_as_their_buckets_and_read_back() {
        let buckets = [i64::MIN, -2, -1, 0, 1, 70, i64::MAX];
        let keys: Vec<String> = buckets.iter().map(|&b| bucket_sort_key(b)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (bucket, key) in buckets.iter().zip(&keys) {
            assert_eq!(bucket_of_sort_key(&format!("{key}#page")), Some(*bucket));
        }
    }
}
