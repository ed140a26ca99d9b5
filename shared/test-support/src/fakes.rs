//! In-memory fakes of the AWS-side ports: each follows the rule its real adapter states (the object
//! store runs `dedup::decide`, as DynamoDB's condition expression does) and can be told to fail.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use domain::dedup::{ObjectChange, Outcome, StoredState, Write, apply, decide};
use domain::error::BoxError;
use domain::message::QueueMessage;
use domain::ports::{LedgerError, MessageQueue, ObjectStore, QueueError, ResyncLedger, StoreError};
use domain::resync::ResyncRequest;

/// A queue that keeps what it is sent, or fails every send when told to.
#[derive(Debug, Default)]
pub struct RecordingQueue {
    sent: Mutex<Vec<QueueMessage>>,
    failing: AtomicBool,
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

/// An object store in memory that follows the same rule as DynamoDB's condition expression, with
/// failures that can be injected per object.
#[derive(Debug, Default)]
pub struct InMemoryObjectStore {
    items: Mutex<HashMap<String, StoredItem>>,
    failures: Mutex<HashMap<String, VecDeque<StoreFailure>>>,
}

/// What the fake keeps of an object: the rule's state plus the stored payload and change.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub state: StoredState,
    pub value: Option<String>,
    pub last_change: ObjectChange,
}

/// A failure the fake reports instead of writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    Throttled,
    Unavailable,
    Rejected,
}

impl InMemoryObjectStore {
    pub fn new() -> Self {
        Self::default()
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
            });
        }
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = items.get(&key);
        let outcome = decide(stored.map(|item| &item.state), &change.write);
        if outcome == Outcome::Accepted {
            let state = apply(stored.map(|item| &item.state), &change.write);
            let value = match &change.write {
                Write::Versioned { payload, .. } | Write::Unversioned { payload } => {
                    Some(payload.json().to_owned())
                }
                Write::Delete => None,
            };
            items.insert(
                key,
                StoredItem {
                    state,
                    value,
                    last_change: change.clone(),
                },
            );
        }
        Ok(outcome)
    }
}

/// A resync ledger that keeps what it is given, or fails every record when told to.
#[derive(Debug, Default)]
pub struct InMemoryResyncLedger {
    requests: Mutex<Vec<ResyncRequest>>,
    failing: AtomicBool,
}

impl InMemoryResyncLedger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.failing.store(unavailable, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<ResyncRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ResyncLedger for InMemoryResyncLedger {
    async fn record(&self, request: &ResyncRequest) -> Result<(), LedgerError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(LedgerError {
                source: Box::new(std::io::Error::other("ledger down")),
            });
        }
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.clone());
        Ok(())
    }
}
