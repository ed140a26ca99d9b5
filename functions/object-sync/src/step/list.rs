//! Listing one page: the page asked for (its memory's digest sent), its plan (`domain::sync::page`)
//! carried out, and what Tripletex contradicts settled.

use super::*;
use domain::sync::{PageMemory, PagePlan};

impl<A, S, R, Q> StepPorts<'_, A, S, R, Q>
where
    A: ObjectsApi,
    S: StoredCopy,
    R: SyncRecords,
    Q: MessageQueue,
{
    /// Lists one page and acts on it; the task that continues the run. A backfill first asks what
    /// each of the type's listings holds (`SyncTask::listings_to_size`).
    pub async fn list(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        cursor: Cursor,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<Option<SyncTask>, StepError> {
        let Some(cursors) = task.listings_to_size() else {
            return self.list_page(task, spec, cursor, counts, notes).await;
        };
        let sized = self.size_listings(spec, cursors, counts).await?;
        let task = task.clone().with_listings_sized(sized);
        let cursor = task.head_cursor().ok_or(StepError::Impossible(
            "sizing a listing left nothing to list",
        ))?;
        self.list_page(&task, spec, cursor, counts, notes).await
    }

    /// What each listing holds, by Tripletex's `fullResultSize` of a one-object page, added to
    /// the type's `listing_size`; a window too large is halved here as its listing would be, and
    /// one that cannot be halved fails the type at once, as its listing would. The cursors to list,
    /// in order.
    async fn size_listings(
        &self,
        spec: &'static ObjectTypeSpec,
        cursors: Vec<Cursor>,
        counts: &mut TypeCounts,
    ) -> Result<Vec<Cursor>, StepError> {
        let mut to_ask: std::collections::VecDeque<Cursor> = cursors.into();
        let mut sized = Vec::with_capacity(to_ask.len());
        while let Some(cursor) = to_ask.pop_front() {
            let partition = spec
                .partitions
                .get(cursor.partition)
                .ok_or(StepError::NoSuchPartition(cursor.partition))?;
            let request = PageRequest {
                spec,
                partition,
                window: cursor.window,
                from: 0,
                count: 1,
                digest: None,
            };
            match self.api.list_page(&request).await {
                Ok(ListedPage::Listed {
                    full_result_size, ..
                }) => {
                    counts.listing_size += full_result_size.unwrap_or(0);
                    sized.push(cursor);
                }
                Ok(ListedPage::Unchanged) => sized.push(cursor),
                Err(error) if error.is_result_too_large() => {
                    let [first, second] = cursor.split().map_err(StepError::CannotSplit)?;
                    to_ask.push_front(second);
                    to_ask.push_front(first);
                }
                Err(error) => return Err(StepError::Tripletex(error)),
            }
        }
        Ok(sized)
    }

    /// Lists the page at `cursor` and acts on it.
    async fn list_page(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        cursor: Cursor,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<Option<SyncTask>, StepError> {
        let page_size = self.settings.limits.page_size;
        let page_key = task.page_key(page_size).unwrap_or_default();
        let partition = spec
            .partitions
            .get(cursor.partition)
            .ok_or(StepError::NoSuchPartition(cursor.partition))?;
        let memory = self.records.page_memory(&task.tenant, &page_key).await?;
        let Some(page) = self
            .ask_for_page(task, spec, partition, &cursor, memory.as_ref(), counts)
            .await?
        else {
            return task.clone().after_split().map_err(StepError::CannotSplit);
        };
        let (plan, stored) = self
            .plan(task, spec, &page_key, &page, memory.as_ref(), counts)
            .await?;
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
                    (partition, cursor.window),
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
        self.carry_out(task, spec, &cursor, &page_key, plan, fetched_all)
            .await
    }

    /// The page, its memory's digest sent when the memory is confirmed; none when Tripletex says
    /// the result is too large (the window halves).
    async fn ask_for_page(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        partition: &'static Partition,
        cursor: &Cursor,
        memory: Option<&PageMemory>,
        counts: &mut TypeCounts,
    ) -> Result<Option<ListedPage>, StepError> {
        let request = PageRequest {
            spec,
            partition,
            window: cursor.window,
            from: cursor.from,
            count: self.settings.limits.page_size,
            digest: memory
                .filter(|memory| memory.confirmed)
                .map(|memory| memory.digest.clone()),
        };
        match self.api.list_page(&request).await {
            Ok(page) => {
                counts.pages += 1;
                // A backfill sized its listings before their first pages.
                if cursor.from == 0
                    && !task.mode.sizes_listings()
                    && let ListedPage::Listed {
                        full_result_size: Some(size),
                        ..
                    } = &page
                {
                    counts.listing_size += size;
                }
                Ok(Some(page))
            }
            Err(error) if error.is_result_too_large() => Ok(None),
            Err(error) => Err(StepError::Tripletex(error)),
        }
    }

    /// What the page decides (`domain::sync::page`), with what the copy holds of its ids: a 304
    /// page is compared with the copy too, for the copy may have lost what it once held.
    async fn plan(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        page_key: &str,
        page: &ListedPage,
        memory: Option<&PageMemory>,
        counts: &mut TypeCounts,
    ) -> Result<(PagePlan, HashMap<i64, StoredVersion>), StepError> {
        let answer = match page {
            ListedPage::Unchanged => PageAnswer::NotModified,
            ListedPage::Listed {
                objects, digest, ..
            } => PageAnswer::Listed {
                objects,
                digest: digest.as_deref(),
            },
        };
        let page_ids: Vec<i64> = match answer {
            PageAnswer::NotModified => memory
                .map(|memory| memory.objects.iter().map(|object| object.id).collect())
                .unwrap_or_default(),
            PageAnswer::Listed { objects, .. } => objects.iter().map(|object| object.id).collect(),
        };
        let stored = self.stored_by_id(&task.tenant, spec, &page_ids).await?;
        let stored_of = |id| stored.get(&id).copied();
        let room = MAX_SUSPECTS.saturating_sub(task.suspects.len());
        let mut input = PageInput {
            page_key,
            answer,
            memory,
            stored: &stored_of,
            known_unstorable: &[],
            carried: &task.carried,
            unconfirmed: &task.unconfirmed,
            suspect_room: task.rechecks(spec.object_type).then_some(room),
            page_size: self.settings.limits.page_size,
            fetch_batch: self.settings.limits.fetch_batch,
        };
        let mut plan = plan_page(&input);
        if plan.verdict.fetch.len() + plan.deferred.len() > 0 {
            // Read only when there is something to fetch: most pages of a night have not.
            let known = self
                .records
                .known_unstorable(&task.tenant, spec.object_type)
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
        Ok((plan, stored))
    }

    /// After the page's fetch: its memory kept and its pages confirmed (a digest is trusted only
    /// once its objects are queued, so that a 304 later skips nothing never fetched), its ids
    /// recorded for the check of the copy, its findings kept for the recheck; the task that goes on.
    async fn carry_out(
        &self,
        task: &SyncTask,
        spec: &'static ObjectTypeSpec,
        cursor: &Cursor,
        page_key: &str,
        plan: PagePlan,
        fetched_all: bool,
    ) -> Result<Option<SyncTask>, StepError> {
        let tenant = &task.tenant;
        let settled = plan.settle(fetched_all);
        if !settled.confirm_pages.is_empty() {
            self.records
                .confirm_pages(tenant, &settled.confirm_pages)
                .await?;
        }
        if let Some(memory) = &settled.remember {
            self.records.remember_page(tenant, page_key, memory).await?;
        }
        let ids = plan.ids();
        self.records
            .record_listed(tenant, &task.run_id, page_key, &ids)
            .await?;
        let mut next = task.clone();
        let now = Timestamp::now();
        if !plan.deferred.is_empty() {
            next.recheck_page(page_key.to_owned());
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
        let page_size = self.settings.limits.page_size;
        Ok(next.after_page_carrying(ids.len(), page_size, settled.carry, settled.unconfirmed))
    }

    /// Asks Tripletex by id for what the copy holds and the page contradicts (a tombstone of an
    /// object it lists, a version newer than it lists), at most `lookups_per_step` a page (the next
    /// run asks for the rest); where its answer contradicts the copy, queues its object to replace
    /// the copy (a forged or mistaken write, seen and mended). Only a copy written before the run
    /// began is asked about: one written since is a webhook after the listing, as on a busy day.
    pub(super) async fn settle_contested(
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
}
