//! The seams between the domain and the outside world. Each has one real adapter (`aws-adapters`,
//! `tripletex-client`) and one in-memory fake (`test-support`).

use std::future::Future;
use std::sync::Arc;

use crate::dedup::{ObjectChange, Outcome};
use crate::error::BoxError;
use crate::ids::TenantId;
use crate::message::QueueMessage;
use crate::resync::ResyncRequest;
use crate::sync::Lookup;
use crate::sync::{FetchRequest, FetchedObject, ListedPage, ObjectTypeSpec, PageRequest};
use crate::tripletex::{Subscription, SubscriptionWrite, TripletexCredentials, TripletexError};

/// A durable queue of webhook messages.
pub trait MessageQueue: Send + Sync {
    /// Returns the queue's message id once the message is durably stored.
    fn send(
        &self,
        message: &QueueMessage,
    ) -> impl Future<Output = Result<String, QueueError>> + Send;
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

/// A shared queue is a queue: lets a test keep a handle on a fake it gave away.
impl<Q: MessageQueue> MessageQueue for std::sync::Arc<Q> {
    fn send(
        &self,
        message: &QueueMessage,
    ) -> impl Future<Output = Result<String, QueueError>> + Send {
        (**self).send(message)
    }
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

impl<S: ObjectStore> ObjectStore for std::sync::Arc<S> {
    fn apply(
        &self,
        change: &ObjectChange,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send {
        (**self).apply(change)
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

    /// One object by id, to confirm a deletion: `NotFound` on 404.
    fn lookup(
        &self,
        spec: &'static ObjectTypeSpec,
        id: i64,
    ) -> impl Future<Output = Result<Lookup, TripletexError>> + Send;
}

/// Hands out one company's Tripletex API. The same credentials get the same client back across
/// invocations, so its session is reused; new credentials (a rotation) get a new one.
pub trait TripletexCompanies: Send + Sync {
    type Api: SubscriptionsApi;

    fn company(
        &self,
        tenant: &TenantId,
        credentials: &TripletexCredentials,
    ) -> Result<Arc<Self::Api>, TripletexError>;
}

impl<T: TripletexCompanies> TripletexCompanies for Arc<T> {
    type Api = T::Api;

    fn company(
        &self,
        tenant: &TenantId,
        credentials: &TripletexCredentials,
    ) -> Result<Arc<Self::Api>, TripletexError> {
        (**self).company(tenant, credentials)
    }
}

/// Where the keeper leaves word of each subscription it re-enabled, so that a resync can fetch
/// what Tripletex did not deliver while it was disabled.
pub trait ResyncLedger: Send + Sync {
    fn record(
        &self,
        request: &ResyncRequest,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("the resync ledger could not record the request")]
pub struct LedgerError {
    #[source]
    pub source: BoxError,
}

impl<L: ResyncLedger> ResyncLedger for std::sync::Arc<L> {
    fn record(
        &self,
        request: &ResyncRequest,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send {
        (**self).record(request)
    }
}
