//! Where a type's listing stands, as a sync task carries it from one invocation to the next: the
//! partition, the date window (for the types that need one) and the offset of the next page. A
//! listing starts with one cursor per partition over every date, moves page by page, and a window
//! Tripletex finds too large becomes its two halves. Pure: the function turns cursors into list calls
//! and queue messages.

use super::catalog::ObjectTypeSpec;
use super::window::{DateWindow, FULL_RANGE};

/// The next page of one partition (and window) of a type's listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Index into the type's `partitions`.
    pub partition: usize,
    pub window: Option<DateWindow>,
    pub from: u64,
}

/// A listing Tripletex says is too large that cannot be narrowed further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CannotSplit {
    /// A window that cannot be halved (a single day) and still holds more than Tripletex lists.
    #[error(
        "the window {from}..{to} is a single day with more objects than Tripletex lists at once"
    )]
    SingleDay {
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    },
    /// The type's list endpoint has no date filter to narrow it by.
    #[error(
        "Tripletex lists at most 10,000 of these at once, and the endpoint has no date filter to narrow it by"
    )]
    NoDateWindow,
}

/// The cursors a complete listing of `spec` starts from: one per partition, over every date.
pub fn first_cursors(spec: &ObjectTypeSpec) -> Vec<Cursor> {
    (0..spec.partitions.len())
        .map(|partition| Cursor {
            partition,
            window: spec.date_window.map(|_| FULL_RANGE),
            from: 0,
        })
        .collect()
}

impl Cursor {
    /// The page after one that held `received` objects of the `count` asked for; none when that page
    /// was the last (a short page: Tripletex's `fullResultSize` is not exact, so it is not used).
    pub fn after_page(&self, received: usize, count: u32) -> Option<Cursor> {
        (received >= count as usize && received > 0).then(|| Cursor {
            from: self.from + received as u64,
            ..*self
        })
    }

    /// The two cursors that replace this one when its window is too large. Halving restarts at the
    /// first page: "too large" is about the whole result, whatever the offset.
    pub fn split(&self) -> Result<[Cursor; 2], CannotSplit> {
        let window = self.window.ok_or(CannotSplit::NoDateWindow)?;
        let (first, second) = window.halves().ok_or(CannotSplit::SingleDay {
            from: window.from,
            to: window.to,
        })?;
        let restart = |window| Cursor {
            partition: self.partition,
            window: Some(window),
            from: 0,
        };
        Ok([restart(first), restart(second)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::catalog::listable;
    use jiff::civil::date;

    fn spec(object_type: &str) -> &'static ObjectTypeSpec {
        listable(object_type).unwrap_or_else(|| panic!("{object_type} is listable"))
    }

    #[test]
    fn a_listing_starts_once_per_partition_and_windowed_types_over_every_date() {
        let customers = first_cursors(spec("customer"));
        assert_eq!(customers.len(), 2, "active and inactive");
        assert!(customers.iter().all(|c| c.window.is_none() && c.from == 0));
        let vouchers = first_cursors(spec("voucher"));
        assert_eq!(
            vouchers,
            [0, 1].map(|partition| Cursor {
                partition,
                window: Some(FULL_RANGE),
                from: 0
            }),
            "posted and non-posted, each over every date"
        );
    }

    #[test]
    fn a_full_page_leads_to_the_next_and_a_short_one_ends_the_partition() {
        let start = first_cursors(spec("product"))[0];
        let next = start.after_page(1000, 1000).unwrap();
        assert_eq!(next.from, 1000);
        assert_eq!(next.after_page(1000, 1000).unwrap().from, 2000);
        assert_eq!(next.after_page(999, 1000), None);
        assert_eq!(
            start.after_page(0, 1000),
            None,
            "an empty listing ends at once"
        );
    }

    #[test]
    fn a_window_too_large_becomes_two_halves_restarting_at_their_first_page() {
        let deep = Cursor {
            from: 4000,
            ..first_cursors(spec("order"))[0]
        };
        let [first, second] = deep.split().unwrap();
        assert_eq!((first.from, second.from), (0, 0));
        assert_eq!(first.window.unwrap().to, second.window.unwrap().from);
        assert_eq!(first.window.unwrap().from, FULL_RANGE.from);
        assert_eq!(second.window.unwrap().to, FULL_RANGE.to);
    }

    #[test]
    fn a_type_without_date_filters_cannot_be_split_at_all() {
        let products = first_cursors(spec("product"))[0];
        assert_eq!(products.split(), Err(CannotSplit::NoDateWindow));
    }

    #[test]
    fn a_single_day_that_is_still_too_large_cannot_be_split_and_says_which() {
        let day = Cursor {
            partition: 0,
            window: Some(DateWindow {
                from: date(2026, 3, 1),
                to: date(2026, 3, 2),
            }),
            from: 0,
        };
        let error = day.split().unwrap_err();
        assert_eq!(
            error.to_string(),
            "the window 2026-03-01..2026-03-02 is a single day with more objects than Tripletex lists at once"
        );
    }
}
