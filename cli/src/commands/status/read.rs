//! What `status` reads: the queues (and their oldest-message ages from CloudWatch), the keeper's
//! dry run, and the sync's and the keeper's tables, each through the adapter that writes it.

use domain::keeper::{KeeperRequest, RunReport};

use super::subscriptions_of;
use crate::context::Context;
use crate::deployment::Deployment;
use crate::ops::companies::CompanyStatus;
use crate::ops::metrics::oldest_message_ages;
use crate::ops::queues::{QueueRole, QueueStatus, queue_status};
use crate::ops::{self, AwsError};

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
    ops::invoke::invoke_keeper(&ctx.sdk, &ctx.deployment, &request).await
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
                registry_state: None,
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
