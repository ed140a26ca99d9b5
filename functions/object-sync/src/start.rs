//! Starting runs: a run per company asked for, or per company with pending resync requests of the
//! keeper (claimed in the ledger first, given back if the run does not start), each the first task
//! of its chain on the sync queue; and the ledger's repair of requests a run took but never marked.

use std::collections::BTreeMap;

use aws_adapters::telemetry::{emit_metrics, emit_type_metrics};
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::ports::{
    MessageQueue, PendingResyncs, QueueError, StoredCopy, SyncRecords, SyncTasks,
    TripletexCompanies,
};
use domain::resync::{ResyncKey, ResyncReason};
use domain::sync::{
    ClaimRepair, FreshnessSummary, RunMode, RunStart, RunState, StartMode, StartReport,
    StartRequest, StartedRun, StepReport, SyncTask, TypeCounts, plan_types, repair_claim, run_id,
    type_freshness,
};
use jiff::Timestamp;
use tracing::{error, info, warn};

use crate::handler::{FUNCTION_NAME, NOT_STARTED, ObjectSync, SyncError};

impl<C, Q, T, S, R, P> ObjectSync<C, Q, T, S, R, P>
where
    C: TripletexCompanies,
    Q: MessageQueue,
    T: SyncTasks,
    S: StoredCopy,
    R: SyncRecords,
    P: PendingResyncs,
{
    /// Starts the runs a request asks for: one per company, or one per company with pending
    /// resync requests of the keeper.
    pub async fn start(&self, request: StartRequest) -> Result<StartReport, SyncError> {
        let mode = match request.mode {
            StartMode::Pending => return self.start_pending().await,
            StartMode::Run(mode) => mode,
        };
        let companies = self.companies.current().await;
        let tenants: Vec<TenantId> = match request.companies {
            None => companies.0.keys().cloned().collect(),
            Some(wanted) => wanted
                .iter()
                .map(|name| {
                    TenantId::parse(name)
                        .ok()
                        .filter(|tenant| companies.0.contains_key(tenant))
                        .ok_or_else(|| SyncError::UnknownTenant(name.clone()))
                })
                .collect::<Result<_, _>>()?,
        };
        let types = request.types.unwrap_or_else(|| self.subscribed_types());
        let mut report = StartReport::default();
        for tenant in tenants {
            report
                .runs
                .push(self.start_run(tenant, mode, &types, Vec::new()).await?);
        }
        Ok(report)
    }

    /// The object types the subscriptions cover, in the order configured.
    fn subscribed_types(&self) -> Vec<String> {
        let mut types: Vec<String> = Vec::new();
        for event in &self.settings.events {
            if !types.iter().any(|t| t == event.object()) {
                types.push(event.object().to_owned());
            }
        }
        types
    }

    /// Answers the keeper's requests: a backfill per company for the types whose subscription
    /// was created, a resync for the ones re-enabled; one run per company for all of them.
    async fn start_pending(&self) -> Result<StartReport, SyncError> {
        self.repair_claims().await?;
        self.watch_freshness().await?;
        let pending = self
            .ports
            .ledger
            .pending()
            .await
            .map_err(SyncError::Ledger)?;
        let companies = self.companies.current().await;
        let mut by_tenant: BTreeMap<TenantId, Vec<_>> = BTreeMap::new();
        for request in pending {
            if companies.0.contains_key(&request.request.tenant) {
                by_tenant
                    .entry(request.request.tenant.clone())
                    .or_default()
                    .push(request);
            } else {
                warn!(tenant = %request.request.tenant, "a resync request names a company without credentials; left pending");
            }
        }
        let mut report = StartReport::default();
        for (tenant, requests) in by_tenant {
            let mode = if requests
                .iter()
                .any(|r| r.request.reason == ResyncReason::Created)
            {
                RunMode::Backfill
            } else {
                RunMode::Resync
            };
            let started_at = Timestamp::now();
            let id = run_id(started_at, mode);
            let mut claimed = Vec::new();
            let mut types = Vec::new();
            for request in requests {
                match self.ports.ledger.claim(&request.key, &id).await {
                    Ok(true) => {
                        if !types.contains(&request.request.object_type) {
                            types.push(request.request.object_type.clone());
                        }
                        claimed.push(request.key);
                    }
                    Ok(false) => {}
                    Err(error) => {
                        self.release(&tenant, &id, &claimed).await;
                        return Err(SyncError::Ledger(error));
                    }
                }
            }
            if claimed.is_empty() {
                continue;
            }
            let released = claimed.clone();
            match self
                .start_run_at(
                    tenant.clone(),
                    mode,
                    &types,
                    claimed,
                    started_at,
                    id.clone(),
                )
                .await
            {
                Ok(run) => report.runs.push(run),
                Err(error) => {
                    self.release(&tenant, &id, &released).await;
                    return Err(error);
                }
            }
        }
        Ok(report)
    }

    /// Reports, on every tick, how long ago each subscribed type of each company was last proven
    /// complete: the alarms watch these figures, so that runs that never start are noticed.
    async fn watch_freshness(&self) -> Result<(), SyncError> {
        let types: Vec<String> = plan_types(self.subscribed_types().iter().map(String::as_str))
            .listable
            .iter()
            .map(|spec| spec.object_type.to_owned())
            .collect();
        let now = Timestamp::now();
        let mut summary = FreshnessSummary::default();
        for tenant in self.companies.current().await.0.keys() {
            let confirmed = self
                .ports
                .records
                .confirmed_complete(tenant)
                .await
                .map_err(SyncError::Records)?;
            let fresh = type_freshness(&types, &confirmed, now);
            for overdue in fresh.iter().filter(|fresh| fresh.overdue) {
                warn!(%tenant, object_type = %overdue.object_type, confirmed_at = ?overdue.confirmed_at,
                    "a type's copy has not been confirmed complete for over 26 hours");
            }
            summary.add(&fresh, now);
        }
        emit_metrics(FUNCTION_NAME, &summary.named());
        for (object_type, age) in &summary.oldest_by_type {
            emit_type_metrics(
                FUNCTION_NAME,
                object_type,
                &[("OldestConfirmationSeconds", *age)],
            );
        }
        Ok(())
    }

    /// Gives requests back to the next tick when the run that took them did not start. One that
    /// cannot be given back now is given back by `repair_claims` later.
    async fn release(&self, tenant: &TenantId, run_id: &str, keys: &[ResyncKey]) {
        for key in keys {
            if let Err(error) = self.ports.ledger.release(key, run_id).await {
                warn!(%tenant, run_id, key = %key.key, error = %error_chain(&error), "a resync request stays taken by a run that did not start, until a later tick gives it back");
            }
        }
    }

    /// Requests taken by a run that never started, or whose run ended without marking them (the
    /// ledger was unreachable then): given back or marked, so none waits for ever.
    async fn repair_claims(&self) -> Result<(), SyncError> {
        let now = Timestamp::now();
        for taken in self.ports.ledger.taken().await.map_err(SyncError::Ledger)? {
            let run = self
                .ports
                .records
                .run_state(&taken.tenant, &taken.run_id)
                .await
                .map_err(SyncError::Records)?;
            match repair_claim(taken.claimed_at, run, now) {
                ClaimRepair::Leave => {}
                ClaimRepair::Settle(state) => {
                    info!(tenant = %taken.tenant, run_id = %taken.run_id, key = %taken.key.key,
                        state = state.as_str(), "a resync request its run never marked is marked now");
                    self.ports
                        .ledger
                        .settle(&taken.key, &taken.run_id, state)
                        .await
                        .map_err(SyncError::Ledger)?;
                }
                ClaimRepair::Release => {
                    info!(tenant = %taken.tenant, run_id = %taken.run_id, key = %taken.key.key,
                        "a resync request taken by a run that never started is given back");
                    self.ports
                        .ledger
                        .release(&taken.key, &taken.run_id)
                        .await
                        .map_err(SyncError::Ledger)?;
                }
            }
        }
        Ok(())
    }

    async fn start_run(
        &self,
        tenant: TenantId,
        mode: RunMode,
        types: &[String],
        resyncs: Vec<ResyncKey>,
    ) -> Result<StartedRun, SyncError> {
        let started_at = Timestamp::now();
        let id = run_id(started_at, mode);
        self.start_run_at(tenant, mode, types, resyncs, started_at, id)
            .await
    }

    async fn start_run_at(
        &self,
        tenant: TenantId,
        mode: RunMode,
        types: &[String],
        resyncs: Vec<ResyncKey>,
        started_at: Timestamp,
        id: String,
    ) -> Result<StartedRun, SyncError> {
        let plan = plan_types(types.iter().map(String::as_str));
        let not_reconcilable: BTreeMap<String, String> = plan
            .not_reconcilable
            .iter()
            .map(|(object_type, reason)| (object_type.clone(), (*reason).to_owned()))
            .collect();
        let listed_types: Vec<String> = plan
            .listable
            .iter()
            .map(|spec| spec.object_type.to_owned())
            .collect();
        self.ports
            .records
            .start_run(&RunStart {
                tenant: tenant.clone(),
                run_id: id.clone(),
                mode,
                started_at,
                types: listed_types.clone(),
                not_reconcilable: not_reconcilable.clone().into_iter().collect(),
            })
            .await
            .map_err(SyncError::Records)?;
        let mut remembered = BTreeMap::new();
        for spec in plan
            .listable
            .iter()
            .filter(|spec| spec.date_window.is_some())
        {
            let windows = self
                .ports
                .records
                .remembered_windows(&tenant, spec.object_type)
                .await
                .map_err(SyncError::Records)?;
            remembered.insert(spec.object_type, windows);
        }
        let first = SyncTask::first_from(
            id.clone(),
            tenant.clone(),
            mode,
            started_at,
            &plan.listable,
            |object_type| remembered.get(object_type).cloned().unwrap_or_default(),
        );
        self.send_first(&tenant, &id, first, &resyncs).await?;
        info!(%tenant, run_id = %id, mode = mode.as_str(), types = ?listed_types,
            not_reconcilable = ?not_reconcilable.keys().collect::<Vec<_>>(), "sync run started");
        Ok(StartedRun {
            tenant: tenant.to_string(),
            run_id: id,
            mode,
            types: listed_types,
            not_reconcilable,
            answers: resyncs.len(),
        })
    }

    /// Puts the run's first task on the queue with the requests it answers; a run with nothing to
    /// list is over as it starts.
    async fn send_first(
        &self,
        tenant: &TenantId,
        id: &str,
        first: Option<SyncTask>,
        resyncs: &[ResyncKey],
    ) -> Result<(), SyncError> {
        match first {
            Some(mut task) => {
                task.resyncs = resyncs.to_vec();
                if let Err(error) = self.ports.tasks.send(&task).await {
                    self.record_not_started(tenant, id, &error).await;
                    return Err(SyncError::Queue(error));
                }
            }
            None => {
                let report = StepReport {
                    object_type: String::new(),
                    counts: TypeCounts::default(),
                    failure: None,
                    unstorable: Vec::new(),
                    finished: true,
                };
                self.ports
                    .records
                    .record_step(tenant, id, 0, &report)
                    .await
                    .map_err(SyncError::Records)?;
                self.settle(id, resyncs, RunState::Done)
                    .await
                    .map_err(SyncError::Ledger)?;
            }
        }
        Ok(())
    }

    /// A run whose first task the queue did not take ends failed, with the reason, so that no
    /// record says `running` of a run that will never take a step.
    async fn record_not_started(&self, tenant: &TenantId, run_id: &str, cause: &QueueError) {
        let report = StepReport {
            object_type: NOT_STARTED.to_owned(),
            counts: TypeCounts::default(),
            failure: Some(format!(
                "the sync queue did not take the run's first task: {}",
                error_chain(cause)
            )),
            unstorable: Vec::new(),
            finished: true,
        };
        match self
            .ports
            .records
            .record_step(tenant, run_id, 0, &report)
            .await
        {
            Ok(_) => {
                warn!(%tenant, run_id, error = %error_chain(cause), "the run could not start: recorded failed");
                emit_metrics(FUNCTION_NAME, &[("SyncRunsFailed", 1)]);
            }
            Err(error) => {
                error!(%tenant, run_id, error = %error_chain(&error), "a run that could not start stays recorded as running");
            }
        }
    }
}
