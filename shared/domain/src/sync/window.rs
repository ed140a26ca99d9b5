//! Date windows `[from, to)` for the list endpoints that require dates. Together they cover every
//! date an object can carry; one that Tripletex refuses as too large (422, code 23000: more than
//! 10,000 results) is split in half, and the halves are adjacent, so nothing falls between them.

use jiff::civil::{Date, date};

/// From a floor well before any accounting date to a ceiling well after: orders and invoices can be
/// dated ahead (subscriptions, pre-dated invoices), and history can predate the company in Tripletex.
pub const FULL_RANGE: DateWindow = DateWindow {
    from: date(1900, 1, 1),
    to: date(2100, 1, 1),
};

/// From (inclusive) to (exclusive), as Tripletex's date parameters take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DateWindow {
    pub from: Date,
    pub to: Date,
}

impl DateWindow {
    /// Two adjacent windows that together are this one; none when it is a single day, which cannot
    /// be split further (a day with more than 10,000 objects cannot be listed by date alone).
    pub fn halves(&self) -> Option<(DateWindow, DateWindow)> {
        let days = self.from.until(self.to).ok()?.get_days();
        if days < 2 {
            return None;
        }
        let middle = self
            .from
            .checked_add(jiff::Span::new().days(days / 2))
            .ok()?;
        Some((
            DateWindow {
                from: self.from,
                to: middle,
            },
            DateWindow {
                from: middle,
                to: self.to,
            },
        ))
    }

    /// The query parameters of this window, under the endpoint's names for them.
    pub fn query(
        &self,
        (from_name, to_name): (&'static str, &'static str),
    ) -> [(&'static str, String); 2] {
        [
            (from_name, self.from.to_string()),
            (to_name, self.to.to_string()),
        ]
    }
}

/// Whether these windows, in any order, tile `FULL_RANGE` exactly: adjacent, no gap, no overlap.
/// Windows remembered from an earlier listing are used only then; a gap would hide objects.
pub fn tile_every_date(windows: &[DateWindow]) -> bool {
    let mut sorted = windows.to_vec();
    sorted.sort_by_key(|window| window.from);
    let mut reached = FULL_RANGE.from;
    for window in &sorted {
        if window.from != reached || window.to <= window.from {
            return false;
        }
        reached = window.to;
    }
    !sorted.is_empty() && reached == FULL_RANGE.to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_windows_are_trusted_only_when_they_tile_every_date() {
        let (first, second) = FULL_RANGE.halves().unwrap();
        let (a, b) = second.halves().unwrap();
        assert!(tile_every_date(&[b, first, a]), "any order");
        assert!(!tile_every_date(&[first, b]), "a gap");
        assert!(!tile_every_date(&[first, second, a]), "an overlap");
        assert!(!tile_every_date(&[]));
        assert!(tile_every_date(&[FULL_RANGE]));
    }

    #[test]
    fn halves_are_adjacent_and_cover_the_window() {
        let (first, second) = FULL_RANGE.halves().unwrap();
        assert_eq!(first.from, FULL_RANGE.from);
        assert_eq!(first.to, second.from, "adjacent: no gap, no overlap");
        assert_eq!(second.to, FULL_RANGE.to);
    }

    #[test]
    fn repeated_halving_reaches_single_days_and_stops_there() {
        let mut window = FULL_RANGE;
        let mut splits = 0;
        while let Some((first, _)) = window.halves() {
            window = first;
            splits += 1;
        }
        assert_eq!(window.from.until(window.to).unwrap().get_days(), 1);
        assert!(
            splits <= 17,
            "200 years of days in at most 17 halvings: {splits}"
        );
        let two_days = DateWindow {
            from: date(2026, 1, 1),
            to: date(2026, 1, 3),
        };
        let (a, b) = two_days.halves().unwrap();
        assert_eq!((a.to, b.from), (date(2026, 1, 2), date(2026, 1, 2)));
    }

    #[test]
    fn the_query_uses_the_endpoint_s_names_and_iso_dates() {
        let window = DateWindow {
            from: date(2026, 1, 1),
            to: date(2027, 1, 1),
        };
        assert_eq!(
            window.query(("orderDateFrom", "orderDateTo")),
            [
                ("orderDateFrom", "2026-01-01".to_owned()),
                ("orderDateTo", "2027-01-01".to_owned())
            ]
        );
    }
}
