//! The sync's runs as the commands show them: each type's state and counts in a run, and a run followed to its end.

use aws_adapters::sync_records::DynamoSyncRecords;
use domain::ids::TenantId;
use domain::sync::{RecordedRun, RunMode, RunState};
use serde::Serialize;

use super::AwsError;
use crate::deployment::Deployment;

/// A type's last sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeStatus {
    pub object_type: String,
    pub run_id: String,
    pub mode: String,
    pub state: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub listed: u64,
    /// What Tripletex said the listings hold (`fullResultSize`): about what `listed` will reach.
    pub listing_size: u64,
    pub fetched: u64,
    pub tombstoned: u64,
    pub drift_corrected: u64,
    /// Of that drift, the changes whose webhook came after all (Tripletex retries for about 30
    /// hours: `sync::drift`), known while the run's findings are kept (3 days).
    pub drift_delivered_late: Option<u64>,
    /// Objects the listing showed that the copy did not hold once the worker had had its time:
    /// the run did not confirm the type complete.
    pub not_stored: u64,
    /// Why the type failed in that run.
    pub failure: Option<String>,
    /// When the listing that last proved the type's copy complete began; none if none ever did.
    pub confirmed_complete_at: Option<String>,
    /// Confirmed, but over 26 hours ago (`domain::sync::CONFIRMATION_DUE`): runs are not completing.
    pub confirmation_overdue: bool,
}

/// One type's state in a run record, and why it failed: a failure names its type
/// (`customer: …`); a run that failed with failures naming none of its types (it never started)
/// failed for every type; in a run failed by another type, this one came through.
pub fn type_state(
    run_state: Option<&str>,
    failures: &[String],
    types_of_run: &[String],
    object_type: &str,
) -> (String, Option<String>) {
    let named = |t: &str| {
        failures
            .iter()
            .find_map(|f| f.strip_prefix(&format!("{t}: ")))
            .map(str::to_owned)
    };
    match run_state {
        Some("failed") => match named(object_type) {
            Some(failure) => ("failed".to_owned(), Some(failure)),
            None if types_of_run.iter().any(|t| named(t).is_some()) => ("done".to_owned(), None),
            None => ("failed".to_owned(), Some(failures.join("; "))),
        },
        Some(state) => (state.to_owned(), named(object_type)),
        None => ("unknown".to_owned(), None),
    }
}

/// Of a run's drift, what came by webhook after all: its findings no longer waiting. Unknown once
/// the findings may have expired (a finding a later run made of the same object is that run's).
pub fn drift_delivered_late(
    drift: u64,
    unsettled: u64,
    started_at: Option<&str>,
    now: jiff::Timestamp,
) -> Option<u64> {
    let started: jiff::Timestamp = started_at?.parse().ok()?;
    let kept = jiff::SignedDuration::try_from(domain::sync::drift::FINDING_KEPT_FOR).ok()?;
    (now.duration_since(started) < kept).then(|| drift.saturating_sub(unsettled))
}

/// Each type of one run record, with its counts and its failure.
pub fn type_statuses(run: &RecordedRun) -> Vec<TypeStatus> {
    let state = run.state.map(RunState::as_str);
    run.types
        .iter()
        .map(|object_type| {
            let counts = run.counts.get(object_type).copied().unwrap_or_default();
            let (state, failure) = type_state(state, &run.failures, &run.types, object_type);
            TypeStatus {
                run_id: run.run_id.clone(),
                mode: run.mode.map(RunMode::as_str).unwrap_or_default().to_owned(),
                state,
                started_at: run.started_at.clone(),
                finished_at: run.finished_at.clone(),
                listed: counts.listed,
                listing_size: counts.listing_size,
                fetched: counts.fetched,
                tombstoned: counts.tombstoned,
                drift_corrected: counts.drift_corrected,
                drift_delivered_late: None,
                not_stored: counts.not_stored,
                failure,
                confirmed_complete_at: None,
                confirmation_overdue: false,
                object_type: object_type.clone(),
            }
        })
        .collect()
}

/// A run's record: its state and, per type, the counts so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    pub tenant: String,
    pub run_id: String,
    pub state: String,
    pub steps: u64,
    pub types: Vec<TypeStatus>,
}

impl RunProgress {
    pub fn of(run: &RecordedRun) -> Self {
        Self {
            tenant: run.tenant.clone(),
            run_id: run.run_id.clone(),
            state: run
                .state
                .map(RunState::as_str)
                .unwrap_or("unknown")
                .to_owned(),
            steps: run.steps,
            types: type_statuses(run),
        }
    }

    pub fn running(&self) -> bool {
        self.state == RunState::Running.as_str()
    }

    pub fn failed(&self) -> bool {
        self.state == RunState::Failed.as_str()
    }
}

/// A run's progress, read consistently from its record; none if it has no record.
pub async fn run_progress(
    dynamodb: &aws_sdk_dynamodb::Client,
    deployment: &Deployment,
    tenant: &str,
    run_id: &str,
) -> Result<Option<RunProgress>, AwsError> {
    // The sync names only tenants it could parse; another has no record.
    let Ok(tenant) = TenantId::parse(tenant) else {
        return Ok(None);
    };
    let records = DynamoSyncRecords::new(dynamodb.clone(), &deployment.sync_table);
    let run = records
        .recorded_run(&tenant, run_id)
        .await
        .map_err(|error| AwsError::Call {
            what: format!("reading run {run_id}"),
            source: Box::new(error),
        })?;
    Ok(run.as_ref().map(RunProgress::of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_late_drift_is_what_no_longer_waits_and_unknown_once_its_findings_may_have_expired() {
        let now: jiff::Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let started = Some("2026-12-06T01:00:00Z");
        assert_eq!(drift_delivered_late(605, 49, started, now), Some(556));
        assert_eq!(drift_delivered_late(0, 0, started, now), Some(0));
        let long_ago = Some("2026-12-01T01:00:00Z");
        assert_eq!(drift_delivered_late(605, 0, long_ago, now), None);
        assert_eq!(drift_delivered_late(605, 0, None, now), None);
    }
}
