//! How a keeper run spreads its companies over the invocation's time: which companies it has (the
//! ones asked for, looked after or being removed), in what order (the longest-waiting first:
//! `waiting`), when it stops starting new ones (its deadline less a margin), which wait because
//! their key was rate-limited (one key, one limit, whatever company it acts for), and which were
//! not reached. The keeper function only reads, asks these and writes.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::ids::TenantId;
use crate::keeper::{CompanyReport, place_in_line, still_waiting};
use crate::registry::Directory;
use crate::tripletex::TripletexCredentials;

/// One company for this run: keep it, or (being removed) delete our subscriptions in it.
#[derive(Debug, Clone, Copy)]
pub enum Job<'a> {
    Keep(&'a TenantId, &'a TripletexCredentials),
    Offboard(&'a TenantId, &'a TripletexCredentials),
}

impl<'a> Job<'a> {
    pub fn tenant(&self) -> &'a TenantId {
        match self {
            Self::Keep(tenant, _) | Self::Offboard(tenant, _) => tenant,
        }
    }

    pub fn credentials(&self) -> &'a TripletexCredentials {
        match self {
            Self::Keep(_, credentials) | Self::Offboard(_, credentials) => credentials,
        }
    }
}

/// A company asked for that the directory does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no Tripletex company is configured for tenant {0:?}")]
pub struct UnknownTenant(pub String);

/// The run's companies: every one looked after or being removed, or only those `wanted` (each of
/// which must be known), the longest-waiting first (`waiting`, the line the last run left), then in
/// tenant order.
pub fn jobs<'a>(
    directory: &'a Directory,
    wanted: Option<&[TenantId]>,
    waiting: &[String],
) -> Result<Vec<Job<'a>>, UnknownTenant> {
    let known = |tenant: &TenantId| {
        directory.looked_after.0.contains_key(tenant) || directory.leaving.0.contains_key(tenant)
    };
    if let Some(unknown) = wanted.into_iter().flatten().find(|tenant| !known(tenant)) {
        return Err(UnknownTenant(unknown.to_string()));
    }
    let is_wanted = |tenant: &TenantId| wanted.is_none_or(|wanted| wanted.contains(tenant));
    let keep = directory
        .looked_after
        .0
        .iter()
        .filter(|(tenant, _)| is_wanted(tenant))
        .map(|(tenant, credentials)| Job::Keep(tenant, credentials));
    let offboard = directory
        .leaving
        .0
        .iter()
        .filter(|(tenant, _)| is_wanted(tenant))
        .map(|(tenant, credentials)| Job::Offboard(tenant, credentials));
    let mut jobs: Vec<Job> = keep.chain(offboard).collect();
    // A stable sort keeps tenant order behind the ones waiting.
    let place = place_in_line(waiting);
    jobs.sort_by_key(|job| place(job.tenant().as_str()));
    Ok(jobs)
}

/// How the keeper spreads a run over many companies within its invocation's time.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Companies handled at once (each company's calls run one after another).
    pub company_concurrency: usize,
    /// No company is started later than this before the invocation's deadline, so that every
    /// company started ends in time; the ones not started are reported and go first next run.
    pub deadline_margin: Duration,
}

/// Companies handled at once by default (each has its own Tripletex rate limit; the companies of
/// one accountant key share its session, not a limit per call).
pub const DEFAULT_COMPANY_CONCURRENCY: usize = 16;

impl Default for Pace {
    fn default() -> Self {
        Self {
            company_concurrency: DEFAULT_COMPANY_CONCURRENCY,
            deadline_margin: Duration::from_secs(10),
        }
    }
}

impl Pace {
    /// The last moment a company may start: the margin before the deadline, or half the time
    /// left when that is shorter (a short timeout, a local emulator's deadline), so that a run
    /// always gets to start companies.
    pub fn latest_start(&self, deadline: Instant, now: Instant) -> Instant {
        let left = deadline.saturating_duration_since(now);
        deadline
            .checked_sub(self.deadline_margin.min(left / 2))
            .unwrap_or(deadline)
    }
}

/// The keys Tripletex rate-limited in this run: their other companies wait for the next run.
/// Shared by the companies running at once.
#[derive(Debug, Default)]
pub struct LimitedKeys<'a>(Mutex<Vec<&'a TripletexCredentials>>);

impl<'a> LimitedKeys<'a> {
    pub fn limit(&self, credentials: &'a TripletexCredentials) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(credentials);
    }

    pub fn is_limited(&self, credentials: &TripletexCredentials) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|seen| seen.same_key(credentials))
    }
}

/// Whether a company starts now: not past the latest start, and its key not rate-limited.
pub fn may_start(
    now: Instant,
    latest_start: Option<Instant>,
    limited: &LimitedKeys,
    credentials: &TripletexCredentials,
) -> bool {
    latest_start.is_none_or(|latest| now < latest) && !limited.is_limited(credentials)
}

/// The companies of the run it did not reach (never started, or cut short by the rate limit): the
/// ones kept, then the ones being removed, each in tenant order.
pub fn not_reached(jobs: &[Job], reports: &[CompanyReport]) -> Vec<String> {
    let mut tenants: Vec<(bool, &TenantId)> = jobs
        .iter()
        .map(|job| (matches!(job, Job::Offboard(..)), job.tenant()))
        .collect();
    tenants.sort();
    tenants
        .into_iter()
        .map(|(_, tenant)| tenant.to_string())
        .filter(|tenant| {
            reports
                .iter()
                .find(|report| &report.tenant == tenant)
                .is_none_or(|report| report.rate_limited)
        })
        .collect()
}

/// The line the next run starts from: what waited and is still not handled, then what this run
/// did not reach. None when there is nothing to keep (no line before, none now).
pub fn line_after(
    before: &[String],
    reports: &[CompanyReport],
    not_reached: &[String],
) -> Option<Vec<String>> {
    if before.is_empty() && not_reached.is_empty() {
        return None;
    }
    let handled = |tenant: &str| {
        reports
            .iter()
            .any(|report| report.tenant == tenant && !report.rate_limited)
    };
    Some(still_waiting(before, handled, not_reached))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Secret;
    use crate::tripletex::Companies;

    fn credentials(key: &str, company: Option<i64>) -> TripletexCredentials {
        TripletexCredentials {
            consumer_token: Secret::new(format!("consumer-{key}")),
            employee_token: Secret::new(format!("employee-{key}")),
            company_id: company,
        }
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn directory() -> Directory {
        let companies = |names: &[(&str, &str)]| {
            Companies(
                names
                    .iter()
                    .map(|(name, key)| (tenant(name), credentials(key, None)))
                    .collect(),
            )
        };
        Directory {
            looked_after: companies(&[("a", "firm"), ("b", "firm"), ("c", "own")]),
            leaving: companies(&[("z", "firm")]),
            problems: Vec::new(),
        }
    }

    fn names(jobs: &[Job]) -> Vec<String> {
        jobs.iter()
            .map(|job| match job {
                Job::Keep(tenant, _) => tenant.to_string(),
                Job::Offboard(tenant, _) => format!("-{tenant}"),
            })
            .collect()
    }

    fn report(tenant: &str, rate_limited: bool) -> CompanyReport {
        CompanyReport {
            tenant: tenant.to_owned(),
            rate_limited,
            ..CompanyReport::default()
        }
    }

    #[test]
    fn the_run_has_every_company_or_those_asked_for_the_longest_waiting_first() {
        let directory = directory();
        let all = jobs(&directory, None, &[]).unwrap();
        assert_eq!(names(&all), ["a", "b", "c", "-z"]);
        let waiting = ["z".to_owned(), "c".to_owned()];
        assert_eq!(
            names(&jobs(&directory, None, &waiting).unwrap()),
            ["-z", "c", "a", "b"]
        );
        let wanted = [tenant("c"), tenant("z")];
        assert_eq!(
            names(&jobs(&directory, Some(&wanted), &[]).unwrap()),
            ["c", "-z"]
        );
        assert_eq!(
            jobs(&directory, Some(&[tenant("a"), tenant("nosuch")]), &[]).unwrap_err(),
            UnknownTenant("nosuch".into()),
            "a mistyped company is an error, not an empty run"
        );
    }

    #[test]
    fn no_company_starts_past_the_deadline_less_its_margin_nor_less_than_half_the_time_left() {
        let pace = Pace {
            company_concurrency: 4,
            deadline_margin: Duration::from_secs(10),
        };
        let now = Instant::now();
        let cases = [
            // (time left, latest start after now)
            (Duration::from_secs(900), Duration::from_secs(890)),
            (Duration::from_secs(20), Duration::from_secs(10)),
            (Duration::from_secs(8), Duration::from_secs(4)),
            (Duration::ZERO, Duration::ZERO),
        ];
        for (left, expected) in cases {
            assert_eq!(
                pace.latest_start(now + left, now),
                now + expected,
                "{left:?} left"
            );
        }
        let limited = LimitedKeys::default();
        let key = credentials("firm", Some(1));
        let latest = Some(now + Duration::from_secs(5));
        assert!(may_start(now, latest, &limited, &key));
        assert!(!may_start(
            now + Duration::from_secs(5),
            latest,
            &limited,
            &key
        ));
        assert!(may_start(
            now + Duration::from_secs(500),
            None,
            &limited,
            &key
        ));
    }

    #[test]
    fn a_rate_limited_key_holds_back_every_company_it_acts_for_and_no_other() {
        let limited = LimitedKeys::default();
        let first = credentials("firm", Some(1));
        limited.limit(&first);
        let now = Instant::now();
        assert!(!may_start(
            now,
            None,
            &limited,
            &credentials("firm", Some(2))
        ));
        assert!(may_start(now, None, &limited, &credentials("own", None)));
    }

    #[test]
    fn what_was_not_started_or_was_cut_short_waits_first_in_line_next_run() {
        let directory = directory();
        let jobs = jobs(&directory, None, &[]).unwrap();
        let reports = [report("a", false), report("b", true)];
        let not_reached = not_reached(&jobs, &reports);
        assert_eq!(not_reached, ["b", "c", "z"]);
        let before = ["z".to_owned(), "a".to_owned()];
        assert_eq!(
            line_after(&before, &reports, &not_reached),
            Some(vec!["z".to_owned(), "b".to_owned(), "c".to_owned()]),
            "z keeps its place, a was handled, b and c queue behind"
        );
        let everyone = [
            report("a", false),
            report("b", false),
            report("c", false),
            report("z", false),
        ];
        assert!(super::not_reached(&jobs, &everyone).is_empty());
        assert_eq!(line_after(&[], &everyone, &[]), None, "nothing to keep");
        assert_eq!(
            line_after(&before, &everyone, &[]),
            Some(Vec::new()),
            "the line emptied: kept empty"
        );
    }
}
