//! Turns an SQS batch into one conditional write per record, run concurrently, and reports the
//! records to retry.

use aws_adapters::telemetry::{LogJournal, emit_batch};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::claim::{NoPayloadBucket, claimed_body};
use domain::dedup::{ObjectChange, ObjectKey, Outcome, Write};
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::journal::{self, Entry, Settled, Settlement};
use domain::message::{QueueMessage, attribute};
use domain::ports::{
    BlobStore, Journal, MessageQueue, ObjectStore, StoreError, SyncRecords, TenantStates,
};
use domain::record::{BatchCounts, change_from_message, freshness_ms};
use domain::registry::CompanyState;
use domain::sync::drift::{self, Held};
use domain::sync::marker::marker_of;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt as _;
use futures_util::StreamExt as _;
use futures_util::stream;
use jiff::Timestamp;
use tracing::{debug, error, info, warn};

const FUNCTION_NAME: &str = "webhook-worker";

pub struct Worker<S, Q, B = NoPayloadBucket> {
    store: S,
    quarantine: Q,
    /// Where the bodies of claim-checked messages are read.
    payloads: B,
    concurrency: usize,
    /// The company registry: the records of a company being removed are dropped, so that nothing
    /// the receiver took before it refused the company reaches the table.
    registry: Option<Box<dyn TenantStates>>,
    /// Where a reconciliation's marker is recorded when the worker reaches it (`sync::marker`),
    /// and its drift findings settled when their webhooks come after all (`sync::drift`).
    sync_book: Option<Box<dyn SyncBook>>,
    journal: Box<dyn Journal>,
}

/// The worker's two entries in the sync's records: it reached a reconciliation's marker on the
/// webhook queue; a change a reconciliation counted as drift was corroborated.
pub trait SyncBook: Send + Sync {
    fn reached<'a>(
        &'a self,
        tenant: &'a TenantId,
        run_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

    fn settle_drift<'a>(
        &'a self,
        key: &'a ObjectKey,
        held: Held,
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, StoreError>> + Send + 'a>>;
}

impl<R: SyncRecords> SyncBook for R {
    fn reached<'a>(
        &'a self,
        tenant: &'a TenantId,
        run_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>> {
        Box::pin(self.record_marker(tenant, run_id))
    }

    fn settle_drift<'a>(
        &'a self,
        key: &'a ObjectKey,
        held: Held,
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, StoreError>> + Send + 'a>> {
        Box::pin(SyncRecords::settle_drift(self, key, held))
    }
}

/// What became of one record.
#[derive(Debug)]
enum Handled {
    Applied {
        outcome: Outcome,
        write: Write,
        /// From the receiver to the copy, for an accepted webhook.
        freshness_ms: Option<u64>,
        /// It settled a change a reconciliation had counted as drift (`sync::drift`).
        drift_delivered_late: bool,
    },
    Quarantined,
    /// Of a company being removed or removed: dropped.
    RemovedCompany,
    /// A reconciliation's marker, recorded (or, with nowhere to record it, dropped).
    Marker,
    /// Failed for a reason that may pass: the record is reported and comes back from the queue.
    Retry,
}

impl<S: ObjectStore, Q: MessageQueue, B: BlobStore> Worker<S, Q, B> {
    /// A marker says the worker has handed on what was queued before it: recorded for the
    /// reconciliation that waits for it; retried when the record cannot be written.
    async fn reach_marker(
        &self,
        message_id: &str,
        tenant: Option<TenantId>,
        run_id: &str,
    ) -> Handled {
        let (Some(markers), Some(tenant)) = (&self.sync_book, tenant) else {
            info!(
                message_id,
                run_id, "a reconciliation's marker with nowhere to record it: dropped"
            );
            return Handled::Marker;
        };
        match markers.reached(&tenant, run_id).await {
            Ok(()) => {
                debug!(message_id, %tenant, run_id, "reconciliation marker reached");
                Handled::Marker
            }
            Err(error) => {
                warn!(message_id, %tenant, run_id, error = %error_chain(&error), "a reconciliation's marker could not be recorded; it will be retried");
                Handled::Retry
            }
        }
    }

    /// Whether a corroborated change settles a reconciliation's drift finding. Only counting
    /// depends on it: a failure is logged, never retried (the copy is right either way).
    async fn settle_drift(
        &self,
        message_id: &str,
        change: &ObjectChange,
        outcome: Outcome,
    ) -> bool {
        let (Some(book), Some(held)) = (&self.sync_book, drift::settles(change, outcome)) else {
            return false;
        };
        match book.settle_drift(&change.key, held).await {
            Ok(Some(run_id)) => {
                info!(message_id, key = %change.key, %held, run_id, source = change.source.as_str(), "a change a reconciliation counted as drift came by webhook after all");
                true
            }
            Ok(None) => false,
            Err(error) => {
                warn!(message_id, key = %change.key, error = %error_chain(&error), "could not settle a drift finding: drift stays counted for it");
                false
            }
        }
    }
}

impl<S: ObjectStore, Q: MessageQueue> Worker<S, Q> {
    pub fn new(store: S, quarantine: Q, concurrency: usize) -> Self {
        Self {
            store,
            quarantine,
            payloads: NoPayloadBucket,
            concurrency: concurrency.max(1),
            registry: None,
            sync_book: None,
            journal: Box::new(LogJournal),
        }
    }
}

impl<S: ObjectStore, Q: MessageQueue, B: BlobStore> Worker<S, Q, B> {
    /// Reads claim-checked bodies from `payloads`.
    pub fn with_payloads<P: BlobStore>(self, payloads: P) -> Worker<S, Q, P> {
        Worker {
            store: self.store,
            quarantine: self.quarantine,
            payloads,
            concurrency: self.concurrency,
            registry: self.registry,
            sync_book: self.sync_book,
            journal: self.journal,
        }
    }

    pub fn with_journal(mut self, journal: impl Journal + 'static) -> Self {
        self.journal = Box::new(journal);
        self
    }

    pub fn with_registry(mut self, registry: impl TenantStates + 'static) -> Self {
        self.registry = Some(Box::new(registry));
        self
    }

    pub fn with_sync_book(mut self, book: impl SyncBook + 'static) -> Self {
        self.sync_book = Some(Box::new(book));
        self
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let (response, counts, freshness) = self.apply_batch(event).await;
        emit_batch(
            FUNCTION_NAME,
            &counts.metrics(),
            ("FreshnessMs", "Milliseconds", &freshness),
        );
        response
    }

    /// The batch applied: the records to retry, what became of the records, and the freshness of
    /// each accepted webhook.
    async fn apply_batch(&self, event: SqsEvent) -> (SqsBatchResponse, BatchCounts, Vec<u64>) {
        let size = event.records.len();
        let handled: Vec<(Option<String>, Handled)> = stream::iter(&event.records)
            .map(|record| async move {
                // A panic (a bug) fails its own record only; the other records of the batch
                // are applied, not sent back with it (release builds unwind for this).
                let handled = AssertUnwindSafe(self.handle_record(record))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| {
                        let panic = panic_message(panic.as_ref());
                        error!(
                            message_id = record.message_id.as_deref().unwrap_or_default(),
                            panic, "handling the record panicked; it will be retried"
                        );
                        self.settled(record, None, Settlement::Failed, Some(panic));
                        Handled::Retry
                    });
                (record.message_id.clone(), handled)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;

        let mut counts = BatchCounts::default();
        let mut freshness = Vec::new();
        let mut response = SqsBatchResponse::default();
        for (message_id, handled) in handled {
            match handled {
                Handled::Applied {
                    outcome,
                    write,
                    freshness_ms,
                    drift_delivered_late,
                } => {
                    counts.count_outcome(outcome, &write);
                    counts.drift_delivered_late += u64::from(drift_delivered_late);
                    freshness.extend(freshness_ms);
                }
                Handled::Quarantined => counts.quarantined += 1,
                Handled::RemovedCompany => counts.removed_company += 1,
                Handled::Marker => {}
                Handled::Retry => {
                    counts.failed += 1;
                    let mut failure = BatchItemFailure::default();
                    // SQS always sends an id; should one be missing, the empty identifier makes
                    // Lambda retry the whole batch rather than drop the record.
                    failure.item_identifier = message_id.unwrap_or_default();
                    response.batch_item_failures.push(failure);
                }
            }
        }
        // The metrics line carries these counts to CloudWatch; this one is for a debugging session.
        debug!(
            records = size,
            accepted = counts.accepted,
            duplicate = counts.duplicate,
            stale = counts.stale,
            after_delete = counts.after_delete,
            forgotten = counts.forgotten,
            corroborated = counts.corroborated,
            drift_delivered_late = counts.drift_delivered_late,
            unversioned = counts.unversioned,
            quarantined = counts.quarantined,
            failed = counts.failed,
            removed_company = counts.removed_company,
            "batch done"
        );
        (response, counts, freshness)
    }

    async fn handle_record(&self, record: &SqsMessage) -> Handled {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        if let Some((tenant, run_id)) = marker_of(|name| string_attribute(record, name)) {
            return self.reach_marker(message_id, tenant, run_id).await;
        }
        let body = claimed_body(
            &self.payloads,
            record.body.as_deref().unwrap_or_default(),
            |name| string_attribute(record, name),
        )
        .await;
        let body = match body {
            Ok(body) => body,
            Err(error) if error.is_transient() => {
                let reason = error_chain(&error);
                warn!(
                    message_id,
                    reason, "claim-checked body unreadable; the record will be retried"
                );
                self.settled(record, None, Settlement::Failed, Some(&reason));
                return Handled::Retry;
            }
            Err(error) => return self.quarantine(record, None, &error_chain(&error)).await,
        };
        let change = change_from_message(
            record.body.as_ref().map(|_| body.as_ref()),
            |name| string_attribute(record, name),
            Timestamp::now(),
        );
        let change = match change {
            Ok(change) => change,
            Err(reason) => return self.quarantine(record, None, &reason.to_string()).await,
        };
        if let Some(registry) = &self.registry
            && registry
                .state_of(&change.key.tenant)
                .await
                .is_some_and(CompanyState::refuses_webhooks)
        {
            info!(message_id, tenant = %change.key.tenant, "record of a removed company dropped");
            self.settled(record, Some(&change), Settlement::Dropped, None);
            return Handled::RemovedCompany;
        }
        match self.store.apply(&change).await {
            Ok(outcome) => {
                self.settled(
                    record,
                    Some(&change),
                    Settlement::of(outcome, &change.write),
                    None,
                );
                Handled::Applied {
                    outcome,
                    freshness_ms: freshness_ms(&change, outcome, Timestamp::now()),
                    drift_delivered_late: self.settle_drift(message_id, &change, outcome).await,
                    write: change.write,
                }
            }
            Err(error) if error.is_transient() => {
                let reason = error_chain(&error);
                warn!(message_id, key = %change.key, reason, "record will be retried");
                self.settled(record, Some(&change), Settlement::Failed, Some(&reason));
                Handled::Retry
            }
            Err(error) => {
                self.quarantine(record, Some(&change), &error_chain(&error))
                    .await
            }
        }
    }

    /// The record's line in the journal: its request, what it was about when it could be read,
    /// and what became of it.
    fn settled(
        &self,
        record: &SqsMessage,
        change: Option<&ObjectChange>,
        outcome: Settlement,
        reason: Option<&str>,
    ) {
        let attribute = |name| string_attribute(record, name).map(str::to_owned);
        let request = attribute(attribute::REQUEST_ID).filter(|request| !request.is_empty());
        self.journal.write(&Entry::Settled(Settled {
            at: journal::now(),
            message: request
                .is_none()
                .then(|| record.message_id.clone())
                .flatten(),
            request,
            tenant: change
                .map(|change| change.key.tenant.to_string())
                .or_else(|| attribute(attribute::TENANT)),
            object_type: change.map(|change| change.key.object_type.clone()),
            id: change
                .map(|change| change.key.object_id)
                .or_else(|| attribute(attribute::OBJECT_ID).and_then(|id| id.parse().ok())),
            event: change
                .map(|change| change.event.clone())
                .or_else(|| attribute(attribute::EVENT)),
            version: change.and_then(|change| change.write.version()),
            source: change.map(|change| change.source),
            outcome,
            reason: reason.map(journal::bounded),
        }));
    }

    /// Keeps a record that can never apply, with its reason, and acknowledges it: retrying it until
    /// the dead-letter queue would only delay the same answer.
    async fn quarantine(
        &self,
        record: &SqsMessage,
        change: Option<&ObjectChange>,
        reason: &str,
    ) -> Handled {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let message = QueueMessage {
            body: record.body.clone().unwrap_or_default(),
            attributes: record
                .message_attributes
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.string_value.clone()?)))
                .collect(),
        }
        .with_attribute(
            attribute::QUARANTINE_REASON,
            domain::message::attribute_text(reason),
        );
        match self.quarantine.send(&message).await {
            Ok(_) => {
                warn!(message_id, reason, "record quarantined");
                self.settled(record, change, Settlement::Quarantined, Some(reason));
                Handled::Quarantined
            }
            Err(error) => {
                let error = error_chain(&error);
                error!(
                    message_id,
                    reason, error, "record could not be quarantined; will be retried"
                );
                self.settled(record, change, Settlement::Failed, Some(&error));
                Handled::Retry
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

fn string_attribute<'a>(record: &'a SqsMessage, name: &str) -> Option<&'a str> {
    record.message_attributes.get(name)?.string_value.as_deref()
}

#[cfg(test)]
mod tests {

    use domain::dedup::{ObjectChange, ObjectKey, Payload, Source};
    use domain::ids::TenantId;
    use test_support::{InMemoryObjectStore, RecordingQueue, StoreFailure};

    use super::*;

    macro_rules! event {
        ($name:literal) => {
            include_str!(concat!("../../../events/webhook-worker/", $name, ".json"))
        };
    }

    struct Harness {
        worker: Worker<InMemoryObjectStore, RecordingQueue>,
        store: InMemoryObjectStore,
        quarantine: RecordingQueue,
        journal: test_support::RecordingJournal,
    }

    impl Harness {
        fn new() -> Self {
            let store = InMemoryObjectStore::new();
            let quarantine = RecordingQueue::new();
            let journal = test_support::RecordingJournal::default();
            let worker =
                Worker::new(store.clone(), quarantine.clone(), 10).with_journal(journal.clone());
            Self {
                worker,
                store,
                quarantine,
                journal,
            }
        }

        async fn seed(&self, object: &str, id: i64, write: Write) {
            let change = ObjectChange {
                key: key(object, id),
                write,
                event: format!("{object}.update"),
                subscription_id: None,
                received_at: Timestamp::UNIX_EPOCH,
                source: Source::Webhook,
                probe: None,
                request: None,
            };
            assert_eq!(self.store.apply(&change).await.unwrap(), Outcome::Accepted);
        }

        async fn handle(&self, event: &str) -> SqsBatchResponse {
            self.worker
                .handle(serde_json::from_str(event).unwrap())
                .await
        }
    }

    fn key(object: &str, id: i64) -> ObjectKey {
        ObjectKey {
            tenant: TenantId::default_tenant(),
            object_type: object.into(),
            object_id: id,
        }
    }

    fn versioned(version: i64) -> Write {
        Write::Versioned {
            version,
            payload: Payload::from_json(&format!(r#"{{"version":{version}}}"#)),
        }
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn mixed_batch_applies_each_record_by_the_rule_and_fails_none() {
        let harness = Harness::new();
        harness.seed("product", 102, versioned(3)).await;
        harness.seed("product", 103, versioned(5)).await;
        harness.seed("order", 104, versioned(2)).await;
        harness.seed("customer", 105, Write::Delete).await;

        let response = harness.handle(event!("sqs-mixed-batch")).await;

        assert!(
            response.batch_item_failures.is_empty(),
            "{:?}",
            failed_ids(&response)
        );
        let new = harness.store.get("default#product#101").unwrap();
        assert_eq!(new.state.version, Some(1));
        assert_eq!(
            new.value.as_deref(),
            Some(r#"{"id":101,"version":1,"name":"Ny vare"}"#)
        );
        assert_eq!(new.last_change.subscription_id, Some(11));
        assert_eq!(
            new.last_change.received_at.to_string(),
            "2026-11-23T09:30:01Z"
        );
        assert_eq!(
            harness
                .store
                .get("default#product#102")
                .unwrap()
                .last_change
                .event,
            "product.update"
        );
        assert_eq!(
            harness
                .store
                .get("default#product#102")
                .unwrap()
                .state
                .version,
            Some(3)
        );
        assert_eq!(
            harness
                .store
                .get("default#product#103")
                .unwrap()
                .state
                .version,
            Some(5),
            "stale write ignored"
        );
        let tombstone = harness.store.get("default#order#104").unwrap();
        assert!(tombstone.state.deleted);
        assert_eq!(tombstone.value, None);
        assert!(
            harness
                .store
                .get("default#customer#105")
                .unwrap()
                .state
                .deleted,
            "not resurrected"
        );
        let unversioned = harness.store.get("default#customer#106").unwrap();
        assert_eq!(unversioned.state.version, None);
        assert_eq!(
            unversioned.value.as_deref(),
            Some(r#"{"id":106,"name":"Uten versjon"}"#)
        );

        let quarantined = harness.quarantine.sent();
        assert_eq!(quarantined.len(), 1);
        assert_eq!(quarantined[0].body, r#"{"hello": "not an envelope"}"#);
        assert!(
            quarantined[0]
                .attribute("quarantineReason")
                .unwrap()
                .starts_with("body is not an envelope")
        );
        assert_eq!(
            quarantined[0].attribute("tenant"),
            Some("default"),
            "original attributes kept"
        );
    }

    #[tokio::test]
    async fn counts_every_outcome_of_the_mixed_batch() {
        let harness = Harness::new();
        harness.seed("product", 102, versioned(3)).await;
        harness.seed("product", 103, versioned(5)).await;
        harness.seed("order", 104, versioned(2)).await;
        harness.seed("customer", 105, Write::Delete).await;
        let event: SqsEvent = serde_json::from_str(event!("sqs-mixed-batch")).unwrap();
        let mut outcomes = Vec::new();
        for record in &event.records {
            if let Handled::Applied { outcome, .. } = harness.worker.handle_record(record).await {
                outcomes.push(outcome);
            }
        }
        // One record at a time, in file order, to name the outcome of each.
        assert_eq!(
            outcomes,
            [
                Outcome::Accepted,
                Outcome::Duplicate,
                Outcome::Stale,
                Outcome::Accepted,
                Outcome::AfterDelete,
                Outcome::Accepted
            ]
        );
        // Each record one journal line, with what it was about and what became of it; the
        // record that is not an envelope is quarantined with its reason.
        assert_eq!(
            harness.journal.outcomes(),
            [
                "accepted",
                "duplicate",
                "stale",
                "accepted",
                "after_delete",
                "unversioned",
                "quarantined"
            ]
        );
        let entries = harness.journal.entries();
        let Entry::Settled(stale) = &entries[2] else {
            panic!("{:?}", entries[2])
        };
        assert_eq!(
            (
                stale.tenant.as_deref(),
                stale.object_type.as_deref(),
                stale.id,
                stale.version
            ),
            (Some("default"), Some("product"), Some(103), Some(2))
        );
        let Entry::Settled(quarantined) = &entries[6] else {
            panic!("{:?}", entries[6])
        };
        assert!(quarantined.reason.is_some());
    }

    #[tokio::test]
    async fn duplicate_deliveries_in_one_batch_are_written_once() {
        let harness = Harness::new();
        let response = harness.handle(event!("sqs-product-versions")).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(harness.store.len(), 2);
        assert_eq!(
            harness
                .store
                .get("default#product#201")
                .unwrap()
                .state
                .version,
            Some(4)
        );
        assert_eq!(
            harness
                .store
                .get("default#product#202")
                .unwrap()
                .state
                .version,
            Some(7)
        );
    }

    #[tokio::test]
    async fn throttling_on_one_record_fails_only_that_record() {
        let harness = Harness::new();
        harness
            .store
            .fail_next("default#product#202", [StoreFailure::Throttled]);

        let response = harness.handle(event!("sqs-product-versions")).await;

        assert_eq!(
            failed_ids(&response),
            ["5f7d2c1e-0000-4000-9000-000000000013"]
        );
        assert!(
            harness.store.get("default#product#201").is_some(),
            "the other records were applied"
        );
        assert!(harness.store.get("default#product#202").is_none());
        assert!(
            harness.quarantine.sent().is_empty(),
            "a transient failure is retried, not quarantined"
        );

        // The retried record succeeds once the store recovers.
        let retry = harness.handle(event!("sqs-product-versions")).await;
        assert!(retry.batch_item_failures.is_empty());
        assert_eq!(
            harness
                .store
                .get("default#product#202")
                .unwrap()
                .state
                .version,
            Some(7)
        );
    }

    /// Ten records, one of which makes the store panic: the nine others are applied, and only the
    /// one comes back for retry.
    #[tokio::test]
    async fn a_record_that_panics_fails_alone_and_the_other_nine_are_applied() {
        let harness = Harness::new();
        harness
            .store
            .fail_next("default#product#305", [StoreFailure::Panic]);
        let records: Vec<serde_json::Value> = (301..=310)
            .map(|id| {
                serde_json::json!({
                    "messageId": format!("m-{id}"),
                    "body": format!(r#"{{"event":"product.update","id":{id},"value":{{"id":{id},"version":1}}}}"#),
                    "messageAttributes": {"tenant": {"stringValue": "default", "dataType": "String"}},
                    "eventSource": "aws:sqs"
                })
            })
            .collect();
        let event = serde_json::json!({ "Records": records }).to_string();

        let response = harness.handle(&event).await;

        assert_eq!(failed_ids(&response), ["m-305"]);
        assert_eq!(harness.store.len(), 9);
        assert!(harness.store.get("default#product#305").is_none());
        assert!(
            harness.quarantine.sent().is_empty(),
            "a bug is retried, not quarantined"
        );
        let retry = harness.handle(&event).await;
        assert!(retry.batch_item_failures.is_empty(), "once the bug is gone");
        assert_eq!(harness.store.len(), 10);
    }

    #[tokio::test]
    async fn an_unavailable_store_fails_every_record_for_retry() {
        let harness = Harness::new();
        harness.store.fail_next(
            "default#product#201",
            [StoreFailure::Unavailable, StoreFailure::Unavailable],
        );
        harness
            .store
            .fail_next("default#product#202", [StoreFailure::Unavailable]);
        let response = harness.handle(event!("sqs-product-versions")).await;
        assert_eq!(response.batch_item_failures.len(), 3);
    }

    #[tokio::test]
    async fn an_item_the_store_will_never_take_is_quarantined_not_retried() {
        let harness = Harness::new();
        harness
            .store
            .fail_next("default#order#2002", [StoreFailure::Rejected]);
        let response = harness.handle(event!("sqs-delete")).await;
        assert!(response.batch_item_failures.is_empty());
        let quarantined = harness.quarantine.sent();
        assert_eq!(quarantined.len(), 1);
        assert!(
            quarantined[0]
                .attribute("quarantineReason")
                .unwrap()
                .starts_with("the object store refused the item")
        );
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_quarantined_is_retried() {
        let harness = Harness::new();
        harness.quarantine.set_unavailable(true);
        let response = harness.handle(event!("sqs-mixed-batch")).await;
        assert_eq!(
            failed_ids(&response),
            ["5f7d2c1e-0000-4000-9000-000000000007"]
        );
    }

    #[tokio::test]
    async fn a_reconciliations_marker_is_recorded_never_applied_nor_quarantined() {
        use domain::ports::SyncRecords as _;
        let records = test_support::InMemorySyncRecords::new();
        let harness = Harness::new();
        let worker = Worker::new(harness.store.clone(), harness.quarantine.clone(), 10)
            .with_sync_book(records.clone());
        let response = worker
            .handle(serde_json::from_str(event!("sqs-reconciliation-marker")).unwrap())
            .await;
        assert!(response.batch_item_failures.is_empty());
        let tenant = TenantId::parse("default").unwrap();
        assert!(
            records
                .marker_seen(&tenant, "20261206T010000.000000000Z-reconcile")
                .await
                .unwrap()
        );
        assert!(harness.store.is_empty() && harness.quarantine.sent().is_empty());
        // A worker with nowhere to record it drops it: it is still no envelope to quarantine.
        let response = harness.handle(event!("sqs-reconciliation-marker")).await;
        assert!(response.batch_item_failures.is_empty());
        assert!(harness.quarantine.sent().is_empty());
    }

    /// The sample resync record (customer 4004 at version 8) as its webhook.
    fn as_webhook(event: &str) -> SqsEvent {
        let mut event: SqsEvent = serde_json::from_str(event).unwrap();
        for record in &mut event.records {
            record.message_attributes.remove(attribute::SOURCE);
        }
        event
    }

    #[tokio::test]
    async fn a_webhook_that_comes_after_a_reconciliation_counted_its_change_as_drift_settles_it_once()
     {
        use domain::ports::SyncRecords as _;
        use domain::sync::drift::DriftFinding;
        let records = test_support::InMemorySyncRecords::new();
        let harness = Harness::new();
        let worker = Worker::new(harness.store.clone(), harness.quarantine.clone(), 10)
            .with_sync_book(records.clone());
        let tenant = TenantId::default_tenant();
        let finding = DriftFinding::fetched(4004, Some(8)).unwrap();
        records
            .record_drift(&tenant, "customer", "run-1", &[finding])
            .await
            .unwrap();
        let drift_fetch = serde_json::from_str(event!("sqs-resync-update")).unwrap();
        let (_, counts, _) = worker.apply_batch(drift_fetch).await;
        assert_eq!((counts.accepted, counts.drift_delivered_late), (1, 0));

        let (_, counts, _) = worker
            .apply_batch(as_webhook(event!("sqs-resync-update")))
            .await;
        assert_eq!(
            (counts.corroborated, counts.drift_delivered_late),
            (1, 1),
            "the webhook came after all: the change was late, not lost"
        );
        assert!(records.unsettled_drift().is_empty());
        let (_, counts, _) = worker
            .apply_batch(as_webhook(event!("sqs-resync-update")))
            .await;
        assert_eq!(
            (counts.corroborated, counts.drift_delivered_late),
            (1, 0),
            "Tripletex's duplicate of it counts nothing more"
        );
    }

    #[tokio::test]
    async fn a_drift_fetch_that_finds_its_webhook_stored_settles_the_finding_and_another_version_does_not()
     {
        use domain::ports::SyncRecords as _;
        use domain::sync::drift::DriftFinding;
        let records = test_support::InMemorySyncRecords::new();
        let harness = Harness::new();
        let worker = Worker::new(harness.store.clone(), harness.quarantine.clone(), 10)
            .with_sync_book(records.clone());
        let tenant = TenantId::default_tenant();
        records
            .record_drift(
                &tenant,
                "customer",
                "run-1",
                &[DriftFinding::fetched(4004, Some(8)).unwrap()],
            )
            .await
            .unwrap();
        let (_, counts, _) = worker
            .apply_batch(as_webhook(event!("sqs-resync-update")))
            .await;
        assert_eq!((counts.accepted, counts.drift_delivered_late), (1, 0));
        let drift_fetch = serde_json::from_str(event!("sqs-resync-update")).unwrap();
        let (_, counts, _) = worker.apply_batch(drift_fetch).await;
        assert_eq!((counts.corroborated, counts.drift_delivered_late), (1, 1));

        // A finding at another version is not the change this record corroborates.
        records
            .record_drift(
                &tenant,
                "customer",
                "run-2",
                &[DriftFinding::fetched(4004, Some(9)).unwrap()],
            )
            .await
            .unwrap();
        let drift_fetch = serde_json::from_str(event!("sqs-resync-update")).unwrap();
        let (_, counts, _) = worker.apply_batch(drift_fetch).await;
        assert_eq!((counts.corroborated, counts.drift_delivered_late), (1, 0));
        assert_eq!(records.unsettled_drift().len(), 1);
    }

    #[tokio::test]
    async fn resync_records_are_stored_with_their_source() {
        let harness = Harness::new();
        harness.handle(event!("sqs-resync-update")).await;
        let item = harness.store.get("default#customer#4004").unwrap();
        assert_eq!(item.last_change.source, Source::Resync);
    }

    #[tokio::test]
    async fn the_records_of_a_removed_company_are_dropped_and_never_written() {
        use domain::ports::CompanyRegistry as _;
        let ledger = test_support::InMemoryResyncLedger::new();
        let company = domain::registry::RegisteredCompany::added(
            TenantId::default_tenant(),
            100,
            "firm",
            Timestamp::UNIX_EPOCH,
        );
        ledger.add(&company).await.unwrap();
        ledger
            .change_state(
                &company.tenant,
                CompanyState::Onboarding,
                CompanyState::Offboarding,
                Timestamp::now(),
            )
            .await
            .unwrap();
        let registry = aws_adapters::companies::CachedRegistry::load(
            ledger.clone(),
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
        let harness = Harness::new();
        let worker = Worker::new(harness.store.clone(), harness.quarantine.clone(), 10)
            .with_registry(registry);

        let response = worker
            .handle(serde_json::from_str(event!("sqs-product-versions")).unwrap())
            .await;

        assert!(
            response.batch_item_failures.is_empty(),
            "dropped, not retried"
        );
        assert!(
            harness.store.is_empty(),
            "nothing of the company is written"
        );
        assert!(harness.quarantine.sent().is_empty());
    }

    mod claim_checks {
        use std::collections::HashMap;

        use aws_lambda_events::event::sqs::SqsMessageAttribute;
        use domain::claim::{self, LargeValues};
        use test_support::InMemoryBlobs;

        use super::*;

        type ClaimWorker =
            Worker<LargeValues<InMemoryObjectStore, InMemoryBlobs>, RecordingQueue, InMemoryBlobs>;

        struct Stack {
            worker: ClaimWorker,
            store: InMemoryObjectStore,
            quarantine: RecordingQueue,
            blobs: InMemoryBlobs,
        }

        fn stack() -> Stack {
            let store = InMemoryObjectStore::new();
            let quarantine = RecordingQueue::new();
            let blobs = InMemoryBlobs::new();
            let worker = Worker::new(
                LargeValues::new(store.clone(), blobs.clone()),
                quarantine.clone(),
                10,
            )
            .with_payloads(blobs.clone());
            Stack {
                worker,
                store,
                quarantine,
                blobs,
            }
        }

        /// A voucher whose lines make its envelope `bytes` long.
        fn voucher(id: i64, version: i64, bytes: usize) -> QueueMessage {
            let lines = "x".repeat(bytes);
            QueueMessage {
                body: format!(
                    r#"{{"subscriptionId":1,"event":"voucher.update","id":{id},"value":{{"id":{id},"version":{version},"postings":"{lines}"}}}}"#
                ),
                attributes: vec![
                    (attribute::TENANT.into(), "default".into()),
                    (attribute::EVENT.into(), "voucher.update".into()),
                    (attribute::OBJECT_ID.into(), id.to_string()),
                ],
            }
        }

        fn record(message: &QueueMessage) -> SqsMessage {
            let mut record = SqsMessage::default();
            record.message_id = Some("m-1".into());
            record.body = Some(message.body.clone());
            record.message_attributes = message
                .attributes
                .iter()
                .map(|(name, value)| {
                    let mut attribute = SqsMessageAttribute::default();
                    attribute.string_value = Some(value.clone());
                    attribute.data_type = Some("String".into());
                    (name.clone(), attribute)
                })
                .collect::<HashMap<_, _>>();
            record
        }

        fn batch(message: &QueueMessage) -> SqsEvent {
            let mut event = SqsEvent::default();
            event.records = vec![record(message)];
            event
        }

        #[tokio::test]
        async fn a_voucher_over_both_limits_is_read_from_its_claim_and_kept_by_pointer() {
            let stack = stack();
            let message = voucher(7, 2, 1024 * 1024);
            let sent = claim::checked(&stack.blobs, &message).await.unwrap();
            assert!(sent.size() < 1024, "the queue carries a key, not the body");

            let response = stack.worker.handle(batch(&sent)).await;

            assert!(response.batch_item_failures.is_empty());
            let item = stack.store.get("default#voucher#7").unwrap();
            assert_eq!(item.state.version, Some(2));
            let value_key = item.value_claim.expect("kept by pointer");
            assert!(value_key.starts_with("values/default/voucher/7/"));
            let stored = stack.blobs.get(&value_key).await.unwrap().unwrap();
            assert_eq!(Some(String::from_utf8(stored).unwrap()), item.value);
        }

        #[tokio::test]
        async fn a_body_over_the_queue_limit_but_not_the_item_limit_stays_on_the_item() {
            let stack = stack();
            let message = voucher(8, 1, 300 * 1024);
            let sent = claim::checked(&stack.blobs, &message).await.unwrap();
            assert!(sent.attribute(attribute::BODY_CLAIM).is_some());

            stack.worker.handle(batch(&sent)).await;

            let item = stack.store.get("default#voucher#8").unwrap();
            assert_eq!(item.value_claim, None);
            assert_eq!(stack.blobs.keys().len(), 1, "only the message's body");
        }

        #[tokio::test]
        async fn a_claim_whose_body_is_gone_or_altered_is_quarantined_with_its_reason() {
            let stack = stack();
            let sent = claim::checked(&stack.blobs, &voucher(9, 1, 300 * 1024))
                .await
                .unwrap()
                .into_owned();
            let altered = sent.clone().with_attribute(attribute::BODY_DIGEST, "00");
            stack.worker.handle(batch(&altered)).await;
            stack
                .blobs
                .remove(sent.attribute(attribute::BODY_CLAIM).unwrap());
            stack.worker.handle(batch(&sent)).await;

            let reasons: Vec<_> = stack
                .quarantine
                .sent()
                .iter()
                .map(|m| {
                    m.attribute(attribute::QUARANTINE_REASON)
                        .unwrap()
                        .to_owned()
                })
                .collect();
            assert_eq!(reasons.len(), 2);
            assert!(
                reasons[0].contains("does not match the digest recorded for it"),
                "{reasons:?}"
            );
            assert!(
                reasons[1].contains("is gone from the payload bucket"),
                "{reasons:?}"
            );
            assert!(stack.store.is_empty());
        }

        #[tokio::test]
        async fn with_the_bucket_down_the_record_is_retried_and_no_pointer_is_written() {
            let stack = stack();
            // The body fits the queue; only its value needs the bucket.
            let message = voucher(10, 1, 200 * 1024);
            let big = voucher(10, 1, 400 * 1024);
            stack.blobs.set_unavailable(true);

            let small_response = stack.worker.handle(batch(&message)).await;
            let big_body = QueueMessage {
                body: big.body.clone(),
                attributes: big.attributes.clone(),
            };
            let big_response = stack.worker.handle(batch(&big_body)).await;

            assert!(
                small_response.batch_item_failures.is_empty(),
                "200 KiB stays on the item"
            );
            assert_eq!(failed_ids(&big_response), ["m-1"], "retried, not dropped");
            let item = stack.store.get("default#voucher#10").unwrap();
            assert_eq!(
                item.value_claim, None,
                "the inline value stays; no pointer to a missing object"
            );
            assert!(stack.quarantine.sent().is_empty());
        }
    }
}
