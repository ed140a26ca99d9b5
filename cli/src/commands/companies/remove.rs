//! `companies remove`: offboarding (its webhooks refused from then on), the keeper run for it (our
//! subscriptions deleted) and, with `--purge`, its copy erased once the workers have seen it leave.

use std::time::Duration;

use aws_adapters::dynamodb::DynamoObjectStore;
use aws_adapters::resync_ledger::DynamoResyncLedger;
use aws_adapters::sync_records::DynamoSyncRecords;
use domain::ids::TenantId;
use domain::keeper::KeeperRequest;
use domain::ports::{CompanyRegistry, StoreError};
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
    let left_at = if company.state.refuses_webhooks() {
        company.changed_at
    } else {
        jiff::Timestamp::now()
    };
    let state = mark_leaving(&registry, &tenant, company.state).await?;
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
        not_deleted = offboard(ctx, &tenant, &mut removed).await?;
    }
    removed.failed = removed.state != CompanyState::Removed;
    if purge {
        purge_company(ctx, &registry, &tenant, left_at, quiet, &mut removed).await?;
    }
    removed.verdict = removed_verdict(&removed, not_deleted.as_deref());
    Ok(removed)
}

/// The company marked as leaving in the registry (offboarding, or removed already): the state it
/// is in now.
async fn mark_leaving(
    registry: &DynamoResyncLedger,
    tenant: &TenantId,
    state: CompanyState,
) -> Result<CompanyState, CompaniesError> {
    if state == CompanyState::Removed {
        return Ok(state);
    }
    let leaving = registry::next_state(Some(state), Change::Remove)
        .map_err(|refused| invalid(format!("{tenant}: {refused}")))?;
    if leaving != state
        && !registry
            .change_state(tenant, state, leaving, jiff::Timestamp::now())
            .await
            .map_err(registry_failed)?
    {
        return Err(invalid(format!("{tenant} changed meanwhile; try again")));
    }
    Ok(leaving)
}

/// The keeper asked to delete our subscriptions in the company now: what it deleted and the state
/// it left the company in go into `removed`; what it could not delete, in words.
async fn offboard(
    ctx: &Context,
    tenant: &TenantId,
    removed: &mut Removed,
) -> Result<Option<String>, CompaniesError> {
    let request = KeeperRequest {
        tenants: Some(vec![tenant.to_string()]),
        ..KeeperRequest::manual()
    };
    let report = ops::invoke::invoke_keeper(&ctx.sdk, &ctx.deployment, &request).await?;
    let Some(kept) = report
        .companies
        .iter()
        .find(|c| c.tenant == tenant.as_str())
    else {
        return Ok(None);
    };
    removed.subscriptions_deleted = kept.unsubscribed.len() as u64;
    removed.state = kept.state.unwrap_or(removed.state);
    Ok(kept
        .error
        .clone()
        .or_else(|| kept.failed.first().map(|failed| failed.error.clone())))
}

/// The company's copy, its sync records and its requests erased, once what the worker took
/// before it saw the company leave has landed.
async fn purge_company(
    ctx: &Context,
    registry: &DynamoResyncLedger,
    tenant: &TenantId,
    left_at: jiff::Timestamp,
    quiet: bool,
    removed: &mut Removed,
) -> Result<(), CompaniesError> {
    let (deployment, dynamodb) = (&ctx.deployment, ctx.dynamodb());
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
    let failed = |e: StoreError| invalid(domain::error::error_chain(&e));
    let purged = copy
        .purge_tenant(tenant, |so_far| {
            spinner.set_message(format!("purging {tenant}'s copy: {so_far} items deleted"));
            spinner.tick();
        })
        .await
        .map_err(failed)?;
    spinner.set_message(format!("purging {tenant}'s sync records and requests"));
    let records = DynamoSyncRecords::new(dynamodb.clone(), &deployment.sync_table)
        .purge_tenant(tenant)
        .await
        .map_err(failed)?;
    let requests = registry
        .purge_requests(tenant)
        .await
        .map_err(|e| invalid(domain::error::error_chain(&e)))?;
    spinner.finish_and_clear();
    removed.purged = Some(purged);
    removed.sync_records_purged = Some(records);
    removed.requests_purged = Some(requests);
    Ok(())
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
