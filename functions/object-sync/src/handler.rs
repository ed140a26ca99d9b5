//! Turns the sync's events into domain calls. Two kinds of event arrive:
//! - a request to start runs (`domain::sync::StartRequest`: the nightly schedule, the schedule
//!   that answers the keeper's resync requests, or a person), carried out in `start.rs`;
//! - a batch from the sync queue: each record one task, one step (`step.rs`), its successor sent on.

use aws_adapters::companies::CompanySource;
use aws_adapters::telemetry::LogJournal;
use aws_adapters::telemetry::{emit_metrics, emit_type_metrics};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::error::error_chain;
use domain::ports::{
    Journal, MessageQueue, ObjectsApi, PendingResyncs, QueueError, StoreError, StoredCopy,
    SyncRecords, SyncTasks, TripletexCompanies,
};
use domain::resync::ResyncKey;
use domain::sync::{RunState, Stage, StartRequest, StepRecorded, StepReport, SyncTask, TypeCounts};
use jiff::Timestamp;
use tracing::{error, info, warn};

use crate::config::SyncSettings;
use crate::step::{StepError, StepNotes, StepPorts};

pub const FUNCTION_NAME: &str = "object-sync";

/// What the run record names as the failed part of a run that never took a step.
pub const NOT_STARTED: &str = "run";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the request is not one the sync takes")]
    InvalidRequest(#[source] serde_json::Error),
    #[error("the answer could not be written as JSON")]
    Answer(#[source] serde_json::Error),
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

/// What the sync reads and writes: Tripletex, the queues and the tables.
pub struct SyncPorts<C, Q, T, S, R, P> {
    pub tripletex: C,
    /// The worker's queue for what the sync fetched and tombstoned (the sync objects queue, read
    /// by a mapping of its own so that live webhooks never wait behind it).
    pub webhooks: Q,
    /// The webhook queue itself, where a reconciliation's recheck puts its marker
    /// (`sync::marker`); without it the recheck waits the fixed grace alone.
    pub live_webhooks: Option<Q>,
    pub tasks: T,
    pub copy: S,
    pub records: R,
    pub ledger: P,
}

pub struct ObjectSync<C, Q, T, S, R, P> {
    pub(crate) ports: SyncPorts<C, Q, T, S, R, P>,
    pub(crate) companies: CompanySource,
    pub(crate) settings: SyncSettings,
    pub(crate) journal: Box<dyn Journal>,
}

impl<C, Q, T, S, R, P> ObjectSync<C, Q, T, S, R, P> {
    pub fn new(
        ports: SyncPorts<C, Q, T, S, R, P>,
        companies: CompanySource,
        settings: SyncSettings,
    ) -> Self {
        Self {
            ports,
            companies,
            settings,
            journal: Box::new(LogJournal),
        }
    }

    pub fn with_journal(mut self, journal: impl Journal + 'static) -> Self {
        self.journal = Box::new(journal);
        self
    }
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
            let batch: SqsEvent =
                serde_json::from_value(event).map_err(SyncError::InvalidRequest)?;
            serde_json::to_value(self.handle_batch(batch).await)
        } else {
            let request: StartRequest =
                serde_json::from_value(event).map_err(SyncError::InvalidRequest)?;
            serde_json::to_value(self.start(request).await?)
        };
        answer.map_err(SyncError::Answer)
    }

    /// Each record one task. The queue is FIFO per company: once a record fails, the records after
    /// it in the batch fail too, so a company's steps never run out of order.
    pub async fn handle_batch(&self, batch: SqsEvent) -> SqsBatchResponse {
        let mut failures = Vec::new();
        let mut failed = false;
        for record in &batch.records {
            let id = record.message_id.clone().unwrap_or_default();
            if !failed && let Err(error) = self.handle_record(record).await {
                warn!(message_id = %id, error = %error_chain(&error), "sync task goes back to the queue");
                failed = true;
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
            Err(error @ (StepError::Store(_) | StepError::Queue(_))) => {
                return Err(TaskError::Step(error));
            }
            Err(error) if error.may_pass_on_retry() && delivery < self.settings.limits.attempts => {
                return Err(TaskError::Step(error));
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
            .ports
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
            Some(next) => self
                .ports
                .tasks
                .send(&next)
                .await
                .map_err(TaskError::Queue)?,
            None => self.finish(&task, state, counted_now).await?,
        }
        Ok(())
    }

    /// The run's last step: the requests it answered marked (before the step is done with: if the
    /// ledger fails, the task comes back, counted already, and marks them then), and, counted now,
    /// the run's figures.
    async fn finish(
        &self,
        task: &SyncTask,
        state: RunState,
        counted_now: bool,
    ) -> Result<(), TaskError> {
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
            .ports
            .tripletex
            .company(&task.tenant, credentials)
            .map_err(StepError::Tripletex)?;
        let before = api.usage();
        let ports = StepPorts {
            api: &*api,
            copy: &self.ports.copy,
            records: &self.ports.records,
            webhooks: &self.ports.webhooks,
            live_webhooks: self.ports.live_webhooks.as_ref(),
            settings: &self.settings,
            journal: &*self.journal,
        };
        let result = match stage {
            Stage::List(cursor) => ports.list(task, spec, *cursor, counts, notes).await,
            Stage::Verify { after_id } => ports.verify(task, spec, *after_id, counts, notes).await,
            Stage::Recheck => ports.recheck(task, spec, counts, notes).await,
            Stage::Confirm { awaiting } => ports.confirm(task, spec, awaiting).await,
        };
        let used = api.usage().since(before);
        counts.requests += used.requests;
        counts.rate_limited += used.rate_limited;
        result
    }

    /// Marks the keeper's requests with how their run ended (again, harmlessly, when a step is
    /// delivered twice).
    pub(crate) async fn settle(
        &self,
        run_id: &str,
        keys: &[ResyncKey],
        state: RunState,
    ) -> Result<(), domain::ports::LedgerError> {
        for key in keys {
            self.ports.ledger.settle(key, run_id, state).await?;
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
            ("NotStored", counts.not_stored),
            ("Contradicted", counts.contradicted),
            ("TypesFailed", u64::from(report.failure.is_some())),
        ],
    );
}

impl From<SyncError> for lambda_runtime::Diagnostic {
    fn from(error: SyncError) -> Self {
        let error_type = match error {
            SyncError::InvalidRequest(_) => "InvalidRequest",
            SyncError::Answer(_) => "AnswerNotWritten",
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
