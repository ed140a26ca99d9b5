//! One company's keeper run: list its subscriptions, plan (`domain::keeper::plan`, pure), write what
//! the plan asks (re-reading and re-planning a subscription on a 409), record each re-enabled
//! subscription for a resync, and report. Only subscriptions whose targetUrl is this deployment's
//! receiver are ever changed.

use jiff::Timestamp;
use tracing::{info, warn};

use domain::error::error_chain;
use domain::ids::TenantId;
use domain::keeper::{
    Action, CompanyReport, Done, Drift, Failed, KeeperSettings, LeftAlone, Step, is_ours, plan,
    plan_subscription, subscription_write,
};
use domain::ports::{ResyncLedger, SubscriptionsApi};
use domain::resync::{ResyncReason, ResyncRequest};
use domain::tripletex::{Subscription, TripletexError};

/// The company's subscriptions, every page, and the report that starts with them; or, when they
/// cannot be listed, the company's report of why.
async fn listed<A: SubscriptionsApi>(
    api: &A,
    tenant: &TenantId,
    dry_run: bool,
) -> Result<(CompanyReport, Vec<Subscription>), CompanyReport> {
    let mut report = CompanyReport {
        tenant: tenant.to_string(),
        dry_run,
        ..CompanyReport::default()
    };
    match api.list_subscriptions().await {
        Ok(subscriptions) => {
            report.seen = subscriptions.len();
            Ok((report, subscriptions))
        }
        Err(error) => {
            warn!(%tenant, error = %error_chain(&error), "could not list subscriptions");
            report.rate_limited = error.is_rate_limited();
            report.access_refused = error.is_refused();
            report.error = Some(error_chain(&error));
            Err(report)
        }
    }
}

/// Deletes every subscription of ours in a company being removed (others' are never touched). A
/// subscription already gone counts as deleted.
pub async fn offboard_company<A: SubscriptionsApi>(
    api: &A,
    tenant: &TenantId,
    settings: &KeeperSettings,
    dry_run: bool,
) -> CompanyReport {
    let (mut report, subscriptions) = match listed(api, tenant, dry_run).await {
        Ok(listed) => listed,
        Err(unlisted) => return unlisted,
    };
    for subscription in subscriptions.iter().filter(|s| is_ours(s, settings)) {
        let Some(id) = subscription.id else { continue };
        let result = if dry_run {
            Ok(())
        } else {
            api.delete_subscription(id).await
        };
        match result {
            Ok(()) => report.unsubscribed.push(id),
            Err(error) if error.is_not_found() => report.unsubscribed.push(id),
            Err(error) => {
                report.access_refused |= error.is_refused();
                warn!(%tenant, subscription_id = id, error = %error_chain(&error), "could not delete our subscription");
                report.failed.push(Failed {
                    subscription_id: Some(id),
                    event: subscription.event.clone().unwrap_or_default(),
                    action: "delete".into(),
                    kind: error.kind().into(),
                    error: error_chain(&error),
                });
            }
        }
    }
    info!(%tenant, dry_run, deleted = report.unsubscribed.len(), failed = report.failed.len(), "company offboarded");
    report
}

/// How often a write that met a 409 is re-read, re-planned and tried again.
const CONFLICT_RETRIES: u32 = 3;

/// Lists, plans and carries out the plan for one company. Never fails as a whole: what went wrong
/// is in the report, so that one company (or one subscription) cannot stop the others.
pub async fn run_company<A: SubscriptionsApi, L: ResyncLedger>(
    api: &A,
    ledger: &L,
    tenant: &TenantId,
    settings: &KeeperSettings,
    dry_run: bool,
) -> CompanyReport {
    let (mut report, subscriptions) = match listed(api, tenant, dry_run).await {
        Ok(listed) => listed,
        Err(unlisted) => return unlisted,
    };
    for step in plan(&subscriptions, settings) {
        carry_out(api, ledger, tenant, settings, dry_run, step, &mut report).await;
    }
    info!(
        %tenant,
        dry_run,
        seen = report.seen,
        re_enabled = report.re_enabled.len(),
        created = report.created.len(),
        updated = report.updated.len(),
        left_alone = report.left_alone.len(),
        failed = report.failed.len(),
        "company done"
    );
    report
}

async fn carry_out<A: SubscriptionsApi, L: ResyncLedger>(
    api: &A,
    ledger: &L,
    tenant: &TenantId,
    settings: &KeeperSettings,
    dry_run: bool,
    mut step: Step,
    report: &mut CompanyReport,
) {
    let mut conflicts = 0;
    loop {
        if matches!(step.action, Action::LeaveAlone) {
            report.left_alone.push(LeftAlone {
                subscription_id: step.subscription_id,
                event: step.event.clone(),
                status: step.status.as_ref().map(|s| s.as_str().to_owned()),
                reason: step.reason,
            });
            return;
        }
        if dry_run {
            push_done(report, &step, done(&step, step_drift(&step)));
            return;
        }
        match written(api, settings, &step).await {
            Ok(done) => {
                if let (Some(reason), Some(subscription_id)) =
                    (step.action.resync_reason(), done.subscription_id)
                {
                    let request = resync_request(tenant, settings, &step, subscription_id, reason);
                    record_resync(ledger, &request, report).await;
                }
                push_done(report, &step, done);
                return;
            }
            Err(error) if error.is_revision_conflict() && conflicts < CONFLICT_RETRIES => {
                conflicts += 1;
                match replanned(api, tenant, settings, &step).await {
                    Replanned::Step(again) => step = again,
                    Replanned::NoId => return fail(report, &step, &error),
                    Replanned::Mismatched(reason) => {
                        return fail_with(report, &step, "mismatched_read", reason);
                    }
                    Replanned::Failed(error) => return fail(report, &step, &error),
                }
            }
            Err(error) => return fail(report, &step, &error),
        }
    }
}

fn done(step: &Step, drift: &[Drift]) -> Done {
    Done {
        subscription_id: step.subscription_id,
        event: step.event.clone(),
        reason: step.reason,
        drift: drift.to_vec(),
    }
}

/// The step's write at Tripletex: the subscription created, or updated (re-enabled) at its version.
async fn written<A: SubscriptionsApi>(
    api: &A,
    settings: &KeeperSettings,
    step: &Step,
) -> Result<Done, TripletexError> {
    match &step.action {
        Action::Create => api
            .create_subscription(&subscription_write(step, settings))
            .await
            .map(|created| Done {
                subscription_id: created.id,
                ..done(step, &[])
            }),
        Action::ReEnable { id, .. } | Action::Update { id, .. } => api
            .update_subscription(*id, &subscription_write(step, settings))
            .await
            .map(|_| done(step, step_drift(step))),
        Action::LeaveAlone => Ok(done(step, &[])),
    }
}

/// What a version conflict's re-read came to.
enum Replanned {
    /// The subscription read again, and its step planned again.
    Step(Step),
    /// The step names no subscription to read.
    NoId,
    /// Tripletex answered with another subscription: re-planning on its state would write the
    /// wrong one.
    Mismatched(String),
    Failed(TripletexError),
}

async fn replanned<A: SubscriptionsApi>(
    api: &A,
    tenant: &TenantId,
    settings: &KeeperSettings,
    step: &Step,
) -> Replanned {
    let Some(id) = step.subscription_id else {
        return Replanned::NoId;
    };
    warn!(%tenant, subscription_id = id, "version conflict; re-reading and re-planning");
    match api.get_subscription(id).await {
        Ok(current) if current.id == Some(id) => {
            let ours = is_ours(&current, settings);
            Replanned::Step(plan_subscription(&current, settings, ours, false))
        }
        Ok(other) => Replanned::Mismatched(format!(
            "re-reading subscription {id} after a version conflict returned {}",
            other.id.map_or_else(
                || "no id".to_owned(),
                |other| format!("subscription {other}")
            )
        )),
        Err(error) => Replanned::Failed(error),
    }
}

fn step_drift(step: &Step) -> &[Drift] {
    match &step.action {
        Action::ReEnable { drift, .. } | Action::Update { drift, .. } => drift,
        Action::Create | Action::LeaveAlone => &[],
    }
}

fn push_done(report: &mut CompanyReport, step: &Step, done: Done) {
    match step.action {
        Action::ReEnable { .. } => report.re_enabled.push(done),
        Action::Update { .. } => report.updated.push(done),
        Action::Create => report.created.push(done),
        Action::LeaveAlone => {}
    }
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::ReEnable { .. } => "re_enable",
        Action::Update { .. } => "update",
        Action::Create => "create",
        Action::LeaveAlone => "leave_alone",
    }
}

fn fail(report: &mut CompanyReport, step: &Step, error: &TripletexError) {
    report.rate_limited |= error.is_rate_limited();
    fail_with(report, step, error.kind(), error_chain(error));
}

fn fail_with(report: &mut CompanyReport, step: &Step, kind: &'static str, error: String) {
    warn!(tenant = %report.tenant, subscription_id = step.subscription_id, event = %step.event,
        error = %error, "subscription step failed");
    report.failed.push(Failed {
        subscription_id: step.subscription_id,
        event: step.event.clone(),
        action: action_name(&step.action).into(),
        kind: kind.into(),
        error,
    });
}

/// What a created subscription (backfill its type) or a re-enabled one (fetch what it missed)
/// leaves for the object sync.
fn resync_request(
    tenant: &TenantId,
    settings: &KeeperSettings,
    step: &Step,
    subscription_id: i64,
    reason: ResyncReason,
) -> ResyncRequest {
    let now = Timestamp::now();
    let window_from = match reason {
        ResyncReason::Created => Timestamp::UNIX_EPOCH,
        ResyncReason::ReEnabled => now
            .checked_sub(
                jiff::SignedDuration::try_from(settings.resync_lookback).unwrap_or_default(),
            )
            .unwrap_or(Timestamp::UNIX_EPOCH),
    };
    ResyncRequest {
        tenant: tenant.clone(),
        subscription_id,
        event: step.event.clone(),
        object_type: step.event.split('.').next().unwrap_or_default().to_owned(),
        reason,
        previous_status: step
            .status
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        window_from,
        window_to: now,
    }
}

/// A subscription whose resync cannot be recorded is still in place; the gap is reported as a
/// failure so that an operator (or the alarm on failures) notices it, and the nightly
/// reconciliation closes it.
async fn record_resync<L: ResyncLedger>(
    ledger: &L,
    request: &ResyncRequest,
    report: &mut CompanyReport,
) {
    if let Err(error) = ledger.record(request).await {
        let (tenant, subscription_id) = (&request.tenant, request.subscription_id);
        warn!(%tenant, subscription_id, error = %error_chain(&error), "subscription in place, but its resync could not be recorded");
        report.failed.push(Failed {
            subscription_id: Some(subscription_id),
            event: request.event.clone(),
            action: "record_resync".into(),
            kind: "ledger".into(),
            error: error_chain(&error),
        });
    }
}
