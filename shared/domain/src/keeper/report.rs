//! What a keeper run did for one company, as the JSON report and the log lines show it.

use serde::{Deserialize, Serialize};

use super::plan::{Drift, Reason};

/// What a run did for one company.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompanyReport {
    pub tenant: String,
    pub dry_run: bool,
    pub seen: usize,
    pub re_enabled: Vec<Done>,
    pub created: Vec<Done>,
    pub updated: Vec<Done>,
    pub left_alone: Vec<LeftAlone>,
    pub failed: Vec<Failed>,
    /// Our subscriptions deleted because the company is being removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsubscribed: Vec<i64>,
    /// The company's state in the registry after this run, for a registered company.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::registry::CompanyState>,
    /// Tripletex refused a call for its rate limit (counted per credential): the keeper leaves the
    /// company, and the others of its credential, for the next run instead of failing them.
    #[serde(skip)]
    pub rate_limited: bool,
    /// Set when the company could not be handled at all (credentials, listing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tripletex refuses this key the company (401/403): nothing more can be done there with it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub access_refused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub subscription_id: Option<i64>,
    pub event: String,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftAlone {
    pub subscription_id: Option<i64>,
    pub event: String,
    pub status: Option<String>,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    pub subscription_id: Option<i64>,
    pub event: String,
    pub action: String,
    pub kind: String,
    pub error: String,
}

impl CompanyReport {
    pub fn is_failure(&self) -> bool {
        self.error.is_some() || !self.failed.is_empty()
    }

    /// Whether an offboarding did all it can: every subscription of ours deleted, or Tripletex
    /// refuses this key the company, so that none can be (what is left there is reported, and
    /// fails against the receiver's 410 until Tripletex disables it). A company added by mistake,
    /// or one whose access was withdrawn, can so still be removed.
    pub fn offboarding_done(&self) -> bool {
        !self.is_failure() || self.access_refused
    }
}

/// How many subscriptions a run saw and what it did with them: one company's, or a run's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunCounts {
    pub seen: usize,
    pub re_enabled: usize,
    pub created: usize,
    pub updated: usize,
    pub left_alone: usize,
    /// Steps that failed.
    pub failed: usize,
}

impl RunCounts {
    pub fn of(report: &CompanyReport) -> Self {
        Self {
            seen: report.seen,
            re_enabled: report.re_enabled.len(),
            created: report.created.len(),
            updated: report.updated.len(),
            left_alone: report.left_alone.len(),
            failed: report.failed.len(),
        }
    }
}

impl std::ops::AddAssign for RunCounts {
    fn add_assign(&mut self, other: Self) {
        self.seen += other.seen;
        self.re_enabled += other.re_enabled;
        self.created += other.created;
        self.updated += other.updated;
        self.left_alone += other.left_alone;
        self.failed += other.failed;
    }
}

/// At most this many failed steps are kept with a run (the report has them all).
pub const MAX_KEPT_FAILURES: usize = 10;

/// What the keeper keeps of its last run for a company, for an operator's `status`: when it ran,
/// how many subscriptions it saw and changed, and what failed. A dry run changes nothing and is not
/// kept, so asking what the keeper would do never hides what it last did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub tenant: String,
    pub finished_at: jiff::Timestamp,
    pub counts: RunCounts,
    /// The first few failed steps as `event action: error`.
    pub failures: Vec<String>,
    /// Why the company could not be handled at all.
    pub error: Option<String>,
}

impl LastRun {
    pub fn of(report: &CompanyReport, finished_at: jiff::Timestamp) -> Option<Self> {
        if report.dry_run {
            return None;
        }
        Some(Self {
            tenant: report.tenant.clone(),
            finished_at,
            counts: RunCounts::of(report),
            failures: report
                .failed
                .iter()
                .take(MAX_KEPT_FAILURES)
                .map(|f| format!("{} {}: {}", f.event, f.action, f.error))
                .collect(),
            error: report.error.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(n: usize) -> Failed {
        Failed {
            subscription_id: Some(n as i64),
            event: format!("e{n}.update"),
            action: "update".into(),
            kind: "conflict".into(),
            error: "409".into(),
        }
    }

    #[test]
    fn a_run_keeps_its_counts_and_first_failures_and_a_dry_run_is_not_kept() {
        let at = jiff::Timestamp::UNIX_EPOCH;
        let report = CompanyReport {
            tenant: "acme".into(),
            seen: 13,
            failed: (0..12).map(failed).collect(),
            ..CompanyReport::default()
        };
        let kept = LastRun::of(&report, at).unwrap();
        assert_eq!(
            (kept.counts.seen, kept.counts.failed, kept.failures.len()),
            (13, 12, MAX_KEPT_FAILURES)
        );
        assert_eq!(kept.failures[0], "e0.update update: 409");
        let dry = CompanyReport {
            dry_run: true,
            ..report
        };
        assert_eq!(LastRun::of(&dry, at), None);
    }
}
