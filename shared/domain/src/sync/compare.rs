//! What a listing means for the stored copy.
//!
//! - Per page (`compare_page`): an object listed with `id,version` is fetched in full only when the
//!   copy lacks it or holds an older version; a tombstoned one is never fetched (tombstones are final,
//!   the worker would refuse it anyway) but reported, since Tripletex still lists it.
//! - Per type (`deletion_candidates`): a stored, live object that a complete listing did not show may
//!   be gone. Only a listing of every partition and window that finished without an error counts
//!   (`ListingProgress::complete`), an object written after the listing began is never a candidate (it
//!   may have been created mid-scan), and a candidate is tombstoned only when Tripletex confirms it is
//!   gone (`Tombstoning::after_lookup`: 404 by id).

use std::collections::{BTreeSet, HashSet};

use jiff::Timestamp;

/// One object of a list page fetched with `fields=id,version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Listed {
    pub id: i64,
    pub version: Option<i64>,
}

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

/// What one list page asks of the sync.
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageVerdict {
    /// Fetch these in full (with the subscription's `fields`) and queue them.
    pub fetch: Vec<i64>,
    /// Of `fetch`, those the copy did not have at all.
    pub missing: usize,
    /// Of `fetch`, those the copy had at an older version (versions skipped in between are fine).
    pub behind: usize,
    pub unchanged: usize,
    /// Listed by Tripletex though the copy holds a tombstone: never fetched, reported.
    pub listed_after_delete: Vec<i64>,
}

/// The page against the copy. `stored` answers for the ids of the page (absent: not in the copy).
pub fn compare_page(
    listed: &[Listed],
    stored: impl Fn(i64) -> Option<StoredVersion>,
) -> PageVerdict {
    let mut verdict = PageVerdict::default();
    for object in listed {
        match stored(object.id) {
            None => {
                verdict.missing += 1;
                verdict.fetch.push(object.id);
            }
            Some(copy) if copy.deleted => verdict.listed_after_delete.push(object.id),
            Some(copy) => match (copy.version, object.version) {
                (Some(held), Some(listed)) if held < listed => {
                    verdict.behind += 1;
                    verdict.fetch.push(object.id);
                }
                // The copy's value came without a version: a versioned one replaces it.
                (None, Some(_)) => {
                    verdict.behind += 1;
                    verdict.fetch.push(object.id);
                }
                // Equal, or the copy is newer (a webhook that came after the listing), or Tripletex
                // listed no version to compare with.
                _ => verdict.unchanged += 1,
            },
        }
    }
    verdict
}

/// An id range `(after, until]` of one partition's listing sorted by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub after: i64,
    pub until: i64,
}

impl IdRange {
    fn contains(&self, id: i64) -> bool {
        self.after < id && id <= self.until
    }
}

/// The listing of one object type across its partitions and windows, page by page.
#[derive(Debug, Clone)]
pub struct ListingProgress {
    started_at: Timestamp,
    listed: HashSet<i64>,
    /// Pages Tripletex answered 304 to: unchanged since their digest, so nothing in their range can
    /// have gone.
    unchanged: Vec<IdRange>,
    failures: Vec<String>,
}

/// A listing that did not finish cleanly: it can never show that an object is gone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the listing is incomplete: {}", .failures.join("; "))]
pub struct IncompleteListing {
    pub failures: Vec<String>,
}

/// A listing of every partition and window that finished without an error.
#[derive(Debug, Clone)]
pub struct CompletedListing(ListingProgress);

impl ListingProgress {
    pub fn start(started_at: Timestamp) -> Self {
        Self {
            started_at,
            listed: HashSet::new(),
            unchanged: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn page(&mut self, listed: &[Listed]) {
        self.listed.extend(listed.iter().map(|object| object.id));
    }

    /// Objects listed by id alone: a page answered 304 lists the ids it held the last time.
    pub fn listed_ids(&mut self, ids: impl IntoIterator<Item = i64>) {
        self.listed.extend(ids);
    }

    pub fn unchanged_page(&mut self, range: IdRange) {
        self.unchanged.push(range);
    }

    /// A page, window or partition that failed (429 after the retries, 5xx, a window that cannot
    /// be split below 10,000 results, ...).
    pub fn failed(&mut self, reason: impl Into<String>) {
        self.failures.push(reason.into());
    }

    pub fn complete(self) -> Result<CompletedListing, IncompleteListing> {
        if self.failures.is_empty() {
            Ok(CompletedListing(self))
        } else {
            Err(IncompleteListing {
                failures: self.failures,
            })
        }
    }
}

/// Stored, live objects the listing did not show, written before it began: they may be gone.
pub fn deletion_candidates(
    listing: &CompletedListing,
    stored: impl IntoIterator<Item = StoredVersion>,
) -> BTreeSet<i64> {
    let listing = &listing.0;
    stored
        .into_iter()
        .filter(|copy| !copy.deleted)
        .filter(|copy| copy.updated_at < listing.started_at)
        .filter(|copy| !listing.listed.contains(&copy.id))
        .filter(|copy| {
            !listing
                .unchanged
                .iter()
                .any(|range| range.contains(copy.id))
        })
        .map(|copy| copy.id)
        .collect()
}

/// What Tripletex said when a candidate was looked up by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// 404 (code 6000): the object does not exist.
    NotFound,
    /// It exists (listed in no partition the sync knows, or created again): not deleted.
    Found,
    /// Any other answer (403, 429, 5xx, a timeout): nothing is known.
    Failed,
}

/// Whether a candidate becomes a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tombstoning {
    Tombstone,
    Keep,
}

impl Tombstoning {
    pub fn after_lookup(lookup: Lookup) -> Self {
        match lookup {
            Lookup::NotFound => Self::Tombstone,
            Lookup::Found | Lookup::Failed => Self::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        );
        assert_eq!(verdict.fetch, [2, 4]);
        assert_eq!(
            (verdict.missing, verdict.behind, verdict.unchanged),
            (1, 1, 2)
        );
    }

    #[test]
    fn skipped_versions_are_one_fetch_of_the_newest() {
        let verdict = compare_page(&[listed(1, 12)], copy(&[live(1, 3)]));
        assert_eq!(verdict.fetch, [1]);
        assert_eq!(verdict.behind, 1);
    }

    #[test]
    fn a_copy_newer_than_the_listing_is_left_alone() {
        // A webhook landed between Tripletex's answer and the compare.
        let verdict = compare_page(&[listed(1, 4)], copy(&[live(1, 5)]));
        assert!(verdict.fetch.is_empty());
        assert_eq!(verdict.unchanged, 1);
    }

    #[test]
    fn a_tombstone_then_a_listed_object_with_the_same_id_is_reported_never_fetched() {
        let tombstone = StoredVersion {
            deleted: true,
            ..live(1, 3)
        };
        let verdict = compare_page(&[listed(1, 4)], copy(&[tombstone]));
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
            compare_page(&[listed(1, 0)], copy(&[unversioned])).fetch,
            [1]
        );
        let without_version = Listed {
            id: 2,
            version: None,
        };
        let verdict = compare_page(&[without_version], copy(&[live(2, 1)]));
        assert_eq!(
            (verdict.fetch.len(), verdict.unchanged),
            (0, 1),
            "nothing to compare"
        );
    }

    fn complete(started_at: Timestamp, pages: &[&[Listed]]) -> CompletedListing {
        let mut progress = ListingProgress::start(started_at);
        for page in pages {
            progress.page(page);
        }
        progress.complete().unwrap()
    }

    #[test]
    fn a_stored_object_absent_from_a_complete_listing_is_a_candidate() {
        let listing = complete(at(100), &[&[listed(1, 0), listed(3, 0)]]);
        let candidates = deletion_candidates(&listing, [live(1, 0), live(2, 0), live(3, 0)]);
        assert_eq!(candidates.into_iter().collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn an_object_created_mid_scan_survives() {
        let listing = complete(at(100), &[&[listed(1, 0)]]);
        let created_during_the_scan = StoredVersion {
            updated_at: at(150),
            ..live(2, 0)
        };
        assert!(deletion_candidates(&listing, [live(1, 0), created_during_the_scan]).is_empty());
    }

    #[test]
    fn an_object_in_a_hidden_partition_is_not_a_candidate_once_that_partition_is_listed() {
        // An inactive customer: absent from the default (active) listing, present in the inactive one.
        let active: &[Listed] = &[listed(1, 0)];
        let inactive: &[Listed] = &[listed(2, 0)];
        let listing = complete(at(100), &[active, inactive]);
        assert!(deletion_candidates(&listing, [live(1, 0), live(2, 0)]).is_empty());
    }

    #[test]
    fn a_listing_cut_short_by_a_429_shows_nothing_is_gone() {
        let mut progress = ListingProgress::start(at(100));
        progress.page(&[listed(1, 0)]);
        progress.failed("page 2 of customer/active: rate limited after 5 attempts");
        let error = progress.complete().unwrap_err();
        assert_eq!(
            error.to_string(),
            "the listing is incomplete: page 2 of customer/active: rate limited after 5 attempts"
        );
    }

    #[test]
    fn a_page_answered_304_hides_no_deletion_in_its_range() {
        let mut progress = ListingProgress::start(at(100));
        progress.unchanged_page(IdRange {
            after: 0,
            until: 10,
        });
        progress.page(&[listed(11, 0)]);
        let listing = progress.complete().unwrap();
        let candidates = deletion_candidates(&listing, [live(5, 0), live(11, 0), live(12, 0)]);
        assert_eq!(candidates.into_iter().collect::<Vec<_>>(), [12]);
    }

    #[test]
    fn a_tombstone_is_never_a_candidate_again() {
        let listing = complete(at(100), &[&[]]);
        let tombstone = StoredVersion {
            deleted: true,
            ..live(1, 0)
        };
        assert!(deletion_candidates(&listing, [tombstone]).is_empty());
    }

    #[test]
    fn only_a_404_by_id_makes_a_tombstone() {
        assert_eq!(
            Tombstoning::after_lookup(Lookup::NotFound),
            Tombstoning::Tombstone
        );
        assert_eq!(Tombstoning::after_lookup(Lookup::Found), Tombstoning::Keep);
        assert_eq!(Tombstoning::after_lookup(Lookup::Failed), Tombstoning::Keep);
    }
}
