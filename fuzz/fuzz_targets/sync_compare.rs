//! The sync's compare rule over arbitrary listings and copies: every listed object is counted once,
//! an object is fetched exactly when the copy lacks it or holds it older (and is not known
//! unstorable at that version), and the check of the copy, walked stretch by stretch over arbitrary
//! batch sizes and bucket budgets, finds exactly the live, stored objects written before the listing
//! began that the listing did not show, each once, and always moves on.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use domain::sync::{
    Listed, ListedStretch, StoredVersion, bucket_end, check_stretch, compare_page, listed_bucket,
};
use jiff::Timestamp;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Small ids and versions, so that listings and copies overlap often.
fn id(input: &mut Unstructured) -> Result<i64> {
    Ok(i64::from(input.int_in_range(0u8..=40)?))
}

/// Small ids, some of them far apart, so that the check's walk crosses buckets.
fn spread_id(input: &mut Unstructured) -> Result<i64> {
    Ok(id(input)? * if input.arbitrary()? { 40_000 } else { 1 })
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
            id: spread_id(input)?,
            version: version(input)?,
            deleted: input.arbitrary()?,
            updated_at: at(input.int_in_range(0u8..=20)?),
        };
        stored.insert(copy.id, copy);
    }
    let started_at = at(10);
    let mut listed_ids = BTreeSet::new();
    let known_unstorable = vec![Listed {
        id: id(input)?,
        version: version(input)?,
    }];
    for _ in 0..input.int_in_range(0u8..=5)? {
        let mut page = Vec::new();
        for _ in 0..input.int_in_range(0u8..=12)? {
            page.push(Listed {
                id: spread_id(input)?,
                version: version(input)?,
            });
        }
        check_page(&page, &stored, &known_unstorable);
        listed_ids.extend(page.iter().map(|object| object.id));
    }
    let batch = usize::from(input.int_in_range(1u8..=8)?);
    let budget = usize::from(input.int_in_range(0u8..=8)?);
    let expected: BTreeSet<i64> = stored
        .values()
        .filter(|copy| {
            !copy.deleted && copy.updated_at < started_at && !listed_ids.contains(&copy.id)
        })
        .map(|copy| copy.id)
        .collect();
    let mut found = BTreeSet::new();
    let mut after = -1;
    for _ in 0..10_000 {
        let batch_stored: Vec<StoredVersion> = stored
            .range(after + 1..)
            .map(|(_, copy)| *copy)
            .take(batch)
            .collect();
        let listed = stretch_of(&listed_ids, after, budget);
        let check = check_stretch(after, &batch_stored, batch, &listed, started_at);
        for candidate in check.candidates {
            assert!(candidate > after, "a candidate of a stretch already checked");
            assert!(found.insert(candidate), "a candidate found twice");
        }
        match check.checked_to {
            None => {
                assert_eq!(found, expected);
                return Ok(());
            }
            Some(to) => {
                assert!(to > after, "a step that does not move on");
                after = to;
            }
        }
    }
    panic!("the check of the copy never ended");
}

/// What the run records answer: whole buckets above `after` until `budget` ids are read.
fn stretch_of(listed: &BTreeSet<i64>, after: i64, budget: usize) -> ListedStretch {
    let mut stretch = ListedStretch::default();
    let mut current = None;
    for &listed_id in listed.range(after + 1..) {
        let bucket = listed_bucket(listed_id);
        if current.is_some_and(|current| current != bucket) && stretch.ids.len() >= budget {
            stretch.complete_to = Some(bucket_end(bucket - 1));
            break;
        }
        current = Some(bucket);
        stretch.ids.push(listed_id);
    }
    stretch
}

fn check_page(page: &[Listed], stored: &BTreeMap<i64, StoredVersion>, known: &[Listed]) {
    let verdict = compare_page(page, |id| stored.get(&id).copied(), known);
    assert_eq!(verdict.fetch.len(), verdict.missing + verdict.behind);
    assert_eq!(
        verdict.fetch.len()
            + verdict.unchanged
            + verdict.listed_after_delete.len()
            + verdict.ahead.len()
            + verdict.known_unstorable,
        page.len(),
        "every listed object counted once"
    );
    let mut fetch = verdict.fetch.iter();
    let mut after_delete = verdict.listed_after_delete.iter();
    let mut ahead = verdict.ahead.iter();
    for listed in page {
        // A live copy newer than the listing is asked for by id, never fetched as a change.
        if let Some(copy) = stored.get(&listed.id)
            && !copy.deleted
            && copy.version.zip(listed.version).is_some_and(|(held, now)| held > now)
        {
            assert_eq!(ahead.next(), Some(&listed.id), "ahead in listing order");
        }
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
        if wanted && !known.contains(listed) {
            assert_eq!(fetch.next(), Some(&listed.id), "fetched in listing order");
        }
    }
    assert_eq!(fetch.next(), None, "fetched only what is missing or behind");
    assert_eq!(ahead.next(), None, "ahead only what the copy holds newer");
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
