//! Drift that was only late. A reconciliation's recheck counts as drift what the copy still lacks
//! once the webhooks on our queue are applied (`marker`); but Tripletex retries a failed delivery
//! for about 30 hours, so the webhook of a change counted as drift may still come. Each finding is
//! recorded with what it brought the copy to; when that webhook comes (or came first, and the
//! sync's fetch is the one that finds it stored), the worker's write is `Outcome::Corroborated`, and
//! settling the finding counts it once as drift delivered late. Drift counted less drift delivered
//! late is the changes whose webhook never came.

use std::fmt;
use std::time::Duration;

use crate::dedup::{ObjectChange, Outcome, Write};

/// How long a finding waits for its webhook: Tripletex's retries (about 30 hours) and a margin.
pub const FINDING_KEPT_FOR: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// What a finding brought the copy to: the version the sync fetched, or the object's tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Version(i64),
    Deleted,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version(version) => write!(f, "{version}"),
            Self::Deleted => f.write_str("deleted"),
        }
    }
}

/// One change a reconciliation counted as drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftFinding {
    pub id: i64,
    pub held: Held,
}

impl DriftFinding {
    /// The finding of a fetched object; none without a version, which no webhook can match.
    pub fn fetched(id: i64, version: Option<i64>) -> Option<Self> {
        version.map(|version| Self {
            id,
            held: Held::Version(version),
        })
    }

    pub fn deleted(id: i64) -> Self {
        Self {
            id,
            held: Held::Deleted,
        }
    }
}

/// What a record's outcome may settle: a change stored by one path and corroborated by the other
/// is a finding's webhook (or its fetch) at that version or delete.
pub fn settles(change: &ObjectChange, outcome: Outcome) -> Option<Held> {
    if outcome != Outcome::Corroborated {
        return None;
    }
    match change.write {
        Write::Versioned { version, .. } => Some(Held::Version(version)),
        Write::Delete => Some(Held::Deleted),
        Write::Unversioned { .. } | Write::Replace { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::dedup::{ObjectKey, Payload, Source};
    use crate::ids::TenantId;

    fn change(write: Write) -> ObjectChange {
        ObjectChange {
            key: ObjectKey {
                tenant: TenantId::default_tenant(),
                object_type: "customer".into(),
                object_id: 7,
            },
            write,
            event: "customer.update".into(),
            subscription_id: None,
            received_at: Timestamp::UNIX_EPOCH,
            source: Source::Webhook,
            probe: None,
            request: None,
        }
    }

    #[test]
    fn only_a_corroborated_version_or_delete_settles_a_finding() {
        let version = change(Write::Versioned {
            version: 4,
            payload: Payload::from_json("{}"),
        });
        assert_eq!(
            settles(&version, Outcome::Corroborated),
            Some(Held::Version(4))
        );
        assert_eq!(settles(&version, Outcome::Duplicate), None);
        assert_eq!(settles(&version, Outcome::Accepted), None);
        assert_eq!(
            settles(&change(Write::Delete), Outcome::Corroborated),
            Some(Held::Deleted)
        );
        let unversioned = change(Write::Unversioned {
            payload: Payload::from_json("{}"),
        });
        assert_eq!(settles(&unversioned, Outcome::Corroborated), None);
    }

    #[test]
    fn a_finding_names_what_it_brought_the_copy_to() {
        assert_eq!(DriftFinding::fetched(3, None), None, "no version to match");
        assert_eq!(
            DriftFinding::fetched(3, Some(9)).map(|f| f.held.to_string()),
            Some("9".to_owned())
        );
        assert_eq!(DriftFinding::deleted(3).held.to_string(), "deleted");
    }
}
