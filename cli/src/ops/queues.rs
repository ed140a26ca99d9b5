//! The deployment's queues: their depths, and their messages listed, taken, moved or deleted.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use domain::claim::claimed_body;
use domain::forget::names_object;
use domain::message::attribute;
use domain::ports::BlobStore;
use serde::Serialize;

use super::{AwsError, call, sdk_call};

/// What a queue is for: its depth means something else for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum QueueRole {
    /// Webhooks on their way to the worker: depth is backlog.
    Webhooks,
    /// Sync tasks: depth is a run in progress.
    SyncTasks,
    /// Messages that failed every delivery: each needs a person.
    DeadLetters,
    /// Authenticated bodies that were not envelopes: each needs a person.
    Quarantine,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    pub name: &'static str,
    pub role: QueueRole,
    pub url: String,
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted (being worked on, or waiting for their visibility timeout).
    pub in_flight: u64,
    /// CloudWatch's `ApproximateAgeOfOldestMessage`, its latest minute; none when not known.
    pub oldest_message_age_seconds: Option<u64>,
}

impl QueueStatus {
    pub fn depth(&self) -> u64 {
        self.visible + self.in_flight
    }
}

pub async fn queue_status(
    sqs: &aws_sdk_sqs::Client,
    name: &'static str,
    role: QueueRole,
    url: &str,
) -> Result<QueueStatus, AwsError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(sdk_call(format!("reading the {name}'s depth")))?;
    let count = |attribute: QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(&attribute))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(QueueStatus {
        name,
        role,
        url: url.to_owned(),
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        oldest_message_age_seconds: None,
    })
}

/// The bodies of claim-checked messages, read from the payload bucket, so that a listing shows
/// what was sent; a body that can no longer be read says why.
pub async fn resolve_claims(payloads: &impl BlobStore, messages: &mut [QueuedMessage]) {
    for message in messages {
        let body = claimed_body(payloads, &message.body, |name| {
            message.attributes.get(name).map(String::as_str)
        })
        .await;
        message.body = match body {
            Ok(body) => body.into_owned(),
            Err(error) => format!("({})", domain::error::error_chain(&error)),
        };
    }
}

/// A message as `dlq` and `quarantine` list it: its named attributes (the queue never carries a
/// header or a secret) and its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedMessage {
    pub message_id: String,
    pub sent_at: Option<String>,
    pub receive_count: Option<u64>,
    pub attributes: BTreeMap<String, String>,
    pub body: String,
}

/// How long a listed message stays hidden while the listing goes on (it is released at the end).
const LISTING_VISIBILITY_SECONDS: i32 = 5;

/// How long a message looked at stays hidden while the others are looked through.
const TAKING_VISIBILITY_SECONDS: i32 = 30;

/// What a walk through a queue does with a message it is shown.
pub enum Visit {
    /// Leave it: visible again when the walk ends.
    Leave,
    /// Delete it from the queue now.
    Delete,
    /// Leave it, and end the walk: it has what it needs.
    Enough,
    /// Keep it hidden for the caller (its receipt handle is theirs now), and end the walk.
    Take,
}

/// Receives a queue's messages, as the console's "poll for messages" does, and shows each to
/// `visit` once; the messages left are made visible again when the walk ends. It ends when the
/// queue has nothing more to show (every message received was seen already) or `visit` says so.
pub async fn walk_queue(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    visibility_seconds: i32,
    mut visit: impl AsyncFnMut(&aws_sdk_sqs::types::Message) -> Result<Visit, AwsError>,
) -> Result<(), AwsError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut left = Vec::new();
    let mut ended: Option<Result<(), AwsError>> = None;
    while ended.is_none() {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sdk_call("receiving messages"));
        let received = match received {
            Ok(received) => received,
            Err(error) => {
                ended = Some(Err(error));
                break;
            }
        };
        let mut new = 0;
        for message in received.messages() {
            let (Some(id), Some(handle)) = (message.message_id(), message.receipt_handle()) else {
                continue;
            };
            // Once the walk has ended, the rest of the batch it received is only given back.
            if ended.is_some() || !seen.insert(id.to_owned()) {
                left.push(handle.to_owned());
                continue;
            }
            new += 1;
            match visit(message).await {
                Ok(Visit::Leave) => left.push(handle.to_owned()),
                Ok(Visit::Delete) => {
                    let deleted = sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                    if let Err(error) = deleted {
                        ended = Some(Err(sdk_call("deleting a message")(error)));
                    }
                }
                Ok(Visit::Enough) => {
                    left.push(handle.to_owned());
                    ended = Some(Ok(()));
                }
                Ok(Visit::Take) => ended = Some(Ok(())),
                Err(error) => {
                    left.push(handle.to_owned());
                    ended = Some(Err(error));
                }
            }
        }
        if new == 0 && ended.is_none() {
            ended = Some(Ok(()));
        }
    }
    // What was received and left is visible again, whatever ended the walk.
    for handle in &left {
        release(sqs, url, handle).await?;
    }
    ended.unwrap_or(Ok(()))
}

/// Up to `max` messages of a queue, each once; all left in the queue (so a `replay` right after
/// finds them).
pub async fn list_messages(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max: usize,
) -> Result<Vec<QueuedMessage>, AwsError> {
    let mut listed = Vec::new();
    if max == 0 {
        return Ok(listed);
    }
    walk_queue(sqs, url, LISTING_VISIBILITY_SECONDS, async |message| {
        let system = |name: MessageSystemAttributeName| {
            message.attributes().and_then(|a| a.get(&name)).cloned()
        };
        listed.push(QueuedMessage {
            message_id: message.message_id().unwrap_or_default().to_owned(),
            sent_at: system(MessageSystemAttributeName::SentTimestamp)
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(|at| at.to_string()),
            receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|n| n.parse().ok()),
            attributes: string_attributes(message),
            body: message.body().unwrap_or_default().to_owned(),
        });
        Ok(if listed.len() >= max {
            Visit::Enough
        } else {
            Visit::Leave
        })
    })
    .await?;
    listed.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    Ok(listed)
}

/// Deletes every message of a queue that names `key` (`forget::names_object`), with its
/// claim-checked body; the others are left. How many were deleted.
pub async fn delete_messages_naming(
    sqs: &aws_sdk_sqs::Client,
    payloads: &impl BlobStore,
    url: &str,
    key: &domain::dedup::ObjectKey,
) -> Result<usize, AwsError> {
    let mut deleted = 0;
    walk_queue(sqs, url, TAKING_VISIBILITY_SECONDS, async |message| {
        let attributes = string_attributes(message);
        let attribute_of = |name: &str| attributes.get(name).map(String::as_str);
        let body = message.body().unwrap_or_default();
        let readable = claimed_body(payloads, body, attribute_of).await;
        let names = readable
            .as_deref()
            .is_ok_and(|text| names_object(key, attribute_of, text))
            || names_object(key, attribute_of, body);
        if !names {
            return Ok(Visit::Leave);
        }
        if let Some(claim) = attribute_of(attribute::BODY_CLAIM) {
            payloads
                .delete_under(claim)
                .await
                .map_err(call(format!("deleting {claim} from the payload bucket")))?;
        }
        deleted += 1;
        Ok(Visit::Delete)
    })
    .await?;
    Ok(deleted)
}

/// Moves every message of `from` back to `to` with its body and attributes; the count moved. The
/// worker's dedup makes a replay safe: an old version never overwrites a newer one.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, from: &str, to: &str) -> Result<usize, AwsError> {
    let mut moved = 0;
    walk_queue(sqs, from, TAKING_VISIBILITY_SECONDS, async |message| {
        sqs.send_message()
            .queue_url(to)
            .set_message_body(message.body().map(str::to_owned))
            .set_message_attributes(message.message_attributes().cloned())
            .send()
            .await
            .map_err(sdk_call("sending a dead letter back"))?;
        moved += 1;
        Ok(Visit::Delete)
    })
    .await?;
    Ok(moved)
}

/// One message taken off a queue by id: hidden from others until it is deleted or released.
#[derive(Debug, Clone)]
pub struct TakenMessage {
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub receipt_handle: String,
}

/// Finds a message by its id, walking the queue. The others are left at once; the one found stays
/// hidden for the caller.
pub async fn take_message(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    message_id: &str,
) -> Result<Option<TakenMessage>, AwsError> {
    let mut found = None;
    walk_queue(sqs, url, TAKING_VISIBILITY_SECONDS, async |message| {
        if message.message_id() != Some(message_id) {
            return Ok(Visit::Leave);
        }
        found = Some(TakenMessage {
            body: message.body().unwrap_or_default().to_owned(),
            attributes: string_attributes(message),
            receipt_handle: message.receipt_handle().unwrap_or_default().to_owned(),
        });
        Ok(Visit::Take)
    })
    .await?;
    Ok(found)
}

/// Makes a taken message visible again now.
pub async fn release(sqs: &aws_sdk_sqs::Client, url: &str, handle: &str) -> Result<(), AwsError> {
    sqs.change_message_visibility()
        .queue_url(url)
        .receipt_handle(handle)
        .visibility_timeout(0)
        .send()
        .await
        .map_err(sdk_call("making a message visible again"))?;
    Ok(())
}

/// Sends a message with string attributes, then deletes the taken one it came from: a move.
pub async fn move_message(
    sqs: &aws_sdk_sqs::Client,
    from: &str,
    taken: &TakenMessage,
    to: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let mut send = sqs.send_message().queue_url(to).message_body(&taken.body);
    for (name, value) in attributes {
        let value = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(call("building a message attribute"))?;
        send = send.message_attributes(name, value);
    }
    send.send().await.map_err(sdk_call("sending the message"))?;
    sqs.delete_message()
        .queue_url(from)
        .receipt_handle(&taken.receipt_handle)
        .send()
        .await
        .map_err(sdk_call("deleting the moved message"))?;
    Ok(())
}

fn string_attributes(message: &aws_sdk_sqs::types::Message) -> BTreeMap<String, String> {
    message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.string_value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
