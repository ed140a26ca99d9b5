//! One bounded step of a run: list one page (compare, fetch what is missing or newer, queue it), or
//! check one stretch of the stored copy against the type's completed listing (look each candidate
//! up by id: a tombstone for each one Tripletex no longer has, the object itself for one it has at a
//! newer version).

use std::collections::HashMap;

use domain::envelope::EventName;
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::message::QueueMessage;
use domain::ports::{MessageQueue, ObjectsApi, QueueError, StoreError, StoredCopy, SyncRecords};
use domain::sync::MAX_SUSPECTS;
use domain::sync::drift::DriftFinding;
use domain::sync::envelope::{check_storable, delete_message, replace_message, upsert_message};
use domain::sync::marker::{RecheckGate, marker_message, recheck_gate};
use domain::sync::{
    AfterLookup, CannotSplit, Cursor, DateWindow, FULL_RANGE, FetchRequest, FetchedObject, Finding,
    Listed, ListedPage, Lookup, ObjectTypeSpec, PageAnswer, PageInput, PageRequest, Partition,
    StoredVersion, Suspect, SyncTask, TypeCounts, check_stretch, contradicts, plan_page,
};
use domain::tripletex::TripletexError;
use jiff::Timestamp;
use tracing::warn;

use crate::config::SyncSettings;

/// The most unstorable reasons one step reports by name (all are counted).
const UNSTORABLE_REASONS_PER_STEP: usize = 20;

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

impl StepError {
    /// A Tripletex failure that may pass if the task is tried again (the queue redelivers it).
    pub fn may_pass_on_retry(&self) -> bool {
        matches!(self, Self::Tripletex(error) if error.may_pass())
    }
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

/// What one step did, beside its counts.
#[derive(Debug, Default)]
pub struct StepNotes {
    /// Objects found unstorable, each with its reason.
    pub unstorable: Vec<String>,
}

/// What a fetch came to.
#[derive(Debug)]
struct Fetched {
    queued: u64,
    /// Every id asked for was queued or set aside as unstorable: the pages it came from may be
    /// trusted with a 304 from now on.
    complete: bool,
}

/// What queueing objects means: a fetch like any other, or drift a reconciliation counts, whose
/// findings are recorded before they are queued (`sync::drift`: its webhook may still come).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queueing {
    Fetch,
    Drift,
}

impl Queueing {
    /// What a run's fetches of what is behind mean: drift in a reconciliation.
    fn of(task: &SyncTask) -> Self {
        if task.mode.counts_drift() {
            Self::Drift
        } else {
            Self::Fetch
        }
    }
}

/// What a step reads and writes.
pub struct StepPorts<'a, A, S, R, Q> {
    pub api: &'a A,
    pub copy: &'a S,
    pub records: &'a R,
    pub webhooks: &'a Q,
    pub live_webhooks: Option<&'a Q>,
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
        notes: &mut StepNotes,
    ) -> Result<Option<SyncTask>, StepError> {
        let tenant = &task.tenant;
        let page_size = self.settings.limits.page_size;
        let page_key = task.page_key(page_size).unwrap_or_default();
        let partition = spec
            .partitions
            .get(cursor.partition)
            .ok_or(StepError::NoSuchPartition(cursor.partition))?;
        let memory = self.records.page_memory(tenant, &page_key).await?;
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
        let (answer, full_result_size) = match &page {
            ListedPage::Unchanged => (PageAnswer::NotModified, None),
            ListedPage::Listed {
                objects,
                digest,
                full_result_size,
            } => (
                PageAnswer::Listed {
                    objects,
                    digest: digest.as_deref(),
                },
                *full_result_size,
            ),
        };
        if cursor.from == 0 {
            counts.listing_size += full_result_size.unwrap_or_default();
        }
        // A 304 page is compared with the copy too: the copy may have lost what it once held.
        let page_ids: Vec<i64> = match answer {
            PageAnswer::NotModified => memory
                .as_ref()
                .map(|memory| memory.objects.iter().map(|object| object.id).collect())
                .unwrap_or_default(),
            PageAnswer::Listed { objects, .. } => objects.iter().map(|object| object.id).collect(),
        };
        let stored = self.stored_by_id(tenant, spec, &page_ids).await?;
        let stored_of = |id| stored.get(&id).copied();
        let room = MAX_SUSPECTS.saturating_sub(task.suspects.len());
        let mut input = PageInput {
            page_key: &page_key,
            answer,
            memory: memory.as_ref(),
            stored: &stored_of,
            known_unstorable: &[],
            carried: &task.carried,
            unconfirmed: &task.unconfirmed,
            suspect_room: task.rechecks(spec.object_type).then_some(room),
            page_size,
            fetch_batch: self.settings.limits.fetch_batch,
        };
        let mut plan = plan_page(&input);
        let known;
        if plan.verdict.fetch.len() + plan.deferred.len() > 0 {
            // Read only when there is something to fetch: most pages of a night have not.
            known = self
                .records
                .known_unstorable(tenant, spec.object_type)
                .await?;
            if !known.is_empty() {
                input.known_unstorable = &known;
                plan = plan_page(&input);
            }
        }
        if plan.not_modified {
            counts.pages_not_modified += 1;
        }
        counts.listed += plan.listed.len() as u64;
        counts.unchanged += plan.verdict.unchanged as u64;
        counts.unstorable += plan.verdict.known_unstorable as u64;
        self.settle_contested(task, spec, &plan, &stored, counts, notes)
            .await?;
        // Fetch in full batches; what is left rides along to the next page, and everything is
        // fetched before the partition or window's listing ends.
        let mut fetched_all = true;
        if let Some(wanted) = &plan.fetch_now {
            let fetched = self
                .fetch_and_queue(
                    task,
                    spec,
                    (partition, request.window),
                    wanted,
                    Queueing::of(task),
                    counts,
                    notes,
                )
                .await?;
            counts.fetched += fetched.queued;
            counts.enqueued += fetched.queued;
            if task.mode.counts_drift() {
                counts.drift_corrected += fetched.queued;
            }
            fetched_all = fetched.complete;
        }
        // A page's digest is trusted only once its objects are queued, so that a 304 later skips
        // nothing that was never fetched; the pages whose objects rode along to this fetch may
        // now answer 304, not when an object of theirs could not be queued.
        let settled = plan.settle(fetched_all);
        if !settled.confirm_pages.is_empty() {
            self.records
                .confirm_pages(tenant, &settled.confirm_pages)
                .await?;
        }
        if let Some(memory) = &settled.remember {
            self.records
                .remember_page(tenant, &page_key, memory)
                .await?;
        }
        let ids = plan.ids();
        self.records
            .record_listed(tenant, &task.run_id, &page_key, &ids)
            .await?;
        let mut next = task.clone();
        let now = Timestamp::now();
        if !plan.deferred.is_empty() {
            next.recheck_page(page_key.clone());
        }
        for deferred in &plan.deferred {
            // Room was made above, and the recheck stage is still ahead.
            next.suspect(
                Suspect {
                    object_type: spec.object_type.to_owned(),
                    partition: Some(cursor.partition),
                    id: deferred.id,
                    found: Finding::Behind {
                        version: deferred.version,
                    },
                },
                now,
            );
        }
        Ok(next.after_page_carrying(ids.len(), page_size, settled.carry, settled.unconfirmed))
    }

    /// Asks Tripletex by id for what the copy holds and the page contradicts (a tombstone of an
    /// object it lists, a version newer than it lists), at most `lookups_per_step` a page (the next
    /// run asks for the rest); where its answer contradicts the copy, queues its object to replace
    /// the copy (a forged or mistaken write, seen and mended). Only a copy written before the run
    /// began is asked about: one written since is a webhook after the listing, as on a busy day.
    async fn settle_contested(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        plan: &domain::sync::PagePlan,
        stored: &HashMap<i64, StoredVersion>,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<(), StepError> {
        let contested: Vec<i64> = plan
            .verdict
            .contested()
            .take(self.settings.limits.lookups_per_step)
            .collect();
        if contested.is_empty() {
            return Ok(());
        }
        let Some(event) = upsert_event(self.settings, spec.object_type) else {
            return Ok(());
        };
        let mut replacements = Vec::new();
        for id in contested {
            // A copy written after the run began is a webhook after the listing: nothing to ask.
            let Some(copy) = stored
                .get(&id)
                .filter(|copy| copy.updated_at < task.started_at)
            else {
                continue;
            };
            let lookup = self.look_up(spec, id).await?;
            if !contradicts(&lookup, copy) {
                continue;
            }
            let Lookup::Found(object) = lookup else {
                continue;
            };
            warn!(tenant = %task.tenant, object_type = spec.object_type, id,
                copy_version = copy.version, copy_deleted = copy.deleted, tripletex_version = object.version,
                "Tripletex contradicts the copy (a forged or mistaken write): its object replaces it");
            let seen = domain::dedup::Seen {
                version: copy.version,
                deleted: copy.deleted,
            };
            replacements.push((object, seen));
        }
        let (objects, seen): (Vec<FetchedObject>, Vec<_>) = replacements.into_iter().unzip();
        let now = Timestamp::now();
        let queued = self
            .queue_storable_as(
                task,
                spec,
                &objects,
                Queueing::Fetch,
                counts,
                notes,
                |at, object| replace_message(&task.tenant, &event, object, seen[at], now),
            )
            .await?;
        counts.contradicted += queued;
        counts.enqueued += queued;
        Ok(())
    }

    /// Fetches these ids in full and queues what the worker can store. An id the answer leaves out
    /// is looked up by id: queued as found, or, on a 404, left (its pages stay unconfirmed).
    #[allow(clippy::too_many_arguments)] // the step's state, the listing's filters, and the ids
    async fn fetch_and_queue(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        (partition, window): (&'static Partition, Option<DateWindow>),
        ids: &[i64],
        queueing: Queueing,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<Fetched, StepError> {
        let mut outcome = Fetched {
            queued: 0,
            complete: true,
        };
        if ids.is_empty() {
            return Ok(outcome);
        }
        let Some(event) = upsert_event(self.settings, spec.object_type) else {
            outcome.complete = false;
            return Ok(outcome);
        };
        for chunk in ids.chunks(self.settings.limits.fetch_batch.max(1)) {
            let mut objects = self
                .api
                .fetch(&FetchRequest {
                    spec,
                    partition,
                    window,
                    ids: chunk,
                    fields: &self.settings.fields,
                })
                .await
                .map_err(StepError::Tripletex)?;
            let left_out: Vec<i64> = chunk
                .iter()
                .copied()
                .filter(|id| !objects.iter().any(|object| object.id == *id))
                .collect();
            for id in left_out {
                counts.left_out_by_fetch += 1;
                match self.look_up(spec, id).await? {
                    Lookup::Found(object) => objects.push(object),
                    Lookup::NotFound => {
                        counts.vanished += 1;
                        outcome.complete = false;
                    }
                }
            }
            outcome.queued += self
                .queue_storable(task, spec, &event, &objects, queueing, counts, notes)
                .await?;
        }
        Ok(outcome)
    }

    async fn stored_by_id(
        &self,
        tenant: &TenantId,
        spec: &'static ObjectTypeSpec,
        ids: &[i64],
    ) -> Result<HashMap<i64, StoredVersion>, StepError> {
        Ok(self
            .copy
            .versions(tenant, spec.object_type, ids)
            .await?
            .into_iter()
            .map(|version| (version.id, version))
            .collect())
    }

    async fn look_up(&self, spec: &'static ObjectTypeSpec, id: i64) -> Result<Lookup, StepError> {
        self.api
            .lookup(spec, id, &self.settings.fields)
            .await
            .map_err(StepError::Tripletex)
    }

    /// Queues the objects the worker can store; the others are counted, reported with their
    /// reason and remembered at their version, so that they are not fetched again until they change.
    #[allow(clippy::too_many_arguments)] // the step's state, what to queue, and what it means
    async fn queue_storable(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        event: &EventName,
        objects: &[FetchedObject],
        queueing: Queueing,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<u64, StepError> {
        let now = Timestamp::now();
        self.queue_storable_as(task, spec, objects, queueing, counts, notes, |_, object| {
            upsert_message(&task.tenant, event, None, object, now)
        })
        .await
    }

    /// `queue_storable` with the message each object travels as (an upsert, or a replacement),
    /// made from its place in `objects` and the object.
    #[allow(clippy::too_many_arguments)] // the step's state, what to queue, and what it means
    async fn queue_storable_as(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        objects: &[FetchedObject],
        queueing: Queueing,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
        message_of: impl Fn(usize, &FetchedObject) -> QueueMessage,
    ) -> Result<u64, StepError> {
        let mut messages = Vec::with_capacity(objects.len());
        let mut findings = Vec::new();
        let mut unstorable = Vec::new();
        for (at, object) in objects.iter().enumerate() {
            let message = message_of(at, object);
            match check_storable(&message) {
                Ok(()) => {
                    messages.push(message);
                    findings.extend(DriftFinding::fetched(object.id, object.version));
                }
                Err(reason) => {
                    let reason = error_chain(&reason);
                    warn!(tenant = %task.tenant, object_type = spec.object_type, id = object.id,
                        version = object.version, reason, "an object the worker could never store is not queued");
                    if notes.unstorable.len() < UNSTORABLE_REASONS_PER_STEP {
                        let version = object
                            .version
                            .map_or_else(|| "none".to_owned(), |v| v.to_string());
                        notes
                            .unstorable
                            .push(format!("id {} version {version}: {reason}", object.id));
                    }
                    unstorable.push(Listed {
                        id: object.id,
                        version: object.version,
                    });
                }
            }
        }
        counts.unstorable += unstorable.len() as u64;
        self.records
            .remember_unstorable(&task.tenant, spec.object_type, &unstorable)
            .await?;
        if queueing == Queueing::Drift {
            self.record_drift(task, spec, &findings).await?;
        }
        self.webhooks.send_all(&messages).await?;
        Ok(messages.len() as u64)
    }

    /// Records what a reconciliation counts as drift, before it is queued, so that the worker can
    /// settle a finding whose webhook came after all, whichever reaches the copy first.
    async fn record_drift(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        findings: &[DriftFinding],
    ) -> Result<(), StepError> {
        if !findings.is_empty() {
            self.records
                .record_drift(&task.tenant, spec.object_type, &task.run_id, findings)
                .await?;
        }
        Ok(())
    }

    /// Queues what the check of the copy (or its recheck) found: objects Tripletex has at a newer
    /// version than the copy, and tombstones for the ones it confirmed gone. In a reconciliation
    /// each is a webhook that never came.
    async fn queue_corrections(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        refreshed: Vec<FetchedObject>,
        tombstones: &[i64],
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<(), StepError> {
        let queueing = Queueing::of(task);
        let mut queued = 0;
        if !refreshed.is_empty()
            && let Some(event) = upsert_event(self.settings, spec.object_type)
        {
            queued = self
                .queue_storable(task, spec, &event, &refreshed, queueing, counts, notes)
                .await?;
            counts.refreshed_after_lookup += queued;
        }
        let now = Timestamp::now();
        let deletes: Vec<_> = tombstones
            .iter()
            .map(|&id| delete_message(&task.tenant, spec.object_type, None, id, now))
            .collect();
        if queueing == Queueing::Drift {
            let findings: Vec<_> = tombstones
                .iter()
                .map(|&id| DriftFinding::deleted(id))
                .collect();
            self.record_drift(task, spec, &findings).await?;
        }
        self.webhooks.send_all(&deletes).await?;
        counts.tombstoned += deletes.len() as u64;
        counts.enqueued += queued + deletes.len() as u64;
        if task.mode.counts_drift() {
            counts.drift_corrected += queued + deletes.len() as u64;
        }
        Ok(())
    }

    /// Checks one stretch of the stored copy above `after_id` against the type's listing (the copy
    /// and the listed ids as two id-ordered streams, a bounded window of each); the task that goes on.
    pub async fn verify(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        after_id: i64,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<Option<SyncTask>, StepError> {
        let tenant: &TenantId = &task.tenant;
        let limits = self.settings.limits;
        if !task.windows_listed.is_empty() {
            self.records
                .remember_windows(tenant, spec.object_type, &task.windows_listed)
                .await?;
        }
        let stored = self
            .copy
            .stored_after(tenant, spec.object_type, after_id, limits.verify_batch)
            .await?;
        let listed = self
            .records
            .listed_after(
                tenant,
                &task.run_id,
                spec.object_type,
                after_id,
                limits.verify_batch,
            )
            .await?;
        // Only complete listings reach this step: a failed one drops the type's check.
        let check = check_stretch(
            after_id,
            &stored,
            limits.verify_batch,
            &listed,
            task.started_at,
        );
        drop(listed);
        let mut next = task.clone();
        next.not_stored += self
            .await_stored(task, spec, &check.not_stored, counts, notes)
            .await?;
        let looked_up: Vec<i64> = check
            .candidates
            .iter()
            .copied()
            .take(limits.lookups_per_step)
            .collect();
        let mut tombstones = Vec::new();
        let mut refreshed = Vec::new();
        let now = Timestamp::now();
        for &id in &looked_up {
            let lookup = self.look_up(spec, id).await?;
            let copy = stored
                .binary_search_by_key(&id, |version| version.id)
                .ok()
                .and_then(|at| stored.get(at));
            let decision = AfterLookup::decide(&lookup, copy);
            if matches!(lookup, Lookup::Found(_)) {
                counts.kept_after_lookup += 1;
            }
            if decision == AfterLookup::Keep {
                continue;
            }
            // A reconciliation rechecks it at its end: its webhook may be in flight.
            let suspect = Suspect {
                object_type: spec.object_type.to_owned(),
                partition: None,
                id,
                found: Finding::of(&lookup),
            };
            if task.rechecks(spec.object_type) && next.suspect(suspect, now) {
                continue;
            }
            match lookup {
                Lookup::NotFound => tombstones.push(id),
                Lookup::Found(object) => refreshed.push(object),
            }
        }
        self.queue_corrections(task, spec, refreshed, &tombstones, counts, notes)
            .await?;
        let checked_to = if looked_up.len() < check.candidates.len() {
            // More candidates than one step confirms: go on after the last one confirmed.
            looked_up.last().copied()
        } else {
            check.checked_to
        };
        if checked_to.is_none() && next.not_stored == 0 {
            // Listed in every partition and window without an error, checked to the end, and
            // every object the listing showed is stored (or, for what the recheck keeps, will be
            // once the recheck has stored it).
            if next.awaits_recheck(spec.object_type) {
                next.confirm_after_recheck.push(spec.object_type.to_owned());
            } else {
                self.records
                    .confirm_complete(tenant, spec.object_type, task.started_at)
                    .await?;
            }
        }
        Ok(next.after_verify(checked_to))
    }

    /// Whether the copy caught up with every suspect (its webhook came, or what the recheck queued
    /// was stored), waiting up to `store_wait` for the worker.
    async fn caught_up(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        suspects: &[Suspect],
    ) -> Result<bool, StepError> {
        let ids: Vec<i64> = suspects.iter().map(|suspect| suspect.id).collect();
        let behind = self
            .while_stored(task, spec, ids, |id, stored| {
                suspects
                    .iter()
                    .filter(|suspect| suspect.id == id)
                    .any(|suspect| !suspect.found.caught_up(stored))
            })
            .await?;
        Ok(behind.is_empty())
    }

    /// Reads the copy of these ids until none is `pending` any more or `store_wait` has passed
    /// (the worker stores what was queued meanwhile); the ids still pending.
    async fn while_stored(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        mut ids: Vec<i64>,
        pending: impl Fn(i64, Option<&StoredVersion>) -> bool,
    ) -> Result<Vec<i64>, StepError> {
        let deadline = tokio::time::Instant::now() + self.settings.limits.store_wait;
        while !ids.is_empty() {
            let stored = self.stored_by_id(&task.tenant, spec, &ids).await?;
            ids.retain(|&id| pending(id, stored.get(&id)));
            let now = tokio::time::Instant::now();
            if ids.is_empty() || now >= deadline {
                break;
            }
            tokio::time::sleep((deadline - now).min(std::time::Duration::from_secs(1))).await;
        }
        Ok(ids)
    }

    /// Waits (up to `store_wait`) for the worker to store the listed objects the copy lacks, and
    /// asks Tripletex by id for those still missing: queued again when it has them (lost on the
    /// way: the type is not complete in this run), left when it no longer has them. The run's
    /// suspects are its recheck's, and objects known unstorable never will be stored. The number
    /// not stored.
    async fn await_stored(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        listed_not_stored: &[i64],
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<u64, StepError> {
        let tenant = &task.tenant;
        let suspected = |id: &i64| {
            task.suspects
                .iter()
                .any(|suspect| suspect.id == *id && suspect.object_type == spec.object_type)
        };
        let mut waiting: Vec<i64> = listed_not_stored
            .iter()
            .copied()
            .filter(|id| !suspected(id))
            .collect();
        if waiting.is_empty() {
            return Ok(0);
        }
        let known = self
            .records
            .known_unstorable(tenant, spec.object_type)
            .await?;
        waiting.retain(|id| !known.iter().any(|object| object.id == *id));
        let waiting = self
            .while_stored(task, spec, waiting, |_, stored| stored.is_none())
            .await?;
        if waiting.is_empty() {
            return Ok(0);
        }
        let lookups = self.settings.limits.lookups_per_step;
        let mut not_stored = waiting.len().saturating_sub(lookups) as u64;
        let mut found = Vec::new();
        for &id in waiting.iter().take(lookups) {
            match self.look_up(spec, id).await? {
                Lookup::Found(object) => {
                    not_stored += 1;
                    found.push(object);
                }
                Lookup::NotFound => counts.vanished += 1,
            }
        }
        warn!(%tenant, object_type = spec.object_type, not_stored, "listed objects the copy does not hold after the worker's time: queued again, the type is not confirmed complete");
        if !found.is_empty()
            && let Some(event) = upsert_event(self.settings, spec.object_type)
        {
            let queued = self
                .queue_storable(task, spec, &event, &found, Queueing::Fetch, counts, notes)
                .await?;
            counts.fetched += queued;
            counts.enqueued += queued;
        }
        counts.not_stored += not_stored;
        Ok(not_stored)
    }

    /// At a reconciliation's end, once its findings' webhooks had their chance (`drift_grace` after
    /// the first was found, waited out here if the run was quicker): what is still behind is
    /// fetched (or tombstoned) and counted as drift; what caught up was a late webhook.
    pub async fn recheck(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<Option<SyncTask>, StepError> {
        if task.awaits_recheck(spec.object_type)
            && let Some(live) = self.live_webhooks
        {
            // Until the worker has reached a marker put behind the webhooks in flight, a finding
            // still behind may be a late webhook, not drift.
            let now = Timestamp::now();
            let seen = match task.marker_sent_at {
                Some(_) => self.records.marker_seen(&task.tenant, &task.run_id).await?,
                None => false,
            };
            match recheck_gate(task.marker_sent_at, seen, now) {
                RecheckGate::SendMarker => {
                    live.send_all(&[marker_message(&task.tenant, &task.run_id)])
                        .await?;
                    let mut next = task.clone();
                    next.marker_sent_at = Some(now);
                    return Ok(next.again());
                }
                RecheckGate::Wait => {
                    tokio::time::sleep(self.settings.limits.marker_poll).await;
                    return Ok(task.clone().again());
                }
                RecheckGate::Go => {}
            }
        }
        let mut next = task.clone();
        let suspects = next.take_suspects(spec.object_type);
        let pages = next.take_recheck_pages(spec.object_type);
        if suspects.is_empty() {
            return Ok(next.after_recheck());
        }
        if let Some(first) = task.first_suspected_at {
            let grace = self.settings.limits.drift_grace;
            let waited = std::time::Duration::try_from(Timestamp::now().duration_since(first))
                .unwrap_or_default();
            tokio::time::sleep(grace.saturating_sub(waited)).await;
        }
        let tenant = &task.tenant;
        let ids: Vec<i64> = suspects.iter().map(|suspect| suspect.id).collect();
        let stored = self.stored_by_id(tenant, spec, &ids).await?;
        let mut by_partition: std::collections::BTreeMap<usize, Vec<i64>> =
            std::collections::BTreeMap::new();
        let mut by_id = Vec::new();
        let mut tombstones = Vec::new();
        for suspect in &suspects {
            if suspect.found.caught_up(stored.get(&suspect.id)) {
                counts.late_webhooks += 1;
                continue;
            }
            match (suspect.found, suspect.partition) {
                (Finding::Gone, _) => tombstones.push(suspect.id),
                (Finding::Behind { .. }, Some(partition)) => {
                    by_partition.entry(partition).or_default().push(suspect.id);
                }
                (Finding::Behind { .. }, None) => by_id.push(suspect.id),
            }
        }
        let window = spec.date_window.map(|_| FULL_RANGE);
        let mut all_queued = true;
        for (index, ids) in by_partition {
            let partition = spec
                .partitions
                .get(index)
                .ok_or(StepError::NoSuchPartition(index))?;
            let fetched = self
                .fetch_and_queue(
                    task,
                    spec,
                    (partition, window),
                    &ids,
                    Queueing::Drift,
                    counts,
                    notes,
                )
                .await?;
            all_queued &= fetched.complete;
            counts.fetched += fetched.queued;
            counts.enqueued += fetched.queued;
            counts.drift_corrected += fetched.queued;
        }
        // Found by the check of the copy: looked up again, as it is now.
        let mut refreshed = Vec::new();
        for id in by_id {
            if let Lookup::Found(object) = self.look_up(spec, id).await? {
                refreshed.push(object);
            }
        }
        self.queue_corrections(task, spec, refreshed, &tombstones, counts, notes)
            .await?;
        if all_queued {
            // Every change those pages showed is in the copy now (or on its way): 304 from now on.
            self.records.confirm_pages(tenant, &pages).await?;
        }
        let confirming = next
            .confirm_after_recheck
            .iter()
            .position(|t| t == spec.object_type)
            .map(|at| next.confirm_after_recheck.remove(at));
        if confirming.is_some() && all_queued {
            // Confirmed by a step of its own, once the worker has stored what this one queued.
            return Ok(next.after_recheck_confirming(suspects));
        }
        Ok(next.after_recheck())
    }

    /// Confirms a type complete once the copy holds every finding its recheck queued (waiting up
    /// to `store_wait` for the worker); left unconfirmed, for the next run, when it does not.
    pub async fn confirm(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        awaiting: &[Suspect],
    ) -> Result<Option<SyncTask>, StepError> {
        if self.caught_up(task, spec, awaiting).await? {
            self.records
                .confirm_complete(&task.tenant, spec.object_type, task.started_at)
                .await?;
        } else {
            warn!(tenant = %task.tenant, object_type = spec.object_type, "what the recheck queued is not all stored after the worker's time: the type is not confirmed complete by this run");
        }
        Ok(task.clone().after_confirm())
    }
}
