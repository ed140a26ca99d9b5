//! Turns an SQS batch into one conditional write per record, run concurrently, and reports the
//! records to retry.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt as _;
use futures_util::stream;
use jiff::Timestamp;
use shared::dedup::{Outcome, Write};
use shared::message::{QueueMessage, attribute};
use shared::ports::{MessageQueue, ObjectStore};
use shared::record::{BatchCounts, change_from_message};
use shared::telemetry::{emit_metrics, error_chain};
use tracing::{debug, error, info, warn};

const FUNCTION_NAME: &str = "webhook-worker";

pub struct Worker<S, Q> {
    store: S,
    quarantine: Q,
    concurrency: usize,
}

/// What became of one record.
#[derive(Debug)]
enum Handled {
    Applied {
        outcome: Outcome,
        write: Write,
    },
    Quarantined,
    /// Failed for a reason that may pass: the record is reported and comes back from the queue.
    Retry,
}

impl<S: ObjectStore, Q: MessageQueue> Worker<S, Q> {
    pub fn new(store: S, quarantine: Q, concurrency: usize) -> Self {
        Self {
            store,
            quarantine,
            concurrency: concurrency.max(1),
        }
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let size = event.records.len();
        let handled: Vec<(Option<String>, Handled)> =
            stream::iter(&event.records)
                .map(|record| async move {
                    (record.message_id.clone(), self.handle_record(record).await)
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;

        let mut counts = BatchCounts::default();
        let mut response = SqsBatchResponse::default();
        for (message_id, handled) in handled {
            match handled {
                Handled::Applied { outcome, write } => counts.count_outcome(outcome, &write),
                Handled::Quarantined => counts.quarantined += 1,
                Handled::Retry => {
                    counts.failed += 1;
                    let mut failure = BatchItemFailure::default();
                    // SQS always sends an id; should one be missing, the empty identifier makes
                    // Lambda retry the whole batch rather than drop the record.
                    failure.item_identifier = message_id.unwrap_or_default();
                    response.batch_item_failures.push(failure);
                }
            }
        }
        info!(
            records = size,
            accepted = counts.accepted,
            duplicate = counts.duplicate,
            stale = counts.stale,
            after_delete = counts.after_delete,
            unversioned = counts.unversioned,
            quarantined = counts.quarantined,
            failed = counts.failed,
            "batch done"
        );
        emit_metrics(FUNCTION_NAME, &counts.metrics());
        response
    }

    async fn handle_record(&self, record: &SqsMessage) -> Handled {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let change = change_from_message(
            record.body.as_deref(),
            |name| string_attribute(record, name),
            Timestamp::now(),
        );
        let change = match change {
            Ok(change) => change,
            Err(reason) => return self.quarantine(record, &reason.to_string()).await,
        };
        match self.store.apply(&change).await {
            Ok(outcome) => {
                debug!(message_id, key = %change.key, event = %change.event, version = change.write.version(), outcome = outcome.as_str(), "record applied");
                Handled::Applied {
                    outcome,
                    write: change.write,
                }
            }
            Err(error) if error.is_transient() => {
                warn!(message_id, key = %change.key, error = %error_chain(&error), "record will be retried");
                Handled::Retry
            }
            Err(error) => self.quarantine(record, &error_chain(&error)).await,
        }
    }

    /// Keeps a record that can never apply, with its reason, and acknowledges it: retrying it until
    /// the dead-letter queue would only delay the same answer.
    async fn quarantine(&self, record: &SqsMessage, reason: &str) -> Handled {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let message = QueueMessage {
            body: record.body.clone().unwrap_or_default(),
            attributes: record
                .message_attributes
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.string_value.clone()?)))
                .collect(),
        }
        .with_attribute(
            attribute::QUARANTINE_REASON,
            shared::message::attribute_text(reason),
        );
        match self.quarantine.send(&message).await {
            Ok(_) => {
                warn!(message_id, reason, "record quarantined");
                Handled::Quarantined
            }
            Err(error) => {
                error!(message_id, reason, error = %error_chain(&error), "record could not be quarantined; will be retried");
                Handled::Retry
            }
        }
    }
}

fn string_attribute<'a>(record: &'a SqsMessage, name: &str) -> Option<&'a str> {
    record.message_attributes.get(name)?.string_value.as_deref()
}
