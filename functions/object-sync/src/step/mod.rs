//! One bounded step of a run: list one page (compare, fetch what is missing or newer, queue it), or
//! check one stretch of the stored copy against the type's completed listing (look each candidate
//! up by id: a tombstone for each one Tripletex no longer has, the object itself for one it has at a
//! newer version).

use std::collections::HashMap;

use domain::envelope::EventName;
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::message::QueueMessage;
use domain::ports::{
    Journal, MessageQueue, ObjectsApi, QueueError, StoreError, StoredCopy, SyncRecords,
};
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

mod list;
mod queue;
mod recheck;
mod verify;

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
    pub journal: &'a dyn Journal,
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
