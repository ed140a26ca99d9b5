//! One bounded step of a run: list one page (compare, fetch what is missing or newer, queue it), or
//! check one stretch of the stored copy against the type's completed listing (confirm each
//! candidate by id, queue a tombstone for each one Tripletex no longer has).

use std::collections::HashMap;

use domain::envelope::EventName;
use domain::ids::TenantId;
use domain::message::QueueMessage;
use domain::ports::{
    MessageQueue, ObjectsApi, PageMemory, QueueError, StoreError, StoredCopy, SyncRecords,
};
use domain::sync::envelope::{delete_message, upsert_message};
use domain::sync::{
    CannotSplit, Cursor, FetchRequest, ListedPage, ListingProgress, Lookup, ObjectTypeSpec,
    PageRequest, SyncTask, Tombstoning, TypeCounts, compare_page, deletion_candidates,
};
use domain::tripletex::TripletexError;
use jiff::Timestamp;
use tracing::warn;

use crate::config::SyncSettings;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("a Tripletex call failed")]
    Tripletex(#[source] TripletexError),
    #[error(transparent)]
    CannotSplit(CannotSplit),
    #[error("{0}")]
    Impossible(&'static str),
    #[error("the task names partition {0}, which its type does not have")]
    NoSuchPartition(usize),
    #[error("reading or writing the sync's records failed")]
    Store(#[source] StoreError),
    #[error("queueing failed")]
    Queue(#[source] QueueError),
}

impl From<StoreError> for StepError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<QueueError> for StepError {
    fn from(error: QueueError) -> Self {
        Self::Queue(error)
    }
}

/// What a step reads and writes.
pub struct StepPorts<'a, A, S, R, Q> {
    pub api: &'a A,
    pub copy: &'a S,
    pub records: &'a R,
    pub webhooks: &'a Q,
    pub settings: &'a SyncSettings,
}

/// The event a synced object is queued as: one the type is subscribed with, an update if it can.
pub fn upsert_event(settings: &SyncSettings, object_type: &str) -> Option<EventName> {
    let of_type = || {
        settings
            .events
            .iter()
            .filter(move |event| event.object() == object_type && event.verb() != "delete")
    };
    of_type()
        .find(|event| event.verb() == "update")
        .or_else(|| of_type().next())
        .cloned()
        .or_else(|| EventName::parse(&format!("{object_type}.update")).ok())
}

impl<A, S, R, Q> StepPorts<'_, A, S, R, Q>
where
    A: ObjectsApi,
    S: StoredCopy,
    R: SyncRecords,
    Q: MessageQueue,
{
    /// Lists one page and acts on it; the task that continues the run.
    pub async fn list(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        cursor: Cursor,
        counts: &mut TypeCounts,
    ) -> Result<Option<SyncTask>, StepError> {
        let tenant = &task.tenant;
        let page_key = task.page_key().unwrap_or_default();
        let partition = spec
            .partitions
            .get(cursor.partition)
            .ok_or(StepError::NoSuchPartition(cursor.partition))?;
        let memory = self.records.page_memory(tenant, &page_key).await?;
        let page_size = self.settings.limits.page_size;
        let request = PageRequest {
            spec,
            partition,
            window: cursor.window,
            from: cursor.from,
            count: page_size,
            digest: memory
                .as_ref()
                .filter(|memory| memory.confirmed)
                .map(|memory| memory.digest.clone()),
        };
        let page = match self.api.list_page(&request).await {
            Ok(page) => {
                counts.pages += 1;
                page
            }
            Err(error) if error.is_result_too_large() => {
                return task.clone().after_split().map_err(StepError::CannotSplit);
            }
            Err(error) => return Err(StepError::Tripletex(error)),
        };
        let (ids, own_fetch, digest) = match page {
            ListedPage::Unchanged => {
                // The same page as last time: its objects were compared and queued then.
                let ids = memory.map(|memory| memory.ids).unwrap_or_default();
                counts.pages_not_modified += 1;
                counts.listed += ids.len() as u64;
                counts.unchanged += ids.len() as u64;
                (ids, Vec::new(), None)
            }
            ListedPage::Listed { objects, digest } => {
                let ids: Vec<i64> = objects.iter().map(|object| object.id).collect();
                counts.listed += ids.len() as u64;
                let stored: HashMap<i64, _> = self
                    .copy
                    .versions(tenant, spec.object_type, &ids)
                    .await?
                    .into_iter()
                    .map(|version| (version.id, version))
                    .collect();
                let verdict = compare_page(&objects, |id| stored.get(&id).copied());
                counts.unchanged += verdict.unchanged as u64;
                if !verdict.listed_after_delete.is_empty() {
                    warn!(%tenant, object_type = spec.object_type, ids = ?verdict.listed_after_delete,
                        "Tripletex lists objects the copy holds as deleted; tombstones stay final");
                }
                (ids, verdict.fetch, digest)
            }
        };
        // Fetch in full batches; what is left rides along to the next page, and everything is
        // fetched before the partition or window's listing ends.
        let last_page = ids.len() < page_size as usize;
        let mut wanted = task.carried.clone();
        wanted.extend(&own_fetch);
        let flush = last_page || wanted.len() >= self.settings.limits.fetch_batch;
        let mut unconfirmed = task.unconfirmed.clone();
        let carried = if flush {
            let fetched = self.fetch_and_queue(task, spec, &request, &wanted).await?;
            counts.fetched += fetched;
            counts.enqueued += fetched;
            if task.mode.counts_drift() {
                counts.drift_corrected += fetched;
            }
            // The pages whose objects rode along to this fetch may now answer 304.
            self.records.confirm_pages(tenant, &unconfirmed).await?;
            unconfirmed.clear();
            Vec::new()
        } else {
            wanted
        };
        // A page's digest is trusted only once its objects are queued, so that a 304 later skips
        // nothing that was never fetched.
        if let Some(digest) = digest {
            let confirmed = flush || own_fetch.is_empty();
            let memory = PageMemory {
                digest,
                ids: ids.clone(),
                confirmed,
            };
            self.records
                .remember_page(tenant, &page_key, &memory)
                .await?;
            if !confirmed {
                unconfirmed.push(page_key.clone());
            }
        }
        self.records
            .record_listed(tenant, &task.run_id, &page_key, &ids)
            .await?;
        Ok(task
            .clone()
            .after_page_carrying(ids.len(), page_size, carried, unconfirmed))
    }

    async fn fetch_and_queue(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        page: &PageRequest,
        ids: &[i64],
    ) -> Result<u64, StepError> {
        let Some(event) = upsert_event(self.settings, spec.object_type) else {
            return Ok(0);
        };
        let mut queued = 0;
        for chunk in ids.chunks(self.settings.limits.fetch_batch.max(1)) {
            let objects = self
                .api
                .fetch(&FetchRequest {
                    spec,
                    partition: page.partition,
                    window: page.window,
                    ids: chunk,
                    fields: &self.settings.fields,
                })
                .await
                .map_err(StepError::Tripletex)?;
            let now = Timestamp::now();
            let messages: Vec<QueueMessage> = objects
                .iter()
                .map(|object| upsert_message(&task.tenant, &event, None, object, now))
                .collect();
            self.webhooks.send_all(&messages).await?;
            queued += messages.len() as u64;
        }
        Ok(queued)
    }

    /// Checks the stored copy above `after_id` against the type's listing; the task that goes on.
    pub async fn verify(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        after_id: i64,
        counts: &mut TypeCounts,
    ) -> Result<Option<SyncTask>, StepError> {
        let tenant: &TenantId = &task.tenant;
        let limits = self.settings.limits;
        if !task.windows_listed.is_empty() {
            self.records
                .remember_windows(tenant, spec.object_type, &task.windows_listed)
                .await?;
        }
        let listed = self
            .records
            .listed_ids(tenant, &task.run_id, spec.object_type)
            .await?;
        let stored = self
            .copy
            .stored_after(tenant, spec.object_type, after_id, limits.verify_batch)
            .await?;
        let mut listing = ListingProgress::start(task.started_at);
        listing.listed_ids(listed);
        // Only complete listings reach this step: a failed one drops the type's check.
        let completed = listing
            .complete()
            .map_err(|_| StepError::Impossible("the listing to check against is incomplete"))?;
        let candidates = deletion_candidates(&completed, stored.iter().copied());
        let looked_up: Vec<i64> = candidates
            .iter()
            .copied()
            .take(limits.lookups_per_step)
            .collect();
        let mut tombstones = Vec::new();
        for &id in &looked_up {
            let lookup = self
                .api
                .lookup(spec, id)
                .await
                .map_err(StepError::Tripletex)?;
            match Tombstoning::after_lookup(lookup) {
                Tombstoning::Tombstone => {
                    tombstones.push(delete_message(
                        tenant,
                        spec.object_type,
                        None,
                        id,
                        Timestamp::now(),
                    ));
                }
                Tombstoning::Keep => {
                    if lookup == Lookup::Found {
                        counts.kept_after_lookup += 1;
                    }
                }
            }
        }
        self.webhooks.send_all(&tombstones).await?;
        counts.tombstoned += tombstones.len() as u64;
        counts.enqueued += tombstones.len() as u64;
        if task.mode.counts_drift() {
            counts.drift_corrected += tombstones.len() as u64;
        }
        let checked_to = if looked_up.len() < candidates.len() {
            // More candidates than one step confirms: go on after the last one confirmed.
            looked_up.last().copied()
        } else if stored.len() >= limits.verify_batch {
            stored.last().map(|version| version.id)
        } else {
            None
        };
        Ok(task.clone().after_verify(checked_to))
    }
}
