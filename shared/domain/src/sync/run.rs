//! A sync run for one company is one chain of tasks on the sync queue. Each task carries the work
//! left (per type: its partitions and windows to list, then the check of the stored copy against
//! what was listed) and does one bounded step of the head item; its successor carries the rest.
//! One chain per company and run keeps a company's calls to Tripletex one at a time, and a crash
//! loses one step, which the queue hands out again.

use std::collections::VecDeque;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::catalog::{ObjectTypeSpec, Reconcilable, listable, spec_for};
use super::cursor::{CannotSplit, Cursor, first_cursors};
use super::listing::Listed;
use super::window::{DateWindow, tile_every_date};
use crate::ids::TenantId;
use crate::resync::{ResyncKey, state};

/// Why a run was started. All three do the same listing and compare; they differ in what their
/// findings mean (`DriftCorrected` counts only in a reconciliation, where every subscription was
/// supposed to be delivering) and in who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    /// A type's first subscription was created: bring every existing object.
    Backfill,
    /// The nightly check that the copy is exact.
    Reconcile,
    /// A subscription was re-enabled: fetch what Tripletex did not deliver while it was down.
    Resync,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backfill => "backfill",
            Self::Reconcile => "reconcile",
            Self::Resync => "resync",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Backfill, Self::Reconcile, Self::Resync]
            .into_iter()
            .find(|mode| mode.as_str() == text)
    }

    /// Whether a missing or outdated copy found by this run is a webhook that never came.
    pub fn counts_drift(self) -> bool {
        matches!(self, Self::Reconcile)
    }

    /// Whether the run asks what each of a type's listings holds before its first page, so that
    /// the operator's progress (`companies add`) has its total from the start. Only a backfill is
    /// followed that way; the nightly run keeps to its pages, most of them answered 304.
    pub fn sizes_listings(self) -> bool {
        matches!(self, Self::Backfill)
    }
}

/// The types a run covers, in the order asked, and the ones it cannot cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypePlan {
    pub listable: Vec<&'static ObjectTypeSpec>,
    /// Types with nothing to list (`notification`, `archiverelation`) or unknown: reported, never
    /// tombstoned.
    pub not_reconcilable: Vec<(String, &'static str)>,
}

pub fn plan_types<'a>(requested: impl IntoIterator<Item = &'a str>) -> TypePlan {
    let mut plan = TypePlan::default();
    for object_type in requested {
        match spec_for(object_type) {
            Reconcilable::Yes(spec) => {
                if !plan.listable.contains(&spec) {
                    plan.listable.push(spec);
                }
            }
            Reconcilable::No { reason } => {
                if !plan.not_reconcilable.iter().any(|(t, _)| t == object_type) {
                    plan.not_reconcilable.push((object_type.to_owned(), reason));
                }
            }
        }
    }
    plan
}

/// One item of work left in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Work {
    pub object_type: String,
    pub stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Stage {
    /// List the next page of one partition and window, compare, fetch what is missing or newer.
    List(Cursor),
    /// After every partition and window of the type is listed: walk the stored copy (ids above
    /// `after_id`) for objects the listing did not show, and confirm each with Tripletex.
    Verify { after_id: i64 },
    /// At the end of a reconciliation, once its webhooks had their chance: the type's suspects
    /// still behind are fetched (or tombstoned) and counted as drift; the others were late.
    Recheck,
    /// After a recheck that queued what it found: once the copy holds every finding (the worker
    /// has stored what was queued), the type is confirmed complete. Complete means stored.
    Confirm { awaiting: Vec<Suspect> },
}

/// The most suspects a run holds for their recheck (they ride in the task, about 60 bytes each,
/// with the key of each page they were listed on);
/// past that, the delivery path is plainly broken and what the listing finds is drift at once.
pub const MAX_SUSPECTS: usize = 1_000;

/// What a reconciliation found behind in the copy, kept for the recheck at the run's end instead of
/// being fetched at once: a webhook still in flight when the listing ran is late, not missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suspect {
    pub object_type: String,
    /// The partition it was listed in (its fetch needs that partition's filters); none for one
    /// the check of the copy found by id, which is looked up by id again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<usize>,
    pub id: i64,
    pub found: Finding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Finding {
    /// Listed (or looked up) at this version; the copy was behind or lacked it.
    Behind { version: Option<i64> },
    /// Confirmed gone (404 by id) while the copy holds it live.
    Gone,
}

impl Finding {
    /// Whether the copy has caught up with the finding since (its webhook came).
    pub fn caught_up(self, stored: Option<&super::compare::StoredVersion>) -> bool {
        match self {
            Self::Behind { version } => super::compare::behind(stored, version).is_none(),
            Self::Gone => stored.is_some_and(|copy| copy.deleted),
        }
    }

    /// What a lookup by id found: the object at its version, or gone.
    pub fn of(lookup: &super::listing::Lookup) -> Self {
        match lookup {
            super::listing::Lookup::NotFound => Self::Gone,
            super::listing::Lookup::Found(object) => Self::Behind {
                version: object.version,
            },
        }
    }
}

/// What a recheck does with its suspects, once the copy has been read again: what caught up was a
/// late webhook; what is still behind is drift, tombstoned (gone), fetched again with its
/// partition's filters (listed), or looked up by id again (found by the check of the copy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecheckPlan {
    pub late_webhooks: u64,
    pub tombstones: Vec<i64>,
    pub by_partition: std::collections::BTreeMap<usize, Vec<i64>>,
    pub by_id: Vec<i64>,
}

impl RecheckPlan {
    pub fn of<'a>(
        suspects: &[Suspect],
        stored: impl Fn(i64) -> Option<&'a super::compare::StoredVersion>,
    ) -> Self {
        let mut plan = Self::default();
        for suspect in suspects {
            if suspect.found.caught_up(stored(suspect.id)) {
                plan.late_webhooks += 1;
                continue;
            }
            match (suspect.found, suspect.partition) {
                (Finding::Gone, _) => plan.tombstones.push(suspect.id),
                (Finding::Behind { .. }, Some(partition)) => {
                    plan.by_partition
                        .entry(partition)
                        .or_default()
                        .push(suspect.id);
                }
                (Finding::Behind { .. }, None) => plan.by_id.push(suspect.id),
            }
        }
        plan
    }
}

/// One task on the sync queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncTask {
    pub run_id: String,
    pub tenant: TenantId,
    pub mode: RunMode,
    /// When the run began: a stored object last written after it is never a deletion candidate
    /// (it may have been created while the listing ran).
    pub started_at: Timestamp,
    /// This task's place in the chain: the run record applies each step once.
    pub step: u32,
    pub work: VecDeque<Work>,
    /// The resync requests this run answers, marked done with its outcome when it ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resyncs: Vec<ResyncKey>,
    /// Objects the current partition and window listed as missing or newer, not fetched yet: they
    /// ride along until a full batch is due or the listing ends, so a nightly run with a few
    /// changes per page makes a fetch per batch, not one per page. Fewer than a batch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carried: Vec<i64>,
    /// The pages whose fetch rides along (`carried`): confirmed once it is done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<String>,
    /// The date windows the current type was listed in (each that Tripletex did not find too
    /// large), remembered when its listing completes so that the next run starts from them instead
    /// of halving its way down again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows_listed: Vec<ListedWindow>,
    /// A reconciliation's findings, rechecked at its end (`Stage::Recheck`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspects: Vec<Suspect>,
    /// When the first suspect was found: the recheck waits until its webhook had its chance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_suspected_at: Option<Timestamp>,
    /// The pages the suspects were listed on: confirmed by the recheck once all of their type's
    /// suspects are in the copy, so that a quiet night after answers 304.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recheck_pages: Vec<String>,
    /// Objects of the type being checked that its listing showed and the copy did not hold in
    /// time: the type is not confirmed complete by this run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_stored: u64,
    /// Types listed and checked whole, whose confirmation waits for the recheck to store what it
    /// kept (their suspects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirm_after_recheck: Vec<String>,
    /// When the recheck put its marker on the webhook queue (`sync::marker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_sent_at: Option<Timestamp>,
    /// The type whose listings this run has sized up front (`listings_to_size`): its partitions'
    /// and windows' sizes are in its counts, and its too-large windows already halved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listings_sized: Option<String>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// A date window one partition of a type was listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedWindow {
    pub partition: usize,
    pub window: DateWindow,
}

/// Where each partition of a windowed type starts: the windows remembered from its last complete
/// listing when they tile every date, else one window over every date.
pub fn starting_cursors(spec: &ObjectTypeSpec, remembered: &[ListedWindow]) -> Vec<Cursor> {
    first_cursors(spec)
        .into_iter()
        .flat_map(|cursor| {
            let windows: Vec<DateWindow> = remembered
                .iter()
                .filter(|listed| listed.partition == cursor.partition)
                .map(|listed| listed.window)
                .collect();
            if cursor.window.is_some() && tile_every_date(&windows) {
                let mut windows = windows;
                windows.sort_by_key(|window| window.from);
                windows
                    .into_iter()
                    .map(|window| Cursor {
                        window: Some(window),
                        ..cursor
                    })
                    .collect()
            } else {
                vec![cursor]
            }
        })
        .collect()
}

/// A run id sorts by time and says what the run was: `20261123T220000.123456789Z-reconcile`
/// (to the nanosecond: two runs started for one company do not share an id).
pub fn run_id(started_at: Timestamp, mode: RunMode) -> String {
    format!(
        "{}-{}",
        started_at.strftime("%Y%m%dT%H%M%S.%9fZ"),
        mode.as_str()
    )
}

impl SyncTask {
    /// The first task of a run over these types; none when there is nothing to list.
    pub fn first(
        run_id: String,
        tenant: TenantId,
        mode: RunMode,
        started_at: Timestamp,
        types: &[&'static ObjectTypeSpec],
    ) -> Option<Self> {
        Self::first_from(run_id, tenant, mode, started_at, types, |_| Vec::new())
    }

    /// The first task, starting each windowed type from the windows `remembered` gives for it.
    pub fn first_from(
        run_id: String,
        tenant: TenantId,
        mode: RunMode,
        started_at: Timestamp,
        types: &[&'static ObjectTypeSpec],
        remembered: impl Fn(&str) -> Vec<ListedWindow>,
    ) -> Option<Self> {
        let mut work: VecDeque<Work> = types
            .iter()
            .flat_map(|spec| {
                starting_cursors(spec, &remembered(spec.object_type))
                    .into_iter()
                    .map(Stage::List)
                    .chain([Stage::Verify { after_id: 0 }])
                    .map(|stage| Work {
                        object_type: spec.object_type.to_owned(),
                        stage,
                    })
            })
            .collect();
        if mode.counts_drift() {
            // Last, so that the webhooks of what the listings found behind have had the whole
            // run to arrive.
            work.extend(types.iter().map(|spec| Work {
                object_type: spec.object_type.to_owned(),
                stage: Stage::Recheck,
            }));
        }
        (!work.is_empty()).then_some(Self {
            run_id,
            tenant,
            mode,
            started_at,
            step: 0,
            work,
            resyncs: Vec::new(),
            carried: Vec::new(),
            unconfirmed: Vec::new(),
            windows_listed: Vec::new(),
            suspects: Vec::new(),
            first_suspected_at: None,
            recheck_pages: Vec::new(),
            not_stored: 0,
            confirm_after_recheck: Vec::new(),
            marker_sent_at: None,
            listings_sized: None,
        })
    }

    /// Keeps what a reconciliation found for the recheck at its end; false when the run holds
    /// as many suspects as it may (the finding is then acted on at once).
    pub fn suspect(&mut self, suspect: Suspect, now: Timestamp) -> bool {
        if self.suspects.len() >= MAX_SUSPECTS {
            return false;
        }
        self.first_suspected_at.get_or_insert(now);
        self.suspects.push(suspect);
        true
    }

    /// Remembers a page whose findings wait for the recheck.
    pub fn recheck_page(&mut self, page_key: String) {
        if !self.recheck_pages.contains(&page_key) {
            self.recheck_pages.push(page_key);
        }
    }

    /// The suspects of one type, taken out of the task (its recheck is the step that takes them).
    pub fn take_suspects(&mut self, object_type: &str) -> Vec<Suspect> {
        let (of_type, others) = std::mem::take(&mut self.suspects)
            .into_iter()
            .partition(|suspect| suspect.object_type == object_type);
        self.suspects = others;
        of_type
    }

    /// The pages of one type whose findings waited for the recheck, taken out of the task.
    pub fn take_recheck_pages(&mut self, object_type: &str) -> Vec<String> {
        let prefix = format!("{object_type}/");
        let (of_type, others) = std::mem::take(&mut self.recheck_pages)
            .into_iter()
            .partition(|page| page.starts_with(&prefix));
        self.recheck_pages = others;
        of_type
    }

    /// Whether this run rechecks the type at its end (a reconciliation does).
    pub fn rechecks(&self, object_type: &str) -> bool {
        self.work
            .iter()
            .any(|work| work.object_type == object_type && work.stage == Stage::Recheck)
    }

    /// The task after a type's recheck that leaves its confirmation to a step of its own, once
    /// the copy holds these findings.
    pub fn after_recheck_confirming(mut self, awaiting: Vec<Suspect>) -> Option<Self> {
        if let Some(Work {
            object_type,
            stage: Stage::Recheck,
        }) = self.work.pop_front()
        {
            self.work.push_front(Work {
                object_type,
                stage: Stage::Confirm { awaiting },
            });
        }
        self.successor()
    }

    /// The same work again, as the next step (a recheck waiting for its marker).
    pub fn again(self) -> Option<Self> {
        self.successor()
    }

    /// The task after a type's confirmation step.
    pub fn after_confirm(mut self) -> Option<Self> {
        if matches!(
            self.work.front(),
            Some(Work {
                stage: Stage::Confirm { .. },
                ..
            })
        ) {
            self.work.pop_front();
        }
        self.successor()
    }

    /// The task after a type's recheck.
    pub fn after_recheck(mut self) -> Option<Self> {
        if matches!(
            self.work.front(),
            Some(Work {
                stage: Stage::Recheck,
                ..
            })
        ) {
            self.work.pop_front();
        }
        self.successor()
    }

    pub fn current(&self) -> Option<&Work> {
        self.work.front()
    }

    /// The spec of the type being worked on.
    pub fn spec(&self) -> Option<&'static ObjectTypeSpec> {
        self.current().and_then(|work| listable(&work.object_type))
    }

    /// The type's later items are done by the tasks that follow.
    pub fn is_last_of_type(&self) -> bool {
        match (self.work.front(), self.work.get(1)) {
            (Some(head), Some(next)) => head.object_type != next.object_type,
            _ => true,
        }
    }

    /// The task that continues a listing after a page of `received` objects asked as `count`.
    pub fn after_page(mut self, received: usize, count: u32) -> Option<Self> {
        self.carried.clear();
        self.unconfirmed.clear();
        if let Some(Work {
            stage: Stage::List(cursor),
            ..
        }) = self.work.front_mut()
        {
            // A window's first page answered: Tripletex did not find it too large.
            if let (Some(window), 0) = (cursor.window, cursor.from) {
                self.windows_listed.push(ListedWindow {
                    partition: cursor.partition,
                    window,
                });
            }
            match cursor.after_page(received, count) {
                Some(next) => *cursor = next,
                None => {
                    self.work.pop_front();
                }
            }
        }
        self.successor()
    }

    /// The task that continues after a page, carrying these ids to the next page's fetch (and the
    /// pages they came from). They ride along only within one partition and window (their fetch
    /// needs its filters): the caller fetches what it has before a listing ends.
    pub fn after_page_carrying(
        self,
        received: usize,
        count: u32,
        carried: Vec<i64>,
        unconfirmed: Vec<String>,
    ) -> Option<Self> {
        let listing = self.head_listing().map(|(t, p, w)| (t.to_owned(), p, w));
        let mut next = self.after_page(received, count)?;
        let same = next.head_listing().map(|(t, p, w)| (t.to_owned(), p, w));
        if listing.is_some() && same == listing {
            next.carried = carried;
            next.unconfirmed = unconfirmed;
        }
        Some(next)
    }

    /// The cursors of the type about to be listed, when the run sizes its listings up front and has
    /// not yet done so for this type: every partition and window its listing starts from.
    pub fn listings_to_size(&self) -> Option<Vec<Cursor>> {
        let head = self.work.front()?;
        let (Stage::List(_), true) = (&head.stage, self.mode.sizes_listings()) else {
            return None;
        };
        if self.listings_sized.as_deref() == Some(head.object_type.as_str()) {
            return None;
        }
        Some(
            self.work
                .iter()
                .take_while(|work| work.object_type == head.object_type)
                .filter_map(|work| match work.stage {
                    Stage::List(cursor) => Some(cursor),
                    _ => None,
                })
                .collect(),
        )
    }

    /// This task with its type's listing starting from `sized` (the cursors `listings_to_size`
    /// gave, each window Tripletex found too large replaced by its halves), marked sized.
    pub fn with_listings_sized(mut self, sized: Vec<Cursor>) -> Self {
        let Some(object_type) = self.work.front().map(|work| work.object_type.clone()) else {
            return self;
        };
        let listed = self
            .work
            .iter()
            .take_while(|work| {
                work.object_type == object_type && matches!(work.stage, Stage::List(_))
            })
            .count();
        self.work.drain(..listed);
        for cursor in sized.into_iter().rev() {
            self.work.push_front(Work {
                object_type: object_type.clone(),
                stage: Stage::List(cursor),
            });
        }
        self.listings_sized = Some(object_type);
        self
    }

    /// The cursor of the page to list next, if listing is what the task does.
    pub fn head_cursor(&self) -> Option<Cursor> {
        match self.work.front()?.stage {
            Stage::List(cursor) => Some(cursor),
            _ => None,
        }
    }

    /// The type, partition and window being listed.
    fn head_listing(&self) -> Option<(&str, usize, Option<DateWindow>)> {
        match self.work.front() {
            Some(Work {
                object_type,
                stage: Stage::List(cursor),
            }) => Some((object_type.as_str(), cursor.partition, cursor.window)),
            _ => None,
        }
    }

    /// The task that lists the current window again as two halves (Tripletex said it was too large).
    /// Ids carried from the window are dropped: the halves list them again.
    pub fn after_split(mut self) -> Result<Option<Self>, CannotSplit> {
        self.carried.clear();
        self.unconfirmed.clear();
        let Some(Work {
            object_type,
            stage: Stage::List(cursor),
        }) = self.work.front().cloned()
        else {
            return Ok(self.successor());
        };
        let [first, second] = cursor.split()?;
        self.work.pop_front();
        for half in [second, first] {
            self.work.push_front(Work {
                object_type: object_type.clone(),
                stage: Stage::List(half),
            });
        }
        Ok(self.successor())
    }

    /// The task that goes on checking the stored copy above `checked_to`, or the next item once
    /// the stored copy is checked to its end.
    pub fn after_verify(mut self, checked_to: Option<i64>) -> Option<Self> {
        // Remembered by the check's first step; the next type starts a list of its own.
        self.windows_listed.clear();
        match (checked_to, self.work.front_mut()) {
            (
                Some(id),
                Some(Work {
                    stage: Stage::Verify { after_id },
                    ..
                }),
            ) => *after_id = id,
            _ => {
                self.work.pop_front();
                self.not_stored = 0;
            }
        }
        self.successor()
    }

    /// Whether findings of the type wait for the recheck (which queues them, so they are not
    /// stored yet): its confirmation waits for the recheck too.
    pub fn awaits_recheck(&self, object_type: &str) -> bool {
        self.suspects
            .iter()
            .any(|suspect| suspect.object_type == object_type)
    }

    /// The task after the current type failed: its listing is incomplete, so nothing of it may be
    /// tombstoned; the run goes on with the next type. What it found behind before it failed is
    /// still rechecked, unless the recheck itself is what failed.
    pub fn abandon_type(mut self) -> Option<Self> {
        self.carried.clear();
        self.unconfirmed.clear();
        self.windows_listed.clear();
        if let Some(failed) = self.work.front().cloned() {
            if failed.stage == Stage::Recheck {
                self.take_suspects(&failed.object_type);
                self.take_recheck_pages(&failed.object_type);
                self.work.pop_front();
            } else {
                self.work.retain(|work| {
                    work.object_type != failed.object_type || work.stage == Stage::Recheck
                });
            }
        }
        self.successor()
    }

    fn successor(mut self) -> Option<Self> {
        if self.work.is_empty() {
            return None;
        }
        self.step += 1;
        Some(self)
    }

    /// The key under which a page's digest and ids are remembered: type, partition, window, offset
    /// and page size (a digest of another page shape is never sent: a changed page size starts
    /// afresh).
    pub fn page_key(&self, page_size: u32) -> Option<String> {
        let work = self.current()?;
        let Stage::List(cursor) = &work.stage else {
            return None;
        };
        let spec = listable(&work.object_type)?;
        let partition = spec.partitions.get(cursor.partition)?;
        let window = cursor
            .window
            .map_or_else(|| "-".to_owned(), |w| format!("{}..{}", w.from, w.to));
        Some(format!(
            "{}/{}/{}/{}+{page_size}",
            work.object_type, partition.name, window, cursor.from
        ))
    }
}

/// A run's first entry in the run record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    pub tenant: crate::ids::TenantId,
    pub run_id: String,
    pub mode: RunMode,
    pub started_at: jiff::Timestamp,
    pub types: Vec<String>,
    pub not_reconcilable: Vec<(String, String)>,
}

/// A page's checksum and the objects it held (id and version), so that a 304 still says which
/// objects exist and at which version, to compare with the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMemory {
    pub digest: String,
    pub objects: Vec<Listed>,
    /// Every object the page showed missing or newer has been queued. Until then (its fetch rides
    /// along to a later page's) the digest is not sent: a 304 must never skip an unfetched change.
    pub confirmed: bool,
}

/// A run as its record in the sync table says it stands, for those who read it (the operator's
/// `status` and `resync`): the adapter that writes the record reads it back into this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRun {
    pub tenant: String,
    pub run_id: String,
    pub mode: Option<RunMode>,
    pub state: Option<RunState>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Steps counted so far.
    pub steps: u64,
    /// The types the run lists, in order.
    pub types: Vec<String>,
    /// The counts so far, per type.
    pub counts: std::collections::BTreeMap<String, TypeCounts>,
    /// Each failed type's reason, `<type>: <reason>`.
    pub failures: Vec<String>,
}

/// What one step did to one type, added to the run record's counts for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeCounts {
    /// Objects Tripletex listed (a 304 page counts the ids it held before).
    pub listed: u64,
    /// What Tripletex said its listings hold (`fullResultSize` of each partition's and window's
    /// first page, summed as they start): about how many `listed` will reach, for progress.
    pub listing_size: u64,
    /// Listed objects whose stored copy was already at that version.
    pub unchanged: u64,
    /// Objects fetched in full because the copy was missing or behind.
    pub fetched: u64,
    /// Envelopes put on the webhook queue (fetched objects and tombstones).
    pub enqueued: u64,
    /// Stored objects Tripletex confirmed gone (404 by id): a delete envelope each.
    pub tombstoned: u64,
    /// Stored objects missing from the listing that Tripletex still has (found by id).
    pub kept_after_lookup: u64,
    /// Of those, the ones found at a newer version than the copy's (a deletion mid-scan moved them
    /// past the listing's pages): queued as looked up.
    pub refreshed_after_lookup: u64,
    /// Objects a fetch by ids answered without: each looked up by id instead.
    pub left_out_by_fetch: u64,
    /// Of those, the ones Tripletex answered 404 (gone since the listing): nothing queued, and their
    /// pages stay unconfirmed, so the next run lists them again.
    pub vanished: u64,
    /// Objects the worker could never store (it would quarantine them, or the queue cannot carry
    /// them): reported with their reason, never queued, and not fetched again at the same version.
    pub unstorable: u64,
    pub pages: u64,
    /// Pages answered 304: nothing changed since the last listing.
    pub pages_not_modified: u64,
    /// Calls to Tripletex, retries included.
    pub requests: u64,
    pub rate_limited: u64,
    /// In a reconciliation: objects whose copy was behind, absent or not deleted although their
    /// subscription was active, still so at the recheck after every webhook had its chance: each a
    /// webhook that never came.
    pub drift_corrected: u64,
    /// In a reconciliation: objects the listing found behind whose webhook came before the recheck
    /// (late, not missing): not drift.
    pub late_webhooks: u64,
    /// Objects the listing showed that the copy still lacked once the worker had had its time
    /// (`StepLimits::store_wait`): queued again where Tripletex still has them. A type with any is
    /// not confirmed complete by the run: complete means stored, not queued.
    pub not_stored: u64,
    /// Copies Tripletex contradicted when asked by id (a version it never had, a delete of an
    /// object it has): its object queued to replace them (`dedup::Write::Replace`).
    pub contradicted: u64,
}

impl TypeCounts {
    /// The counts under their names, as the run record and metrics spell them.
    pub fn named(&self) -> [(&'static str, u64); 19] {
        let mut copy = *self;
        copy.named_mut().map(|(name, value)| (name, *value))
    }

    /// Each count under its name, to be set by a reader of the run record.
    pub fn named_mut(&mut self) -> [(&'static str, &mut u64); 19] {
        [
            ("listed", &mut self.listed),
            ("listingSize", &mut self.listing_size),
            ("unchanged", &mut self.unchanged),
            ("fetched", &mut self.fetched),
            ("enqueued", &mut self.enqueued),
            ("tombstoned", &mut self.tombstoned),
            ("keptAfterLookup", &mut self.kept_after_lookup),
            ("refreshedAfterLookup", &mut self.refreshed_after_lookup),
            ("leftOutByFetch", &mut self.left_out_by_fetch),
            ("vanished", &mut self.vanished),
            ("unstorable", &mut self.unstorable),
            ("pages", &mut self.pages),
            ("pagesNotModified", &mut self.pages_not_modified),
            ("requests", &mut self.requests),
            ("rateLimited", &mut self.rate_limited),
            ("driftCorrected", &mut self.drift_corrected),
            ("lateWebhooks", &mut self.late_webhooks),
            ("notStored", &mut self.not_stored),
            ("contradicted", &mut self.contradicted),
        ]
    }

    pub fn add(&mut self, other: &TypeCounts) {
        let fields = [
            (&mut self.listed, other.listed),
            (&mut self.listing_size, other.listing_size),
            (&mut self.unchanged, other.unchanged),
            (&mut self.fetched, other.fetched),
            (&mut self.enqueued, other.enqueued),
            (&mut self.tombstoned, other.tombstoned),
            (&mut self.kept_after_lookup, other.kept_after_lookup),
            (
                &mut self.refreshed_after_lookup,
                other.refreshed_after_lookup,
            ),
            (&mut self.left_out_by_fetch, other.left_out_by_fetch),
            (&mut self.vanished, other.vanished),
            (&mut self.unstorable, other.unstorable),
            (&mut self.pages, other.pages),
            (&mut self.pages_not_modified, other.pages_not_modified),
            (&mut self.requests, other.requests),
            (&mut self.rate_limited, other.rate_limited),
            (&mut self.drift_corrected, other.drift_corrected),
            (&mut self.late_webhooks, other.late_webhooks),
            (&mut self.not_stored, other.not_stored),
            (&mut self.contradicted, other.contradicted),
        ];
        for (total, more) in fields {
            *total += more;
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    /// Every type listed and checked without an error.
    Done,
    /// At least one type's listing failed: its copy was not proven exact (and nothing of it was
    /// tombstoned).
    Failed,
}

impl RunState {
    /// How a run ended: failed when any of its types did.
    pub fn ended(failed_types: u64) -> Self {
        if failed_types > 0 {
            Self::Failed
        } else {
            Self::Done
        }
    }

    /// What a resync request becomes when the run that took it is in this state.
    pub fn request_state(self) -> &'static str {
        match self {
            Self::Running => state::RUNNING,
            Self::Done => state::DONE,
            Self::Failed => state::FAILED,
        }
    }

    /// A state as the run record stores it (`as_str`).
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// One step's entry in the run record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub object_type: String,
    pub counts: TypeCounts,
    /// Why the type's listing was given up.
    pub failure: Option<String>,
    /// Objects found unstorable in this step, each with its reason (`id 42 version 3: why`).
    pub unstorable: Vec<String>,
    /// Set on the chain's last step: the run is over.
    pub finished: bool,
}

/// What the run record said to a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepRecorded {
    /// Counted now.
    Applied { state: RunState },
    /// This step was counted before (the queue delivered it again): its successor may not have
    /// been sent, so it is sent again (the queue drops a duplicate).
    AlreadyApplied { state: RunState },
    /// The chain has moved past this step: a stale copy, dropped.
    Stale,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recheck_counts_what_caught_up_as_late_and_sorts_what_is_still_behind() {
        use super::super::compare::StoredVersion;
        let suspect = |id, partition, found| Suspect {
            object_type: "customer".into(),
            partition,
            id,
            found,
        };
        let behind = |version| Finding::Behind {
            version: Some(version),
        };
        let suspects = [
            suspect(1, Some(0), behind(3)),
            suspect(2, Some(1), behind(3)),
            suspect(3, None, behind(3)),
            suspect(4, None, Finding::Gone),
            suspect(5, Some(1), behind(2)),
            suspect(6, Some(1), Finding::Gone),
        ];
        let now = jiff::Timestamp::UNIX_EPOCH;
        let live = |id, version| StoredVersion {
            id,
            version: Some(version),
            deleted: false,
            updated_at: now,
        };
        let copy = [live(1, 3), live(2, 2), live(5, 2)];
        let plan = RecheckPlan::of(&suspects, |id| copy.iter().find(|c| c.id == id));
        assert_eq!(plan.late_webhooks, 2, "1 and 5 caught up");
        assert_eq!(plan.tombstones, [4, 6]);
        assert_eq!(
            plan.by_partition,
            std::collections::BTreeMap::from([(1, vec![2])])
        );
        assert_eq!(plan.by_id, [3]);
    }
    use crate::sync::window::FULL_RANGE;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn task(types: &[&str]) -> SyncTask {
        let plan = plan_types(types.iter().copied());
        SyncTask::first(
            "r".into(),
            tenant(),
            RunMode::Reconcile,
            Timestamp::UNIX_EPOCH,
            &plan.listable,
        )
        .unwrap()
    }

    fn stages(task: &SyncTask) -> Vec<(String, Stage)> {
        task.work
            .iter()
            .map(|w| (w.object_type.clone(), w.stage.clone()))
            .collect()
    }

    #[test]
    fn a_run_lists_every_partition_then_checks_the_stored_copy_type_by_type() {
        let task = task(&["customer", "product"]);
        let list = |partition| {
            Stage::List(Cursor {
                partition,
                window: None,
                from: 0,
            })
        };
        assert_eq!(
            stages(&task),
            [
                ("customer".into(), list(0)),
                ("customer".into(), list(1)),
                ("customer".into(), Stage::Verify { after_id: 0 }),
                ("product".into(), list(0)),
                ("product".into(), Stage::Verify { after_id: 0 }),
                ("customer".into(), Stage::Recheck),
                ("product".into(), Stage::Recheck),
            ]
        );
        assert_eq!(task.page_key(1000).unwrap(), "customer/active/-/0+1000");
    }

    #[test]
    fn types_with_nothing_to_list_are_reported_and_duplicates_planned_once() {
        let plan = plan_types(["product", "notification", "product", "nonsense"]);
        assert_eq!(plan.listable.len(), 1);
        assert_eq!(
            plan.not_reconcilable
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>(),
            ["notification", "nonsense"]
        );
        assert!(
            SyncTask::first(
                "r".into(),
                tenant(),
                RunMode::Backfill,
                Timestamp::UNIX_EPOCH,
                &[]
            )
            .is_none()
        );
    }

    #[test]
    fn a_full_page_moves_the_offset_and_a_short_one_ends_the_partition() {
        let task = task(&["product"]);
        let next = task.after_page(1000, 1000).unwrap();
        assert_eq!(next.step, 1);
        assert_eq!(next.page_key(1000).unwrap(), "product/all/-/1000+1000");
        let next = next.after_page(10, 1000).unwrap();
        assert_eq!(next.current().unwrap().stage, Stage::Verify { after_id: 0 });
        let next = next.after_verify(Some(500)).unwrap();
        assert_eq!(
            next.current().unwrap().stage,
            Stage::Verify { after_id: 500 }
        );
        let recheck = next.after_verify(None).unwrap();
        assert_eq!(recheck.current().unwrap().stage, Stage::Recheck);
        assert!(recheck.after_recheck().is_none(), "the run is over");
    }

    #[test]
    fn ids_to_fetch_ride_along_within_a_partition_and_never_past_its_end() {
        let task = task(&["customer"]);
        let page = task.page_key(1000).unwrap();
        let next = task
            .after_page_carrying(1000, 1000, vec![7, 9], vec![page.clone()])
            .unwrap();
        assert_eq!(next.carried, [7, 9], "the same partition goes on");
        assert_eq!(next.unconfirmed, [page]);
        let next = next
            .after_page_carrying(3, 1000, vec![11], vec!["x".into()])
            .unwrap();
        assert!(next.carried.is_empty(), "the next partition starts clean");
        assert!(next.unconfirmed.is_empty());
        assert_eq!(next.page_key(1000).unwrap(), "customer/inactive/-/0+1000");
        let mut split = next.clone();
        split.carried = vec![1];
        let rest = split.abandon_type().unwrap();
        assert_eq!(
            rest.current().unwrap().stage,
            Stage::Recheck,
            "its recheck stays"
        );
        assert!(rest.abandon_type().is_none());
    }

    #[test]
    fn a_window_too_large_is_listed_again_as_two_adjacent_halves() {
        let task = task(&["order"]);
        assert_eq!(
            task.page_key(500).unwrap(),
            "order/all/1900-01-01..2100-01-01/0+500"
        );
        let split = task.after_split().unwrap().unwrap();
        let (first, second) = FULL_RANGE.halves().unwrap();
        let windows: Vec<_> = split
            .work
            .iter()
            .filter_map(|w| match &w.stage {
                Stage::List(cursor) => cursor.window,
                Stage::Verify { .. } | Stage::Recheck | Stage::Confirm { .. } => None,
            })
            .collect();
        assert_eq!(windows, [first, second]);
    }

    #[test]
    fn a_backfill_sizes_each_types_listings_once_before_its_first_page() {
        let plan = plan_types(["customer", "voucher"]);
        let backfill = SyncTask::first(
            "r".into(),
            tenant(),
            RunMode::Backfill,
            Timestamp::UNIX_EPOCH,
            &plan.listable,
        )
        .unwrap();
        let customers = backfill.listings_to_size().expect("sized first");
        assert_eq!(
            customers.iter().map(|c| c.partition).collect::<Vec<_>>(),
            [0, 1],
            "active and inactive, not the voucher's"
        );
        let sized = backfill.with_listings_sized(customers);
        assert_eq!(sized.listings_to_size(), None, "once per type");
        let at_vouchers = sized
            .after_page(3, 1000)
            .unwrap()
            .after_page(0, 1000)
            .unwrap()
            .after_verify(None)
            .unwrap();
        let vouchers = at_vouchers.listings_to_size().expect("the next type too");
        assert_eq!(vouchers.len(), 2, "posted and non-posted");
        let (first, second) = FULL_RANGE.halves().unwrap();
        let halves = [first, second].map(|window| Cursor {
            partition: 0,
            window: Some(window),
            from: 0,
        });
        let split = at_vouchers.with_listings_sized(vec![halves[0], halves[1], vouchers[1]]);
        assert_eq!(split.head_cursor(), Some(halves[0]));
        let listed = split
            .work
            .iter()
            .filter(|work| matches!(work.stage, Stage::List(_)))
            .count();
        assert_eq!(listed, 3, "the too-large window replaced by its halves");
        assert!(
            matches!(
                split.work.back().map(|w| &w.stage),
                Some(Stage::Verify { .. })
            ),
            "the check of the copy still follows"
        );
        assert_eq!(
            task(&["customer"]).listings_to_size(),
            None,
            "a reconciliation keeps to its pages"
        );
    }

    #[test]
    fn the_windows_a_type_was_listed_in_start_its_next_run() {
        let task = task(&["order"]);
        let split = task.after_split().unwrap().unwrap();
        let (first, second) = FULL_RANGE.halves().unwrap();
        let after_first = split.after_page(3, 1000).unwrap();
        let at_check = after_first
            .after_page(1000, 1000)
            .unwrap()
            .after_page(2, 1000)
            .unwrap();
        assert_eq!(
            at_check.windows_listed,
            [
                ListedWindow {
                    partition: 0,
                    window: first
                },
                ListedWindow {
                    partition: 0,
                    window: second
                }
            ],
            "each window once, at its first page"
        );
        let spec = listable("order").unwrap();
        let next = starting_cursors(spec, &at_check.windows_listed);
        assert_eq!(
            next.iter().map(|c| c.window.unwrap()).collect::<Vec<_>>(),
            [first, second]
        );
        let gap = [ListedWindow {
            partition: 0,
            window: second,
        }];
        assert_eq!(
            starting_cursors(spec, &gap)[0].window,
            Some(FULL_RANGE),
            "a memory with a gap is not trusted"
        );
        assert_eq!(
            at_check
                .after_verify(None)
                .unwrap()
                .current()
                .unwrap()
                .stage,
            Stage::Recheck
        );
    }

    #[test]
    fn a_failed_type_is_dropped_with_its_check_and_the_run_goes_on() {
        let task = task(&["customer", "product"]);
        let next = task.abandon_type().unwrap();
        assert!(
            next.work
                .iter()
                .all(|w| w.object_type == "product" || w.stage == Stage::Recheck),
            "what customer's listing found before it failed is still rechecked"
        );
        let last = next.abandon_type().unwrap();
        assert_eq!(
            stages(&last),
            [
                ("customer".into(), Stage::Recheck),
                ("product".into(), Stage::Recheck)
            ]
        );
    }

    #[test]
    fn a_reconciliation_keeps_its_suspects_for_the_recheck_and_only_so_many() {
        let mut task = task(&["customer", "product"]);
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let suspect = |object_type: &str, id| Suspect {
            object_type: object_type.into(),
            partition: Some(0),
            id,
            found: Finding::Behind { version: Some(2) },
        };
        assert!(task.suspect(suspect("customer", 1), at));
        assert!(task.suspect(
            suspect("product", 2),
            at + jiff::SignedDuration::from_secs(5)
        ));
        assert_eq!(task.first_suspected_at, Some(at));
        assert_eq!(task.take_suspects("customer"), [suspect("customer", 1)]);
        assert_eq!(task.suspects, [suspect("product", 2)]);
        while task.suspects.len() < MAX_SUSPECTS {
            task.suspects.push(suspect("product", 3));
        }
        assert!(
            !task.suspect(suspect("product", 4), at),
            "the task stays small"
        );
        let json = serde_json::to_string(&task).unwrap();
        assert!(
            json.len() < 200 * 1024,
            "{} bytes fit an SQS message",
            json.len()
        );
        let backfill = SyncTask::first(
            "r".into(),
            tenant(),
            RunMode::Backfill,
            at,
            &plan_types(["product"]).listable,
        )
        .unwrap();
        assert!(
            backfill.work.iter().all(|w| w.stage != Stage::Recheck),
            "only a reconciliation counts drift"
        );
    }

    #[test]
    fn a_finding_is_caught_up_once_the_copy_holds_that_version_or_a_tombstone() {
        let copy = |version, deleted| crate::sync::compare::StoredVersion {
            id: 1,
            version,
            deleted,
            updated_at: Timestamp::UNIX_EPOCH,
        };
        let behind = Finding::Behind { version: Some(3) };
        assert!(!behind.caught_up(None));
        assert!(!behind.caught_up(Some(&copy(Some(2), false))));
        assert!(behind.caught_up(Some(&copy(Some(3), false))));
        assert!(behind.caught_up(Some(&copy(Some(2), true))));
        assert!(
            !behind.caught_up(Some(&copy(None, false))),
            "an unversioned value is a floor"
        );
        assert!(!Finding::Gone.caught_up(Some(&copy(Some(3), false))));
        assert!(Finding::Gone.caught_up(Some(&copy(Some(3), true))));
    }

    #[test]
    fn a_task_survives_the_queue_as_json() {
        let mut task = task(&["invoice"]);
        task.resyncs.push(ResyncKey {
            key: "acme#7".into(),
            requested_at: "2026-11-23T22:00:00Z".into(),
        });
        let json = serde_json::to_string(&task).unwrap();
        assert_eq!(serde_json::from_str::<SyncTask>(&json).unwrap(), task);
        assert!(json.len() < 1024, "{json}");
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_mode() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(
            run_id(at, RunMode::Reconcile),
            "20270115T080000.000000000Z-reconcile"
        );
    }

    #[test]
    fn counts_add_up_field_by_field() {
        let mut total = TypeCounts {
            listed: 2,
            ..TypeCounts::default()
        };
        total.add(&TypeCounts {
            listed: 3,
            drift_corrected: 1,
            ..TypeCounts::default()
        });
        assert_eq!((total.listed, total.drift_corrected), (5, 1));
        assert_eq!(total.named()[0], ("listed", 5));
    }
}
