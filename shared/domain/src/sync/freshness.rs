//! When each subscribed type's copy was last proven complete, and when that is overdue. A run that
//! never starts (a deleted schedule, a broken role, throttling) leaves no failed run behind: only
//! the age of the last confirmation shows it.

use jiff::{SignedDuration, Timestamp};

/// Where the sync's records keep a company's confirmations: one item per type under
/// `confirmed#<tenant>`, the time in `confirmedAt` (epoch seconds). The sync writes them, the CLI
/// reads them.
pub const CONFIRMED_KEY_PREFIX: &str = "confirmed#";
pub const CONFIRMED_AT: &str = "confirmedAt";

/// A nightly run confirms every type once a day; two hours of slack for a long night.
pub const CONFIRMATION_DUE: SignedDuration = SignedDuration::from_hours(26);

/// One type of one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFreshness {
    pub object_type: String,
    /// When the listing that last proved the copy complete began; none if no run ever did.
    pub confirmed_at: Option<Timestamp>,
    /// Confirmed, but longer ago than `CONFIRMATION_DUE`.
    pub overdue: bool,
}

/// Each of `types` with its last confirmation (from `confirmed`, type and time) as of `now`.
pub fn type_freshness(
    types: &[String],
    confirmed: &[(String, Timestamp)],
    now: Timestamp,
) -> Vec<TypeFreshness> {
    types
        .iter()
        .map(|object_type| {
            let confirmed_at = confirmed
                .iter()
                .filter(|(of, _)| of == object_type)
                .map(|(_, at)| *at)
                .max();
            TypeFreshness {
                object_type: object_type.clone(),
                confirmed_at,
                overdue: confirmed_at.is_some_and(|at| now.duration_since(at) > CONFIRMATION_DUE),
            }
        })
        .collect()
}

/// The figures the sync reports of every company's types, which the alarms watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreshnessSummary {
    /// The oldest confirmation's age, in seconds (0 when none is confirmed yet).
    pub oldest_confirmation_seconds: u64,
    /// Types never confirmed (a backfill not finished yet, or runs that never start).
    pub never_confirmed: u64,
    pub overdue: u64,
    /// Per type, the oldest confirmation's age over every company (a metric per company and type
    /// would be thousands at an accounting firm's scale; `status` names the company).
    pub oldest_by_type: std::collections::BTreeMap<String, u64>,
}

impl FreshnessSummary {
    pub fn add(&mut self, types: &[TypeFreshness], now: Timestamp) {
        for fresh in types {
            match fresh.confirmed_at {
                None => self.never_confirmed += 1,
                Some(at) => {
                    let age = now.duration_since(at).as_secs().max(0).unsigned_abs();
                    self.oldest_confirmation_seconds = self.oldest_confirmation_seconds.max(age);
                    let of_type = self
                        .oldest_by_type
                        .entry(fresh.object_type.clone())
                        .or_default();
                    *of_type = (*of_type).max(age);
                    self.overdue += u64::from(fresh.overdue);
                }
            }
        }
    }

    /// Under the names the metrics and alarms use.
    pub fn named(&self) -> [(&'static str, u64); 3] {
        [
            (
                "OldestConfirmationSeconds",
                self.oldest_confirmation_seconds,
            ),
            ("TypesNeverConfirmed", self.never_confirmed),
            ("TypesConfirmationOverdue", self.overdue),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours_ago: i64, now: Timestamp) -> Timestamp {
        now - SignedDuration::from_hours(hours_ago)
    }

    #[test]
    fn a_type_confirmed_over_26_hours_ago_is_overdue_and_one_never_confirmed_is_counted_apart() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let types = [
            "customer".to_owned(),
            "product".to_owned(),
            "order".to_owned(),
        ];
        let confirmed = [
            ("customer".to_owned(), at(30, now)),
            ("customer".to_owned(), at(27, now)),
            ("product".to_owned(), at(2, now)),
            ("voucher".to_owned(), at(99, now)),
        ];
        let fresh = type_freshness(&types, &confirmed, now);
        assert_eq!(
            fresh[0].confirmed_at,
            Some(at(27, now)),
            "the latest counts"
        );
        assert!(fresh[0].overdue);
        assert!(!fresh[1].overdue);
        assert_eq!((fresh[2].confirmed_at, fresh[2].overdue), (None, false));
        let mut summary = FreshnessSummary::default();
        summary.add(&fresh, now);
        assert_eq!(
            (
                summary.oldest_confirmation_seconds,
                summary.never_confirmed,
                summary.overdue
            ),
            (27 * 3600, 1, 1),
            "a type no longer subscribed (voucher) is not watched"
        );
        let other = [("customer".to_owned(), at(1, now))];
        summary.add(&type_freshness(&types, &other, now), now);
        assert_eq!(
            summary.oldest_by_type.into_iter().collect::<Vec<_>>(),
            [
                ("customer".to_owned(), 27 * 3600),
                ("product".to_owned(), 2 * 3600)
            ],
            "per type, the oldest over every company"
        );
    }
}
