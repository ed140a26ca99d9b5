//! `companies remove`: offboarding (its webhooks refused from then on), the keeper run for it (our
//! subscriptions deleted) and, with `--purge`, its copy erased once the workers have seen it leave.

use std::time::Duration;

use aws_adapters::dynamodb::DynamoObjectStore;
use aws_adapters::sync_records::DynamoSyncRecords;
use domain::ids::TenantId;
use domain::keeper::KeeperRequest;
use domain::ports::CompanyRegistry;
use domain::registry::{self, Change, CompanyState};
use serde::Serialize;

use super::{CompaniesError, invalid, registry_failed, registry_of};
use crate::context::Context;
use crate::ops;

/// After a company is marked offboarding, the worker drops its records within its registry TTL;
/// a batch it began before then is given a few seconds more.
const WORKER_SETTLES: Duration = Duration::from_secs(registry::WORKER_REGISTRY_TTL.as_secs() + 5);

/// What removing did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    pub tenant: String,
    pub state: CompanyState,
    /// Our subscriptions the keeper deleted in Tripletex.
    pub subscriptions_deleted: u64,
    /// Items of the copy deleted by `--purge`, tombstones included; none without it.
    pub purged: Option<u64>,
    /// The sync's records of the company deleted by `--purge` (page memory, listed ids, windows,
    /// known unstorable objects, confirmations, run records) and its backfill and resync requests,
    /// so that adding it again fills its copy from nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_records_purged: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_purged: Option<u64>,
    pub verdict: String,
    pub failed: bool,
}

pub async fn remove(
    ctx: &Context,
    tenant: &str,
    purge: bool,
    quiet: bool,
) -> Result<Removed, CompaniesError> {
    let (deployment, dynamodb) = (&ctx.deployment, ctx.dynamodb());
    let tenant = TenantId::parse(tenant).map_err(|e| invalid(e.to_string()))?;
    let registry = registry_of(dynamodb, deployment);
    let Some(company) = registry
        .registered_one(&tenant)
        .await
        .map_err(registry_failed)?
    else {
        return Err(invalid(format!(
            "{tenant} is not in the company registry (a company of the credentials secret is \
             removed from that secret)"
        )));
    };
    let mut state = company.state;
    let left_at = if state.refuses_webhooks() {
        company.changed_at
    } else {
        jiff::Timestamp::now()
    };
    if state != CompanyState::Removed {
        let leaving = registry::next_state(Some(state), Change::Remove)
            .map_err(|refused| invalid(format!("{tenant}: {refused}")))?;
        if leaving != state
            && !registry
                .change_state(&tenant, state, leaving, jiff::Timestamp::now())
                .await
                .map_err(registry_failed)?
        {
            return Err(invalid(format!("{tenant} changed meanwhile; try again")));
        }
        state = leaving;
    }
    let mut removed = Removed {
        tenant: tenant.to_string(),
        state,
        subscriptions_deleted: 0,
        purged: None,
        sync_records_purged: None,
        requests_purged: None,
        verdict: String::new(),
        failed: false,
    };
    let mut not_deleted = None;
    if state == CompanyState::Offboarding {
        let request = KeeperRequest {
            tenants: Some(vec![tenant.to_string()]),
            ..KeeperRequest::manual()
        };
        let report = ops::invoke::invoke_keeper(&ctx.sdk, &ctx.deployment, &request).await?;
        if let Some(kept) = report
            .companies
            .iter()
            .find(|c| c.tenant == tenant.as_str())
        {
            removed.subscriptions_deleted = kept.unsubscribed.len() as u64;
            removed.state = kept.state.unwrap_or(state);
            not_deleted = kept
                .error
                .clone()
                .or_else(|| kept.failed.first().map(|failed| failed.error.clone()));
        }
    }
    removed.failed = removed.state != CompanyState::Removed;
    if purge {
        // What the worker took before it saw the company leave must land before the copy goes.
        let since_left =
            Duration::try_from(jiff::Timestamp::now().duration_since(left_at)).unwrap_or_default();
        if let Some(wait) = WORKER_SETTLES.checked_sub(since_left) {
            tokio::time::sleep(wait).await;
        }
        let copy = DynamoObjectStore::new(dynamodb.clone(), &deployment.objects_table);
        let spinner = indicatif::ProgressBar::new_spinner();
        if quiet {
            spinner.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        spinner.set_message(format!("purging {tenant}'s copy"));
        let purged = copy
            .purge_tenant(&tenant, |so_far| {
                spinner.set_message(format!("purging {tenant}'s copy: {so_far} items deleted"));
                spinner.tick();
            })
            .await
            .map_err(|e| invalid(domain::error::error_chain(&e)))?;
        spinner.set_message(format!("purging {tenant}'s sync records and requests"));
        let records = DynamoSyncRecords::new(dynamodb.clone(), &deployment.sync_table)
            .purge_tenant(&tenant)
            .await
            .map_err(|e| invalid(domain::error::error_chain(&e)))?;
        let requests = registry
            .purge_requests(&tenant)
            .await
            .map_err(|e| invalid(domain::error::error_chain(&e)))?;
        spinner.finish_and_clear();
        removed.purged = Some(purged);
        removed.sync_records_purged = Some(records);
        removed.requests_purged = Some(requests);
    }
    removed.verdict = removed_verdict(&removed, not_deleted.as_deref());
    Ok(removed)
}

/// What removing came to, in words: where the company stands, what could not be done in
/// Tripletex and why, and what the purge deleted.
fn removed_verdict(removed: &Removed, not_deleted: Option<&str>) -> String {
    let mut verdict = if removed.failed {
        match not_deleted {
            Some(error) => format!(
                "offboarding: its webhooks are refused; our subscriptions could not be deleted \
                 ({error}); the keeper's next run tries again"
            ),
            None => "offboarding: its webhooks are refused; the keeper's next run deletes our subscriptions".to_owned(),
        }
    } else {
        let mut done = format!(
            "removed: {} of our subscriptions deleted, its webhooks refused",
            removed.subscriptions_deleted
        );
        if let Some(error) = not_deleted {
            done.push_str(&format!(
                "; Tripletex refuses this key the company ({error}), so any subscription of ours \
                 there stays until Tripletex disables it (our receiver answers it 410)"
            ));
        }
        done
    };
    match removed.purged {
        Some(purged) => verdict.push_str(&format!(
            "; {purged} items of its copy, {} of the sync's records and {} requests deleted \
             (added again, it is backfilled from nothing)",
            removed.sync_records_purged.unwrap_or_default(),
            removed.requests_purged.unwrap_or_default(),
        )),
        None if !removed.failed => verdict.push_str("; its copy is kept (--purge erases it)"),
        None => {}
    }
    verdict
}

pub fn render_removed(removed: &crate::commands::companies::Removed) -> String {
    format!("{}: {}\n", removed.tenant, removed.verdict)
}
