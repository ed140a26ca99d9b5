//! `MessageQueue` on Amazon SQS.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::types::MessageAttributeValue;
use tracing::instrument;

use domain::message::{QueueMessage, attribute};
use domain::ports::{MessageQueue, QueueError};

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
            .message_body(&message.body);
        for (name, value) in &message.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|source| QueueError::Rejected {
                    source: Box::new(source),
                })?;
            request = request.message_attributes(name, value);
        }
        let output = request.send().await.map_err(classify)?;
        Ok(output.message_id.unwrap_or_default())
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
    let source = Box::new(error);
    if permanent {
        QueueError::Rejected { source }
    } else {
        QueueError::Unavailable { source }
    }
}
