//! Fetching and queueing: what a step found missing or newer fetched from Tripletex and queued for
//! the worker (the objects it could never store set aside), drift recorded first.

use domain::journal::{self, Entry, Queued};
use domain::message::attribute;

use super::*;

impl<A, S, R, Q> StepPorts<'_, A, S, R, Q>
where
    A: ObjectsApi,
    S: StoredCopy,
    R: SyncRecords,
    Q: MessageQueue,
{
    /// Fetches these ids in full and queues what the worker can store. An id the answer leaves out
    /// is looked up by id: queued as found, or, on a 404, left (its pages stay unconfirmed).
    #[allow(clippy::too_many_arguments)] // the step's state, the listing's filters, and the ids
    pub(super) async fn fetch_and_queue(
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

    pub(super) async fn stored_by_id(
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

    pub(super) async fn look_up(
        &self,
        spec: &'static ObjectTypeSpec,
        id: i64,
    ) -> Result<Lookup, StepError> {
        self.api
            .lookup(spec, id, &self.settings.fields)
            .await
            .map_err(StepError::Tripletex)
    }

    /// Queues the objects the worker can store; the others are counted, reported with their
    /// reason and remembered at their version, so that they are not fetched again until they change.
    #[allow(clippy::too_many_arguments)] // the step's state, what to queue, and what it means
    pub(super) async fn queue_storable(
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
    pub(super) async fn queue_storable_as(
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
        let mut queued = Vec::with_capacity(objects.len());
        let mut findings = Vec::new();
        let mut unstorable = Vec::new();
        for (at, object) in objects.iter().enumerate() {
            let message = from_run(message_of(at, object), task);
            match check_storable(&message) {
                Ok(()) => {
                    let kind = if message.attribute(attribute::REPLACES).is_some() {
                        journal::Fetched::Replacing
                    } else {
                        journal::Fetched::Fetched
                    };
                    queued.push((object.id, object.version, kind));
                    messages.push(message);
                    if queueing == Queueing::Drift {
                        findings.extend(DriftFinding::fetched(object.id, object.version));
                    }
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
        self.journal_queued(task, spec, &queued, queueing);
        Ok(messages.len() as u64)
    }

    /// The journal's line for each object queued: what the run fetched, replaced or tombstoned.
    fn journal_queued(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        queued: &[(i64, Option<i64>, journal::Fetched)],
        queueing: Queueing,
    ) {
        let at = journal::now();
        for &(id, version, outcome) in queued {
            self.journal.write(&Entry::Queued(Queued {
                at,
                run: task.run_id.clone(),
                tenant: task.tenant.to_string(),
                object_type: spec.object_type.to_owned(),
                id,
                version,
                outcome,
                drift: queueing == Queueing::Drift,
            }));
        }
    }

    /// Records what a reconciliation counts as drift, before it is queued, so that the worker can
    /// settle a finding whose webhook came after all, whichever reaches the copy first.
    pub(super) async fn record_drift(
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
    pub(super) async fn queue_corrections(
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
            .map(|&id| {
                from_run(
                    delete_message(&task.tenant, spec.object_type, None, id, now),
                    task,
                )
            })
            .collect();
        if queueing == Queueing::Drift {
            let findings: Vec<_> = tombstones
                .iter()
                .map(|&id| DriftFinding::deleted(id))
                .collect();
            self.record_drift(task, spec, &findings).await?;
        }
        self.webhooks.send_all(&deletes).await?;
        let tombstoned: Vec<_> = tombstones
            .iter()
            .map(|&id| (id, None, journal::Fetched::Tombstoned))
            .collect();
        self.journal_queued(task, spec, &tombstoned, queueing);
        counts.tombstoned += deletes.len() as u64;
        counts.enqueued += queued + deletes.len() as u64;
        if task.mode.counts_drift() {
            counts.drift_corrected += queued + deletes.len() as u64;
        }
        Ok(())
    }
}

/// A message the run queues, known by the run (`journal::sync_request`) from the sync's queue to
/// the item, its stream image and the mirror's history.
fn from_run(message: QueueMessage, task: &SyncTask) -> QueueMessage {
    message.with_attribute(attribute::REQUEST_ID, journal::sync_request(&task.run_id))
}
