//! What a listing means for the stored copy.
//!
//! - Per page (`compare_page`): an object listed with `id,version` is fetched in full only when the
//!   copy lacks it or holds an older version; a tombstoned one is never fetched (tombstones are final,
//!   the worker would refuse it anyway) but reported, since Tripletex still lists it.
//! - Per stretch of ids (`check_stretch`): a stored, live object that the type's completed listing did
//!   not show may be gone. The copy and the run's listed ids are walked as two id-ordered streams, a
//!   bounded stretch per step; an object written after the listing began is never a candidate (it may
//!   have been created mid-scan). A candidate is looked up by id (`AfterLookup::decide`): tombstoned
//!   only when Tripletex confirms it is gone (404, code 6000), queued again when it exists at a newer
//!   version than the copy's (a deletion mid-scan moved it past the listing's pages).

use jiff::Timestamp;

use super::listing::{Listed, Lookup};

/// What the copy holds of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredVersion {
    pub id: i64,
    /// `None` when every value it had came without a version.
    pub version: Option<i64>,
    pub deleted: bool,
    /// When the worker last wrote the item.
    pub updated_at: Timestamp,
}

impl StoredVersion {
    /// What the sync compares of a stored item: a value stored without a version has none to
    /// compare (its `version` is only a floor), so a versioned listing replaces it.
    pub fn of(id: i64, state: &crate::dedup::StoredState, updated_at: Timestamp) -> Self {
        Self {
            id,
            version: if state.version_unknown {
                None
            } else {
                state.version
            },
            deleted: state.deleted,
            updated_at,
        }
    }
}

/// What one list page asks of the sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageVerdict {
    /// Fetch these in full (with the subscription's `fields`) and queue them.
    pub fetch: Vec<i64>,
    /// Of `fetch`, those the copy did not have at all.
    pub missing: usize,
    /// Of `fetch`, those the copy had at an older version (versions skipped in between are fine).
    pub behind: usize,
    pub unchanged: usize,
    /// Listed by Tripletex though the copy holds a tombstone: never fetched as a change; asked for
    /// by id (`contradicts`), since a forged or mistaken delete leaves exactly this.
    pub listed_after_delete: Vec<i64>,
    /// Held by the copy at a newer version than Tripletex lists: a webhook after the listing, or a
    /// version Tripletex never had (a forged or mistaken write). Asked for by id (`contradicts`).
    pub ahead: Vec<i64>,
    /// Missing or behind, but known unstorable at the listed version: not fetched again.
    pub known_unstorable: usize,
}

/// The page against the copy. `stored` answers for the ids of the page (absent: not in the copy);
/// `known_unstorable` are objects an earlier fetch found the worker can never store, at the version
/// they had then: set aside, not fetched again, until Tripletex lists a new version of them.
pub fn compare_page(
    listed: &[Listed],
    stored: impl Fn(i64) -> Option<StoredVersion>,
    known_unstorable: &[Listed],
) -> PageVerdict {
    let mut verdict = PageVerdict::default();
    for object in listed {
        let copy = stored(object.id);
        match behind(copy.as_ref(), object.version) {
            None if copy.is_some_and(|copy| copy.deleted) => {
                verdict.listed_after_delete.push(object.id);
            }
            None if copy
                .and_then(|copy| copy.version)
                .zip(object.version)
                .is_some_and(|(held, listed)| held > listed) =>
            {
                verdict.ahead.push(object.id);
            }
            None => verdict.unchanged += 1,
            Some(_) if known_unstorable.contains(object) => verdict.known_unstorable += 1,
            Some(how) => {
                match how {
                    Behind::Missing => verdict.missing += 1,
                    Behind::Older => verdict.behind += 1,
                }
                verdict.fetch.push(object.id);
            }
        }
    }
    verdict
}

/// How the copy trails an object Tripletex holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behind {
    /// The copy does not have it.
    Missing,
    /// The copy holds an older version (or a value that came without one).
    Older,
}

/// Whether the copy trails an object Tripletex holds at `version`: the one rule for what a sync
/// fetches, whether a listing, a lookup or a recheck found it. A tombstone never trails (tombstones
/// are final); a copy at the same version or newer (a webhook that came after the listing) does
/// not; nor does anything when Tripletex gave no version to compare with.
pub fn behind(copy: Option<&StoredVersion>, version: Option<i64>) -> Option<Behind> {
    let Some(copy) = copy else {
        return Some(Behind::Missing);
    };
    if copy.deleted {
        return None;
    }
    match (copy.version, version) {
        (Some(held), Some(listed)) if held < listed => Some(Behind::Older),
        // The copy's value came without a version: a versioned one replaces it.
        (None, Some(_)) => Some(Behind::Older),
        _ => None,
    }
}

/// A bucket of ids: the run's record of what it listed is kept by bucket, so that the check of the
/// copy reads the listed ids of one stretch of ids at a time, in id order, however large the type.
pub const LISTED_BUCKET_WIDTH: i64 = 1 << 16;

/// The bucket an id's listing is recorded in.
pub fn listed_bucket(id: i64) -> i64 {
    id.div_euclid(LISTED_BUCKET_WIDTH)
}

/// A page's ids grouped by the bucket each is recorded in.
pub fn by_listed_bucket(ids: &[i64]) -> std::collections::BTreeMap<i64, Vec<i64>> {
    let mut buckets: std::collections::BTreeMap<i64, Vec<i64>> = std::collections::BTreeMap::new();
    for &id in ids {
        buckets.entry(listed_bucket(id)).or_default().push(id);
    }
    buckets
}

/// The last id of a bucket.
pub fn bucket_end(bucket: i64) -> i64 {
    bucket
        .saturating_add(1)
        .saturating_mul(LISTED_BUCKET_WIDTH)
        .saturating_sub(1)
}

/// The ids a run listed of one type above some id, read in whole buckets: every listed id in
/// `(after, complete_to]` is in `ids`, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedStretch {
    pub ids: Vec<i64>,
    /// The last id this answer speaks for; `None` when it holds every listed id above `after`.
    pub complete_to: Option<i64>,
}

/// One step's share of the check of the copy against a completed listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StretchCheck {
    /// Stored, live objects the listing did not show, written before it began: they may be gone.
    pub candidates: Vec<i64>,
    /// Listed objects the copy does not hold (a tombstone counts as held): queued and not yet
    /// stored, or lost on the way. The type is not complete until they are stored.
    pub not_stored: Vec<i64>,
    /// The copy is checked up to this id; `None` when it is checked to its end.
    pub checked_to: Option<i64>,
}

/// Checks the stored copy above `after_id` against the run's listing of the type, as two id-ordered
/// streams: `stored` is the copy's next objects above `after_id` (in id order, at most `limit`, so
/// `stored.len() < limit` means the copy ends there), `listed` the run's listed ids above it. The
/// stretch checked ends where either stream's answer ends, so that a step holds only a bounded window
/// of each, whatever the size of the type.
///
/// Only a listing of every partition and window that finished without an error reaches this check
/// (a failed type's check is dropped with it); an object written after the listing began is never a
/// candidate (it may have been created mid-scan), nor is a tombstone.
pub fn check_stretch(
    after_id: i64,
    stored: &[StoredVersion],
    limit: usize,
    listed: &ListedStretch,
    started_at: Timestamp,
) -> StretchCheck {
    let stored_to = if stored.len() < limit {
        None
    } else {
        stored.last().map(|copy| copy.id)
    };
    let until = match (stored_to, listed.complete_to) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
    // Each step moves on, whatever an answer says.
    .map(|until| until.max(after_id.saturating_add(1)));
    let in_stretch = |id: i64| id > after_id && until.is_none_or(|until| id <= until);
    let candidates = stored
        .iter()
        .filter(|copy| in_stretch(copy.id))
        .filter(|copy| !copy.deleted && copy.updated_at < started_at)
        .filter(|copy| listed.ids.binary_search(&copy.id).is_err())
        .map(|copy| copy.id)
        .collect();
    // `stored` holds every stored id of the stretch, in order.
    let not_stored = listed
        .ids
        .iter()
        .copied()
        .filter(|&id| in_stretch(id))
        .filter(|&id| stored.binary_search_by_key(&id, |copy| copy.id).is_err())
        .collect();
    StretchCheck {
        candidates,
        not_stored,
        checked_to: until,
    }
}

impl PageVerdict {
    /// What the copy holds that the listing contradicts: asked for by id.
    pub fn contested(&self) -> impl Iterator<Item = i64> + '_ {
        self.listed_after_delete.iter().chain(&self.ahead).copied()
    }
}

/// Whether Tripletex's answer by id contradicts the copy, so that its object replaces it
/// (`dedup::Write::Replace`): it has the object though the copy holds a tombstone, or has it at an
/// older version than the copy's, a version it never had. A tombstone stays final against late
/// webhooks, never against Tripletex's own answer. A 404 contradicts nothing (the object was
/// deleted since it was listed: its delete is on its way or the check of the copy finds it); a
/// newer version is a webhook after the listing.
pub fn contradicts(lookup: &Lookup, copy: &StoredVersion) -> bool {
    let Lookup::Found(object) = lookup else {
        return false;
    };
    copy.deleted
        || copy
            .version
            .zip(object.version)
            .is_some_and(|(held, now)| now < held)
}

/// What becomes of a stored object the listing did not show, once it is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterLookup {
    /// Tripletex confirms it gone: a tombstone.
    Tombstone,
    /// It exists at a newer version than the copy's (the listing skipped it): queue it as looked up.
    Refresh,
    /// It exists as the copy has it.
    Keep,
}

impl AfterLookup {
    pub fn decide(lookup: &Lookup, copy: Option<&StoredVersion>) -> Self {
        match lookup {
            Lookup::NotFound => Self::Tombstone,
            Lookup::Found(object) => match behind(copy, object.version) {
                Some(_) => Self::Refresh,
                None => Self::Keep,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::listing::FetchedObject;
    use serde_json::value::RawValue;
    use std::collections::HashMap;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn live(id: i64, version: i64) -> StoredVersion {
        StoredVersion {
            id,
            version: Some(version),
            deleted: false,
            updated_at: at(0),
        }
    }

    fn listed(id: i64, version: i64) -> Listed {
        Listed {
            id,
            version: Some(version),
        }
    }

    fn copy(objects: &[StoredVersion]) -> impl Fn(i64) -> Option<StoredVersion> + use<> {
        let by_id: HashMap<i64, StoredVersion> = objects.iter().map(|o| (o.id, *o)).collect();
        move |id| by_id.get(&id).copied()
    }

    #[test]
    fn fetches_only_what_is_missing_or_behind() {
        let stored = [live(1, 3), live(2, 5), live(3, 9)];
        let verdict = compare_page(
            &[listed(1, 3), listed(2, 7), listed(3, 8), listed(4, 0)],
            copy(&stored),
            &[],
        );
        assert_eq!(verdict.fetch, [2, 4]);
        assert_eq!(
            (verdict.missing, verdict.behind, verdict.unchanged),
            (1, 1, 1)
        );
        assert_eq!(
            verdict.ahead,
            [3],
            "asked for by id, never fetched as a change"
        );
    }

    #[test]
    fn skipped_versions_are_one_fetch_of_the_newest() {
        let verdict = compare_page(&[listed(1, 12)], copy(&[live(1, 3)]), &[]);
        assert_eq!(verdict.fetch, [1]);
        assert_eq!(verdict.behind, 1);
    }

    #[test]
    fn a_copy_newer_than_the_listing_is_never_fetched_back() {
        // A webhook landed between Tripletex's answer and the compare (or a forged one: the
        // lookup by id tells them apart).
        let verdict = compare_page(&[listed(1, 4)], copy(&[live(1, 5)]), &[]);
        assert!(verdict.fetch.is_empty());
        assert_eq!(verdict.ahead, [1]);
    }

    #[test]
    fn a_copy_ahead_of_the_listing_is_contested_and_replaced_only_when_tripletex_contradicts_it() {
        let verdict = compare_page(
            &[listed(1, 4), listed(2, 4)],
            copy(&[live(1, 9), live(2, 4)]),
            &[],
        );
        assert_eq!(verdict.ahead, [1]);
        assert_eq!(verdict.unchanged, 1);
        assert_eq!(verdict.contested().collect::<Vec<_>>(), [1]);
        let forged = live(1, 9);
        assert!(
            contradicts(&found(1, Some(4)), &forged),
            "Tripletex never had 9"
        );
        assert!(
            !contradicts(&found(1, Some(9)), &forged),
            "a webhook after the listing"
        );
        assert!(!contradicts(&found(1, Some(10)), &forged));
        assert!(
            !contradicts(&Lookup::NotFound, &forged),
            "deleted since: not a contradiction"
        );
        let tombstone = StoredVersion {
            deleted: true,
            ..live(2, 4)
        };
        assert!(
            contradicts(&found(2, Some(4)), &tombstone),
            "Tripletex has what the copy deleted"
        );
        assert!(!contradicts(&Lookup::NotFound, &tombstone));
    }

    #[test]
    fn a_tombstone_then_a_listed_object_with_the_same_id_is_reported_never_fetched() {
        let tombstone = StoredVersion {
            deleted: true,
            ..live(1, 3)
        };
        let verdict = compare_page(&[listed(1, 4)], copy(&[tombstone]), &[]);
        assert!(verdict.fetch.is_empty(), "tombstones are final");
        assert_eq!(verdict.listed_after_delete, [1]);
    }

    #[test]
    fn an_unversioned_copy_is_replaced_by_a_versioned_listing() {
        let unversioned = StoredVersion {
            version: None,
            ..live(1, 0)
        };
        assert_eq!(
            compare_page(&[listed(1, 0)], copy(&[unversioned]), &[]).fetch,
            [1]
        );
        let without_version = Listed {
            id: 2,
            version: None,
        };
        let verdict = compare_page(&[without_version], copy(&[live(2, 1)]), &[]);
        assert_eq!(
            (verdict.fetch.len(), verdict.unchanged),
            (0, 1),
            "nothing to compare"
        );
    }

    #[test]
    fn an_object_known_unstorable_is_not_fetched_again_until_its_version_moves() {
        let known = [listed(4, 2)];
        let verdict = compare_page(&[listed(4, 2), listed(5, 1)], copy(&[]), &known);
        assert_eq!(verdict.fetch, [5]);
        assert_eq!((verdict.known_unstorable, verdict.missing), (1, 1));
        let verdict = compare_page(&[listed(4, 3)], copy(&[]), &known);
        assert_eq!(verdict.fetch, [4], "a new version may be storable");
    }

    fn stretch(ids: &[i64], complete_to: Option<i64>) -> ListedStretch {
        ListedStretch {
            ids: ids.to_vec(),
            complete_to,
        }
    }

    #[test]
    fn a_stored_object_absent_from_a_complete_listing_is_a_candidate() {
        let stored = [live(1, 0), live(2, 0), live(3, 0)];
        let check = check_stretch(0, &stored, 10, &stretch(&[1, 3], None), at(100));
        assert_eq!(check.candidates, [2]);
        assert_eq!(
            check.checked_to, None,
            "both streams ended: the copy is checked"
        );
    }

    #[test]
    fn a_listed_object_the_copy_lacks_is_not_stored_and_a_tombstone_counts_as_stored() {
        let tombstone = StoredVersion {
            deleted: true,
            ..live(3, 0)
        };
        let stored = [live(1, 0), tombstone, live(6, 0)];
        let check = check_stretch(0, &stored, 10, &stretch(&[1, 2, 3, 5, 6], None), at(100));
        assert_eq!(check.not_stored, [2, 5]);
        assert!(check.candidates.is_empty());
        // Only the stretch the step checks: past the copy's batch, the copy may go on.
        let check = check_stretch(
            0,
            &stored[..2],
            2,
            &stretch(&[1, 2, 3, 5, 6], None),
            at(100),
        );
        assert_eq!((check.not_stored, check.checked_to), (vec![2], Some(3)));
    }

    #[test]
    fn an_object_created_mid_scan_survives() {
        let created_during_the_scan = StoredVersion {
            updated_at: at(150),
            ..live(2, 0)
        };
        let check = check_stretch(
            0,
            &[live(1, 0), created_during_the_scan],
            10,
            &stretch(&[1], None),
            at(100),
        );
        assert!(check.candidates.is_empty());
    }

    #[test]
    fn a_tombstone_is_never_a_candidate_again() {
        let tombstone = StoredVersion {
            deleted: true,
            ..live(1, 0)
        };
        let check = check_stretch(0, &[tombstone], 10, &stretch(&[], None), at(100));
        assert!(check.candidates.is_empty());
    }

    #[test]
    fn the_stretch_ends_where_the_listed_ids_read_end() {
        // The copy goes on past what this step read of the listing: only up to there is checked.
        let stored = [live(5, 0), live(70_000, 0), live(70_001, 0)];
        let listed = stretch(&[5], Some(bucket_end(0)));
        let check = check_stretch(0, &stored, 10, &listed, at(100));
        assert!(
            check.candidates.is_empty(),
            "70,000 is beyond what was read"
        );
        assert_eq!(check.checked_to, Some(65_535));
        let listed = stretch(&[70_001], None);
        let check = check_stretch(65_535, &stored[1..], 10, &listed, at(100));
        assert_eq!(check.candidates, [70_000]);
        assert_eq!(check.checked_to, None);
    }

    #[test]
    fn the_stretch_ends_where_the_stored_batch_ends() {
        let stored = [live(1, 0), live(2, 0)];
        let check = check_stretch(0, &stored, 2, &stretch(&[1, 3, 9], None), at(100));
        assert_eq!(check.candidates, [2]);
        assert_eq!(check.checked_to, Some(2), "the copy may go on after 2");
        let check = check_stretch(2, &[live(9, 0)], 2, &stretch(&[3, 9], None), at(100));
        assert!(check.candidates.is_empty());
        assert_eq!(check.checked_to, None);
    }

    #[test]
    fn a_boundary_on_a_deleted_id_moves_on_past_it() {
        let tombstone = StoredVersion {
            deleted: true,
            ..live(2, 0)
        };
        let check = check_stretch(
            0,
            &[live(1, 0), tombstone],
            2,
            &stretch(&[1], None),
            at(100),
        );
        assert!(check.candidates.is_empty());
        assert_eq!(
            check.checked_to,
            Some(2),
            "the next step starts after the tombstone"
        );
    }

    #[test]
    fn an_empty_range_ends_the_check_or_moves_on() {
        let check = check_stretch(7, &[], 10, &stretch(&[], None), at(100));
        assert_eq!(check, StretchCheck::default());
        let check = check_stretch(7, &[], 10, &stretch(&[], Some(7)), at(100));
        assert_eq!(check.checked_to, Some(8), "a step always moves on");
    }

    #[test]
    fn buckets_tile_the_ids() {
        assert_eq!(listed_bucket(0), 0);
        assert_eq!(listed_bucket(LISTED_BUCKET_WIDTH - 1), 0);
        assert_eq!(listed_bucket(LISTED_BUCKET_WIDTH), 1);
        assert_eq!(
            bucket_end(listed_bucket(70_000)),
            2 * LISTED_BUCKET_WIDTH - 1
        );
    }

    fn found(id: i64, version: Option<i64>) -> Lookup {
        let json = match version {
            Some(v) => format!(r#"{{"id":{id},"version":{v}}}"#),
            None => format!(r#"{{"id":{id}}}"#),
        };
        Lookup::Found(FetchedObject::read(RawValue::from_string(json).unwrap()).unwrap())
    }

    #[test]
    fn only_a_404_by_id_makes_a_tombstone() {
        let copy = live(1, 3);
        assert_eq!(
            AfterLookup::decide(&Lookup::NotFound, Some(&copy)),
            AfterLookup::Tombstone
        );
        assert_eq!(
            AfterLookup::decide(&found(1, Some(3)), Some(&copy)),
            AfterLookup::Keep
        );
    }

    #[test]
    fn a_looked_up_object_newer_than_the_copy_is_queued_again() {
        // A deletion mid-scan moved it past the listing: the lookup is the only look the run had.
        let copy = live(1118, 0);
        assert_eq!(
            AfterLookup::decide(&found(1118, Some(1)), Some(&copy)),
            AfterLookup::Refresh
        );
        assert_eq!(
            AfterLookup::decide(&found(7, Some(0)), None),
            AfterLookup::Refresh
        );
    }
}
