//! What `status` reads: the queues (and their oldest-message ages from CloudWatch), the keeper's
//! dry run, and the sync's and the keeper's tables, each through the adapter that writes it.

use std::collections::BTreeMap;

use aws_adapters::{resync_ledger, sync_records};
use aws_sdk_sqs::types::QueueAttributeName;
use domain::keeper::{KeeperRequest, LastRun, RunReport};
use domain::sync::{RecordedRun, RunMode, RunState, freshness};

use super::{
    CompanyStatus, KeeperLastRun, QueueRole, QueueStatus, TypeStatus, latest_value,
    subscriptions_of, type_state,
};
use crate::aws::{self, AwsError};
use crate::commands::Context;
use crate::deployment::Deployment;

/// Each queue's oldest-message age from CloudWatch; why not, when it cannot be known (`status`
/// goes on without it: an operator without `cloudwatch:GetMetricData` still gets the rest).
pub(super) async fn add_oldest_ages(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    queues: &mut [QueueStatus],
) -> Option<String> {
    if deployment.endpoint.is_some() {
        return Some("the local stack keeps no SQS metrics".to_owned());
    }
    let urls: Vec<&str> = queues.iter().map(|q| q.url.as_str()).collect();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    match oldest_message_ages(&cloudwatch, &urls, jiff::Timestamp::now()).await {
        Ok(ages) => {
            for (queue, age) in queues.iter_mut().zip(ages) {
                queue.oldest_message_age_seconds = age;
            }
            None
        }
        Err(error) => Some(domain::error::error_chain(&error)),
    }
}

/// The keeper's view of every company's subscriptions, changing nothing.
pub(super) async fn keeper_dry_run(ctx: &Context) -> Result<RunReport, AwsError> {
    let request = KeeperRequest {
        dry_run: Some(true),
        ..KeeperRequest::manual()
    };
    aws::invoke_keeper(&ctx.sdk, &ctx.deployment, &request).await
}

pub(super) fn add_subscriptions(companies: &mut Vec<CompanyStatus>, report: &RunReport) {
    for company in &report.companies {
        let subscriptions = subscriptions_of(company);
        match companies.iter_mut().find(|c| c.tenant == company.tenant) {
            Some(known) => known.subscriptions = Some(subscriptions),
            None => companies.push(CompanyStatus {
                tenant: company.tenant.clone(),
                subscriptions: Some(subscriptions),
                types: Vec::new(),
                resync_requests: Vec::new(),
                keeper_last_run: None,
            }),
        }
    }
    companies.sort_by(|a, b| a.tenant.cmp(&b.tenant));
}

pub async fn queues(
    sqs: &aws_sdk_sqs::Client,
    deployment: &Deployment,
) -> Result<Vec<QueueStatus>, AwsError> {
    let wanted = [
        (
            "webhook queue",
            QueueRole::Webhooks,
            &deployment.webhook_queue,
        ),
        (
            "sync objects",
            QueueRole::Webhooks,
            &deployment.sync_objects_queue,
        ),
        (
            "webhook DLQ",
            QueueRole::DeadLetters,
            &deployment.webhook_dead_letters,
        ),
        ("quarantine", QueueRole::Quarantine, &deployment.quarantine),
        ("sync queue", QueueRole::SyncTasks, &deployment.sync_queue),
        (
            "sync DLQ",
            QueueRole::DeadLetters,
            &deployment.sync_dead_letters,
        ),
    ];
    let mut found = Vec::new();
    for (name, role, url) in wanted {
        found.push(queue_status(sqs, name, role, url).await?);
    }
    Ok(found)
}

/// How far back the age metric is read: SQS publishes it every minute, a few minutes late.
const AGE_LOOKBACK_SECONDS: i64 = 15 * 60;

/// Each queue's `ApproximateAgeOfOldestMessage` (AWS/SQS, by queue name: the last part of its URL),
/// its latest minute; none for a queue with no datapoint in the last quarter hour.
pub async fn oldest_message_ages(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    queue_urls: &[&str],
    now: jiff::Timestamp,
) -> Result<Vec<Option<u64>>, AwsError> {
    let names: Vec<&str> = queue_urls
        .iter()
        .map(|url| url.rsplit('/').next().unwrap_or(url))
        .collect();
    latest_maxima(
        cloudwatch,
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName"),
        &names,
        now,
    )
    .await
    .map_err(|source| AwsError::Call {
        what: "reading the queues' ages from CloudWatch".into(),
        source: Box::new(source),
    })
}

/// The latest one-minute maximum of a metric (namespace, name, dimension) for each dimension value,
/// over the last few minutes; none where CloudWatch has no datapoint.
pub async fn latest_maxima(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    (namespace, metric_name, dimension): (&str, &str, &str),
    values: &[&str],
    now: jiff::Timestamp,
) -> Result<
    Vec<Option<u64>>,
    aws_sdk_cloudwatch::error::SdkError<
        aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError,
    >,
> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};

    let mut request = cloudwatch
        .get_metric_data()
        .start_time(DateTime::from_secs(now.as_second() - AGE_LOOKBACK_SECONDS))
        .end_time(DateTime::from_secs(now.as_second()))
        .scan_by(ScanBy::TimestampDescending);
    for (index, value) in values.iter().enumerate() {
        let metric = Metric::builder()
            .namespace(namespace)
            .metric_name(metric_name)
            .dimensions(Dimension::builder().name(dimension).value(*value).build())
            .build();
        request = request.metric_data_queries(
            MetricDataQuery::builder()
                .id(format!("q{index}"))
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric)
                        .period(60)
                        .stat("Maximum")
                        .build(),
                )
                .return_data(true)
                .build(),
        );
    }
    let output = request.send().await?;
    Ok((0..values.len())
        .map(|index| {
            let id = format!("q{index}");
            let result = output
                .metric_data_results()
                .iter()
                .find(|r| r.id() == Some(id.as_str()))?;
            let timestamps: Vec<i64> = result.timestamps().iter().map(|t| t.secs()).collect();
            let age = latest_value(&timestamps, result.values())?;
            Some(age.max(0.0).round() as u64)
        })
        .collect())
}

/// Of a run's drift, what came by webhook after all: its findings no longer waiting. Unknown once
/// the findings may have expired (a finding a later run made of the same object is that run's).
fn drift_delivered_late(
    drift: u64,
    unsettled: u64,
    started_at: Option<&str>,
    now: jiff::Timestamp,
) -> Option<u64> {
    let started: jiff::Timestamp = started_at?.parse().ok()?;
    let kept = jiff::SignedDuration::try_from(domain::sync::drift::FINDING_KEPT_FOR).ok()?;
    (now.duration_since(started) < kept).then(|| drift.saturating_sub(unsettled))
}

/// Per company: the last sync run of each type (run ids sort by time), the keeper's requests by
/// state and its last run, each read back by the adapter that writes it.
pub async fn companies(
    dynamodb: &aws_sdk_dynamodb::Client,
    deployment: &Deployment,
) -> Result<Vec<CompanyStatus>, AwsError> {
    let mut last: BTreeMap<String, BTreeMap<String, TypeStatus>> = BTreeMap::new();
    let sync_items = aws::scan(dynamodb, &deployment.sync_table).await?;
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
    let mut requests: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut last_runs: BTreeMap<String, KeeperLastRun> = BTreeMap::new();
    for item in aws::scan(dynamodb, &deployment.resync_table).await? {
        if let Some(run) = resync_ledger::read_last_run(&item) {
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
            tenant,
        })
        .collect())
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

pub async fn queue_status(
    sqs: &aws_sdk_sqs::Client,
    name: &'static str,
    role: QueueRole,
    url: &str,
) -> Result<QueueStatus, AwsError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(aws::call(format!("reading the {name}'s depth")))?;
    let count = |attribute: QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(&attribute))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(QueueStatus {
        name,
        role,
        url: url.to_owned(),
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        oldest_message_age_seconds: None,
    })
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
