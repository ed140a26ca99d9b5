//! A reconciliation's recheck: once the webhooks in flight are applied (its marker reached), what is
//! still behind is drift, fetched or tombstoned.

use super::*;
use domain::sync::RecheckPlan;

impl<A, S, R, Q> StepPorts<'_, A, S, R, Q>
where
    A: ObjectsApi,
    S: StoredCopy,
    R: SyncRecords,
    Q: MessageQueue,
{
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
        if let Some(waiting) = self.until_marker_reached(task, spec).await? {
            return Ok(waiting);
        }
        let mut next = task.clone();
        let suspects = next.take_suspects(spec.object_type);
        let pages = next.take_recheck_pages(spec.object_type);
        if suspects.is_empty() {
            return Ok(next.after_recheck());
        }
        self.wait_out_drift_grace(task).await;
        let tenant = &task.tenant;
        let ids: Vec<i64> = suspects.iter().map(|suspect| suspect.id).collect();
        let stored = self.stored_by_id(tenant, spec, &ids).await?;
        let plan = RecheckPlan::of(&suspects, |id| stored.get(&id));
        counts.late_webhooks += plan.late_webhooks;
        let all_queued = self
            .fetch_drift(task, spec, &plan.by_partition, counts, notes)
            .await?;
        // Found by the check of the copy: looked up again, as it is now.
        let mut refreshed = Vec::new();
        for &id in &plan.by_id {
            if let Lookup::Found(object) = self.look_up(spec, id).await? {
                refreshed.push(object);
            }
        }
        self.queue_corrections(task, spec, refreshed, &plan.tombstones, counts, notes)
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

    /// What is still behind of what a listing showed, fetched with its partition's filters over
    /// the whole date range and counted as drift; whether every one of them was queued.
    async fn fetch_drift(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        by_partition: &std::collections::BTreeMap<usize, Vec<i64>>,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<bool, StepError> {
        let window = spec.date_window.map(|_| FULL_RANGE);
        let mut all_queued = true;
        for (&index, ids) in by_partition {
            let partition = spec
                .partitions
                .get(index)
                .ok_or(StepError::NoSuchPartition(index))?;
            let fetched = self
                .fetch_and_queue(
                    task,
                    spec,
                    (partition, window),
                    ids,
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
        Ok(all_queued)
    }

    /// Until the worker has reached a marker put behind the webhooks in flight, a finding still
    /// behind may be a late webhook, not drift: the task that sends the marker or waits for it, or
    /// none once the recheck may go on.
    async fn until_marker_reached(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
    ) -> Result<Option<Option<SyncTask>>, StepError> {
        let Some(live) = self.live_webhooks else {
            return Ok(None);
        };
        if !task.awaits_recheck(spec.object_type) {
            return Ok(None);
        }
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
                Ok(Some(next.again()))
            }
            RecheckGate::Wait => {
                tokio::time::sleep(self.settings.limits.marker_poll).await;
                Ok(Some(task.clone().again()))
            }
            RecheckGate::Go => Ok(None),
        }
    }

    /// The findings' webhooks had `drift_grace` after the first was found: what is left of it, if
    /// the run was quicker, is waited out.
    async fn wait_out_drift_grace(&self, task: &SyncTask) {
        if let Some(first) = task.first_suspected_at {
            let grace = self.settings.limits.drift_grace;
            let waited = std::time::Duration::try_from(Timestamp::now().duration_since(first))
                .unwrap_or_default();
            tokio::time::sleep(grace.saturating_sub(waited)).await;
        }
    }
}
