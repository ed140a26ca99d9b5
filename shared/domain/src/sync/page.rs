//! The page protocol: what one listed page decides, given Tripletex's answer, what the sync
//! remembers of the page, what the copy holds of its objects and where the run stands.
//!
//! The copy is compared, never remembered: a page Tripletex answers 304 is compared against the
//! copy like any other (its objects are the ones remembered with its digest), so that an object the
//! copy lost outside the worker (a purge, a restored table, a mistaken delete) or holds at an older
//! version is fetched again even when Tripletex has nothing new to say. Only the objects to fetch
//! cost a Tripletex request; the comparison costs the copy's reads by id.
//!
//! `plan_page` decides before the fetch: what to fetch now, what rides along to the next page's
//! fetch, what a reconciliation keeps for its recheck. `PagePlan::settle` decides after it: which
//! memory to keep for the page (its digest is trusted, `confirmed`, only once every object it showed
//! missing or behind is queued) and which earlier pages the fetch confirmed.

use super::compare::{PageVerdict, StoredVersion, compare_page};
use super::listing::Listed;
use super::run::PageMemory;

/// Tripletex's answer for a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageAnswer<'a> {
    /// 304: the page is as its remembered digest says.
    NotModified,
    /// The page's objects (`id,version`) and its new digest.
    Listed {
        objects: &'a [Listed],
        digest: Option<&'a str>,
    },
}

/// What the protocol needs to know about a page.
pub struct PageInput<'a> {
    pub page_key: &'a str,
    pub answer: PageAnswer<'a>,
    /// What was remembered of this page (the digest sent is this memory's, when it is confirmed).
    pub memory: Option<&'a PageMemory>,
    /// What the copy holds of an id of the page (absent: not in the copy).
    pub stored: &'a dyn Fn(i64) -> Option<StoredVersion>,
    /// Objects known unstorable at a version: not fetched again at that version.
    pub known_unstorable: &'a [Listed],
    /// Ids earlier pages of this partition and window left to fetch, and those pages.
    pub carried: &'a [i64],
    pub unconfirmed: &'a [String],
    /// In a reconciliation that rechecks this type: how many more suspects the run may hold.
    /// `None` when findings are fetched at once (a backfill, a resync).
    pub suspect_room: Option<usize>,
    pub page_size: u32,
    pub fetch_batch: usize,
}

/// What a page decides before its fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePlan {
    pub page_key: String,
    /// The page's objects, from Tripletex's answer or, on a 304, from its memory.
    pub listed: Vec<Listed>,
    /// The page answered 304.
    pub not_modified: bool,
    pub verdict: PageVerdict,
    /// Findings kept for the reconciliation's recheck (their webhooks may be in flight), with the
    /// version listed.
    pub deferred: Vec<Listed>,
    /// Ids to fetch now (with those carried from earlier pages), or `None` when the fetch rides
    /// along to a later page of the same partition and window.
    pub fetch_now: Option<Vec<i64>>,
    /// What rides along when nothing is fetched now.
    pub carry: Vec<i64>,
    /// The pages whose fetch is `fetch_now`: confirmed when it is complete.
    pub confirms: Vec<String>,
    digest: Option<String>,
    remembered: Option<PageMemory>,
    has_own_fetch: bool,
}

impl PagePlan {
    /// The last page of its partition and window (fewer objects than asked for).
    pub fn is_last(&self, page_size: u32) -> bool {
        self.listed.len() < page_size as usize
    }

    pub fn ids(&self) -> Vec<i64> {
        self.listed.iter().map(|object| object.id).collect()
    }

    /// What follows the fetch: `fetched_all` is whether every id of `fetch_now` was queued or set
    /// aside as unstorable (ignored when nothing was fetched now).
    pub fn settle(&self, fetched_all: bool) -> PageSettled {
        let flushed = self.fetch_now.is_some();
        let mut settled = PageSettled {
            remember: None,
            confirm_pages: Vec::new(),
            carry: self.carry.clone(),
            unconfirmed: Vec::new(),
        };
        if flushed && fetched_all {
            settled.confirm_pages = self.confirms.clone();
        }
        let Some(digest) = &self.digest else {
            if !flushed {
                settled.unconfirmed = self.confirms.clone();
            }
            return settled;
        };
        // A page with findings left for the recheck is listed in full next time; one whose own
        // findings are not all queued yet is confirmed by the fetch they ride along to.
        let confirmed =
            self.deferred.is_empty() && (!self.has_own_fetch || (flushed && fetched_all));
        let memory = PageMemory {
            digest: digest.clone(),
            objects: self.listed.clone(),
            confirmed,
        };
        if self.remembered.as_ref() != Some(&memory) {
            settled.remember = Some(memory);
        }
        if !flushed {
            settled.unconfirmed = self.confirms.clone();
            if !confirmed && self.deferred.is_empty() {
                settled.unconfirmed.push(self.page_key.clone());
            }
        }
        settled
    }
}

/// What a page leaves once its fetch is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSettled {
    /// The page's memory to keep, when it differs from what is remembered.
    pub remember: Option<PageMemory>,
    /// Earlier pages whose objects are now all queued.
    pub confirm_pages: Vec<String>,
    /// Ids that ride along to the next page, and the pages they came from.
    pub carry: Vec<i64>,
    pub unconfirmed: Vec<String>,
}

/// Decides what a listed page asks for. A 304 without a memory to compare cannot happen (no digest
/// is sent without one): it is read as an empty page's answer would be, fetching nothing.
pub fn plan_page(input: &PageInput<'_>) -> PagePlan {
    let (listed, digest, not_modified) = match input.answer {
        PageAnswer::NotModified => (
            input
                .memory
                .map(|memory| memory.objects.clone())
                .unwrap_or_default(),
            input.memory.map(|memory| memory.digest.clone()),
            true,
        ),
        PageAnswer::Listed { objects, digest } => {
            (objects.to_vec(), digest.map(str::to_owned), false)
        }
    };
    let mut verdict = compare_page(&listed, input.stored, input.known_unstorable);
    let mut own_fetch = std::mem::take(&mut verdict.fetch);
    let mut deferred = Vec::new();
    if let Some(room) = input.suspect_room
        && own_fetch.len() <= room
    {
        // A page's findings are either all the recheck's or all its own fetch's.
        deferred = own_fetch
            .drain(..)
            .map(|id| Listed {
                id,
                version: listed
                    .iter()
                    .find(|object| object.id == id)
                    .and_then(|object| object.version),
            })
            .collect();
    }
    verdict.fetch = own_fetch.clone();
    let has_own_fetch = !own_fetch.is_empty();
    let last = listed.len() < input.page_size as usize;
    let mut wanted = input.carried.to_vec();
    wanted.extend(&own_fetch);
    let flush = last || wanted.len() >= input.fetch_batch;
    // This page itself is confirmed by the memory `settle` keeps for it.
    let confirms = input.unconfirmed.to_vec();
    let (fetch_now, carry) = if flush {
        (Some(wanted), Vec::new())
    } else {
        (None, wanted)
    };
    PagePlan {
        page_key: input.page_key.to_owned(),
        listed,
        not_modified,
        verdict,
        deferred,
        fetch_now,
        carry,
        confirms,
        digest,
        remembered: input.memory.cloned(),
        has_own_fetch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use std::collections::HashMap;

    fn listed(id: i64, version: i64) -> Listed {
        Listed {
            id,
            version: Some(version),
        }
    }

    fn live(id: i64, version: i64) -> StoredVersion {
        StoredVersion {
            id,
            version: Some(version),
            deleted: false,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn memory(objects: &[Listed], confirmed: bool) -> PageMemory {
        PageMemory {
            digest: "d1".into(),
            objects: objects.to_vec(),
            confirmed,
        }
    }

    struct Case<'a> {
        answer: PageAnswer<'a>,
        memory: Option<PageMemory>,
        copy: Vec<StoredVersion>,
        carried: Vec<i64>,
        suspect_room: Option<usize>,
    }

    const PAGE: [Listed; 3] = [
        Listed {
            id: 1,
            version: Some(2),
        },
        Listed {
            id: 2,
            version: Some(2),
        },
        Listed {
            id: 3,
            version: Some(2),
        },
    ];

    fn plan(case: &Case<'_>) -> PagePlan {
        let by_id: HashMap<i64, StoredVersion> = case.copy.iter().map(|c| (c.id, *c)).collect();
        let stored = move |id| by_id.get(&id).copied();
        plan_page(&PageInput {
            page_key: "product/all/-/0+3",
            answer: case.answer,
            memory: case.memory.as_ref(),
            stored: &stored,
            known_unstorable: &[],
            carried: &case.carried,
            unconfirmed: &[],
            suspect_room: case.suspect_room,
            page_size: 3,
            fetch_batch: 2,
        })
    }

    fn whole_copy() -> Vec<StoredVersion> {
        vec![live(1, 2), live(2, 2), live(3, 2)]
    }

    #[test]
    fn a_304_over_a_whole_copy_fetches_nothing_and_writes_nothing() {
        let plan = plan(&Case {
            answer: PageAnswer::NotModified,
            memory: Some(memory(&PAGE, true)),
            copy: whole_copy(),
            carried: vec![],
            suspect_room: None,
        });
        assert!(plan.not_modified);
        assert_eq!(plan.verdict.unchanged, 3);
        assert!(!plan.is_last(3));
        assert_eq!(plan.fetch_now, None);
        assert_eq!(
            plan.settle(true).remember,
            None,
            "the memory stands as it was"
        );
    }

    #[test]
    fn a_304_page_whose_objects_left_the_copy_fetches_them() {
        // The copy was purged or lost objects outside the worker: Tripletex has nothing new to say.
        let plan = plan(&Case {
            answer: PageAnswer::NotModified,
            memory: Some(memory(&PAGE, true)),
            copy: vec![live(2, 2)],
            carried: vec![],
            suspect_room: None,
        });
        assert_eq!(plan.fetch_now, Some(vec![1, 3]));
        assert_eq!(plan.verdict.missing, 2);
        let settled = plan.settle(true);
        assert_eq!(
            settled.remember, None,
            "its memory was confirmed and stays so"
        );
        let settled = plan.settle(false);
        assert_eq!(
            settled.remember.map(|m| m.confirmed),
            Some(false),
            "a fetch that did not bring them all lists the page in full next time"
        );
    }

    #[test]
    fn a_304_page_whose_copy_was_rolled_back_fetches_the_listed_version() {
        let plan = plan(&Case {
            answer: PageAnswer::NotModified,
            memory: Some(memory(&PAGE, true)),
            copy: vec![live(1, 2), live(2, 1), live(3, 2)],
            carried: vec![],
            suspect_room: None,
        });
        assert_eq!(plan.verdict.fetch, [2]);
        assert_eq!(plan.verdict.behind, 1);
        assert_eq!(plan.carry, [2], "one finding rides along to a fuller fetch");
    }

    #[test]
    fn a_reconciliation_keeps_a_304_pages_findings_for_its_recheck() {
        let plan = plan(&Case {
            answer: PageAnswer::NotModified,
            memory: Some(memory(&PAGE, true)),
            copy: vec![live(1, 2), live(2, 2)],
            carried: vec![],
            suspect_room: Some(10),
        });
        assert_eq!(plan.deferred, [listed(3, 2)]);
        assert_eq!(plan.fetch_now, None);
        let settled = plan.settle(true);
        assert_eq!(
            settled.remember.map(|m| m.confirmed),
            Some(false),
            "listed in full until the recheck confirms it"
        );
        assert!(settled.unconfirmed.is_empty(), "the recheck confirms it");
    }

    #[test]
    fn findings_beyond_the_suspects_room_are_fetched_at_once() {
        let plan = plan(&Case {
            answer: PageAnswer::Listed {
                objects: &PAGE,
                digest: Some("d2"),
            },
            memory: None,
            copy: vec![],
            carried: vec![],
            suspect_room: Some(2),
        });
        assert!(plan.deferred.is_empty());
        assert_eq!(plan.fetch_now, Some(vec![1, 2, 3]));
    }

    #[test]
    fn a_few_findings_ride_along_and_the_page_is_confirmed_by_the_later_fetch() {
        let plan = plan(&Case {
            answer: PageAnswer::Listed {
                objects: &PAGE,
                digest: Some("d2"),
            },
            memory: None,
            copy: vec![live(1, 2), live(2, 2)],
            carried: vec![],
            suspect_room: None,
        });
        assert_eq!(plan.fetch_now, None);
        assert_eq!(plan.carry, [3]);
        let settled = plan.settle(true);
        assert_eq!(settled.remember.map(|m| m.confirmed), Some(false));
        assert_eq!(settled.unconfirmed, ["product/all/-/0+3"]);
        assert!(settled.confirm_pages.is_empty());
    }

    #[test]
    fn the_last_page_fetches_what_rode_along_and_confirms_its_pages() {
        let short = [listed(7, 1)];
        let by_id: HashMap<i64, StoredVersion> = HashMap::new();
        let stored = move |id| by_id.get(&id).copied();
        let plan = plan_page(&PageInput {
            page_key: "p2",
            answer: PageAnswer::Listed {
                objects: &short,
                digest: Some("d"),
            },
            memory: None,
            stored: &stored,
            known_unstorable: &[],
            carried: &[3],
            unconfirmed: &["p1".to_owned()],
            suspect_room: None,
            page_size: 3,
            fetch_batch: 5,
        });
        assert_eq!(plan.fetch_now, Some(vec![3, 7]));
        let settled = plan.settle(true);
        assert_eq!(settled.confirm_pages, ["p1"]);
        assert_eq!(settled.remember.map(|m| m.confirmed), Some(true));
        let settled = plan.settle(false);
        assert!(settled.confirm_pages.is_empty());
        assert_eq!(settled.remember.map(|m| m.confirmed), Some(false));
    }

    #[test]
    fn a_changed_page_is_remembered_with_its_new_digest_and_versions() {
        let changed = [listed(1, 2), listed(2, 3), listed(3, 2)];
        let plan = plan(&Case {
            answer: PageAnswer::Listed {
                objects: &changed,
                digest: Some("d2"),
            },
            memory: Some(memory(&PAGE, true)),
            copy: vec![live(1, 2), live(2, 3), live(3, 2)],
            carried: vec![],
            suspect_room: None,
        });
        let remembered = plan.settle(true).remember.expect("a new digest is kept");
        assert_eq!(remembered.digest, "d2");
        assert_eq!(remembered.objects, changed);
        assert!(remembered.confirmed);
    }

    #[test]
    fn a_page_without_a_digest_is_not_remembered() {
        let plan = plan(&Case {
            answer: PageAnswer::Listed {
                objects: &PAGE,
                digest: None,
            },
            memory: None,
            copy: whole_copy(),
            carried: vec![],
            suspect_room: None,
        });
        assert_eq!(plan.settle(true).remember, None);
    }
}
