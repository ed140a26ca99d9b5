//! What the commands read from (and, for a redrive, write to) the deployment's queues and tables.

use std::collections::{BTreeMap, HashMap};

use aws_adapters::dynamodb::{item, stored_item};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use domain::claim::claimed_body;
use domain::forget::names_object;
use domain::item::StoredValue;
use domain::keeper::{KeeperRequest, RunReport};
use domain::message::attribute;
use domain::ports::BlobStore;
use domain::sync::{StartReport, StartRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::deployment::{Deployment, DeploymentError};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{function} failed ({kind}): {message}")]
    FunctionFailed {
        function: String,
        kind: String,
        message: String,
    },
    #[error("{what} failed")]
    Call {
        what: String,
        #[source]
        source: BoxError,
    },
}

pub(crate) fn call<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> AwsError {
    let what = what.into();
    move |source| AwsError::Call {
        what,
        source: Box::new(source),
    }
}

/// The standard SDK configuration (profile, region, `AWS_ENDPOINT_URL`). For the local stack: its
/// moto endpoint, region and throwaway credentials, unless the environment names others.
pub async fn sdk_config(local_endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = local_endpoint {
        let set = |name: &str| std::env::var_os(name).is_some();
        if !set("AWS_ENDPOINT_URL") {
            loader = loader.endpoint_url(endpoint);
        }
        if !set("AWS_REGION") && !set("AWS_DEFAULT_REGION") && !set("AWS_PROFILE") {
            loader = loader.region(Region::new("eu-north-1"));
        }
        if !set("AWS_ACCESS_KEY_ID") && !set("AWS_PROFILE") {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-stack",
            ));
        }
    }
    loader.load().await
}

/// A deployed stack's outputs.
pub async fn stack_outputs(sdk: &SdkConfig, stack: &str) -> Result<Deployment, DeploymentError> {
    let client = aws_sdk_cloudformation::Client::new(sdk);
    let described = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|source| DeploymentError::Describe {
            stack: stack.to_owned(),
            source: Box::new(source),
        })?;
    let mut outputs: HashMap<String, String> = described
        .stacks()
        .iter()
        .flat_map(|s| s.outputs())
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect();
    // Tripletex's API and the fields filter are parameters of the stack, not outputs.
    let parameters = described.stacks().iter().flat_map(|s| s.parameters());
    for parameter in parameters {
        if let (Some(key), Some(value)) = (parameter.parameter_key(), parameter.parameter_value())
            && [crate::deployment::API_BASE_URL, crate::deployment::FIELDS].contains(&key)
        {
            outputs.insert(key.to_owned(), value.to_owned());
        }
    }
    Deployment::from_outputs(stack, None, None, &outputs)
}

pub type Item = HashMap<String, AttributeValue>;

pub async fn scan(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<Vec<Item>, AwsError> {
    dynamodb
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(call(format!("reading table {table}")))
}

/// One object as the copy holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredObject {
    pub key: String,
    pub version: Option<i64>,
    pub version_unknown: bool,
    pub deleted: bool,
    pub source: Option<String>,
    pub last_event: Option<String>,
    pub received_at: Option<String>,
    pub updated_at: Option<String>,
    /// The idempotency key of the last `send` delivery the worker handled.
    pub last_probe: Option<String>,
    /// The object as Tripletex sent it (none for a tombstone).
    pub value: Option<serde_json::Value>,
    /// On a tombstone of a type whose deletes remember (closeGroup): the value it held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_value: Option<serde_json::Value>,
    /// Where a value over an item's limit is kept (the payload bucket's key); `value` is read from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_claim: Option<String>,
    /// When its value was erased on request (`forget`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forgotten_at: Option<String>,
}

#[cfg(test)]
impl StoredObject {
    /// A stored object at a version, for the rules' tests.
    pub fn at(key: &str, version: i64, deleted: bool) -> Self {
        Self {
            key: key.to_owned(),
            version: Some(version),
            version_unknown: false,
            deleted,
            source: None,
            last_event: None,
            received_at: None,
            updated_at: None,
            last_probe: None,
            value: None,
            last_value: None,
            value_claim: None,
            forgotten_at: None,
        }
    }
}

pub async fn stored_object(
    dynamodb: &aws_sdk_dynamodb::Client,
    payloads: &impl BlobStore,
    table: &str,
    key: &str,
) -> Result<Option<StoredObject>, AwsError> {
    let output = dynamodb
        .get_item()
        .table_name(table)
        .key(item::KEY, AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(call(format!("reading {key}")))?;
    let Some(stored) = output.item else {
        return Ok(None);
    };
    let stored = stored_item(&stored).map_err(|source| AwsError::Call {
        what: format!("reading {key}"),
        source: Box::new(source),
    })?;
    let value_claim = match &stored.value {
        Some(StoredValue::Claimed { key, .. }) => Some(key.clone()),
        _ => None,
    };
    let text = |time: Option<jiff::Timestamp>| time.map(|time| time.to_string());
    Ok(Some(StoredObject {
        key: key.to_owned(),
        version: stored.state.version,
        version_unknown: stored.state.version_unknown,
        deleted: stored.state.deleted,
        source: stored.state.source.map(|source| source.as_str().to_owned()),
        last_event: stored.last_event,
        received_at: text(stored.received_at),
        updated_at: text(Some(stored.updated_at)),
        last_probe: stored.last_probe,
        value: resolved(payloads, stored.value.as_ref()).await?,
        last_value: resolved(payloads, stored.last_value.as_ref()).await?,
        value_claim,
        forgotten_at: text(stored.forgotten_at),
    }))
}

/// A stored value as JSON, read from the payload bucket (and checked against the digest the item
/// records) when the item holds its key.
async fn resolved(
    payloads: &impl BlobStore,
    value: Option<&StoredValue>,
) -> Result<Option<serde_json::Value>, AwsError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let what = || match value {
        StoredValue::Claimed { key, .. } => format!("reading {key} from the payload bucket"),
        StoredValue::Inline(_) => "reading the stored value".to_owned(),
    };
    let json = domain::claim::claimed_value(payloads, value)
        .await
        .map_err(call(what()))?
        .ok_or_else(|| AwsError::Call {
            what: what(),
            source: "the item points at an object the bucket does not hold".into(),
        })?;
    Ok(serde_json::from_str(&json).ok())
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

/// Up to `max` messages of a queue, each once. Listing receives them, as the console's "poll for
/// messages" does, and makes them visible again once it has them all (so a `replay` right after
/// finds them).
pub async fn list_messages(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max: usize,
) -> Result<Vec<QueuedMessage>, AwsError> {
    let mut seen: BTreeMap<String, QueuedMessage> = BTreeMap::new();
    let mut handles = Vec::new();
    while seen.len() < max {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages((max - seen.len()).min(10) as i32)
            .visibility_timeout(LISTING_VISIBILITY_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(call("receiving messages"))?;
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        let mut new = 0;
        for message in messages {
            let Some(id) = message.message_id() else {
                continue;
            };
            if seen.contains_key(id) {
                continue;
            }
            new += 1;
            handles.extend(message.receipt_handle().map(str::to_owned));
            let system = |name: MessageSystemAttributeName| {
                message.attributes().and_then(|a| a.get(&name)).cloned()
            };
            seen.insert(
                id.to_owned(),
                QueuedMessage {
                    message_id: id.to_owned(),
                    sent_at: system(MessageSystemAttributeName::SentTimestamp)
                        .and_then(|ms| ms.parse::<i64>().ok())
                        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                        .map(|at| at.to_string()),
                    receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|n| n.parse().ok()),
                    attributes: string_attributes(message),
                    body: message.body().unwrap_or_default().to_owned(),
                },
            );
        }
        if new == 0 {
            break;
        }
    }
    for handle in &handles {
        release(sqs, url, handle).await?;
    }
    Ok(seen.into_values().collect())
}

/// Deletes every message of a queue that names `key` (`forget::names_object`), with its
/// claim-checked body; the others are made visible again. How many were deleted.
pub async fn delete_messages_naming(
    sqs: &aws_sdk_sqs::Client,
    payloads: &impl BlobStore,
    url: &str,
    key: &domain::dedup::ObjectKey,
) -> Result<usize, AwsError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut kept = Vec::new();
    let mut deleted = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(TAKING_VISIBILITY_SECONDS)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(call("receiving messages"))?;
        let mut new = 0;
        for message in received.messages() {
            let (Some(id), Some(handle)) = (message.message_id(), message.receipt_handle()) else {
                continue;
            };
            if !seen.insert(id.to_owned()) {
                continue;
            }
            new += 1;
            let attributes = string_attributes(message);
            let attribute_of = |name: &str| attributes.get(name).map(String::as_str);
            let body = message.body().unwrap_or_default();
            let readable = claimed_body(payloads, body, attribute_of).await;
            let names = readable
                .as_deref()
                .is_ok_and(|text| names_object(key, attribute_of, text))
                || names_object(key, attribute_of, body);
            if !names {
                kept.push(handle.to_owned());
                continue;
            }
            if let Some(claim) = attribute_of(attribute::BODY_CLAIM) {
                payloads
                    .delete_under(claim)
                    .await
                    .map_err(call(format!("deleting {claim} from the payload bucket")))?;
            }
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(call("deleting a message that names the object"))?;
            deleted += 1;
        }
        if new == 0 {
            break;
        }
    }
    for handle in &kept {
        release(sqs, url, handle).await?;
    }
    Ok(deleted)
}

/// Moves every message of `from` back to `to` with its body and attributes; the count moved. The
/// worker's dedup makes a replay safe: an old version never overwrites a newer one.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, from: &str, to: &str) -> Result<usize, AwsError> {
    let mut moved = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(call("receiving dead letters"))?;
        if received.messages().is_empty() {
            return Ok(moved);
        }
        for message in received.messages() {
            sqs.send_message()
                .queue_url(to)
                .set_message_body(message.body().map(str::to_owned))
                .set_message_attributes(message.message_attributes().cloned())
                .send()
                .await
                .map_err(call("sending a dead letter back"))?;
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(from)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(call("deleting a redriven dead letter"))?;
            }
            moved += 1;
        }
    }
}

/// How long a message looked for by id stays hidden while the others are looked through.
const TAKING_VISIBILITY_SECONDS: i32 = 30;

/// One message taken off a queue by id: hidden from others until it is deleted or released.
#[derive(Debug, Clone)]
pub struct TakenMessage {
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub receipt_handle: String,
}

/// Finds a message by its id, receiving the queue's messages as a listing does. The others are
/// made visible again at once; the one found stays hidden for the caller.
pub async fn take_message(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    message_id: &str,
) -> Result<Option<TakenMessage>, AwsError> {
    let mut passed_by: BTreeMap<String, String> = BTreeMap::new();
    let mut found = None;
    while found.is_none() {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(TAKING_VISIBILITY_SECONDS)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(call("receiving messages"))?;
        let mut new = 0;
        for message in received.messages() {
            let (Some(id), Some(handle)) = (message.message_id(), message.receipt_handle()) else {
                continue;
            };
            if id == message_id {
                found = Some(TakenMessage {
                    body: message.body().unwrap_or_default().to_owned(),
                    attributes: string_attributes(message),
                    receipt_handle: handle.to_owned(),
                });
            } else if passed_by.insert(id.to_owned(), handle.to_owned()).is_none() {
                new += 1;
            }
        }
        if found.is_none() && new == 0 {
            break;
        }
    }
    for handle in passed_by.values() {
        release(sqs, url, handle).await?;
    }
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
        .map_err(call("making a message visible again"))?;
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
    send.send().await.map_err(call("sending the message"))?;
    sqs.delete_message()
        .queue_url(from)
        .receipt_handle(&taken.receipt_handle)
        .send()
        .await
        .map_err(call("deleting the moved message"))?;
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

/// Invokes a function and reads its answer as JSON; a function error is an error with its message.
/// Invokes one of the deployment's functions with a request of its contract and reads its answer
/// as the contract's report.
pub async fn invoke<Request: Serialize, Report: DeserializeOwned>(
    sdk: &SdkConfig,
    deployment: &Deployment,
    function: &str,
    request: &Request,
) -> Result<Report, AwsError> {
    let mut config = aws_sdk_lambda::config::Builder::from(sdk);
    if let Some(endpoint) = &deployment.lambda_endpoint {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_lambda::Client::from_conf(config.build());
    let payload =
        serde_json::to_vec(request).map_err(call(format!("writing {function}'s request")))?;
    let output = client
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .map_err(call(format!("invoking {function}")))?;
    let answer = output.payload().map_or(&b"null"[..], |blob| blob.as_ref());
    if let Some(kind) = output.function_error() {
        let failure: serde_json::Value = serde_json::from_slice(answer).unwrap_or_default();
        return Err(AwsError::FunctionFailed {
            function: function.to_owned(),
            kind: kind.to_owned(),
            message: failure["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    serde_json::from_slice(answer).map_err(call(format!("reading {function}'s answer")))
}

/// The keeper, with its request; its report.
pub async fn invoke_keeper(
    sdk: &SdkConfig,
    deployment: &Deployment,
    request: &KeeperRequest,
) -> Result<RunReport, AwsError> {
    invoke(sdk, deployment, &deployment.keeper_function, request).await
}

/// The sync, asked to start runs; the runs it started.
pub async fn invoke_sync(
    sdk: &SdkConfig,
    deployment: &Deployment,
    request: &StartRequest,
) -> Result<StartReport, AwsError> {
    invoke(sdk, deployment, &deployment.sync_function, request).await
}

/// A secret's text; `what` names it in an error (`the Tripletex credentials secret`).
pub async fn secret_text(sdk: &SdkConfig, secret: &str, what: &str) -> Result<String, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let value = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(call(format!("reading {what}")))?;
    Ok(value.secret_string().unwrap_or_default().to_owned())
}
