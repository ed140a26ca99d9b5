//! The worker's part, for the tests and benches that play it: a queued message read as the worker
//! reads it (`record::change_from_message`) and applied to a store.

use domain::dedup::Outcome;
use domain::message::QueueMessage;
use domain::ports::ObjectStore;
use domain::record::change_from_message;
use jiff::Timestamp;

/// Applies one queued message as the worker would; panics on a message the worker could not read.
pub async fn apply_as_worker(store: &impl ObjectStore, message: &QueueMessage) -> Outcome {
    let change = change_from_message(
        Some(&message.body),
        |name| message.attribute(name),
        Timestamp::now(),
    )
    .unwrap_or_else(|error| panic!("the worker cannot read a queued message: {error}"));
    store
        .apply(&change)
        .await
        .unwrap_or_else(|error| panic!("the store refused a change: {error}"))
}
