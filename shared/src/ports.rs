//! The seams between the domain and the outside world. Each has one AWS adapter (in `adapters`) and
//! one in-memory fake (in `testing`).

use std::error::Error as StdError;
use std::future::Future;

use crate::message::WebhookMessage;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A durable queue of webhook messages.
pub trait MessageQueue: Send + Sync {
    /// Returns the queue's message id once the message is durably stored.
    fn send(
        &self,
        message: &WebhookMessage,
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
        message: &WebhookMessage,
    ) -> impl Future<Output = Result<String, QueueError>> + Send {
        (**self).send(message)
    }
}
