//! The sync's compare rule over arbitrary listings and copies: every listed object is counted once,
//! an object is fetched exactly when the copy lacks it or holds it older, and a deletion candidate is
//! exactly a live, stored object written before the listing began that the complete listing did not
//! show, in no page Tripletex answered 304 to.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use domain::sync::{
    IdRange, Listed, ListingProgress, StoredVersion, compare_page, deletion_candidates,
};
use jiff::Timestamp;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Small ids and versions, so that listings and copies overlap often.
fn id(input: &mut Unstructured) -> Result<i64> {
    Ok(i64::from(input.int_in_range(0u8..=40)?))
}

fn version(input: &mut Unstructured) -> Result<Option<i64>> {
    Ok(if input.arbitrary()? {
        Some(i64::from(input.int_in_range(0u8..=6)?))
    } else {
        None
    })
}

fn at(second: u8) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + i64::from(second)).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn run(input: &mut Unstructured) -> Result<()> {
    let mut stored = BTreeMap::new();
    for _ in 0..input.int_in_range(0u8..=30)? {
        let copy = StoredVersion {
            id: id(input)?,
            version: version(input)?,
            deleted: input.arbitrary()?,
            updated_at: at(input.int_in_range(0u8..=20)?),
        };
        stored.insert(copy.id, copy);
    }
    let started_at = at(10);
    let mut progress = ListingProgress::start(started_at);
    let mut listed_ids = BTreeSet::new();
    let mut unchanged_ranges = Vec::new();
    let mut failed = false;
    for _ in 0..input.int_in_range(0u8..=5)? {
        match input.int_in_range(0u8..=9)? {
            0 => {
                let after = id(input)?;
                let range = IdRange {
                    after,
                    until: after + id(input)?,
                };
                unchanged_ranges.push(range);
                progress.unchanged_page(range);
            }
            1 => {
                failed = true;
                progress.failed("a page failed");
            }
            _ => {
                let mut page = Vec::new();
                for _ in 0..input.int_in_range(0u8..=12)? {
                    page.push(Listed {
                        id: id(input)?,
                        version: version(input)?,
                    });
                }
                check_page(&page, &stored);
                listed_ids.extend(page.iter().map(|object| object.id));
                progress.page(&page);
            }
        }
    }
    match progress.complete() {
        Err(_) => assert!(failed, "a listing without a failure is complete"),
        Ok(listing) => {
            assert!(!failed, "a listing with a failure counted as complete");
            let candidates = deletion_candidates(&listing, stored.values().copied());
            let expected: BTreeSet<i64> = stored
                .values()
                .filter(|copy| {
                    !copy.deleted
                        && copy.updated_at < started_at
                        && !listed_ids.contains(&copy.id)
                        && !unchanged_ranges
                            .iter()
                            .any(|range| range.after < copy.id && copy.id <= range.until)
                })
                .map(|copy| copy.id)
                .collect();
            assert_eq!(candidates, expected);
        }
    }
    Ok(())
}

fn check_page(page: &[Listed], stored: &BTreeMap<i64, StoredVersion>) {
    let verdict = compare_page(page, |id| stored.get(&id).copied());
    assert_eq!(verdict.fetch.len(), verdict.missing + verdict.behind);
    assert_eq!(
        verdict.fetch.len() + verdict.unchanged + verdict.listed_after_delete.len(),
        page.len(),
        "every listed object counted once"
    );
    let mut fetch = verdict.fetch.iter();
    let mut after_delete = verdict.listed_after_delete.iter();
    for listed in page {
        let wanted = match stored.get(&listed.id) {
            None => true,
            Some(copy) if copy.deleted => {
                assert_eq!(after_delete.next(), Some(&listed.id));
                false
            }
            Some(copy) => match (copy.version, listed.version) {
                (None, Some(_)) => true,
                (Some(held), Some(now)) => held < now,
                (_, None) => false,
            },
        };
        if wanted {
            assert_eq!(fetch.next(), Some(&listed.id), "fetched in listing order");
        }
    }
    assert_eq!(fetch.next(), None, "fetched only what is missing or behind");
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
