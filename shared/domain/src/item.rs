//! Attribute names of an item of the objects table: written by the worker's store, read by the
//! sync, the CLI and the Postgres mirror (from the table's stream).

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
/// The idempotency key of the last `tripletex-webhooks send` delivery the worker handled.
pub const LAST_PROBE: &str = "lastProbe";
/// `tenant#objectType`: the hash key of the `byType` index, where the sync walks a type's copy
/// in id order (`objectId` is its range key).
pub const TYPE_KEY: &str = "typeKey";
pub const BY_TYPE_INDEX: &str = "byType";
