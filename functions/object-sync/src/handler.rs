//! Turns the sync's events into domain calls. Two kinds of event arrive:
//! - a request to start runs (the nightly schedule, the schedule that answers the keeper's resync
//!   requests, or a person): `{"mode": "reconcile" | "backfill" | "resync" | "pending",
//!   "companies": [...], "types": [...]}`; each company's run becomes the first task of its chain;
//! - a batch from the sync queue: each record one task, one step, its successor sent on.

use std::collections::BTreeMap;

use aws_adapters::secrets::SecretSource;
use aws_adapters::telemetry::{emit_metrics, emit_type_metrics};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::ports::{
    MessageQueue, ObjectsApi, PendingResyncs, QueueError, RunStart, StoreError, StoredCopy,
    SyncRecords, SyncTasks, TripletexCompanies,
};
use domain::resync::{ResyncKey, ResyncReason};
use domain::sync::{
    ClaimRepair, FreshnessSummary, RunMode, RunState, Stage, StepRecorded, StepReport, SyncTask,
    TypeCounts, plan_types, repair_claim, run_id, type_freshness,
};
use domain::tripletex::Companies;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::config::SyncSettings;
use crate::step::{StepError, StepNotes, StepPorts};

pub const FUNCTION_NAME: &str = "object-sync";

/// What the run record names as the failed part of a run that never took a step.
pub const NOT_STARTED: &str = "run";

/// A request to start runs. `companies` and `types` narrow a run; without them it covers every
/// configured company and every subscribed type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRequest {
    pub mode: String,
    #[serde(default)]
    pub companies: Option<Vec<String>>,
    #[serde(default)]
    pub types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartReport {
    pub runs: Vec<StartedRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartedRun {
    pub tenant: String,
    pub run_id: String,
    pub mode: RunMode,
    pub types: Vec<String>,
    pub not_reconcilable: BTreeMap<String, String>,
    /// Resync requests of the keeper this run answers.
    pub answers: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the request is not one the sync takes: {0}")]
    InvalidRequest(String),
    #[error("no Tripletex company is configured for tenant {0:?}")]
    UnknownTenant(String),
    #[error("the run record could not be written")]
    Records(#[source] StoreError),
    #[error("the sync queue did not take the run's first task")]
    Queue(#[source] QueueError),
    #[error("the resync requests could not be read")]
    Ledger(#[source] domain::ports::LedgerError),
}

/// Why a task goes back to the queue (it is delivered again, and lands in the DLQ if it keeps
/// failing).
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("the task is not valid JSON of a sync task")]
    Malformed(#[source] serde_json::Error),
    #[error("the step failed and will be tried again")]
    Step(#[source] StepError),
    #[error("the run record could not be updated")]
    Records(#[source] StoreError),
    #[error("the next task could not be queued")]
    Queue(#[source] QueueError),
    #[error("the keeper's requests this run answers could not be marked")]
    Ledger(#[source] domain::ports::LedgerError),
}

pub struct ObjectSync<C, Q, T, S, R, P> {
    pub tripletex: C,
    /// The worker's queue for what the sync fetched and tombstoned (the sync objects queue, read
    /// by a mapping of its own so that live webhooks never wait behind it).
    pub webhooks: Q,
    pub tasks: T,
    pub copy: S,
    pub records: R,
    pub ledger: P,
    pub companies: SecretSource<Companies>,
    pub settings: SyncSettings,
}

impl<C, Q, T, S, R, P> ObjectSync<C, Q, T, S, R, P>
where
    C: TripletexCompanies,
    Q: MessageQueue,
    T: SyncTasks,
    S: StoredCopy,
    R: SyncRecords,
    P: PendingResyncs,
{
    /// Either kind of event, as Lambda hands it over.
    pub async fn handle(&self, event: serde_json::Value) -> Result<serde_json::Value, SyncError> {
        let answer = if event.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event)
                .map_err(|error| SyncError::InvalidRequest(error.to_string()))?;
            serde_json::to_value(self.handle_batch(batch).await)
        } else {
            let request: StartRequest = serde_json::from_value(event)
                .map_err(|error| SyncError::InvalidRequest(error.to_string()))?;
            serde_json::to_value(self.start(request).await?)
        };
        answer.map_err(|error| SyncError::InvalidRequest(error.to_string()))
    }

    pub async fn start(&self, request: StartRequest) -> Result<StartReport, SyncError> {
        if request.mode == "pending" {
            return self.start_pending().await;
        }
        let mode = RunMode::parse(&request.mode).ok_or_else(|| {
            SyncError::InvalidRequest(format!(
                "mode {:?}: expected reconcile, backfill, resync or pending",
                request.mode
            ))
        })?;
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
        let pending = self.ledger.pending().await.map_err(SyncError::Ledger)?;
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
                match self.ledger.claim(&request.key, &id).await {
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
            if let Err(error) = self.ledger.release(key, run_id).await {
                warn!(%tenant, run_id, key = %key.key, error = %error_chain(&error), "a resync request stays taken by a run that did not start, until a later tick gives it back");
            }
        }
    }

    /// Requests taken by a run that never started, or whose run ended without marking them (the
    /// ledger was unreachable then): given back or marked, so none waits for ever.
    async fn repair_claims(&self) -> Result<(), SyncError> {
        let now = Timestamp::now();
        for taken in self.ledger.taken().await.map_err(SyncError::Ledger)? {
            let run = self
                .records
                .run_state(&taken.tenant, &taken.run_id)
                .await
                .map_err(SyncError::Records)?;
            match repair_claim(taken.claimed_at, run, now) {
                ClaimRepair::Leave => {}
                ClaimRepair::Settle(state) => {
                    info!(tenant = %taken.tenant, run_id = %taken.run_id, key = %taken.key.key,
                        state = state.as_str(), "a resync request its run never marked is marked now");
                    self.ledger
                        .settle(&taken.key, &taken.run_id, state)
                        .await
                        .map_err(SyncError::Ledger)?;
                }
                ClaimRepair::Release => {
                    info!(tenant = %taken.tenant, run_id = %taken.run_id, key = %taken.key.key,
                        "a resync request taken by a run that never started is given back");
                    self.ledger
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
        self.records
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
        let answers = resyncs.len();
        let mut remembered = BTreeMap::new();
        for spec in plan
            .listable
            .iter()
            .filter(|spec| spec.date_window.is_some())
        {
            let windows = self
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
        match first {
            Some(mut task) => {
                task.resyncs = resyncs;
                if let Err(error) = self.tasks.send(&task).await {
                    self.record_not_started(&tenant, &id, &error).await;
                    return Err(SyncError::Queue(error));
                }
            }
            None => {
                // Nothing to list: the run is over as it starts.
                let report = StepReport {
                    object_type: String::new(),
                    counts: TypeCounts::default(),
                    failure: None,
                    unstorable: Vec::new(),
                    finished: true,
                };
                self.records
                    .record_step(&tenant, &id, 0, &report)
                    .await
                    .map_err(SyncError::Records)?;
                self.settle(&id, &resyncs, RunState::Done)
                    .await
                    .map_err(SyncError::Ledger)?;
            }
        }
        info!(%tenant, run_id = %id, mode = mode.as_str(), types = ?listed_types,
            not_reconcilable = ?not_reconcilable.keys().collect::<Vec<_>>(), "sync run started");
        Ok(StartedRun {
            tenant: tenant.to_string(),
            run_id: id,
            mode,
            types: listed_types,
            not_reconcilable,
            answers,
        })
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
        match self.records.record_step(tenant, run_id, 0, &report).await {
            Ok(_) => {
                warn!(%tenant, run_id, error = %error_chain(cause), "the run could not start: recorded failed");
                emit_metrics(FUNCTION_NAME, &[("SyncRunsFailed", 1)]);
            }
            Err(error) => {
                error!(%tenant, run_id, error = %error_chain(&error), "a run that could not start stays recorded as running");
            }
        }
    }

    /// Each record one task. The queue is FIFO per company: once a record fails, the records after
    /// it in the batch fail too, so a company's steps never run out of order.
    pub async fn handle_batch(&self, batch: SqsEvent) -> SqsBatchResponse {
        let mut failures = Vec::new();
        let mut failed = false;
        for record in &batch.records {
            let id = record.message_id.clone().unwrap_or_default();
            if !failed {
                if let Err(error) = self.handle_record(record).await {
                    warn!(message_id = %id, error = %error_chain(&error), "sync task goes back to the queue");
                    failed = true;
                }
            }
            if failed {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    }

    async fn handle_record(&self, record: &SqsMessage) -> Result<(), TaskError> {
        let task: SyncTask = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(TaskError::Malformed)?;
        let delivery = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.parse().ok())
            .unwrap_or(1);
        self.run_task(task, delivery).await
    }

    /// One step of a run, counted once in the run record, then its successor queued (or the run
    /// finished). `delivery` is how often the queue has handed this task out.
    pub async fn run_task(&self, task: SyncTask, delivery: u32) -> Result<(), TaskError> {
        let Some(work) = task.current().cloned() else {
            return Ok(());
        };
        let mut counts = TypeCounts::default();
        let mut notes = StepNotes::default();
        let outcome = self.step(&task, &work.stage, &mut counts, &mut notes).await;
        let (next, failure) = match outcome {
            Ok(next) => (next, None),
            Err(StepError::Store(error)) => return Err(TaskError::Step(StepError::Store(error))),
            Err(StepError::Queue(error)) => return Err(TaskError::Step(StepError::Queue(error))),
            Err(StepError::Tripletex(error))
                if error.may_pass() && delivery < self.settings.limits.attempts =>
            {
                return Err(TaskError::Step(StepError::Tripletex(error)));
            }
            Err(error) => {
                let reason = error_chain(&error);
                error!(tenant = %task.tenant, run_id = %task.run_id, object_type = %work.object_type,
                    error = %reason, "the type's listing failed: it is reported failed and nothing of it is tombstoned");
                (task.clone().abandon_type(), Some(reason))
            }
        };
        let report = StepReport {
            object_type: work.object_type.clone(),
            counts,
            failure,
            unstorable: notes.unstorable,
            finished: next.is_none(),
        };
        let recorded = self
            .records
            .record_step(&task.tenant, &task.run_id, task.step, &report)
            .await
            .map_err(TaskError::Records)?;
        let (state, counted_now) = match recorded {
            StepRecorded::Stale => {
                info!(tenant = %task.tenant, run_id = %task.run_id, step = task.step, "a step the run has passed was delivered again; dropped");
                return Ok(());
            }
            StepRecorded::Applied { state } => {
                emit_step_metrics(&report);
                (state, true)
            }
            StepRecorded::AlreadyApplied { state } => (state, false),
        };
        match next {
            Some(next) => self.tasks.send(&next).await.map_err(TaskError::Queue)?,
            None => {
                // Marked before the step is done with: if the ledger fails, the task comes back
                // (counted already) and marks them then.
                self.settle(&task.run_id, &task.resyncs, state)
                    .await
                    .map_err(TaskError::Ledger)?;
                if !counted_now {
                    return Ok(());
                }
                let seconds = Timestamp::now()
                    .duration_since(task.started_at)
                    .as_secs()
                    .max(0)
                    .unsigned_abs();
                info!(tenant = %task.tenant, run_id = %task.run_id, mode = task.mode.as_str(),
                    state = state.as_str(), steps = task.step + 1, seconds, "sync run finished");
                emit_metrics(
                    FUNCTION_NAME,
                    &[
                        ("SyncRunsDone", u64::from(state == RunState::Done)),
                        ("SyncRunsFailed", u64::from(state == RunState::Failed)),
                        ("SyncRunSeconds", seconds),
                    ],
                );
            }
        }
        Ok(())
    }

    async fn step(
        &self,
        task: &SyncTask,
        stage: &Stage,
        counts: &mut TypeCounts,
        notes: &mut StepNotes,
    ) -> Result<Option<SyncTask>, StepError> {
        let Some(spec) = task.spec() else {
            return Err(StepError::Impossible(
                "the task names a type with nothing to list",
            ));
        };
        let companies = self.companies.current().await;
        let Some(credentials) = companies.0.get(&task.tenant) else {
            return Err(StepError::Impossible(
                "the company is no longer looked after (removed, or gone from the credentials secret)",
            ));
        };
        let api = self
            .tripletex
            .company(&task.tenant, credentials)
            .map_err(StepError::Tripletex)?;
        let before = api.usage();
        let ports = StepPorts {
            api: &*api,
            copy: &self.copy,
            records: &self.records,
            webhooks: &self.webhooks,
            settings: &self.settings,
        };
        let result = match stage {
            Stage::List(cursor) => ports.list(task, spec, *cursor, counts, notes).await,
            Stage::Verify { after_id } => ports.verify(task, spec, *after_id, counts, notes).await,
            Stage::Recheck => ports.recheck(task, spec, counts, notes).await,
        };
        let used = api.usage().since(before);
        counts.requests += used.requests;
        counts.rate_limited += used.rate_limited;
        result
    }

    /// Marks the keeper's requests with how their run ended (again, harmlessly, when a step is
    /// delivered twice).
    async fn settle(
        &self,
        run_id: &str,
        keys: &[ResyncKey],
        state: RunState,
    ) -> Result<(), domain::ports::LedgerError> {
        for key in keys {
            self.ledger.settle(key, run_id, state).await?;
        }
        Ok(())
    }
}

fn emit_step_metrics(report: &StepReport) {
    let counts = &report.counts;
    emit_type_metrics(
        FUNCTION_NAME,
        &report.object_type,
        &[
            ("Listed", counts.listed),
            ("Unchanged", counts.unchanged),
            ("Fetched", counts.fetched),
            ("Enqueued", counts.enqueued),
            ("Tombstoned", counts.tombstoned),
            ("RefreshedAfterLookup", counts.refreshed_after_lookup),
            ("Vanished", counts.vanished),
            ("Unstorable", counts.unstorable),
            ("PagesNotModified", counts.pages_not_modified),
            ("TripletexRequests", counts.requests),
            ("TripletexRateLimited", counts.rate_limited),
            ("DriftCorrected", counts.drift_corrected),
            ("TypesFailed", u64::from(report.failure.is_some())),
        ],
    );
}

impl From<SyncError> for lambda_runtime::Diagnostic {
    fn from(error: SyncError) -> Self {
        let error_type = match error {
            SyncError::InvalidRequest(_) => "InvalidRequest",
            SyncError::UnknownTenant(_) => "UnknownTenant",
            SyncError::Records(_) => "RunRecordUnavailable",
            SyncError::Queue(_) => "SyncQueueUnavailable",
            SyncError::Ledger(_) => "ResyncLedgerUnavailable",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error_chain(&error),
        }
    }
}
