//! Claim checks: what is too large for SQS (256 KiB a message) or for a DynamoDB item (400 KB)
//! is kept in the stack's payload bucket, and the message or the item carries its key instead.
//! Keys are content-addressed, and a key is handed on only after its object is stored: a message
//! or an item never points at a missing object.

use std::borrow::Cow;

use crate::dedup::{ObjectChange, ObjectKey, Outcome, Write, sha256_hex};
use crate::error::BoxError;
use crate::ids::TenantId;
use crate::item::StoredValue;
use crate::message::{MAX_QUEUE_MESSAGE_BYTES, QueueMessage, attribute};
use crate::mirror::MirrorRow;
use crate::ports::{BlobError, BlobStore, MessageQueue, ObjectStore, QueueError, StoreError};

/// The largest message sent as it is; SQS's limit counts attributes too, and a claim check's
/// attributes are what a larger message is left with.
pub const QUEUE_MESSAGE_LIMIT: usize = MAX_QUEUE_MESSAGE_BYTES - 6 * 1024;

/// The largest value kept on the item itself: DynamoDB takes 400 KB an item, names and every
/// other attribute included (`lastValue` never sits beside `value`).
pub const ITEM_VALUE_LIMIT: usize = 350_000;

/// The largest message the bundle carries at all (by claim check): a worker holds a batch of them
/// in memory. Well above Lambda's 6 MB request, for what the sync fetches.
pub const LARGEST_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Where claim-checked message bodies live; the bucket expires them after the queues' retention.
pub const MESSAGES_PREFIX: &str = "messages/";
/// Where large values live, under their object; kept until the object is forgotten.
pub const VALUES_PREFIX: &str = "values/";

pub use crate::item::{CLAIM_BYTES, CLAIM_KEY, CLAIM_SHA256};

/// The key of a claim-checked message body: under the object it names (so that `forget` finds it),
/// or under its company alone when its attributes name none (a quarantined body), then its digest,
/// so that a redelivery stores nothing new.
pub fn message_key(message: &QueueMessage, digest: &str) -> String {
    let tenant = message
        .attribute(attribute::TENANT)
        .filter(|tenant| TenantId::parse(tenant).is_ok());
    let object = message
        .attribute(attribute::EVENT)
        .and_then(|event| event.split_once('.'))
        .map(|(object, _)| object)
        .filter(|object| !object.is_empty() && object.chars().all(|c| c.is_ascii_alphanumeric()));
    let id = message
        .attribute(attribute::OBJECT_ID)
        .and_then(|id| id.parse::<i64>().ok());
    match (tenant, object, id) {
        (Some(tenant), Some(object), Some(id)) => {
            format!("{MESSAGES_PREFIX}{tenant}/{object}/{id}/{digest}")
        }
        (Some(tenant), _, _) => format!("{MESSAGES_PREFIX}{tenant}/{digest}"),
        _ => format!("{MESSAGES_PREFIX}{digest}"),
    }
}

/// Where the claim-checked bodies of messages naming an object are kept.
pub fn messages_prefix(key: &ObjectKey) -> String {
    format!(
        "{MESSAGES_PREFIX}{}/{}/{}/",
        key.tenant, key.object_type, key.object_id
    )
}

/// Every large value an object ever had sits under this prefix, so forgetting it is one listing.
pub fn values_prefix(key: &ObjectKey) -> String {
    format!(
        "{VALUES_PREFIX}{}/{}/{}/",
        key.tenant, key.object_type, key.object_id
    )
}

/// The key of one value of an object: its content hash under the object's prefix.
pub fn value_key(key: &ObjectKey, hash: &str) -> String {
    format!("{}{hash}", values_prefix(key))
}

/// The payload bucket of a deployment without one (configured before it had one, or a test that
/// needs none): holds nothing, and refuses what would need it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPayloadBucket;

#[derive(Debug, thiserror::Error)]
#[error("no payload bucket is configured (PAYLOAD_BUCKET)")]
struct NotConfigured;

impl BlobStore for NoPayloadBucket {
    async fn put(&self, _key: &str, _bytes: &[u8]) -> Result<(), BlobError> {
        Err(BlobError::Refused {
            source: Box::new(NotConfigured),
        })
    }

    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        Err(BlobError::Refused {
            source: Box::new(NotConfigured),
        })
    }

    async fn delete_under(&self, _prefix: &str) -> Result<usize, BlobError> {
        Ok(0)
    }
}

/// A bucket that may not be configured: `None` is `NoPayloadBucket`.
impl<B: BlobStore> BlobStore for Option<B> {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        match self {
            Some(blobs) => blobs.put(key, bytes).await,
            None => NoPayloadBucket.put(key, bytes).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        match self {
            Some(blobs) => blobs.get(key).await,
            None => NoPayloadBucket.get(key).await,
        }
    }

    async fn delete_under(&self, prefix: &str) -> Result<usize, BlobError> {
        match self {
            Some(blobs) => blobs.delete_under(prefix).await,
            None => Ok(0),
        }
    }
}

/// A message as the queue can take it: as it is when it fits, else its body stored under its
/// digest and the message carrying the key (`bodyClaim`) and the digest (`bodyDigest`).
pub async fn checked<'m, B: BlobStore>(
    blobs: &B,
    message: &'m QueueMessage,
) -> Result<Cow<'m, QueueMessage>, BlobError> {
    if message.size() <= QUEUE_MESSAGE_LIMIT {
        return Ok(Cow::Borrowed(message));
    }
    let digest = sha256_hex(message.body.as_bytes());
    let key = message_key(message, &digest);
    blobs.put(&key, message.body.as_bytes()).await?;
    let claim = QueueMessage {
        body: key.clone(),
        attributes: message.attributes.clone(),
    }
    .with_attribute(attribute::BODY_CLAIM, key)
    .with_attribute(attribute::BODY_DIGEST, digest);
    Ok(Cow::Owned(claim))
}

/// Why a claim-checked body cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The object is gone (expired, forgotten): the message can never be read.
    #[error("the claim-checked body {key} is gone from the payload bucket")]
    Gone { key: String },
    /// The object is not what the message's (or the item's) digest says: never read as its body
    /// (or value).
    #[error("{key} in the payload bucket does not match the digest recorded for it")]
    Mismatch { key: String },
    #[error("the payload bucket could not be read")]
    Unavailable {
        #[source]
        source: BlobError,
    },
}

impl ClaimError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A received message's body: the body itself, or the claim-checked object its attributes name,
/// checked against their digest.
pub async fn claimed_body<'b, B: BlobStore>(
    blobs: &B,
    body: &'b str,
    attribute_of: impl Fn(&str) -> Option<&'b str>,
) -> Result<Cow<'b, str>, ClaimError> {
    let Some(key) = attribute_of(attribute::BODY_CLAIM) else {
        return Ok(Cow::Borrowed(body));
    };
    let bytes = blobs
        .get(key)
        .await
        .map_err(|source| ClaimError::Unavailable { source })?
        .ok_or_else(|| ClaimError::Gone {
            key: key.to_owned(),
        })?;
    let mismatch = || ClaimError::Mismatch {
        key: key.to_owned(),
    };
    if attribute_of(attribute::BODY_DIGEST) != Some(sha256_hex(&bytes).as_str()) {
        return Err(mismatch());
    }
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| mismatch())
}

/// A stored value's JSON text: the item's own, or the payload bucket's object it points at, checked
/// against the digest the item records (a value altered in the bucket is never read as the
/// object's). None when the bucket no longer holds it: `forget` erased it after the item was read.
pub async fn claimed_value<B: BlobStore>(
    blobs: &B,
    value: &StoredValue,
) -> Result<Option<String>, ClaimError> {
    let (key, sha256) = match value {
        StoredValue::Inline(json) => return Ok(Some(json.clone())),
        StoredValue::Claimed { key, sha256, .. } => (key, sha256),
    };
    let Some(bytes) = blobs
        .get(key)
        .await
        .map_err(|source| ClaimError::Unavailable { source })?
    else {
        return Ok(None);
    };
    let mismatch = || ClaimError::Mismatch { key: key.clone() };
    if sha256_hex(&bytes) != *sha256 {
        return Err(mismatch());
    }
    String::from_utf8(bytes).map(Some).map_err(|_| mismatch())
}

/// An item as the mirror writes it: its row, with the values the item keeps in the payload bucket
/// read and checked against their digests. The stream mirror and `mirror rebuild` both read an item
/// this way, so that one odd item ends in the same row, or the same refusal, whichever meets it.
pub async fn mirrored_row<B: BlobStore>(
    blobs: &B,
    item: &crate::item::StoredItem,
) -> Result<MirrorRow, ClaimError> {
    let (mut row, [value, last_value]) = MirrorRow::of(item);
    if let Some(value) = value {
        row.value = claimed_value(blobs, value).await?;
    }
    if let Some(last_value) = last_value {
        row.last_value = claimed_value(blobs, last_value).await?;
    }
    Ok(row)
}

/// A queue whose messages over SQS's limit go by claim check.
#[derive(Debug, Clone)]
pub struct ClaimCheckedQueue<Q, B> {
    queue: Q,
    blobs: B,
}

impl<Q: MessageQueue, B: BlobStore> ClaimCheckedQueue<Q, B> {
    pub fn new(queue: Q, blobs: B) -> Self {
        Self { queue, blobs }
    }

    pub fn inner(&self) -> &Q {
        &self.queue
    }
}

fn unavailable(source: BlobError) -> QueueError {
    if source.is_transient() {
        QueueError::Unavailable {
            source: Box::new(source),
        }
    } else {
        QueueError::Rejected {
            source: Box::new(source),
        }
    }
}

impl<Q: MessageQueue, B: BlobStore> MessageQueue for ClaimCheckedQueue<Q, B> {
    async fn send(&self, message: &QueueMessage) -> Result<String, QueueError> {
        let message = checked(&self.blobs, message).await.map_err(unavailable)?;
        self.queue.send(&message).await
    }

    async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        let mut sendable = Vec::with_capacity(messages.len());
        for message in messages {
            sendable.push(
                checked(&self.blobs, message)
                    .await
                    .map_err(unavailable)?
                    .into_owned(),
            );
        }
        self.queue.send_all(&sendable).await
    }
}

/// An object store whose values over an item's limit are kept in the payload bucket: the value is
/// stored first, then the one conditional write sets the pointer, so a crash between the two leaves
/// an unused object and never a pointer to a missing one.
#[derive(Debug, Clone)]
pub struct LargeValues<S, B> {
    store: S,
    blobs: B,
}

impl<S: ObjectStore, B: BlobStore> LargeValues<S, B> {
    pub fn new(store: S, blobs: B) -> Self {
        Self { store, blobs }
    }

    pub fn inner(&self) -> &S {
        &self.store
    }
}

impl<S: ObjectStore, B: BlobStore> ObjectStore for LargeValues<S, B> {
    async fn apply(&self, change: &ObjectChange) -> Result<Outcome, StoreError> {
        let Some(payload) = change.write.payload() else {
            return self.store.apply(change).await;
        };
        if payload.json().len() <= ITEM_VALUE_LIMIT {
            return self.store.apply(change).await;
        }
        let key = value_key(&change.key, payload.hash());
        self.blobs
            .put(&key, payload.json().as_bytes())
            .await
            .map_err(|source| store_error(source, &key))?;
        let mut claimed = change.clone();
        claimed.write = match claimed.write {
            Write::Versioned { version, payload } => Write::Versioned {
                version,
                payload: payload.claimed(key),
            },
            Write::Unversioned { payload } => Write::Unversioned {
                payload: payload.claimed(key),
            },
            Write::Replace {
                version,
                payload,
                seen,
            } => Write::Replace {
                version,
                payload: payload.claimed(key),
                seen,
            },
            Write::Delete => Write::Delete,
        };
        self.store.apply(&claimed).await
    }
}

#[derive(Debug, thiserror::Error)]
#[error("storing the value {key} in the payload bucket failed")]
struct ValueNotStored {
    key: String,
    #[source]
    source: BlobError,
}

fn store_error(source: BlobError, key: &str) -> StoreError {
    let transient = source.is_transient();
    let source: BoxError = Box::new(ValueNotStored {
        key: key.to_owned(),
        source,
    });
    if transient {
        StoreError::Unavailable { source }
    } else {
        StoreError::Rejected { source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_content_addressed_and_a_value_sits_under_its_object() {
        let key = ObjectKey {
            tenant: TenantId::parse("acme").unwrap(),
            object_type: "voucher".into(),
            object_id: 7,
        };
        assert_eq!(values_prefix(&key), "values/acme/voucher/7/");
        assert_eq!(value_key(&key, "ab12"), "values/acme/voucher/7/ab12");
        let digest = sha256_hex(b"abc");
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let message = |pairs: &[(&str, &str)]| QueueMessage {
            body: "abc".into(),
            attributes: pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let named = message(&[
            ("tenant", "acme"),
            ("event", "voucher.update"),
            ("objectId", "7"),
        ]);
        assert_eq!(
            message_key(&named, &digest),
            format!("{}{digest}", messages_prefix(&key))
        );
        let quarantined = message(&[("tenant", "acme"), ("event", "../x.update")]);
        assert_eq!(
            message_key(&quarantined, &digest),
            format!("messages/acme/{digest}")
        );
        assert_eq!(
            message_key(&message(&[]), &digest),
            format!("messages/{digest}")
        );
    }
}
