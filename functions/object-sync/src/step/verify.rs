//! Checking the copy: one stretch of the stored copy against the completed listing, the worker
//! waited for until it holds what the listing showed, and a type confirmed complete.

use super::*;

impl<A, S, R, Q> StepPorts<'_, A, S, R, Q>
where
    A: ObjectsApi,
    S: StoredCopy,
    R: SyncRecords,
    Q: MessageQueue,
{
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
        self.look_up_candidates(task, spec, &looked_up, &stored, &mut next, counts, notes)
            .await?;
        let checked_to = if looked_up.len() < check.candidates.len() {
            // More candidates than one step confirms: go on after the last one confirmed.
            looked_up.last().copied()
        } else {
            check.checked_to
        };
        if checked_to.is_none() && next.not_stored == 0 {
            self.confirm_checked(task, spec, &mut next).await?;
        }
        Ok(next.after_verify(checked_to))
    }

    /// Asks Tripletex by id for the stretch's candidates (copies the listing did not show, or
    /// showed at another version): what it contradicts is tombstoned or refreshed, or, in a
    /// reconciliation, kept for the recheck (its webhook may be in flight).
    #[allow(clippy::too_many_arguments)] // the step's state, the candidates, and the copy
    async fn look_up_candidates(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        looked_up: &[i64],
        stored: &[StoredVersion],
        next: &mut SyncTask,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<(), StepError> {
        let mut tombstones = Vec::new();
        let mut refreshed = Vec::new();
        let now = Timestamp::now();
        for &id in looked_up {
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
            .await
    }

    /// Listed in every partition and window without an error, checked to the end, and every
    /// object the listing showed stored: the type is complete (or, when the recheck keeps some of
    /// it, will be once the recheck has stored them: confirmed then).
    async fn confirm_checked(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        next: &mut SyncTask,
    ) -> Result<(), StepError> {
        if next.awaits_recheck(spec.object_type) {
            next.confirm_after_recheck.push(spec.object_type.to_owned());
            return Ok(());
        }
        Ok(self
            .records
            .confirm_complete(&task.tenant, spec.object_type, task.started_at)
            .await?)
    }

    /// Whether the copy caught up with every suspect (its webhook came, or what the recheck queued
    /// was stored), waiting up to `store_wait` for the worker.
    pub(super) async fn caught_up(
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
    pub(super) async fn while_stored(
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
    pub(super) async fn await_stored(
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
