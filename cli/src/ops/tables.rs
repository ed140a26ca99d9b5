//! The deployment's tables as the commands read them: a scan, and one object of the copy.

use std::collections::HashMap;

use aws_adapters::dynamodb::{item, stored_item};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::item::StoredValue;
use domain::ports::BlobStore;
use serde::Serialize;

use super::{AwsError, call, sdk_call};

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
        .map_err(sdk_call(format!("reading table {table}")))
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
    /// The request that made the stored version (`log --request` follows it).
    pub last_request: Option<String>,
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
            last_request: None,
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
        .map_err(sdk_call(format!("reading {key}")))?;
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
        last_request: stored.last_request,
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
