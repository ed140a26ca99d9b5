//! The seams between the domain and the outside world. Each has one real adapter (`aws-adapters`,
//! `tripletex-client`) and one in-memory fake (`test-support`).

use std::future::Future;
use std::sync::Arc;

use crate::dedup::{ObjectChange, Outcome};
use crate::error::BoxError;
use crate::ids::TenantId;
use crate::message::QueueMessage;
use crate::registry::{CompanyState, RegisteredCompany};
use crate::resync::{PendingResync, ResyncKey, ResyncRequest};
use crate::sync::{
    FetchRequest, FetchedObject, Listed, ListedPage, ListedStretch, ListedWindow, Lookup,
    ObjectTypeSpec, PageMemory, PageRequest, RunStart, RunState, StepRecorded, StepReport,
    StoredVersion, SyncTask, TakenResync,
};
use crate::tripletex::{Subscription, SubscriptionWrite, TripletexCredentials, TripletexError};

/// Where the receipt journal's lines go (`journal`): a line each on the function's log when
/// deployed, kept in memory by a test.
pub trait Journal: Send + Sync {
    fn write(&self, entry: &crate::journal::Entry);
}

/// A durable queue of webhook messages.
pub trait MessageQueue: Send + Sync {
    /// Returns the queue's message id once the message is durably stored.
    fn send(
        &self,
        message: &QueueMessage,
    ) -> impl Future<Output = Result<String, QueueError>> + Send;

    /// Several messages; the default sends them one by one, an adapter may batch them.
    fn send_all(
        &self,
        messages: &[QueueMessage],
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        async move {
            for message in messages {
                self.send(message).await?;
            }
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue could not be reached or refused for a reason that may pass (throttling, outage).
    #[error("the queue is unavailable")]
    Unavailable {
        #[source]
        source: BoxError,
    },
    /// The queue will never take this message as built (too large, invalid attribute).
    #[error("the queue rejected the message")]
    Rejected {
        #[source]
        source: BoxError,
    },
}

/// The stack's payload bucket: what is too large for a queue message or a table item.
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `key`; done when the object is durable.
    fn put(&self, key: &str, bytes: &[u8]) -> impl Future<Output = Result<(), BlobError>> + Send;

    /// The object under `key`, or none when there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, BlobError>> + Send;

    /// Deletes every object whose key starts with `prefix`; how many there were.
    fn delete_under(&self, prefix: &str) -> impl Future<Output = Result<usize, BlobError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Timeouts, throttling, 5xx: the same call may pass later.
    #[error("the payload bucket is unavailable")]
    Unavailable {
        #[source]
        source: BoxError,
    },
    /// Denied or malformed: the same call will fail again.
    #[error("the payload bucket refused the call")]
    Refused {
        #[source]
        source: BoxError,
    },
}

impl BlobError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// The Postgres mirror of the objects table (`domain::mirror`).
pub trait Mirror: Send + Sync {
    /// Applies a batch in one transaction: each image replaces its row only as
    /// `MirrorRow::replaces` allows, every accepted version goes into the history once, and a removed
    /// object (its company purged) leaves the mirror with its history. How many rows changed.
    fn apply(
        &self,
        images: &[crate::mirror::MirrorRow],
        removed: &[crate::dedup::ObjectKey],
    ) -> impl Future<Output = Result<u64, MirrorError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The database could not be reached, or failed for a reason that may pass.
    #[error("the mirror's database is unavailable")]
    Unavailable {
        #[source]
        source: BoxError,
    },
    /// The database refused what it was given (a constraint, a malformed value): it will again.
    #[error("the mirror's database refused the batch")]
    Refused {
        #[source]
        source: BoxError,
    },
}

/// The table of object copies. One call is one conditional write: the store itself decides, so two
/// writers racing on one object cannot both win.
pub trait ObjectStore: Send + Sync {
    fn apply(
        &self,
        change: &ObjectChange,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store asks us to slow down; the same write will pass later.
    #[error("the object store is throttling writes")]
    Throttled {
        #[source]
        source: BoxError,
    },
    /// Timeouts, 5xx, connection failures: the same write may pass later.
    #[error("the object store is unavailable")]
    Unavailable {
        #[source]
        source: BoxError,
    },
    /// The store will never take this item (e.g. over the item size limit).
    #[error("the object store refused the item")]
    Rejected {
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }
}

/// Tripletex's event-subscription API, for one company.
pub trait SubscriptionsApi: Send + Sync {
    /// Every subscription, all pages.
    fn list_subscriptions(
        &self,
    ) -> impl Future<Output = Result<Vec<Subscription>, TripletexError>> + Send;

    fn get_subscription(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Subscription, TripletexError>> + Send;

    fn create_subscription(
        &self,
        write: &SubscriptionWrite,
    ) -> impl Future<Output = Result<Subscription, TripletexError>> + Send;

    /// A partial update; with `version` set, a stale version is refused with 409.
    fn update_subscription(
        &self,
        id: i64,
        write: &SubscriptionWrite,
    ) -> impl Future<Output = Result<Subscription, TripletexError>> + Send;

    /// Tripletex answers 404 (code 6000) for a subscription that is already gone.
    fn delete_subscription(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<(), TripletexError>> + Send;
}

/// Tripletex's object endpoints, for one company: what a sync lists and fetches.
pub trait ObjectsApi: Send + Sync {
    /// One page of a listing, or `Unchanged` when the request's digest still holds (304).
    fn list_page(
        &self,
        page: &PageRequest,
    ) -> impl Future<Output = Result<ListedPage, TripletexError>> + Send;

    /// The objects with these ids, in full (one list call with the endpoint's id filter).
    fn fetch(
        &self,
        request: &FetchRequest<'_>,
    ) -> impl Future<Output = Result<Vec<FetchedObject>, TripletexError>> + Send;

    /// One object by id, in full with `fields` (a stored object the listing did not show, or one a
    /// fetch left out): `NotFound` only on 404 with Tripletex's code 6000.
    fn lookup(
        &self,
        spec: &'static ObjectTypeSpec,
        id: i64,
        fields: &str,
    ) -> impl Future<Output = Result<Lookup, TripletexError>> + Send;

    /// Calls made so far, retries included, and how many were answered 429.
    fn usage(&self) -> ApiUsage;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiUsage {
    pub requests: u64,
    pub rate_limited: u64,
}

impl ApiUsage {
    pub fn since(self, earlier: ApiUsage) -> ApiUsage {
        ApiUsage {
            requests: self.requests.saturating_sub(earlier.requests),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
        }
    }
}

/// Hands out one company's Tripletex API. The same credentials get the same client back across
/// invocations, so its session is reused; new credentials (a rotation) get a new one.
pub trait TripletexCompanies: Send + Sync {
    type Api: SubscriptionsApi + ObjectsApi;

    fn company(
        &self,
        tenant: &TenantId,
        credentials: &TripletexCredentials,
    ) -> Result<Arc<Self::Api>, TripletexError>;
}

/// Where the keeper leaves word of each subscription it re-enabled, so that a resync can fetch
/// what Tripletex did not deliver while it was disabled, and of its last run for each company.
pub trait ResyncLedger: Send + Sync {
    fn record(
        &self,
        request: &ResyncRequest,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// Replaces the company's last run.
    fn record_run(
        &self,
        run: &crate::keeper::LastRun,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The companies the keeper's last run did not reach before its deadline: the next run
    /// handles them first.
    fn not_reached(&self) -> impl Future<Output = Result<Vec<String>, LedgerError>> + Send;

    /// Replaces the list of companies not reached.
    fn keep_not_reached(
        &self,
        tenants: &[String],
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("the resync ledger could not record the request")]
pub struct LedgerError {
    #[source]
    pub source: BoxError,
}

/// What the receiver asks before it queues a webhook, and the worker before it writes: the
/// tenant's state in the company registry (none for a company the registry does not hold).
/// Object-safe, so that a handler holds whichever registry it was given.
pub trait TenantStates: Send + Sync {
    fn state_of<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<CompanyState>> + Send + 'a>>;
}

/// The company registry (`crate::registry`): read by the keeper, the sync and the receiver, changed
/// by the operator's CLI and by the keeper.
pub trait CompanyRegistry: Send + Sync {
    /// Every registered company, removed ones included, in tenant order.
    fn registered(
        &self,
    ) -> impl Future<Output = Result<Vec<RegisteredCompany>, RegistryError>> + Send;

    fn registered_one(
        &self,
        tenant: &TenantId,
    ) -> impl Future<Output = Result<Option<RegisteredCompany>, RegistryError>> + Send;

    /// Writes a company added, or added again after its removal; false (nothing written) if the
    /// registry has it in any other state.
    fn add(
        &self,
        company: &RegisteredCompany,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Moves a company to `to` only if it is still `from` (`registry::next_state` decides which
    /// moves exist); false if it was not. Moving to `Active` records when it was subscribed.
    fn change_state(
        &self,
        tenant: &TenantId,
        from: CompanyState,
        to: CompanyState,
        at: jiff::Timestamp,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("the company registry could not be read or written")]
pub struct RegistryError {
    #[source]
    pub source: BoxError,
}

/// The sync's side of the resync ledger: the requests not yet answered, and their answers.
pub trait PendingResyncs: Send + Sync {
    /// Requests still `PENDING`, oldest first.
    fn pending(&self) -> impl Future<Output = Result<Vec<PendingResync>, LedgerError>> + Send;

    /// Requests a run has taken (`RUNNING`), with its run id: the ones to check for a run that
    /// never started or never marked them.
    fn taken(&self) -> impl Future<Output = Result<Vec<TakenResync>, LedgerError>> + Send;

    /// Marks a request taken by a run; false when another run took it first.
    fn claim(
        &self,
        key: &ResyncKey,
        run_id: &str,
    ) -> impl Future<Output = Result<bool, LedgerError>> + Send;

    /// Gives a request back (`PENDING`) when the run that took it could not start.
    fn release(
        &self,
        key: &ResyncKey,
        run_id: &str,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// Records how the run that took the request ended; nothing when another run has it now.
    fn settle(
        &self,
        key: &ResyncKey,
        run_id: &str,
        state: RunState,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// The sync queue: one run is one chain of tasks, one company's tasks one at a time.
pub trait SyncTasks: Send + Sync {
    /// Sending a task twice (a step that ran again after a crash) delivers it once.
    fn send(&self, task: &SyncTask) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The stored copy as the sync reads it.
pub trait StoredCopy: Send + Sync {
    /// The stored versions of these objects (absent ones are left out).
    fn versions(
        &self,
        tenant: &TenantId,
        object_type: &str,
        ids: &[i64],
    ) -> impl Future<Output = Result<Vec<StoredVersion>, StoreError>> + Send;

    /// Up to `limit` stored objects of a type with ids above `after_id`, in id order.
    fn stored_after(
        &self,
        tenant: &TenantId,
        object_type: &str,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredVersion>, StoreError>> + Send;
}

/// Run records and what the listings remember between steps and between runs.
pub trait SyncRecords: Send + Sync {
    fn start_run(&self, run: &RunStart) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The state of a run's record; none when there is no such run.
    fn run_state(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<RunState>, StoreError>> + Send;

    /// Counts step `step` of a run once, however often it is delivered.
    fn record_step(
        &self,
        tenant: &TenantId,
        run_id: &str,
        step: u32,
        report: &StepReport,
    ) -> impl Future<Output = Result<StepRecorded, StoreError>> + Send;

    fn page_memory(
        &self,
        tenant: &TenantId,
        page_key: &str,
    ) -> impl Future<Output = Result<Option<PageMemory>, StoreError>> + Send;

    fn remember_page(
        &self,
        tenant: &TenantId,
        page_key: &str,
        memory: &PageMemory,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The date windows a type's last complete listing used (none when not known).
    fn remembered_windows(
        &self,
        tenant: &TenantId,
        object_type: &str,
    ) -> impl Future<Output = Result<Vec<ListedWindow>, StoreError>> + Send;

    fn remember_windows(
        &self,
        tenant: &TenantId,
        object_type: &str,
        windows: &[ListedWindow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks remembered pages confirmed once their objects are queued.
    fn confirm_pages(
        &self,
        tenant: &TenantId,
        page_keys: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The ids one page of this run listed, for the check of the stored copy after the listing.
    fn record_listed(
        &self,
        tenant: &TenantId,
        run_id: &str,
        page_key: &str,
        ids: &[i64],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The ids this run listed of a type above `after_id`, over all its partitions and windows, in
    /// id order: whole buckets (`sync::listed_bucket`) until at least `budget` ids are read, so that
    /// one step holds a bounded share however large the type.
    fn listed_after(
        &self,
        tenant: &TenantId,
        run_id: &str,
        object_type: &str,
        after_id: i64,
        budget: usize,
    ) -> impl Future<Output = Result<ListedStretch, StoreError>> + Send;

    /// Objects of a type a fetch found the worker can never store, at the version fetched.
    fn known_unstorable(
        &self,
        tenant: &TenantId,
        object_type: &str,
    ) -> impl Future<Output = Result<Vec<Listed>, StoreError>> + Send;

    /// Adds to the known unstorable objects (an id's newer entry replaces its older one).
    fn remember_unstorable(
        &self,
        tenant: &TenantId,
        object_type: &str,
        objects: &[Listed],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The worker reached a run's marker on the webhook queue (`sync::marker`).
    fn record_marker(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the worker has reached the run's marker.
    fn marker_seen(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// What a reconciliation's recheck counted as drift, kept for `drift::FINDING_KEPT_FOR` in case
    /// its webhook still comes.
    fn record_drift(
        &self,
        tenant: &TenantId,
        object_type: &str,
        run_id: &str,
        findings: &[crate::sync::drift::DriftFinding],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Settles the object's drift finding if it brought the copy to `held`: the run that counted
    /// it, once; none when there is no such finding (or it was settled already).
    fn settle_drift(
        &self,
        key: &crate::dedup::ObjectKey,
        held: crate::sync::drift::Held,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// A type's copy was proven complete by a listing that began at `listing_began`.
    fn confirm_complete(
        &self,
        tenant: &TenantId,
        object_type: &str,
        listing_began: jiff::Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// When each type of a company was last confirmed complete (the listing's start).
    fn confirmed_complete(
        &self,
        tenant: &TenantId,
    ) -> impl Future<Output = Result<Vec<(String, jiff::Timestamp)>, StoreError>> + Send;
}
