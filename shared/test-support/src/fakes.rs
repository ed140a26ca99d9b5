//! In-memory fakes of the AWS-side ports: each follows the rule its real adapter states (the object
//! store runs `dedup::decide`, as DynamoDB's condition expression does) and can be told to fail.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use domain::dedup::{
    ObjectChange, ObjectKey, Outcome, StoredState, TombstonePolicy, Write, apply_change,
    decide_change,
};
use domain::error::BoxError;
use domain::ids::TenantId;
use domain::message::QueueMessage;
use domain::ports::{
    BlobError, BlobStore, CompanyRegistry, LedgerError, MessageQueue, ObjectStore, PendingResyncs,
    QueueError, RegistryError, ResyncLedger, StoreError, StoredCopy,
};
use domain::registry::{CompanyState, RegisteredCompany};
use domain::resync::{PendingResync, ResyncKey, ResyncRequest, state};
use domain::sync::{RunState, StoredVersion, TakenResync};
use jiff::Timestamp;

/// A journal that keeps its lines, as the log would have them.
#[derive(Debug, Default, Clone)]
pub struct RecordingJournal(Arc<Mutex<Vec<domain::journal::Entry>>>);

impl RecordingJournal {
    pub fn entries(&self) -> Vec<domain::journal::Entry> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Each line's outcome, in the order written.
    pub fn outcomes(&self) -> Vec<&'static str> {
        self.entries()
            .iter()
            .map(domain::journal::Entry::outcome)
            .collect()
    }
}

impl domain::ports::Journal for RecordingJournal {
    fn write(&self, entry: &domain::journal::Entry) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry.clone());
    }
}

/// A queue that keeps what it is sent, or fails every send when told to.
#[derive(Debug, Default, Clone)]
pub struct RecordingQueue(Arc<RecordingQueueState>);

/// What every clone of a [`RecordingQueue`] shares: a clone is a handle on the same fake.
#[derive(Debug, Default)]
pub struct RecordingQueueState {
    sent: Mutex<Vec<QueueMessage>>,
    failing: AtomicBool,
}

impl std::ops::Deref for RecordingQueue {
    type Target = RecordingQueueState;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl RecordingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue whose every send fails as an outage would.
    pub fn unavailable() -> Self {
        let queue = Self::default();
        queue.set_unavailable(true);
        queue
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.failing.store(unavailable, Ordering::SeqCst);
    }

    /// Takes what was sent so far, as a consumer of the queue would.
    pub fn drain(&self) -> Vec<QueueMessage> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn sent(&self) -> Vec<QueueMessage> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl MessageQueue for RecordingQueue {
    async fn send(&self, message: &QueueMessage) -> Result<String, QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable {
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "queue down",
                )),
            });
        }
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        sent.push(message.clone());
        Ok(format!("recorded-{}", sent.len()))
    }
}

/// A payload bucket in memory, or one whose every call fails as an outage would when told to.
#[derive(Debug, Default, Clone)]
pub struct InMemoryBlobs(Arc<InMemoryBlobsState>);

/// What every clone of a [`InMemoryBlobs`] shares: a clone is a handle on the same fake.
#[derive(Debug, Default)]
pub struct InMemoryBlobsState {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    failing: AtomicBool,
}

impl std::ops::Deref for InMemoryBlobs {
    type Target = InMemoryBlobsState;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl InMemoryBlobs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.failing.store(unavailable, Ordering::SeqCst);
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Removes one object, as an expiry or an operator would.
    pub fn remove(&self, key: &str) {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn outage(&self) -> Result<(), BlobError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(BlobError::Unavailable {
                source: Box::new(std::io::Error::other("payload bucket down")),
            });
        }
        Ok(())
    }
}

impl BlobStore for InMemoryBlobs {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        self.outage()?;
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), bytes.to_vec());
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        self.outage()?;
        Ok(self
            .objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned())
    }

    async fn delete_under(&self, prefix: &str) -> Result<usize, BlobError> {
        self.outage()?;
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let before = objects.len();
        objects.retain(|key, _| !key.starts_with(prefix));
        Ok(before - objects.len())
    }
}

type MirrorRows = BTreeMap<(String, String, i64), domain::mirror::MirrorRow>;

/// The Postgres mirror in memory: the rows by `MirrorRow::replaces`, as the adapter's upsert states
/// it; or a database that is down, when told to. A clone shares the same rows, so a test keeps one
/// and gives the other away.
#[derive(Debug, Default, Clone)]
pub struct InMemoryMirror {
    rows: std::sync::Arc<Mutex<MirrorRows>>,
    failing: std::sync::Arc<AtomicBool>,
}

impl InMemoryMirror {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.failing.store(unavailable, Ordering::SeqCst);
    }

    pub fn rows(&self) -> Vec<domain::mirror::MirrorRow> {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

impl domain::ports::Mirror for InMemoryMirror {
    async fn apply(
        &self,
        images: &[domain::mirror::MirrorRow],
        removed: &[domain::dedup::ObjectKey],
    ) -> Result<u64, domain::ports::MirrorError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(domain::ports::MirrorError::Unavailable {
                source: Box::new(std::io::Error::other("database down")),
            });
        }
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = 0;
        for key in removed {
            let key = (
                key.tenant.to_string(),
                key.object_type.clone(),
                key.object_id,
            );
            changed += u64::from(rows.remove(&key).is_some());
        }
        for image in images {
            let key = (
                image.tenant.clone(),
                image.object_type.clone(),
                image.object_id,
            );
            if image.replaces(rows.get(&key)) {
                rows.insert(key, image.clone());
                changed += 1;
            }
        }
        Ok(changed)
    }
}

/// An object store in memory that follows the same rule as DynamoDB's condition expression, with
/// failures that can be injected per object.
#[derive(Debug, Default, Clone)]
pub struct InMemoryObjectStore(Arc<InMemoryObjectStoreState>);

/// What every clone of a [`InMemoryObjectStore`] shares: a clone is a handle on the same fake.
#[derive(Debug, Default)]
pub struct InMemoryObjectStoreState {
    items: Mutex<HashMap<String, StoredItem>>,
    /// Each tenant and type's ids in order, as the table's `byType` index keeps them.
    by_type: Mutex<BTreeMap<(TenantId, String), BTreeSet<i64>>>,
    failures: Mutex<HashMap<String, VecDeque<StoreFailure>>>,
    tombstones: TombstonePolicy,
    reads: Mutex<StoreReads>,
}

/// The reads the sync made of the copy, as the DynamoDB adapter would make them: what a bench
/// reports of the comparison's cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreReads {
    /// Objects asked for by id, and the BatchGetItem calls (100 keys each) that asks them.
    pub by_id: u64,
    pub batch_gets: u64,
    /// Items of the `byType` index read in id order (the check of the copy).
    pub index_items: u64,
}

/// What the fake keeps of an object: the rule's state plus the stored payload and change.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub state: StoredState,
    /// When the item was last written (what the sync's deletion rule compares with).
    pub updated_at: Timestamp,
    pub value: Option<String>,
    /// The payload bucket's key of a value over an item's limit (`claim::LargeValues`).
    pub value_claim: Option<String>,
    /// On a tombstone whose type's deletes remember (`TombstonePolicy`): the value it held.
    pub last_value: Option<String>,
    pub last_change: ObjectChange,
    /// The last `send` probe key the store recorded, whatever its write did.
    pub last_probe: Option<String>,
}

/// A failure the fake reports instead of writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    Throttled,
    Unavailable,
    Rejected,
    /// A bug: the write panics.
    Panic,
}

impl std::ops::Deref for InMemoryObjectStore {
    type Target = InMemoryObjectStoreState;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl InMemoryObjectStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose tombstones keep the last value as `tombstones` says.
    pub fn with_tombstone_policy(tombstones: TombstonePolicy) -> Self {
        Self(Arc::new(InMemoryObjectStoreState {
            tombstones,
            ..InMemoryObjectStoreState::default()
        }))
    }

    /// The next writes to `key` fail as listed, in order; later writes succeed again.
    pub fn fail_next(&self, key: &str, failures: impl IntoIterator<Item = StoreFailure>) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_owned())
            .or_default()
            .extend(failures);
    }

    pub fn get(&self, key: &str) -> Option<StoredItem> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every stored item, by key.
    pub fn items(&self) -> HashMap<String, StoredItem> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Back-dates an item's write time, as if it was stored before a listing began.
    pub fn set_updated_at(&self, key: &str, at: Timestamp) {
        if let Some(item) = self
            .items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(key)
        {
            item.updated_at = at;
        }
    }

    /// Deletes an item outside the worker, as a mistaken delete or a table restored to an earlier
    /// point would leave it.
    pub fn remove(&self, key: &str) -> Option<StoredItem> {
        let removed = self
            .items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)?;
        let object = &removed.last_change.key;
        if let Some(ids) = self
            .by_type
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&(object.tenant.clone(), object.object_type.clone()))
        {
            ids.remove(&object.object_id);
        }
        Some(removed)
    }

    /// Sets an item back to an older version (its value unchanged), as a table restored to an
    /// earlier point would hold it.
    pub fn roll_back(&self, key: &str, version: i64) {
        if let Some(item) = self
            .items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(key)
        {
            item.state.version = Some(version);
            item.state.payload_hash = None;
        }
    }

    /// The reads made so far, and from now on none.
    pub fn take_reads(&self) -> StoreReads {
        std::mem::take(&mut *self.reads.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn versions_of(&self, tenant: &TenantId, object_type: &str, ids: &[i64]) -> Vec<StoredVersion> {
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        ids.iter()
            .filter_map(|&object_id| {
                let key = ObjectKey {
                    tenant: tenant.clone(),
                    object_type: object_type.to_owned(),
                    object_id,
                };
                items.get(&key.to_string()).map(Self::stored_version)
            })
            .collect()
    }

    fn stored_version(item: &StoredItem) -> StoredVersion {
        StoredVersion::of(item.last_change.key.object_id, &item.state, item.updated_at)
    }
}

impl StoredCopy for InMemoryObjectStore {
    async fn versions(
        &self,
        tenant: &TenantId,
        object_type: &str,
        ids: &[i64],
    ) -> Result<Vec<StoredVersion>, StoreError> {
        {
            let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
            reads.by_id += ids.len() as u64;
            reads.batch_gets += ids.len().div_ceil(100) as u64;
        }
        Ok(self.versions_of(tenant, object_type, ids))
    }

    async fn stored_after(
        &self,
        tenant: &TenantId,
        object_type: &str,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        let ids: Vec<i64> = self
            .by_type
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant.clone(), object_type.to_owned()))
            .map(|ids| {
                ids.range(after_id.saturating_add(1)..)
                    .take(limit)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .index_items += ids.len() as u64;
        Ok(self.versions_of(tenant, object_type, &ids))
    }
}

impl ObjectStore for InMemoryObjectStore {
    async fn apply(&self, change: &ObjectChange) -> Result<Outcome, StoreError> {
        let key = change.key.to_string();
        let failure = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&key)
            .and_then(VecDeque::pop_front);
        if let Some(failure) = failure {
            let source: BoxError = Box::new(std::io::Error::other(format!("injected {failure:?}")));
            return Err(match failure {
                StoreFailure::Throttled => StoreError::Throttled { source },
                StoreFailure::Unavailable => StoreError::Unavailable { source },
                StoreFailure::Rejected => StoreError::Rejected { source },
                StoreFailure::Panic => panic!("injected panic while writing {key}"),
            });
        }
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = items.get(&key);
        let outcome = decide_change(stored.map(|item| &item.state), change);
        let last_probe = change
            .probe
            .clone()
            .or_else(|| stored.and_then(|item| item.last_probe.clone()));
        if matches!(outcome, Outcome::Accepted | Outcome::Replaced) {
            let state = apply_change(stored.map(|item| &item.state), change);
            let value = change
                .write
                .payload()
                .map(|payload| payload.json().to_owned());
            let value_claim = change
                .write
                .payload()
                .and_then(|payload| payload.claim().map(str::to_owned));
            let last_value = match &change.write {
                Write::Delete if self.tombstones.keeps_last_value(&change.key.object_type) => {
                    stored.and_then(|item| item.value.clone())
                }
                _ => None,
            };
            if stored.is_none() {
                self.by_type
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry((change.key.tenant.clone(), change.key.object_type.clone()))
                    .or_default()
                    .insert(change.key.object_id);
            }
            items.insert(
                key,
                StoredItem {
                    state,
                    updated_at: Timestamp::now(),
                    value,
                    value_claim,
                    last_value,
                    last_change: change.clone(),
                    last_probe,
                },
            );
        } else if let Some(item) = items.get_mut(&key) {
            item.last_probe = last_probe;
        }
        Ok(outcome)
    }
}

/// A resync ledger that keeps what it is given, with each request's state as the sync moves it
/// (`PENDING`, `RUNNING`, `DONE`, `FAILED`), or fails every call (or the next few of one kind) when
/// told to. Conditional on the run id as the DynamoDB ledger is: a run marks only what it holds.
#[derive(Debug, Default, Clone)]
pub struct InMemoryResyncLedger(Arc<InMemoryResyncLedgerState>);

/// What every clone of a [`InMemoryResyncLedger`] shares: a clone is a handle on the same fake.
#[derive(Debug, Default)]
pub struct InMemoryResyncLedgerState {
    requests: Mutex<Vec<LedgerEntry>>,
    /// Each company's last keeper run, as recorded.
    last_runs: Mutex<HashMap<String, domain::keeper::LastRun>>,
    /// The company registry, which the DynamoDB ledger keeps in the same table.
    companies: Mutex<BTreeMap<TenantId, RegisteredCompany>>,
    not_reached: Mutex<Vec<String>>,
    registry_failing: AtomicBool,
    failing: AtomicBool,
    /// Per kind of call: how many more pass, then how many fail.
    failing_next: Mutex<HashMap<LedgerCall, (usize, usize)>>,
}

/// The sync's calls to the ledger, for failures of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerCall {
    Claim,
    Release,
    Settle,
}

#[derive(Debug, Clone)]
struct LedgerEntry {
    request: ResyncRequest,
    state: &'static str,
    run_id: Option<String>,
    claimed_at: Option<Timestamp>,
}

/// The key the DynamoDB ledger gives a request.
pub fn resync_key(request: &ResyncRequest) -> ResyncKey {
    ResyncKey {
        key: format!("{}#{}", request.tenant, request.subscription_id),
        requested_at: request.window_to.to_string(),
    }
}

fn ledger_down(reason: &str) -> LedgerError {
    LedgerError {
        source: Box::new(std::io::Error::other(reason.to_owned())),
    }
}

impl std::ops::Deref for InMemoryResyncLedger {
    type Target = InMemoryResyncLedgerState;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl InMemoryResyncLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last keeper run recorded for a company.
    pub fn last_run(&self, tenant: &str) -> Option<domain::keeper::LastRun> {
        self.last_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned()
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.failing.store(unavailable, Ordering::SeqCst);
    }

    /// The next `times` calls of this kind fail; the others go through.
    pub fn fail_next(&self, call: LedgerCall, times: usize) {
        self.fail_calls(call, 0, times);
    }

    /// Of the next calls of this kind, the first `after` go through, then `times` fail.
    pub fn fail_calls(&self, call: LedgerCall, after: usize, times: usize) {
        self.failing_next
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(call, (after, times));
    }

    /// Makes every claim look `by` older than it is.
    pub fn backdate_claims(&self, by: jiff::SignedDuration) {
        for entry in self.entries().iter_mut() {
            entry.claimed_at = entry.claimed_at.map(|at| at - by);
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<LedgerEntry>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(&self) -> Result<(), LedgerError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(ledger_down("ledger down"));
        }
        Ok(())
    }

    fn check_call(&self, call: LedgerCall) -> Result<(), LedgerError> {
        self.check()?;
        let mut failing = self
            .failing_next
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match failing.get_mut(&call) {
            Some((passing, _)) if *passing > 0 => {
                *passing -= 1;
                Ok(())
            }
            Some((_, failing)) if *failing > 0 => {
                *failing -= 1;
                Err(ledger_down("ledger refused this call"))
            }
            _ => Ok(()),
        }
    }

    pub fn requests(&self) -> Vec<ResyncRequest> {
        self.entries().iter().map(|e| e.request.clone()).collect()
    }

    /// Holds that the keeper asked once for a resync of the subscription it re-enabled, over the
    /// eight days Tripletex may have stopped sending in (the window a re-enable calls for).
    pub fn assert_one_re_enable_asked(&self, subscription_id: i64, object_type: &str) {
        let asked: Vec<ResyncRequest> = self
            .requests()
            .into_iter()
            .filter(|r| r.reason == domain::resync::ResyncReason::ReEnabled)
            .collect();
        assert_eq!(
            asked.len(),
            1,
            "one resync asked for the re-enable: {asked:?}"
        );
        let request = &asked[0];
        assert_eq!(request.subscription_id, subscription_id);
        assert_eq!(request.object_type, object_type);
        assert_eq!(request.previous_status, "DISABLED_TOO_MANY_ERRORS");
        assert_eq!(
            request
                .window_to
                .duration_since(request.window_from)
                .as_hours(),
            8 * 24
        );
    }

    /// Each request's state and the run that took it.
    pub fn states(&self) -> Vec<(ResyncKey, &'static str, Option<String>)> {
        self.entries()
            .iter()
            .map(|e| (resync_key(&e.request), e.state, e.run_id.clone()))
            .collect()
    }
}

impl ResyncLedger for InMemoryResyncLedger {
    async fn record(&self, request: &ResyncRequest) -> Result<(), LedgerError> {
        self.check()?;
        self.entries().push(LedgerEntry {
            request: request.clone(),
            state: state::PENDING,
            run_id: None,
            claimed_at: None,
        });
        Ok(())
    }

    async fn record_run(&self, run: &domain::keeper::LastRun) -> Result<(), LedgerError> {
        self.check()?;
        self.last_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run.tenant.clone(), run.clone());
        Ok(())
    }

    async fn not_reached(&self) -> Result<Vec<String>, LedgerError> {
        self.check()?;
        Ok(self
            .not_reached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    async fn keep_not_reached(&self, tenants: &[String]) -> Result<(), LedgerError> {
        self.check()?;
        *self
            .not_reached
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = tenants.to_vec();
        Ok(())
    }
}

impl CompanyRegistry for InMemoryResyncLedger {
    async fn registered(&self) -> Result<Vec<RegisteredCompany>, RegistryError> {
        self.check_registry()?;
        Ok(self.registry().values().cloned().collect())
    }

    async fn registered_one(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<RegisteredCompany>, RegistryError> {
        self.check_registry()?;
        Ok(self.registry().get(tenant).cloned())
    }

    async fn add(&self, company: &RegisteredCompany) -> Result<bool, RegistryError> {
        self.check_registry()?;
        let mut registry = self.registry();
        if registry
            .get(&company.tenant)
            .is_some_and(|known| known.state != CompanyState::Removed)
        {
            return Ok(false);
        }
        registry.insert(company.tenant.clone(), company.clone());
        Ok(true)
    }

    async fn change_state(
        &self,
        tenant: &TenantId,
        from: CompanyState,
        to: CompanyState,
        at: Timestamp,
    ) -> Result<bool, RegistryError> {
        self.check_registry()?;
        let mut registry = self.registry();
        let Some(company) = registry.get_mut(tenant).filter(|c| c.state == from) else {
            return Ok(false);
        };
        company.state = to;
        company.changed_at = at;
        if to == CompanyState::Active {
            company.subscribed_at.get_or_insert(at);
        }
        Ok(true)
    }
}

impl InMemoryResyncLedger {
    /// The registry fails apart from the ledger (which `set_unavailable` fails).
    pub fn set_registry_unavailable(&self, unavailable: bool) {
        self.registry_failing.store(unavailable, Ordering::SeqCst);
    }

    fn check_registry(&self) -> Result<(), RegistryError> {
        if self.registry_failing.load(Ordering::SeqCst) {
            return Err(RegistryError {
                source: Box::new(ledger_down("registry down")),
            });
        }
        Ok(())
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, BTreeMap<TenantId, RegisteredCompany>> {
        self.companies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl PendingResyncs for InMemoryResyncLedger {
    async fn pending(&self) -> Result<Vec<PendingResync>, LedgerError> {
        self.check()?;
        Ok(self
            .entries()
            .iter()
            .filter(|e| e.state == state::PENDING)
            .map(|e| PendingResync {
                key: resync_key(&e.request),
                request: e.request.clone(),
            })
            .collect())
    }

    async fn taken(&self) -> Result<Vec<TakenResync>, LedgerError> {
        self.check()?;
        Ok(self
            .entries()
            .iter()
            .filter(|e| e.state == state::RUNNING)
            .filter_map(|e| {
                Some(TakenResync {
                    key: resync_key(&e.request),
                    tenant: e.request.tenant.clone(),
                    run_id: e.run_id.clone()?,
                    claimed_at: e.claimed_at,
                })
            })
            .collect())
    }

    async fn claim(&self, key: &ResyncKey, run_id: &str) -> Result<bool, LedgerError> {
        self.check_call(LedgerCall::Claim)?;
        let mut entries = self.entries();
        let Some(entry) = entries
            .iter_mut()
            .find(|e| &resync_key(&e.request) == key && e.state == state::PENDING)
        else {
            return Ok(false);
        };
        entry.state = state::RUNNING;
        entry.run_id = Some(run_id.to_owned());
        entry.claimed_at = Some(Timestamp::now());
        Ok(true)
    }

    async fn release(&self, key: &ResyncKey, run_id: &str) -> Result<(), LedgerError> {
        self.check_call(LedgerCall::Release)?;
        for entry in self.entries().iter_mut() {
            if &resync_key(&entry.request) == key && entry.run_id.as_deref() == Some(run_id) {
                entry.state = state::PENDING;
                entry.run_id = None;
                entry.claimed_at = None;
            }
        }
        Ok(())
    }

    async fn settle(
        &self,
        key: &ResyncKey,
        run_id: &str,
        run_state: RunState,
    ) -> Result<(), LedgerError> {
        self.check_call(LedgerCall::Settle)?;
        for entry in self.entries().iter_mut() {
            if &resync_key(&entry.request) == key && entry.run_id.as_deref() == Some(run_id) {
                entry.state = run_state.request_state();
            }
        }
        Ok(())
    }
}
