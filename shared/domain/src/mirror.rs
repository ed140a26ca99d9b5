//! The Postgres mirror's rule: what a change of the objects table does to the mirror's row. The
//! table's stream carries each accepted write in order per item, but a replay, a bisected retry, an
//! out-of-order batch or a rebuild running beside the stream may bring an older image after a newer
//! one; the rule keeps the mirror from ever moving backwards. The adapter states it as the `WHERE` of
//! its upsert; this function is the reference both are tested against.

use jiff::Timestamp;

use crate::item::{StoredItem, StoredValue};

/// One object as the mirror keeps it: the table's item, its value resolved (a claim-checked value
/// read from the payload bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorRow {
    pub tenant: String,
    pub object_type: String,
    pub object_id: i64,
    pub version: Option<i64>,
    pub version_unknown: bool,
    pub deleted: bool,
    /// The object's JSON; none for a tombstone or a forgotten object.
    pub value: Option<String>,
    /// On a tombstone that remembers: the value it closed.
    pub last_value: Option<String>,
    pub source: Option<String>,
    pub received_at: Option<Timestamp>,
    /// When the table last wrote the item: every accepted write moves it on.
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub forgotten_at: Option<Timestamp>,
    /// When Tripletex's answer last replaced a copy it contradicted (`dedup::Write::Replace`): a
    /// version Tripletex never had, or a delete of an object it has, undone.
    pub replaced_at: Option<Timestamp>,
    /// The request that made this version (`item::LAST_REQUEST`).
    pub request: Option<String>,
}

impl MirrorRow {
    /// The row of an item, its values still as the item holds them: the ones the payload bucket
    /// keeps are returned beside it, to be read (`claim::mirrored_row`) before it is written.
    pub fn of(item: &StoredItem) -> (Self, [Option<&StoredValue>; 2]) {
        let inline = |value: &Option<StoredValue>| match value {
            Some(StoredValue::Inline(json)) => Some(json.clone()),
            _ => None,
        };
        fn claimed(value: &Option<StoredValue>) -> Option<&StoredValue> {
            value
                .as_ref()
                .filter(|value| matches!(value, StoredValue::Claimed { .. }))
        }
        let row = MirrorRow {
            tenant: item.key.tenant.to_string(),
            object_type: item.key.object_type.clone(),
            object_id: item.key.object_id,
            version: item.state.version,
            version_unknown: item.state.version_unknown,
            deleted: item.state.deleted,
            value: inline(&item.value),
            last_value: inline(&item.last_value),
            source: item.state.source.map(|source| source.as_str().to_owned()),
            received_at: item.received_at,
            updated_at: item.updated_at,
            deleted_at: item.deleted_at,
            forgotten_at: item.forgotten_at,
            replaced_at: item.replaced_at,
            request: item.last_request.clone(),
        };
        (row, [claimed(&item.value), claimed(&item.last_value)])
    }

    pub fn key(&self) -> (&str, &str, i64) {
        (&self.tenant, &self.object_type, self.object_id)
    }

    /// Where the row stands: its version (none below every version), then when the table wrote it.
    fn order(&self) -> (i64, Timestamp) {
        (self.version.unwrap_or(-1), self.updated_at)
    }

    /// Whether this image may replace `stored`. A replacement later than the row's (Tripletex's
    /// answer against a forged or mistaken write) wins whatever the version or a tombstone; an
    /// image from before the row's replacement never does. Otherwise a tombstone is final (only
    /// another image of it, a later one, e.g. its value forgotten, replaces it), and the image that
    /// is later in (version, updated_at) wins; an equal one (a replay) changes nothing.
    pub fn replaces(&self, stored: Option<&MirrorRow>) -> bool {
        match stored {
            None => true,
            Some(stored) if self.replaced_at != stored.replaced_at => {
                self.replaced_at > stored.replaced_at
            }
            Some(stored) if stored.deleted && !self.deleted => false,
            Some(stored) => self.order() > stored.order(),
        }
    }

    /// Whether the row is a version of the object's history: a live value at a known version.
    pub fn is_history(&self) -> bool {
        !self.deleted && !self.version_unknown && self.version.is_some() && self.value.is_some()
    }
}

/// The images of a batch that reach the mirror's rows: per object, the one that replaces all the
/// others (the upsert touches a row once per statement), in the batch's order of first appearance.
pub fn newest_per_object(rows: &[MirrorRow]) -> Vec<&MirrorRow> {
    let mut newest: Vec<&MirrorRow> = Vec::new();
    let mut at: std::collections::HashMap<(&str, &str, i64), usize> = Default::default();
    for row in rows {
        match at.get(&row.key()) {
            Some(&index) => {
                if row.replaces(Some(newest[index])) {
                    newest[index] = row;
                }
            }
            None => {
                at.insert(row.key(), newest.len());
                newest.push(row);
            }
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: Option<i64>, second: i64, deleted: bool) -> MirrorRow {
        MirrorRow {
            tenant: "acme".into(),
            object_type: "customer".into(),
            object_id: 1,
            version,
            version_unknown: false,
            deleted,
            value: (!deleted).then(|| format!(r#"{{"version":{}}}"#, version.unwrap_or(0))),
            last_value: None,
            source: Some("webhook".into()),
            received_at: None,
            updated_at: Timestamp::from_second(1_700_000_000 + second).unwrap(),
            deleted_at: None,
            forgotten_at: None,
            replaced_at: None,
            request: None,
        }
    }

    #[test]
    fn a_replacement_by_tripletex_reaches_the_mirror_and_what_came_before_it_never_again() {
        let at = |second: i64| Some(Timestamp::from_second(1_700_000_000 + second).unwrap());
        let forged_version = row(Some(99), 10, false);
        let forged_delete = row(Some(4), 10, true);
        let replaced = MirrorRow {
            replaced_at: at(20),
            ..row(Some(4), 20, false)
        };
        assert!(replaced.replaces(Some(&forged_version)), "a lower version");
        assert!(replaced.replaces(Some(&forged_delete)), "over a tombstone");
        assert!(
            !forged_version.replaces(Some(&replaced)),
            "the forged image, replayed, never comes back"
        );
        let after = MirrorRow {
            replaced_at: at(20),
            ..row(Some(5), 30, false)
        };
        assert!(
            after.replaces(Some(&replaced)),
            "later versions go on as before"
        );
        assert!(!replaced.replaces(Some(&after)));
        let deleted_after = MirrorRow {
            replaced_at: at(20),
            ..row(Some(5), 40, true)
        };
        assert!(
            !after.replaces(Some(&deleted_after)),
            "a tombstone after it is final"
        );
    }

    #[test]
    fn the_mirror_never_moves_backwards() {
        let live = row(Some(5), 10, false);
        let unversioned = MirrorRow {
            version_unknown: true,
            value: Some(r#"{"name":"x"}"#.into()),
            ..row(Some(5), 20, false)
        };
        let forgotten = MirrorRow {
            value: None,
            forgotten_at: Some(Timestamp::from_second(1_700_000_030).unwrap()),
            ..row(Some(5), 30, false)
        };
        let cases = [
            ("nothing stored", None, row(Some(1), 0, false), true),
            ("replayed image", Some(&live), live.clone(), false),
            (
                "older version after newer",
                Some(&live),
                row(Some(4), 50, false),
                false,
            ),
            ("newer version", Some(&live), row(Some(6), 11, false), true),
            ("tombstone", Some(&live), row(Some(5), 40, true), true),
            (
                "update after tombstone",
                Some(&row(Some(5), 40, true)),
                row(Some(9), 90, false),
                false,
            ),
            (
                "tombstone replayed",
                Some(&row(Some(5), 40, true)),
                row(Some(5), 40, true),
                false,
            ),
            (
                "unversioned after versioned",
                Some(&live),
                unversioned.clone(),
                true,
            ),
            (
                "versioned image older than the unversioned write",
                Some(&unversioned),
                live.clone(),
                false,
            ),
            ("value forgotten", Some(&live), forgotten.clone(), true),
            (
                "the forgotten version replayed",
                Some(&forgotten),
                live.clone(),
                false,
            ),
        ];
        for (case, stored, incoming, expected) in cases {
            assert_eq!(incoming.replaces(stored), expected, "{case}");
        }
    }

    #[test]
    fn a_batch_keeps_the_newest_image_of_each_object_in_first_seen_order() {
        let mut other = row(Some(1), 0, false);
        other.object_id = 2;
        let rows = [
            row(Some(2), 2, false),
            other.clone(),
            row(Some(3), 3, false),
            row(Some(1), 9, false),
        ];
        let newest = newest_per_object(&rows);
        assert_eq!(newest.len(), 2);
        assert_eq!(newest[0].version, Some(3));
        assert_eq!(newest[1], &other);
        assert!(!row(Some(3), 0, true).is_history());
        assert!(row(Some(3), 0, false).is_history());
    }
}
