//! `MessageQueue` on Amazon SQS.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use tracing::instrument;

use domain::message::{QueueMessage, attribute};
use domain::ports::{MessageQueue, QueueError, SyncTasks};
use domain::sync::SyncTask;

/// SQS takes at most 10 messages per batch call, and at most 1 MiB in all; the byte bound stays
/// well below it so that attributes and encoding never tip a batch over.
const BATCH_MESSAGES: usize = 10;
const BATCH_BYTES: usize = 512 * 1024;
/// A batch entry SQS failed for a passing reason (throttling, an internal error) is sent again.
const BATCH_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

impl MessageQueue for SqsQueue {
    #[instrument(skip_all, fields(queue_url = %self.queue_url, event = message.attribute(attribute::EVENT)))]
    async fn send(&self, message: &QueueMessage) -> Result<String, QueueError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .set_message_group_id(fair_group(message));
        for (name, value) in &message.attributes {
            request = request.message_attributes(name, string_attribute(value)?);
        }
        let output = request.send().await.map_err(classify)?;
        Ok(output.message_id.unwrap_or_default())
    }

    #[instrument(skip_all, fields(queue_url = %self.queue_url, messages = messages.len()))]
    async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        for chunk in batches(messages) {
            self.send_batch(chunk).await?;
        }
        Ok(())
    }
}

impl SqsQueue {
    async fn send_batch(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        let mut entries = messages
            .iter()
            .enumerate()
            .map(|(index, message)| batch_entry(index, message))
            .collect::<Result<Vec<_>, _>>()?;
        for _ in 0..BATCH_ATTEMPTS {
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|error| QueueError::Unavailable {
                    source: Box::new(error),
                })?;
            let failed = output.failed();
            if failed.is_empty() {
                return Ok(());
            }
            if let Some(refused) = failed.iter().find(|entry| entry.sender_fault) {
                return Err(QueueError::Rejected {
                    source: format!("SQS refused a message: {}", refused.code).into(),
                });
            }
            entries.retain(|entry| failed.iter().any(|f| f.id == entry.id));
        }
        Err(QueueError::Unavailable {
            source: format!(
                "{} messages were not taken after {BATCH_ATTEMPTS} attempts",
                entries.len()
            )
            .into(),
        })
    }
}

/// Consecutive runs of messages that fit one batch call.
fn batches(messages: &[QueueMessage]) -> Vec<&[QueueMessage]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, message) in messages.iter().enumerate() {
        let size = message.size();
        if index > start && (index - start == BATCH_MESSAGES || bytes + size > BATCH_BYTES) {
            chunks.push(&messages[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        chunks.push(&messages[start..]);
    }
    chunks
}

fn batch_entry(
    index: usize,
    message: &QueueMessage,
) -> Result<SendMessageBatchRequestEntry, QueueError> {
    let mut entry = SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        .message_body(&message.body)
        .set_message_group_id(fair_group(message));
    for (name, value) in &message.attributes {
        entry = entry.message_attributes(name, string_attribute(value)?);
    }
    entry.build().map_err(rejected)
}

/// The message group of a standard queue's message: its company. SQS fair queues then keep one
/// company's backlog (a bulk import, a flood) from delaying the others' messages; ordering and
/// delivery stay those of a standard queue.
fn fair_group(message: &QueueMessage) -> Option<String> {
    message.attribute(attribute::TENANT).map(str::to_owned)
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(rejected)
}

/// A message SQS's builders refuse is refused for good.
fn rejected(source: aws_sdk_sqs::error::BuildError) -> QueueError {
    QueueError::Rejected {
        source: Box::new(source),
    }
}

/// A FIFO queue deduplicates across the whole queue: one run id is shared by every company a run
/// starts for, so the company is part of the id.
pub fn deduplication_id(task: &SyncTask) -> String {
    format!("{}:{}:{}", task.tenant, task.run_id, task.step)
}

/// `SyncTasks` on an SQS FIFO queue: the company is the message group, so one company's tasks run
/// one at a time in order while companies run side by side; company, run and step are the
/// deduplication id, so a step that ran twice sends its successor once.
#[derive(Debug, Clone)]
pub struct SqsSyncTasks {
    client: Client,
    queue_url: String,
}

impl SqsSyncTasks {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl SyncTasks for SqsSyncTasks {
    #[instrument(skip_all, fields(tenant = %task.tenant, run_id = %task.run_id, step = task.step))]
    async fn send(&self, task: &SyncTask) -> Result<(), QueueError> {
        let body = serde_json::to_string(task).map_err(|source| QueueError::Rejected {
            source: Box::new(source),
        })?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_group_id(task.tenant.as_str())
            .message_deduplication_id(deduplication_id(task))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

/// A message SQS refuses for its content will be refused again; everything else may pass.
fn classify(error: SdkError<SendMessageError>) -> QueueError {
    let permanent = error.as_service_error().is_some_and(|service| {
        service.is_invalid_message_contents()
            || service
                .meta()
                .code()
                .is_some_and(|code| code.starts_with("InvalidParameter"))
    });
    let source = Box::new(crate::sdk::AwsFailure::of(&error));
    if permanent {
        QueueError::Rejected { source }
    } else {
        QueueError::Unavailable { source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: usize) -> QueueMessage {
        QueueMessage {
            body: "x".repeat(bytes),
            attributes: Vec::new(),
        }
    }

    #[test]
    fn batches_hold_at_most_ten_messages_and_stay_under_the_byte_bound() {
        let small: Vec<_> = (0..25).map(|_| message(10)).collect();
        let sizes: Vec<_> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let large: Vec<_> = (0..4).map(|_| message(200 * 1024)).collect();
        let sizes: Vec<_> = batches(&large).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2]);
        assert!(batches(&[]).is_empty());
    }
}
