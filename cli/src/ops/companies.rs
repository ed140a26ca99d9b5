//! Each company as `status` and `companies list` show it: its last sync run per type, the keeper's requests and last run.

use std::collections::BTreeMap;

use aws_adapters::resync_ledger::DynamoResyncLedger;
use aws_adapters::{resync_ledger, sync_records};
use domain::keeper::LastRun;
use domain::ports::CompanyRegistry as _;
use domain::registry::RegisteredCompany;
use domain::sync::{RecordedRun, freshness};
use serde::Serialize;

use super::sync_runs::{TypeStatus, drift_delivered_late, type_statuses};
use super::{AwsError, call, tables};
use crate::deployment::Deployment;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyStatus {
    pub tenant: String,
    /// Our subscriptions as the keeper's dry run saw them; none when it was not asked.
    pub subscriptions: Option<Subscriptions>,
    /// The last sync run of each object type, by type.
    pub types: Vec<TypeStatus>,
    /// The keeper's resync requests by state (PENDING, RUNNING, DONE, FAILED).
    pub resync_requests: Vec<(String, u64)>,
    /// The keeper's last run for the company (a dry run is never kept); none before its first.
    pub keeper_last_run: Option<KeeperLastRun>,
    /// Its state in the company registry (`active`, `offboarding`, `removed`, ...); none for a
    /// company of the credentials secret alone.
    pub registry_state: Option<String>,
}

/// What the keeper kept of its last run for a company.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeeperLastRun {
    pub finished_at: String,
    pub seen: u64,
    pub re_enabled: u64,
    pub created: u64,
    pub updated: u64,
    pub left_alone: u64,
    pub failed: u64,
    /// The first few failed steps, `event action: error`.
    pub failures: Vec<String>,
    /// Why the company could not be handled at all.
    pub error: Option<String>,
}

/// One company's subscriptions, as the keeper sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscriptions {
    /// Ours, by event: the status Tripletex gives it (`missing` when there is none yet).
    pub ours: Vec<OurSubscription>,
    /// Another integration's or a person's: never touched, only counted.
    pub foreign: u64,
    /// Why the keeper could not see the company at all.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OurSubscription {
    pub event: String,
    pub status: String,
    /// What the keeper's next run does about it, if anything.
    pub next_run: Option<String>,
    /// Whether the keeper leaves it to a person (a status it must not change).
    pub needs_a_person: bool,
}

/// Per company: the last sync run of each type (run ids sort by time), the keeper's requests by
/// state and its last run, each read back by the adapter that writes it.
pub async fn companies(
    dynamodb: &aws_sdk_dynamodb::Client,
    deployment: &Deployment,
) -> Result<Vec<CompanyStatus>, AwsError> {
    let mut last = last_sync_runs(&tables::scan(dynamodb, &deployment.sync_table).await?);
    let mut requests: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut last_runs: BTreeMap<String, KeeperLastRun> = BTreeMap::new();
    let mut states: BTreeMap<String, String> = BTreeMap::new();
    for item in tables::scan(dynamodb, &deployment.resync_table).await? {
        if let Some(company) = aws_adapters::registry::read_registered(&item) {
            states.insert(
                company.tenant.to_string(),
                company.state.as_str().to_owned(),
            );
        } else if let Some(run) = resync_ledger::read_last_run(&item) {
            last_runs.insert(run.tenant.clone(), KeeperLastRun::from(run));
        } else if let Some((tenant, state)) = resync_ledger::read_request_state(&item) {
            *requests
                .entry(tenant)
                .or_default()
                .entry(state)
                .or_default() += 1;
        }
    }
    let tenants: std::collections::BTreeSet<String> = last
        .keys()
        .chain(requests.keys())
        .chain(last_runs.keys())
        .chain(states.keys())
        .cloned()
        .collect();
    Ok(tenants
        .into_iter()
        .map(|tenant| CompanyStatus {
            subscriptions: None,
            types: last
                .remove(&tenant)
                .map(|t| t.into_values().collect())
                .unwrap_or_default(),
            resync_requests: requests
                .remove(&tenant)
                .map(|r| r.into_iter().collect())
                .unwrap_or_default(),
            keeper_last_run: last_runs.remove(&tenant),
            registry_state: states.remove(&tenant),
            tenant,
        })
        .collect())
}

/// From the sync table's items: per company and type, the last run's state and counts, with how
/// much of its drift came late and when the type was last confirmed complete.
fn last_sync_runs(sync_items: &[tables::Item]) -> BTreeMap<String, BTreeMap<String, TypeStatus>> {
    let mut confirmed: BTreeMap<String, Vec<(String, jiff::Timestamp)>> = BTreeMap::new();
    for (tenant, object_type, at) in sync_items
        .iter()
        .filter_map(sync_records::read_confirmation)
    {
        confirmed.entry(tenant).or_default().push((object_type, at));
    }
    let mut unsettled: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for finding in sync_items
        .iter()
        .filter_map(sync_records::read_drift_finding)
    {
        *unsettled.entry(finding).or_default() += 1;
    }
    let mut runs: Vec<RecordedRun> = sync_items
        .iter()
        .filter_map(sync_records::read_run)
        .collect();
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    let now = jiff::Timestamp::now();
    let mut last: BTreeMap<String, BTreeMap<String, TypeStatus>> = BTreeMap::new();
    for run in &runs {
        for mut status in type_statuses(run) {
            let key = (
                run.tenant.clone(),
                status.object_type.clone(),
                run.run_id.clone(),
            );
            status.drift_delivered_late = drift_delivered_late(
                status.drift_corrected,
                unsettled.get(&key).copied().unwrap_or(0),
                run.started_at.as_deref(),
                now,
            );
            let types = [status.object_type.clone()];
            let of_tenant = confirmed.get(&run.tenant).map_or(&[][..], Vec::as_slice);
            if let Some(fresh) = freshness::type_freshness(&types, of_tenant, now).pop() {
                status.confirmed_complete_at = fresh.confirmed_at.map(|at| at.to_string());
                status.confirmation_overdue = fresh.overdue;
            }
            last.entry(run.tenant.clone())
                .or_default()
                .insert(status.object_type.clone(), status);
        }
    }
    last
}

impl From<LastRun> for KeeperLastRun {
    fn from(run: LastRun) -> Self {
        let count = |n: usize| n as u64;
        Self {
            finished_at: run.finished_at.to_string(),
            seen: count(run.counts.seen),
            re_enabled: count(run.counts.re_enabled),
            created: count(run.counts.created),
            updated: count(run.counts.updated),
            left_alone: count(run.counts.left_alone),
            failed: count(run.counts.failed),
            failures: run.failures,
            error: run.error,
        }
    }
}

/// The company registry as it stands.
pub async fn registered(
    dynamodb: &aws_sdk_dynamodb::Client,
    deployment: &Deployment,
) -> Result<Vec<RegisteredCompany>, AwsError> {
    DynamoResyncLedger::new(dynamodb.clone(), &deployment.resync_table)
        .registered()
        .await
        .map_err(call("reading the company registry"))
}
