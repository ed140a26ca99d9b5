//! An item of the objects table: its attribute names, written by the worker's store, and the item
//! as one type (`StoredItem`), read one way by the sync, the CLI and the Postgres mirror (from the
//! table, or from its stream's images), whatever carries it (`Attributes`).

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::dedup::{ObjectKey, Source, StoredState};
use crate::ids::TenantId;

pub const KEY: &str = "pk";
pub const TENANT: &str = "tenant";
pub const OBJECT_TYPE: &str = "objectType";
pub const OBJECT_ID: &str = "objectId";
pub const VERSION: &str = "version";
/// Set while the stored value came without a version (`version` is then only a floor).
pub const VERSION_UNKNOWN: &str = "versionUnknown";
pub const DELETED: &str = "deleted";
pub const VALUE: &str = "value";
/// On a tombstone of a type whose deletes must remember (`TombstonePolicy`): the value the
/// object had when it was deleted.
pub const LAST_VALUE: &str = "lastValue";
/// When the value was erased on request (`forget`); only a newer version is stored again.
pub const FORGOTTEN_AT: &str = "forgottenAt";
pub const PAYLOAD_HASH: &str = "payloadHash";
pub const LAST_EVENT: &str = "lastEvent";
pub const SUBSCRIPTION_ID: &str = "subscriptionId";
pub const RECEIVED_AT: &str = "receivedAt";
pub const UPDATED_AT: &str = "updatedAt";
pub const DELETED_AT: &str = "deletedAt";
pub const SOURCE: &str = "source";
/// When Tripletex's answer last replaced a copy it contradicted (`dedup::Write::Replace`): the
/// mirror orders a row by it before its version, so that the replacement reaches it too.
pub const REPLACED_AT: &str = "replacedAt";
/// The request that made the stored version: the receiver's request id of Tripletex's call, or
/// `sync:<run>` for what the sync queued (`journal::sync_request`).
pub const LAST_REQUEST: &str = "lastRequestId";
/// The idempotency key of the last `tripletex-webhooks send` delivery the worker handled.
pub const LAST_PROBE: &str = "lastProbe";
/// The field of an item's `value` (a map rather than the JSON text) that holds the payload bucket's
/// key of the value (`claim`); `CLAIM_BYTES` and `CLAIM_SHA256` say what the key's object holds.
pub const CLAIM_KEY: &str = "claimCheck";
pub const CLAIM_BYTES: &str = "bytes";
pub const CLAIM_SHA256: &str = "sha256";
/// `tenant#objectType`: the hash key of the `byType` index, where the sync walks a type's copy
/// in id order (`objectId` is its range key).
pub const TYPE_KEY: &str = "typeKey";
pub const BY_TYPE_INDEX: &str = "byType";

// ---- the item as one type, read one way by every reader ----------------------------------------

/// One attribute as DynamoDB types it, whatever carries the item: an SDK item (`aws-adapters`) or a
/// stream image in DynamoDB's JSON ([`Attributes`] for `serde_json::Map`).
pub enum Typed<'a> {
    S(&'a str),
    /// A number, as DynamoDB's text of it.
    N(&'a str),
    Bool(bool),
    Null,
    M(Box<dyn Attributes + 'a>),
    /// A type the objects table never writes.
    Other,
}

/// An item's attributes by name.
pub trait Attributes {
    fn typed(&self, name: &str) -> Option<Typed<'_>>;
}

/// A stream image (`NewImage`, `OldImage`, `Keys`) in DynamoDB's JSON: `{"name": {"S": "…"}}`.
impl Attributes for Map<String, Value> {
    fn typed(&self, name: &str) -> Option<Typed<'_>> {
        let typed = self.get(name)?.as_object()?;
        let (kind, value) = typed.iter().next()?;
        Some(match (kind.as_str(), value) {
            ("S", Value::String(text)) => Typed::S(text),
            ("N", Value::String(text)) => Typed::N(text),
            ("BOOL", Value::Bool(flag)) => Typed::Bool(*flag),
            ("NULL", _) => Typed::Null,
            ("M", Value::Object(map)) => Typed::M(Box::new(map)),
            _ => Typed::Other,
        })
    }
}

impl<T: Attributes + ?Sized> Attributes for &T {
    fn typed(&self, name: &str) -> Option<Typed<'_>> {
        (**self).typed(name)
    }
}

/// Why an item is not what the objects table writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("the item has no {0}")]
    Missing(&'static str),
    #[error("the item's {0} is not what the objects table writes")]
    Invalid(&'static str),
}

/// A stored `value` or `lastValue` as the item holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredValue {
    Inline(String),
    /// In the payload bucket under `key`: `sha256` (hex) of its `bytes` bytes.
    Claimed {
        key: String,
        bytes: u64,
        sha256: String,
    },
}

/// An item of the objects table, as the worker, the sync, the CLI and the mirror read it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub key: ObjectKey,
    /// What the version-deduplication rule looks at.
    pub state: StoredState,
    /// None for a tombstone or a forgotten object.
    pub value: Option<StoredValue>,
    pub last_value: Option<StoredValue>,
    pub last_event: Option<String>,
    pub received_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub forgotten_at: Option<Timestamp>,
    pub replaced_at: Option<Timestamp>,
    pub last_probe: Option<String>,
    pub last_request: Option<String>,
}

impl StoredItem {
    /// The whole item; an attribute of the wrong type or form is an error, never read as absent.
    pub fn decode(item: &impl Attributes) -> Result<Self, ItemError> {
        Ok(Self {
            key: key(item)?,
            state: state(item)?,
            value: value(item, VALUE)?,
            last_value: value(item, LAST_VALUE)?,
            last_event: text(item, LAST_EVENT)?.map(str::to_owned),
            received_at: timestamp(item, RECEIVED_AT)?,
            updated_at: timestamp(item, UPDATED_AT)?.ok_or(ItemError::Missing(UPDATED_AT))?,
            deleted_at: timestamp(item, DELETED_AT)?,
            forgotten_at: timestamp(item, FORGOTTEN_AT)?,
            replaced_at: timestamp(item, REPLACED_AT)?,
            last_probe: text(item, LAST_PROBE)?.map(str::to_owned),
            last_request: text(item, LAST_REQUEST)?.map(str::to_owned),
        })
    }
}

/// The object's key from its attributes, or from `pk` (`tenant#type#id`) when only the keys came
/// (a stream's removal).
pub fn key(item: &impl Attributes) -> Result<ObjectKey, ItemError> {
    if let (Some(tenant), Some(object_type), Some(object_id)) = (
        text(item, TENANT)?,
        text(item, OBJECT_TYPE)?,
        number(item, OBJECT_ID)?,
    ) {
        return Ok(ObjectKey {
            tenant: TenantId::parse(tenant).map_err(|_| ItemError::Invalid(TENANT))?,
            object_type: object_type.to_owned(),
            object_id,
        });
    }
    text(item, KEY)?
        .ok_or(ItemError::Missing(KEY))?
        .parse()
        .map_err(|_| ItemError::Invalid(KEY))
}

/// The rule's view of an item (of a whole item, or of one projected to these attributes).
pub fn state(item: &impl Attributes) -> Result<StoredState, ItemError> {
    Ok(StoredState {
        version: number(item, VERSION)?,
        version_unknown: boolean(item, VERSION_UNKNOWN)?,
        deleted: boolean(item, DELETED)?,
        payload_hash: text(item, PAYLOAD_HASH)?.map(str::to_owned),
        forgotten: item.typed(FORGOTTEN_AT).is_some(),
        source: match text(item, SOURCE)? {
            None => None,
            Some(text) => Some(Source::parse(text).ok_or(ItemError::Invalid(SOURCE))?),
        },
    })
}

fn text<'a>(item: &'a impl Attributes, name: &'static str) -> Result<Option<&'a str>, ItemError> {
    match item.typed(name) {
        None | Some(Typed::Null) => Ok(None),
        Some(Typed::S(text)) => Ok(Some(text)),
        Some(_) => Err(ItemError::Invalid(name)),
    }
}

fn number(item: &impl Attributes, name: &'static str) -> Result<Option<i64>, ItemError> {
    match item.typed(name) {
        None | Some(Typed::Null) => Ok(None),
        Some(Typed::N(text)) => text.parse().map(Some).map_err(|_| ItemError::Invalid(name)),
        Some(_) => Err(ItemError::Invalid(name)),
    }
}

fn boolean(item: &impl Attributes, name: &'static str) -> Result<bool, ItemError> {
    match item.typed(name) {
        None | Some(Typed::Null) => Ok(false),
        Some(Typed::Bool(flag)) => Ok(flag),
        Some(_) => Err(ItemError::Invalid(name)),
    }
}

fn timestamp(item: &impl Attributes, name: &'static str) -> Result<Option<Timestamp>, ItemError> {
    text(item, name)?
        .map(|text| text.parse().map_err(|_| ItemError::Invalid(name)))
        .transpose()
}

/// A value: its JSON text, or the map that points at it in the payload bucket (`claim`); NULL is
/// none (a remembering tombstone of an object deleted before any value came).
fn value(item: &impl Attributes, name: &'static str) -> Result<Option<StoredValue>, ItemError> {
    match item.typed(name) {
        None | Some(Typed::Null) => Ok(None),
        Some(Typed::S(json)) => Ok(Some(StoredValue::Inline(json.to_owned()))),
        Some(Typed::M(claim)) => {
            let field = |field: &'static str| match claim.typed(field) {
                Some(Typed::S(text)) => Ok(text.to_owned()),
                _ => Err(ItemError::Invalid(name)),
            };
            let bytes = match claim.typed(CLAIM_BYTES) {
                Some(Typed::N(text)) => text.parse().map_err(|_| ItemError::Invalid(name))?,
                _ => return Err(ItemError::Invalid(name)),
            };
            Ok(Some(StoredValue::Claimed {
                key: field(CLAIM_KEY)?,
                bytes,
                sha256: field(CLAIM_SHA256)?,
            }))
        }
        Some(_) => Err(ItemError::Invalid(name)),
    }
}
