//! What `show` says of one object: the stored copy and, when asked, what Tripletex has, and the
//! rule for whether they agree.

use serde::Serialize;

use crate::aws::StoredObject;
use crate::tripletex::InTripletex;

/// One object: the stored copy and, when asked, what Tripletex has.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    pub key: String,
    pub stored: Option<StoredObject>,
    pub in_tripletex: Option<InTripletex>,
    pub checked_tripletex: bool,
}

impl Shown {
    /// The copy holds what Tripletex has: the same version, or a tombstone of what it no longer has.
    pub fn agrees(&self) -> bool {
        match (&self.stored, &self.in_tripletex) {
            (Some(stored), Some(now)) => !stored.deleted && stored.version == now.version,
            (Some(stored), None) => stored.deleted,
            (None, now) => now.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: i64, deleted: bool) -> StoredObject {
        StoredObject::at("acme#customer#1", version, deleted)
    }

    fn now(version: i64) -> InTripletex {
        InTripletex {
            version: Some(version),
            value: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_copy_agrees_with_the_same_version_or_a_tombstone_of_what_tripletex_no_longer_has() {
        let shown = |stored, in_tripletex| Shown {
            key: "acme#customer#1".into(),
            stored,
            in_tripletex,
            checked_tripletex: true,
        };
        assert!(shown(Some(stored(3, false)), Some(now(3))).agrees());
        assert!(
            !shown(Some(stored(2, false)), Some(now(3))).agrees(),
            "behind"
        );
        assert!(
            !shown(Some(stored(3, true)), Some(now(3))).agrees(),
            "a tombstone of a live object"
        );
        assert!(
            shown(Some(stored(3, true)), None).agrees(),
            "deleted in both"
        );
        assert!(
            !shown(Some(stored(3, false)), None).agrees(),
            "Tripletex deleted it"
        );
        assert!(!shown(None, Some(now(1))).agrees(), "never came");
        assert!(shown(None, None).agrees());
    }
}
