//! What a record does to the stored copy of an object: the version-deduplication rule as a pure
//! function. The DynamoDB adapter states the same rule as a condition expression, so DynamoDB enforces
//! it atomically; this function is the reference both are tested against, and it classifies a write
//! that DynamoDB refused.

use std::fmt;

use jiff::Timestamp;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::ids::TenantId;

/// `tenant#object#id`: the key of an object copy. `object` is the event's object part, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub tenant: TenantId,
    pub object_type: String,
    pub object_id: i64,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}#{}", self.tenant, self.object_type, self.object_id)
    }
}

/// A text that is no `tenant#object#id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an object key (tenant#object#id)")]
pub struct InvalidObjectKey(pub String);

impl std::str::FromStr for ObjectKey {
    type Err = InvalidObjectKey;

    /// The key back from its text: the last two `#` part it (neither an object type nor an id
    /// holds one, and a tenant never does).
    fn from_str(text: &str) -> Result<Self, InvalidObjectKey> {
        let invalid = || InvalidObjectKey(text.to_owned());
        let mut parts = text.rsplitn(3, '#');
        let (Some(id), Some(object_type), Some(tenant)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if object_type.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            tenant: TenantId::parse(tenant).map_err(|_| invalid())?,
            object_type: object_type.to_owned(),
            object_id: id.parse().map_err(|_| invalid())?,
        })
    }
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Webhook,
    Resync,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Resync => "resync",
        }
    }

    /// The source an item records (`item::SOURCE`); none for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Webhook, Self::Resync]
            .into_iter()
            .find(|source| source.as_str() == text)
    }
}

/// The object's JSON exactly as received, with its hash (which decides unversioned writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    json: String,
    hash: String,
    /// Set when the value is over an item's limit and kept in the payload bucket under this key
    /// (`claim::LargeValues`): the item then holds the key instead of the JSON.
    claim: Option<String>,
}

impl Payload {
    pub fn new(raw: &RawValue) -> Self {
        Self::from_json(raw.get())
    }

    pub fn from_json(json: &str) -> Self {
        Self {
            json: json.to_owned(),
            hash: sha256_hex(json.as_bytes()),
            claim: None,
        }
    }

    /// The same value, stored in the payload bucket under `key`.
    pub fn claimed(mut self, key: String) -> Self {
        self.claim = Some(key);
        self
    }

    pub fn claim(&self) -> Option<&str> {
        self.claim.as_deref()
    }

    pub fn json(&self) -> &str {
        &self.json
    }

    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// Lower-case hex SHA-256: the hash of a payload, and the digest of a claim-checked body.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a record asks of the stored copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// The object at a version: kept only if newer than what is stored.
    Versioned { version: i64, payload: Payload },
    /// The object without a version (the subscription's `fields` left it out): kept if it differs.
    Unversioned { payload: Payload },
    /// The object is gone: a tombstone that no later upsert can lift.
    Delete,
    /// Tripletex's own answer for an object the copy holds at a version Tripletex never had, or
    /// as deleted while Tripletex still has it (what a forged or mistaken webhook leaves): it
    /// replaces the copy, whatever its version, as long as the copy is still what the sync saw
    /// (`seen`). Only the sync sends it, after asking Tripletex for the object by id.
    Replace {
        version: i64,
        payload: Payload,
        seen: Seen,
    },
}

impl Write {
    pub fn version(&self) -> Option<i64> {
        match self {
            Self::Versioned { version, .. } | Self::Replace { version, .. } => Some(*version),
            Self::Unversioned { .. } | Self::Delete => None,
        }
    }

    /// The value the write stores, if any.
    pub fn payload(&self) -> Option<&Payload> {
        match self {
            Self::Versioned { payload, .. }
            | Self::Unversioned { payload }
            | Self::Replace { payload, .. } => Some(payload),
            Self::Delete => None,
        }
    }
}

/// What the sync saw in the copy when Tripletex contradicted it: a replacement applies only to
/// that state, so that a webhook stored meanwhile is never undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub version: Option<i64>,
    pub deleted: bool,
}

impl Seen {
    /// Whether the copy is still as seen.
    pub fn still(&self, stored: &StoredState) -> bool {
        stored.version == self.version && stored.deleted == self.deleted
    }
}

/// `7:live`, `-:deleted`: how a replacement message says what it replaces.
impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(version) => write!(f, "{version}")?,
            None => f.write_str("-")?,
        }
        f.write_str(if self.deleted { ":deleted" } else { ":live" })
    }
}

impl std::str::FromStr for Seen {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (version, state) = text.split_once(':').ok_or(())?;
        let version = match version {
            "-" => None,
            number => Some(number.parse().map_err(|_| ())?),
        };
        let deleted = match state {
            "deleted" => true,
            "live" => false,
            _ => return Err(()),
        };
        Ok(Self { version, deleted })
    }
}

/// One record's change to one object, with what the stored item records about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectChange {
    pub key: ObjectKey,
    pub write: Write,
    pub event: String,
    pub subscription_id: Option<i64>,
    pub received_at: Timestamp,
    pub source: Source,
    /// Set on a test delivery of `tripletex-webhooks send` (its idempotency key has
    /// [`SEND_PROBE_PREFIX`]): the store records this key on the item whatever the outcome, so the
    /// sender sees that the worker handled it even when the copy already held the object.
    pub probe: Option<String>,
    /// The request that brought the change: the receiver's request id of Tripletex's call, or the
    /// sync's run (`journal::sync_request`); kept on the item as `lastRequestId`.
    pub request: Option<String>,
}

/// Which types' tombstones keep the last stored value (`lastValue`). A delete event carries no
/// value, and for some types the value is the only record of what the delete undoes: Tripletex's
/// changelog (2.75.03) tells consumers of `closeGroup.delete` to keep the postings of its create,
/// since only they say which postings the delete reopened. Other types' tombstones keep nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TombstonePolicy(std::collections::BTreeSet<String>);

/// The types whose tombstones always keep their last value.
pub const ALWAYS_KEEP_LAST_VALUE: &[&str] = &["closeGroup"];

impl TombstonePolicy {
    /// The always-kept types and these (an operator's list).
    pub fn with(types: impl IntoIterator<Item = String>) -> Self {
        Self(
            ALWAYS_KEEP_LAST_VALUE
                .iter()
                .map(|t| (*t).to_owned())
                .chain(types)
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    pub fn keeps_last_value(&self, object_type: &str) -> bool {
        self.0.contains(object_type)
    }
}

impl Default for TombstonePolicy {
    fn default() -> Self {
        Self::with(std::iter::empty())
    }
}

/// The idempotency-key prefix of `tripletex-webhooks send`'s deliveries. Tripletex's keys are
/// UUIDs, so none of its deliveries has it.
pub const SEND_PROBE_PREFIX: &str = "tripletex-webhooks-send-";

/// The probe key of a delivery, if it is one of `send`'s.
pub fn probe_of(idempotency_key: Option<&str>) -> Option<String> {
    idempotency_key
        .filter(|key| key.starts_with(SEND_PROBE_PREFIX) && key.len() <= 128)
        .map(str::to_owned)
}

/// The part of a stored item the rule looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredState {
    /// The highest version stored so far. After an unversioned write it is a floor: the value is
    /// at least this version, and `version_unknown` says so.
    pub version: Option<i64>,
    /// The stored value came without a version, so `version` does not describe it.
    pub version_unknown: bool,
    pub deleted: bool,
    pub payload_hash: Option<String>,
    /// The value was erased on request (`tripletex-webhooks forget`): only a newer version than
    /// `version` is stored again (see [`decide`]).
    pub forgotten: bool,
    /// What wrote the stored state, when the item says (see [`decide_change`]).
    pub source: Option<Source>,
}

/// What became of a record. Only `Accepted` changes the stored item; the others are answers, not
/// errors, and are never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Accepted,
    /// The same version (or the same unversioned content, or a second delete) is already stored.
    Duplicate,
    /// A newer version is already stored.
    Stale,
    /// The object is deleted; a late update must not resurrect it.
    AfterDelete,
    /// The object's value was erased on request, and this record is not a newer version: it
    /// must not bring the value back.
    Forgotten,
    /// Tripletex's answer replaced a copy it contradicted (a version it never had, or a delete
    /// of an object it still has): a forged or mistaken write, seen and mended.
    Replaced,
    /// A duplicate that came the other way: the version (or the delete) is already stored by the
    /// sync and this is its webhook, or by a webhook and this is the sync's fetch. A change a
    /// reconciliation counted as drift whose webhook came after all ends here (`sync::drift`).
    Corroborated,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
            Self::AfterDelete => "after_delete",
            Self::Forgotten => "forgotten",
            Self::Replaced => "replaced",
            Self::Corroborated => "corroborated",
        }
    }
}

/// The rule, one conditional write per record (the table "Version deduplication", docs/src/concepts/webhook-worker.md):
/// - versioned v: written if no item, or the item is not deleted and its version is lower (or absent);
/// - delete: written if no item, or the item is not deleted;
/// - unversioned: written if no item, or the item is not deleted and its content differs.
///
/// A forgotten object (its value erased on request) is written again only by a version newer than
/// the one it had when it was forgotten: a late webhook or the reconciliation of that version would
/// bring back what was erased, while a newer version is a change Tripletex made after the request.
/// An unversioned record cannot show it is newer, so it is refused, as is every upsert of an object
/// forgotten without a version; a delete still writes its tombstone.
///
/// A replacement (`Write::Replace`) is Tripletex's own answer against what a forged or mistaken
/// write left: it applies over any version and lifts a tombstone, but only while the copy is still
/// what the sync saw (anything stored meanwhile is newer news, and the next run looks again), and
/// never to a forgotten object.
pub fn decide(stored: Option<&StoredState>, write: &Write) -> Outcome {
    let Some(stored) = stored else {
        return Outcome::Accepted;
    };
    match write {
        Write::Replace { .. } if stored.forgotten => Outcome::Forgotten,
        Write::Replace { seen, .. } if seen.still(stored) => Outcome::Replaced,
        Write::Replace { .. } => Outcome::Stale,
        Write::Delete if stored.deleted => Outcome::Duplicate,
        Write::Delete => Outcome::Accepted,
        _ if stored.deleted => Outcome::AfterDelete,
        Write::Unversioned { .. } if stored.forgotten => Outcome::Forgotten,
        Write::Versioned { version, .. }
            if stored.forgotten && stored.version.is_none_or(|current| current >= *version) =>
        {
            Outcome::Forgotten
        }
        Write::Versioned { version, .. } => match stored.version {
            None => Outcome::Accepted,
            Some(current) if current < *version => Outcome::Accepted,
            Some(current) if current == *version => Outcome::Duplicate,
            Some(_) => Outcome::Stale,
        },
        Write::Unversioned { payload } => {
            if stored.payload_hash.as_deref() == Some(payload.hash()) {
                Outcome::Duplicate
            } else {
                Outcome::Accepted
            }
        }
    }
}

/// [`decide`] for a whole change: a duplicate of a version (or a delete) the other path stored
/// is [`Outcome::Corroborated`]. Content alone (an unversioned write) proves no change the same.
pub fn decide_change(stored: Option<&StoredState>, change: &ObjectChange) -> Outcome {
    match decide(stored, &change.write) {
        Outcome::Duplicate
            if !matches!(change.write, Write::Unversioned { .. })
                && stored
                    .and_then(|stored| stored.source)
                    .is_some_and(|source| source != change.source) =>
        {
            Outcome::Corroborated
        }
        outcome => outcome,
    }
}

/// The stored state after an accepted write. A tombstone keeps the last version it knew. An
/// unversioned write keeps the stored version as a floor, so that an older versioned record stays
/// stale, and marks the item `version_unknown`, so that no reader takes the value for that version;
/// the next versioned write above the floor clears the mark.
pub fn apply(stored: Option<&StoredState>, write: &Write) -> StoredState {
    let previous_version = stored.and_then(|s| s.version);
    match write {
        Write::Versioned { version, payload }
        | Write::Replace {
            version, payload, ..
        } => StoredState {
            version: Some(*version),
            version_unknown: false,
            deleted: false,
            payload_hash: Some(payload.hash().to_owned()),
            forgotten: false,
            source: None,
        },
        Write::Unversioned { payload } => StoredState {
            version: previous_version,
            version_unknown: true,
            deleted: false,
            payload_hash: Some(payload.hash().to_owned()),
            forgotten: false,
            source: None,
        },
        Write::Delete => StoredState {
            version: previous_version,
            version_unknown: false,
            deleted: true,
            payload_hash: None,
            forgotten: stored.is_some_and(|s| s.forgotten),
            source: None,
        },
    }
}

/// [`apply`] for a whole change: the state records what wrote it.
pub fn apply_change(stored: Option<&StoredState>, change: &ObjectChange) -> StoredState {
    StoredState {
        source: Some(change.source),
        ..apply(stored, &change.write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_groups_always_keep_their_last_value_and_an_operator_may_add_types() {
        let policy = TombstonePolicy::default();
        assert!(policy.keeps_last_value("closeGroup"));
        assert!(!policy.keeps_last_value("customer"));
        let more = TombstonePolicy::with(["voucher".to_owned(), String::new()]);
        assert!(more.keeps_last_value("voucher") && more.keeps_last_value("closeGroup"));
        assert!(!more.keeps_last_value(""));
    }

    fn versioned(version: i64) -> Write {
        Write::Versioned {
            version,
            payload: Payload::from_json(&format!(r#"{{"id":1,"version":{version}}}"#)),
        }
    }

    fn unversioned(json: &str) -> Write {
        Write::Unversioned {
            payload: Payload::from_json(json),
        }
    }

    fn stored(version: Option<i64>, deleted: bool, json: Option<&str>) -> StoredState {
        StoredState {
            version,
            version_unknown: false,
            deleted,
            payload_hash: json.map(|j| Payload::from_json(j).hash().to_owned()),
            forgotten: false,
            source: None,
        }
    }

    fn change(source: Source, write: Write) -> ObjectChange {
        ObjectChange {
            key: ObjectKey {
                tenant: TenantId::default_tenant(),
                object_type: "customer".into(),
                object_id: 1,
            },
            write,
            event: "customer.update".into(),
            subscription_id: None,
            received_at: Timestamp::UNIX_EPOCH,
            source,
            probe: None,
            request: None,
        }
    }

    #[test]
    fn a_duplicate_that_came_the_other_way_corroborates_the_copy() {
        let by_sync = apply_change(None, &change(Source::Resync, versioned(5)));
        assert_eq!(by_sync.source, Some(Source::Resync));
        let webhook = change(Source::Webhook, versioned(5));
        assert_eq!(
            decide_change(Some(&by_sync), &webhook),
            Outcome::Corroborated,
            "the webhook of a version the sync fetched"
        );
        let by_webhook = apply_change(None, &webhook);
        assert_eq!(
            decide_change(Some(&by_webhook), &change(Source::Resync, versioned(5))),
            Outcome::Corroborated,
            "the sync's fetch of a version a webhook brought"
        );
        assert_eq!(
            decide_change(Some(&by_webhook), &webhook),
            Outcome::Duplicate,
            "the same path twice"
        );
        let tombstone = apply_change(Some(&by_sync), &change(Source::Resync, Write::Delete));
        assert_eq!(
            decide_change(Some(&tombstone), &change(Source::Webhook, Write::Delete)),
            Outcome::Corroborated,
            "the webhook of a delete the sync confirmed"
        );
        let content = apply_change(None, &change(Source::Resync, unversioned("{}")));
        assert_eq!(
            decide_change(Some(&content), &change(Source::Webhook, unversioned("{}"))),
            Outcome::Duplicate,
            "equal content proves no change the same"
        );
        assert_eq!(
            decide_change(
                Some(&stored(Some(5), false, None)),
                &change(Source::Webhook, versioned(5))
            ),
            Outcome::Duplicate,
            "an item that names no source"
        );
        assert_eq!(
            decide_change(Some(&by_sync), &change(Source::Webhook, versioned(4))),
            Outcome::Stale
        );
    }

    #[test]
    fn a_forgotten_object_is_stored_again_only_by_a_newer_version_or_closed_by_a_delete() {
        let forgotten = StoredState {
            forgotten: true,
            ..stored(Some(7), false, None)
        };
        let cases = [
            ("redelivered webhook", versioned(7), Outcome::Forgotten),
            ("older version", versioned(6), Outcome::Forgotten),
            ("unversioned", unversioned("{}"), Outcome::Forgotten),
            ("newer version", versioned(8), Outcome::Accepted),
            ("delete", Write::Delete, Outcome::Accepted),
        ];
        for (case, write, expected) in cases {
            assert_eq!(decide(Some(&forgotten), &write), expected, "{case}");
        }
        let without_version = StoredState {
            forgotten: true,
            ..stored(None, false, None)
        };
        assert_eq!(
            decide(Some(&without_version), &versioned(1_000)),
            Outcome::Forgotten,
            "nothing tells a newer version of an object forgotten without one"
        );
        assert!(
            !apply(Some(&forgotten), &versioned(8)).forgotten,
            "it lives again"
        );
        assert!(apply(Some(&forgotten), &Write::Delete).forgotten);
    }

    fn replace(version: i64, seen_version: Option<i64>, seen_deleted: bool) -> Write {
        Write::Replace {
            version,
            payload: Payload::from_json(&format!(r#"{{"id":1,"version":{version}}}"#)),
            seen: Seen {
                version: seen_version,
                deleted: seen_deleted,
            },
        }
    }

    #[test]
    fn tripletexs_answer_replaces_a_forged_version_or_delete_only_while_the_copy_is_as_seen() {
        let forged_version = stored(Some(99), false, Some("{}"));
        let forged_delete = stored(Some(4), true, None);
        let cases = [
            (
                "a version Tripletex never had",
                &forged_version,
                replace(5, Some(99), false),
                Outcome::Replaced,
            ),
            (
                "a delete of an object Tripletex has",
                &forged_delete,
                replace(4, Some(4), true),
                Outcome::Replaced,
            ),
            (
                "the copy moved on since it was seen",
                &forged_version,
                replace(5, Some(98), false),
                Outcome::Stale,
            ),
            (
                "seen live, deleted since",
                &forged_delete,
                replace(4, Some(4), false),
                Outcome::Stale,
            ),
        ];
        for (case, copy, write, expected) in cases {
            assert_eq!(decide(Some(copy), &write), expected, "{case}");
        }
        let replaced = apply(Some(&forged_delete), &replace(4, Some(4), true));
        assert!(
            !replaced.deleted,
            "Tripletex's answer lifts the forged tombstone"
        );
        assert_eq!(replaced.version, Some(4));
        let back = apply(Some(&forged_version), &replace(5, Some(99), false));
        assert_eq!(back.version, Some(5), "back to the version Tripletex has");
        let forgotten = StoredState {
            forgotten: true,
            ..stored(Some(99), false, None)
        };
        assert_eq!(
            decide(Some(&forgotten), &replace(5, Some(99), false)),
            Outcome::Forgotten
        );
        assert_eq!(decide(None, &replace(5, None, false)), Outcome::Accepted);
    }

    #[test]
    fn what_a_replacement_saw_reads_back_as_written() {
        for seen in [
            Seen {
                version: Some(7),
                deleted: false,
            },
            Seen {
                version: None,
                deleted: true,
            },
        ] {
            assert_eq!(seen.to_string().parse::<Seen>(), Ok(seen));
        }
        let seven = Seen {
            version: Some(7),
            deleted: false,
        };
        assert_eq!(seven.to_string(), "7:live");
        for bad in ["7", "x:live", "7:gone", ""] {
            assert!(bad.parse::<Seen>().is_err(), "{bad}");
        }
    }

    #[test]
    fn anything_is_accepted_when_nothing_is_stored() {
        for write in [versioned(0), unversioned("{}"), Write::Delete] {
            assert_eq!(decide(None, &write), Outcome::Accepted, "{write:?}");
        }
    }

    #[test]
    fn versioned_writes_keep_only_newer_versions() {
        let current = stored(Some(5), false, Some("{}"));
        assert_eq!(decide(Some(&current), &versioned(6)), Outcome::Accepted);
        assert_eq!(
            decide(Some(&current), &versioned(9)),
            Outcome::Accepted,
            "skipped versions are fine"
        );
        assert_eq!(decide(Some(&current), &versioned(5)), Outcome::Duplicate);
        assert_eq!(decide(Some(&current), &versioned(4)), Outcome::Stale);
    }

    #[test]
    fn a_versioned_write_replaces_an_unversioned_copy() {
        let current = stored(None, false, Some(r#"{"id":1}"#));
        assert_eq!(decide(Some(&current), &versioned(0)), Outcome::Accepted);
    }

    #[test]
    fn a_tombstone_blocks_every_later_upsert_whatever_its_version() {
        let tombstone = stored(Some(5), true, None);
        assert_eq!(
            decide(Some(&tombstone), &versioned(6)),
            Outcome::AfterDelete
        );
        assert_eq!(
            decide(Some(&tombstone), &versioned(1_000_000)),
            Outcome::AfterDelete
        );
        assert_eq!(
            decide(Some(&tombstone), &versioned(2)),
            Outcome::AfterDelete
        );
        assert_eq!(
            decide(Some(&tombstone), &unversioned("{}")),
            Outcome::AfterDelete
        );
    }

    #[test]
    fn a_second_delete_is_a_duplicate() {
        assert_eq!(
            decide(Some(&stored(Some(5), true, None)), &Write::Delete),
            Outcome::Duplicate
        );
        assert_eq!(
            decide(Some(&stored(Some(5), false, Some("{}"))), &Write::Delete),
            Outcome::Accepted
        );
    }

    #[test]
    fn unversioned_writes_are_kept_only_when_the_content_differs() {
        let current = stored(Some(3), false, Some(r#"{"name":"A"}"#));
        assert_eq!(
            decide(Some(&current), &unversioned(r#"{"name":"A"}"#)),
            Outcome::Duplicate
        );
        assert_eq!(
            decide(Some(&current), &unversioned(r#"{"name":"B"}"#)),
            Outcome::Accepted
        );
    }

    #[test]
    fn apply_keeps_the_version_through_tombstones_and_unversioned_writes() {
        let current = stored(Some(3), false, Some("{}"));
        let after_unversioned = apply(Some(&current), &unversioned(r#"{"x":1}"#));
        assert_eq!(after_unversioned.version, Some(3));
        assert_eq!(
            decide(Some(&after_unversioned), &versioned(2)),
            Outcome::Stale
        );
        let tombstone = apply(Some(&current), &Write::Delete);
        assert_eq!(tombstone, stored(Some(3), true, None));
    }

    #[test]
    fn an_unversioned_value_after_a_versioned_one_is_marked_version_unknown_until_a_newer_version()
    {
        let current = stored(Some(3), false, Some(r#"{"version":3}"#));
        let unversioned = apply(Some(&current), &unversioned(r#"{"x":1}"#));
        assert!(unversioned.version_unknown, "the value is not version 3");
        assert_eq!(unversioned.version, Some(3), "3 stays the floor");
        assert_eq!(
            decide(Some(&unversioned), &versioned(3)),
            Outcome::Duplicate
        );
        assert_eq!(decide(Some(&unversioned), &versioned(4)), Outcome::Accepted);
        let newer = apply(Some(&unversioned), &versioned(4));
        assert!(!newer.version_unknown);
        assert_eq!(newer.version, Some(4));
        assert!(!apply(Some(&unversioned), &Write::Delete).version_unknown);
    }

    #[test]
    fn an_object_key_reads_back_from_its_text_and_nothing_else_is_one() {
        let key = ObjectKey {
            tenant: TenantId::parse("acme").unwrap(),
            object_type: "closeGroup".into(),
            object_id: -7,
        };
        assert_eq!(key.to_string().parse::<ObjectKey>(), Ok(key));
        for text in [
            "",
            "acme#customer",
            "acme#customer#x",
            "acme##1",
            "#customer#1",
            "a#b#c#1",
        ] {
            assert!(text.parse::<ObjectKey>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn object_key_joins_tenant_object_and_id() {
        let key = ObjectKey {
            tenant: TenantId::parse("acme").unwrap(),
            object_type: "closeGroup".into(),
            object_id: 42,
        };
        assert_eq!(key.to_string(), "acme#closeGroup#42");
    }
}
