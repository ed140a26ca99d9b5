//! In-memory fakes of the sync's AWS-side ports: the sync queue (deduplicating a task sent twice, as
//! the FIFO queue does) and the run records (counting each step once, as the conditional update
//! does), both following the rule their DynamoDB and SQS adapters state.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use domain::ports::{QueueError, StoreError, SyncRecords, SyncTasks};
use domain::sync::drift::{DriftFinding, Held};
use domain::sync::{
    Listed, ListedStretch, ListedWindow, RunState, StepRecorded, StepReport, SyncTask, TypeCounts,
    bucket_end, by_listed_bucket, listed_bucket,
};
use domain::sync::{PageMemory, RunStart};
use jiff::Timestamp;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sync queue: tasks wait in order; the same company, run and step sent twice is delivered once
/// (as the FIFO queue's deduplication id says).
#[derive(Debug, Default, Clone)]
pub struct RecordingSyncTasks(Arc<RecordingSyncTasksState>);

/// What every clone of a [`RecordingSyncTasks`] shares: a clone is a handle on the same fake.
#[derive(Debug, Default)]
pub struct RecordingSyncTasksState {
    waiting: Mutex<VecDeque<SyncTask>>,
    seen: Mutex<HashSet<(TenantId, String, u32)>>,
    sent: Mutex<usize>,
    failing: AtomicBool,
}

impl std::ops::Deref for RecordingSyncTasks {
    type Target = RecordingSyncTasksState;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl RecordingSyncTasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next task to deliver, as the queue would.
    pub fn next(&self) -> Option<SyncTask> {
        lock(&self.waiting).pop_front()
    }

    pub fn waiting(&self) -> Vec<SyncTask> {
        lock(&self.waiting).iter().cloned().collect()
    }

    /// Tasks accepted (duplicates not counted).
    pub fn sent(&self) -> usize {
        *lock(&self.sent)
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.failing.store(unavailable, Ordering::SeqCst);
    }
}

impl SyncTasks for RecordingSyncTasks {
    async fn send(&self, task: &SyncTask) -> Result<(), QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable {
                source: Box::new(std::io::Error::other("sync queue down")),
            });
        }
        if lock(&self.seen).insert((task.tenant.clone(), task.run_id.clone(), task.step)) {
            lock(&self.waiting).push_back(task.clone());
            *lock(&self.sent) += 1;
        }
        Ok(())
    }
}

/// A run as the fake records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub start: RunStart,
    pub state: RunState,
    pub steps: u32,
    pub counts: BTreeMap<String, TypeCounts>,
    pub failures: Vec<String>,
    /// Objects found unstorable, `<type>: id <id> version <v>: <reason>`.
    pub unstorable: Vec<String>,
    pub finished_at: Option<Timestamp>,
}

/// Tenant, run id, object type: the ids listed of one type in one run, by bucket and page (as the
/// DynamoDB adapter keeps them: one item per bucket and page).
type ListedKey = (TenantId, String, String);
type ListedBuckets = BTreeMap<i64, HashMap<String, Vec<i64>>>;

#[derive(Debug, Default, Clone)]
pub struct InMemorySyncRecords(Arc<InMemorySyncRecordsState>);

/// What every clone of a [`InMemorySyncRecords`] shares: a clone is a handle on the same fake.
#[derive(Debug, Default)]
pub struct InMemorySyncRecordsState {
    runs: Mutex<BTreeMap<(TenantId, String), RunRecord>>,
    pages: Mutex<HashMap<(TenantId, String), PageMemory>>,
    listed: Mutex<HashMap<ListedKey, ListedBuckets>>,
    windows: Mutex<HashMap<(TenantId, String), Vec<ListedWindow>>>,
    unstorable: Mutex<HashMap<(TenantId, String), BTreeMap<i64, Listed>>>,
    confirmed: Mutex<BTreeMap<(TenantId, String), Timestamp>>,
    markers: Mutex<std::collections::BTreeSet<(TenantId, String)>>,
    /// Drift findings not settled yet: what each brought the copy to, and its run.
    drift: Mutex<BTreeMap<ObjectKey, (Held, String)>>,
}

impl std::ops::Deref for InMemorySyncRecords {
    type Target = InMemorySyncRecordsState;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl InMemorySyncRecords {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn runs(&self) -> Vec<RunRecord> {
        lock(&self.runs).values().cloned().collect()
    }

    pub fn run(&self, tenant: &str, run_id: &str) -> Option<RunRecord> {
        let tenant = TenantId::parse(tenant).ok()?;
        lock(&self.runs).get(&(tenant, run_id.to_owned())).cloned()
    }

    /// Pages remembered with a digest.
    pub fn pages(&self) -> usize {
        lock(&self.pages).len()
    }

    /// Drift findings not settled yet.
    pub fn unsettled_drift(&self) -> Vec<(ObjectKey, Held)> {
        lock(&self.drift)
            .iter()
            .map(|(key, (held, _))| (key.clone(), *held))
            .collect()
    }
}

fn refused(reason: &str) -> StoreError {
    StoreError::Rejected {
        source: Box::new(std::io::Error::other(reason.to_owned())),
    }
}

impl SyncRecords for InMemorySyncRecords {
    async fn start_run(&self, run: &RunStart) -> Result<(), StoreError> {
        let mut runs = lock(&self.runs);
        let key = (run.tenant.clone(), run.run_id.clone());
        if runs.contains_key(&key) {
            return Err(refused("a run with this id exists"));
        }
        runs.insert(
            key,
            RunRecord {
                start: run.clone(),
                state: RunState::Running,
                steps: 0,
                counts: BTreeMap::new(),
                failures: Vec::new(),
                unstorable: Vec::new(),
                finished_at: None,
            },
        );
        Ok(())
    }

    async fn run_state(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> Result<Option<RunState>, StoreError> {
        Ok(lock(&self.runs)
            .get(&(tenant.clone(), run_id.to_owned()))
            .map(|run| run.state))
    }

    async fn record_step(
        &self,
        tenant: &TenantId,
        run_id: &str,
        step: u32,
        report: &StepReport,
    ) -> Result<StepRecorded, StoreError> {
        let mut runs = lock(&self.runs);
        let Some(run) = runs.get_mut(&(tenant.clone(), run_id.to_owned())) else {
            return Ok(StepRecorded::Stale);
        };
        let finish = |run: &mut RunRecord| {
            if report.finished {
                run.state = RunState::ended(run.failures.len() as u64);
                run.finished_at.get_or_insert_with(Timestamp::now);
            }
            run.state
        };
        if run.steps == step {
            run.steps += 1;
            run.counts
                .entry(report.object_type.clone())
                .or_default()
                .add(&report.counts);
            if let Some(failure) = &report.failure {
                run.failures
                    .push(format!("{}: {failure}", report.object_type));
            }
            run.unstorable.extend(
                report
                    .unstorable
                    .iter()
                    .map(|reason| format!("{}: {reason}", report.object_type)),
            );
            Ok(StepRecorded::Applied { state: finish(run) })
        } else if run.steps == step + 1 {
            Ok(StepRecorded::AlreadyApplied { state: finish(run) })
        } else {
            Ok(StepRecorded::Stale)
        }
    }

    async fn page_memory(
        &self,
        tenant: &TenantId,
        page_key: &str,
    ) -> Result<Option<PageMemory>, StoreError> {
        Ok(lock(&self.pages)
            .get(&(tenant.clone(), page_key.to_owned()))
            .cloned())
    }

    async fn remember_page(
        &self,
        tenant: &TenantId,
        page_key: &str,
        memory: &PageMemory,
    ) -> Result<(), StoreError> {
        lock(&self.pages).insert((tenant.clone(), page_key.to_owned()), memory.clone());
        Ok(())
    }

    async fn remembered_windows(
        &self,
        tenant: &TenantId,
        object_type: &str,
    ) -> Result<Vec<ListedWindow>, StoreError> {
        Ok(lock(&self.windows)
            .get(&(tenant.clone(), object_type.to_owned()))
            .cloned()
            .unwrap_or_default())
    }

    async fn remember_windows(
        &self,
        tenant: &TenantId,
        object_type: &str,
        windows: &[ListedWindow],
    ) -> Result<(), StoreError> {
        lock(&self.windows).insert((tenant.clone(), object_type.to_owned()), windows.to_vec());
        Ok(())
    }

    async fn confirm_pages(
        &self,
        tenant: &TenantId,
        page_keys: &[String],
    ) -> Result<(), StoreError> {
        let mut pages = lock(&self.pages);
        for key in page_keys {
            if let Some(memory) = pages.get_mut(&(tenant.clone(), key.clone())) {
                memory.confirmed = true;
            }
        }
        Ok(())
    }

    async fn record_listed(
        &self,
        tenant: &TenantId,
        run_id: &str,
        page_key: &str,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        let object_type = page_key.split('/').next().unwrap_or_default().to_owned();
        let mut listed = lock(&self.listed);
        let buckets = listed
            .entry((tenant.clone(), run_id.to_owned(), object_type))
            .or_default();
        for (bucket, ids) in by_listed_bucket(ids) {
            buckets
                .entry(bucket)
                .or_default()
                .insert(page_key.to_owned(), ids);
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
        let listed = lock(&self.listed);
        let mut stretch = ListedStretch::default();
        let Some(buckets) =
            listed.get(&(tenant.clone(), run_id.to_owned(), object_type.to_owned()))
        else {
            return Ok(stretch);
        };
        let mut read = 0;
        for (&bucket, pages) in buckets.range(listed_bucket(after_id.saturating_add(1))..) {
            if read >= budget {
                stretch.complete_to = Some(bucket_end(bucket - 1));
                break;
            }
            for ids in pages.values() {
                read += ids.len();
                stretch.ids.extend(ids.iter().filter(|&&id| id > after_id));
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
        Ok(lock(&self.unstorable)
            .get(&(tenant.clone(), object_type.to_owned()))
            .map(|known| known.values().copied().collect())
            .unwrap_or_default())
    }

    async fn remember_unstorable(
        &self,
        tenant: &TenantId,
        object_type: &str,
        objects: &[Listed],
    ) -> Result<(), StoreError> {
        let mut unstorable = lock(&self.unstorable);
        let known = unstorable
            .entry((tenant.clone(), object_type.to_owned()))
            .or_default();
        for object in objects {
            known.insert(object.id, *object);
        }
        Ok(())
    }

    async fn record_marker(&self, tenant: &TenantId, run_id: &str) -> Result<(), StoreError> {
        lock(&self.markers).insert((tenant.clone(), run_id.to_owned()));
        Ok(())
    }

    async fn marker_seen(&self, tenant: &TenantId, run_id: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.markers).contains(&(tenant.clone(), run_id.to_owned())))
    }

    async fn record_drift(
        &self,
        tenant: &TenantId,
        object_type: &str,
        run_id: &str,
        findings: &[DriftFinding],
    ) -> Result<(), StoreError> {
        let mut drift = lock(&self.drift);
        for finding in findings {
            let key = ObjectKey {
                tenant: tenant.clone(),
                object_type: object_type.to_owned(),
                object_id: finding.id,
            };
            drift.insert(key, (finding.held, run_id.to_owned()));
        }
        Ok(())
    }

    async fn settle_drift(
        &self,
        key: &ObjectKey,
        held: Held,
    ) -> Result<Option<String>, StoreError> {
        let mut drift = lock(&self.drift);
        match drift.get(key) {
            Some((recorded, _)) if *recorded == held => {
                Ok(drift.remove(key).map(|(_, run_id)| run_id))
            }
            _ => Ok(None),
        }
    }

    async fn confirm_complete(
        &self,
        tenant: &TenantId,
        object_type: &str,
        listing_began: Timestamp,
    ) -> Result<(), StoreError> {
        let mut confirmed = lock(&self.confirmed);
        let at = confirmed
            .entry((tenant.clone(), object_type.to_owned()))
            .or_insert(listing_began);
        *at = (*at).max(listing_began);
        Ok(())
    }

    async fn confirmed_complete(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        Ok(lock(&self.confirmed)
            .iter()
            .filter(|((of, _), _)| of == tenant)
            .map(|((_, object_type), at)| (object_type.clone(), *at))
            .collect())
    }
}
