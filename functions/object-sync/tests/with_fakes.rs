#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The sync in process: `FakeTripletex` plays each company's object endpoints, the in-memory object
//! store plays the table (the worker's rule applies every queued envelope, as the worker would),
//! and the fakes of the sync queue and run records follow their adapters' rules. Each test drives a
//! run's chain task by task, as the FIFO queue hands them out.

use std::ops::RangeInclusive;
use std::sync::Arc;

use aws_adapters::companies::CompanySource;
use domain::envelope::EventName;
use domain::ids::TenantId;
use domain::message::QueueMessage;
use domain::ports::ObjectStore as _;
use domain::ports::PendingResyncs as _;
use domain::ports::ResyncLedger as _;
use domain::ports::SyncRecords as _;
use domain::record::change_from_message;
use domain::resync::{ResyncReason, ResyncRequest};
use domain::sync::drift::Held;
use domain::sync::{RunMode, RunState, TypeCounts};
use domain::sync::{StartMode, StartRequest};
use domain::tripletex::Companies;
use jiff::Timestamp;
use jiff::civil::date;
use object_sync::config::{StepLimits, SyncSettings};
use object_sync::handler::{ObjectSync, SyncPorts};
use test_support::tripletex::rate_limited;
use test_support::{
    FakeObject, FakeTripletex, InMemoryObjectStore, InMemoryResyncLedger, InMemorySyncRecords,
    LedgerCall, ObjectCallKind, RecordingQueue, RecordingSyncTasks, RunRecord,
};

type Sync = ObjectSync<
    FakeTripletex,
    RecordingQueue,
    RecordingSyncTasks,
    InMemoryObjectStore,
    InMemorySyncRecords,
    InMemoryResyncLedger,
>;

struct Harness {
    sync: Sync,
    tripletex: FakeTripletex,
    webhooks: RecordingQueue,
    /// The webhook queue, where the recheck's markers go (the worker reaches them at once here).
    live: RecordingQueue,
    tasks: RecordingSyncTasks,
    store: InMemoryObjectStore,
    records: InMemorySyncRecords,
    ledger: InMemoryResyncLedger,
    journal: test_support::RecordingJournal,
    applied: usize,
}

const TENANT: &str = "acme";

fn harness(events: &[&str], limits: StepLimits) -> Harness {
    let companies = Companies::from_json(
        r#"{"companies": {"acme": {"consumerToken": "c", "employeeToken": "e"},
                          "beta": {"consumerToken": "c2", "employeeToken": "e2"},
                          "default": {"consumerToken": "c3", "employeeToken": "e3"}}}"#,
    )
    .unwrap();
    let tripletex = FakeTripletex::new();
    let webhooks = RecordingQueue::new();
    let live = RecordingQueue::new();
    let tasks = RecordingSyncTasks::new();
    let store = InMemoryObjectStore::new();
    let records = InMemorySyncRecords::new();
    let ledger = InMemoryResyncLedger::new();
    let ports = SyncPorts {
        tripletex: tripletex.clone(),
        webhooks: webhooks.clone(),
        live_webhooks: Some(live.clone()),
        tasks: tasks.clone(),
        copy: store.clone(),
        records: records.clone(),
        ledger: ledger.clone(),
    };
    let settings = SyncSettings {
        events: events
            .iter()
            .map(|e| EventName::parse(e).unwrap())
            .collect(),
        fields: "id,version,name".into(),
        limits,
    };
    let journal = test_support::RecordingJournal::default();
    let sync = ObjectSync::new(ports, CompanySource::Fixed(Arc::new(companies)), settings)
        .with_journal(journal.clone());
    Harness {
        sync,
        tripletex,
        webhooks,
        live,
        tasks,
        store,
        records,
        ledger,
        journal,
        applied: 0,
    }
}

fn small_pages() -> StepLimits {
    StepLimits {
        page_size: 10,
        fetch_batch: 4,
        verify_batch: 7,
        lookups_per_step: 3,
        attempts: 3,
        // The fake worker applies what is queued at once: nothing is in flight at the recheck.
        drift_grace: std::time::Duration::ZERO,
        // The worker's part is played between steps: what was queued is stored.
        store_wait: std::time::Duration::ZERO,
        marker_poll: std::time::Duration::ZERO,
    }
}

impl Harness {
    async fn start(&self, mode: &str) -> String {
        let report = self
            .sync
            .start(StartRequest {
                mode: mode.parse().unwrap(),
                companies: Some(vec![TENANT.into()]),
                types: None,
            })
            .await
            .unwrap();
        report.runs[0].run_id.clone()
    }

    /// Runs every queued task, applying what the sync queued as the worker would.
    async fn drain(&mut self) -> usize {
        let mut steps = 0;
        while let Some(task) = self.tasks.next() {
            self.sync.run_task(task, 1).await.unwrap();
            steps += 1;
            self.apply_queued().await;
        }
        steps
    }

    async fn apply_queued(&mut self) {
        let sent: Vec<QueueMessage> = self.webhooks.sent();
        for message in &sent[self.applied..] {
            test_support::apply_as_worker(&self.store, message).await;
        }
        self.applied = sent.len();
        self.reach_markers().await;
    }

    /// The worker reaches every marker on the webhook queue (nothing else is queued there here).
    async fn reach_markers(&self) {
        for message in self.live.drain() {
            if let Some((Some(tenant), run_id)) =
                domain::sync::marker::marker_of(|name| message.attribute(name))
            {
                self.records.record_marker(&tenant, run_id).await.unwrap();
            }
        }
    }

    fn run(&self, run_id: &str) -> RunRecord {
        self.records.run(TENANT, run_id).unwrap()
    }

    fn counts(&self, run_id: &str, object_type: &str) -> TypeCounts {
        self.run(run_id)
            .counts
            .get(object_type)
            .copied()
            .unwrap_or_default()
    }

    fn stored_version(&self, object_type: &str, id: i64) -> Option<(Option<i64>, bool)> {
        self.store
            .get(&format!("{TENANT}#{object_type}#{id}"))
            .map(|item| (item.state.version, item.state.deleted))
    }

    fn company(&self) -> Arc<test_support::FakeTripletexCompany> {
        self.tripletex.of(TENANT)
    }

    /// Products 1..=count at `version` in Tripletex, backfilled into the copy, which then looks as
    /// if written a minute ago (before any later listing began).
    async fn backfilled_products(&mut self, count: i64, version: i64) {
        for id in 1..=count {
            self.company().objects.put_simple("product", id, version);
        }
        self.start("backfill").await;
        self.drain().await;
        self.age_the_copy();
    }

    /// Pretends everything stored so far was written a minute before now (before any listing).
    fn age_the_copy(&self) {
        let earlier = Timestamp::now() - jiff::SignedDuration::from_secs(60);
        for key in self.store.items().keys() {
            self.store.set_updated_at(key, earlier);
        }
    }
}

/// What the keeper leaves for a product subscription it created or re-enabled.
fn resync_request(subscription_id: i64, reason: ResyncReason) -> ResyncRequest {
    ResyncRequest {
        tenant: TenantId::parse(TENANT).unwrap(),
        subscription_id,
        event: "product.update".into(),
        object_type: "product".into(),
        reason,
        previous_status: match reason {
            ResyncReason::Created => String::new(),
            ResyncReason::ReEnabled => "DISABLED_TOO_MANY_ERRORS".into(),
        },
        window_from: Timestamp::UNIX_EPOCH,
        window_to: Timestamp::now(),
    }
}

/// Vouchers dated over five years, so that date windows split them.
fn seed_vouchers(h: &Harness, count: i64) {
    for id in 1..=count {
        h.company().objects.put(
            "voucher",
            FakeObject {
                id,
                version: 1,
                partition: "posted",
                date: Some(date(2020 + (id % 5) as i16, 1 + (id % 12) as i8, 1)),
                json: format!(r#"{{"id":{id},"version":1}}"#),
            },
        );
    }
}

/// Customers at version 1 in Tripletex: `active` listed by default, `inactive` only in their partition.
fn seed_customers(h: &Harness, active: RangeInclusive<i64>, inactive: RangeInclusive<i64>) {
    for (ids, partition) in [(active, "active"), (inactive, "inactive")] {
        for id in ids {
            h.company()
                .objects
                .put("customer", customer(id, 1, partition));
        }
    }
}

fn customer(id: i64, version: i64, partition: &'static str) -> FakeObject {
    FakeObject {
        id,
        version,
        partition,
        date: None,
        json: format!(
            r#"{{"id":{id},"version":{version},"name":"customer {id}","isInactive":{}}}"#,
            partition == "inactive"
        ),
    }
}

#[tokio::test]
async fn a_backfill_brings_every_existing_object_in_pages_and_finishes_done() {
    let mut h = harness(
        &["product.create", "product.update", "product.delete"],
        small_pages(),
    );
    for id in 1..=25 {
        h.company().objects.put_simple("product", id, 3);
    }
    let run_id = h.start("backfill").await;
    let steps = h.drain().await;
    assert_eq!(h.store.len(), 25);
    assert_eq!(h.stored_version("product", 17), Some((Some(3), false)));
    let run = h.run(&run_id);
    assert_eq!(run.state, RunState::Done);
    assert_eq!(run.steps as usize, steps, "each step counted once");
    let counts = h.counts(&run_id, "product");
    assert_eq!(
        (counts.listed, counts.fetched, counts.enqueued),
        (25, 25, 25)
    );
    assert_eq!(counts.pages, 3, "10 + 10 + 5");
    assert_eq!(
        counts.drift_corrected, 0,
        "a backfill finds no drift: nothing was due yet"
    );
    assert!(h.records.unsettled_drift().is_empty(), "nor records any");
    assert_eq!(counts.listing_size, 25);
    // The listing's size asked, 3 list pages, ceil(10/4) + ceil(10/4) + ceil(5/4) fetches; the
    // verify step looks nothing up.
    assert_eq!(counts.requests, 1 + 3 + 3 + 3 + 2);
    let envelope: serde_json::Value = serde_json::from_str(&h.webhooks.sent()[0].body).unwrap();
    assert_eq!(envelope["event"], "product.update");
    assert_eq!(h.webhooks.sent()[0].attribute("source"), Some("resync"));
}

#[tokio::test]
async fn a_reconciliation_fetches_what_is_behind_or_missing_and_tombstones_only_what_tripletex_confirms_gone()
 {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(12, 1).await;
    // While webhooks were lost: 3 changed, 2 deleted, 1 created.
    for id in [2, 5, 11] {
        h.company().objects.put_simple("product", id, 4);
    }
    h.company().objects.remove("product", 7);
    h.company().objects.remove("product", 12);
    h.company().objects.put_simple("product", 13, 1);
    let run_id = h.start("reconcile").await;
    h.drain().await;
    for id in [2, 5, 11] {
        assert_eq!(h.stored_version("product", id), Some((Some(4), false)));
    }
    assert_eq!(h.stored_version("product", 7), Some((Some(1), true)));
    assert_eq!(h.stored_version("product", 12), Some((Some(1), true)));
    assert_eq!(h.stored_version("product", 13), Some((Some(1), false)));
    let counts = h.counts(&run_id, "product");
    assert_eq!((counts.fetched, counts.tombstoned), (4, 2));
    assert_eq!(counts.drift_corrected, 6, "each a webhook that never came");
    assert_eq!(h.run(&run_id).state, RunState::Done);
    // Each kept with what it brought the copy to, so that its webhook, if it still comes, is
    // counted as late rather than lost (`sync::drift`).
    let findings: Vec<(i64, Held)> = h
        .records
        .unsettled_drift()
        .into_iter()
        .map(|(key, held)| (key.object_id, held))
        .collect();
    assert_eq!(
        findings,
        [
            (2, Held::Version(4)),
            (5, Held::Version(4)),
            (7, Held::Deleted),
            (11, Held::Version(4)),
            (12, Held::Deleted),
            (13, Held::Version(1)),
        ]
    );
    // The journal names each object the run queued, as drift, and the run is the request that
    // made each of their versions in the copy.
    let mut queued: Vec<(i64, &str, bool)> = h
        .journal
        .entries()
        .into_iter()
        .filter_map(|entry| match entry {
            domain::journal::Entry::Queued(queued) if queued.run == run_id => {
                Some((queued.id, queued.outcome.name(), queued.drift))
            }
            _ => None,
        })
        .collect();
    queued.sort();
    assert_eq!(
        queued,
        [
            (2, "fetched", true),
            (5, "fetched", true),
            (7, "tombstoned", true),
            (11, "fetched", true),
            (12, "tombstoned", true),
            (13, "fetched", true),
        ]
    );
    let request = domain::journal::sync_request(&run_id);
    for id in [2, 7, 13] {
        let key = format!("{TENANT}#product#{id}");
        let item = h.store.get(&key).unwrap();
        assert_eq!(item.last_change.request.as_deref(), Some(request.as_str()));
    }
}

#[tokio::test]
async fn an_object_stored_while_the_listing_ran_is_never_tombstoned() {
    let mut h = harness(&["product.update"], small_pages());
    h.company().objects.put_simple("product", 1, 1);
    h.start("backfill").await;
    h.drain().await;
    let run_id = h.start("reconcile").await;
    // A webhook stores object 2 after the run began; Tripletex's listing did not show it.
    h.company().objects.put_simple("product", 2, 1);
    let created_mid_scan = change_from_message(
        Some(
            r#"{"subscriptionId":1,"event":"product.create","id":2,"value":{"id":2,"version":1}}"#,
        ),
        |name| (name == "tenant").then_some(TENANT),
        Timestamp::now(),
    )
    .unwrap();
    while let Some(task) = h.tasks.next() {
        let verifying = matches!(
            task.current().unwrap().stage,
            domain::sync::Stage::Verify { .. }
        );
        if verifying {
            h.company().objects.remove("product", 2);
            h.store.apply(&created_mid_scan).await.unwrap();
        }
        h.sync.run_task(task, 1).await.unwrap();
        h.apply_queued().await;
    }
    assert_eq!(h.stored_version("product", 2), Some((Some(1), false)));
    assert_eq!(h.counts(&run_id, "product").tombstoned, 0);
}

#[tokio::test]
async fn a_nightly_run_over_unchanged_data_costs_list_pages_answered_304_and_no_fetch() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(30, 2).await;
    let run_id = h.start("reconcile").await;
    h.drain().await;
    let counts = h.counts(&run_id, "product");
    assert_eq!(counts.pages, 4, "30 objects: 3 full pages and an empty one");
    assert_eq!(counts.pages_not_modified, 4);
    assert_eq!(
        (counts.listed, counts.fetched, counts.tombstoned),
        (30, 0, 0)
    );
    assert_eq!(counts.requests, 4, "list pages only");
    assert_eq!(h.run(&run_id).state, RunState::Done);
}

#[tokio::test]
async fn an_inactive_customer_is_listed_in_its_partition_and_never_looks_deleted() {
    let mut h = harness(&["customer.update"], small_pages());
    seed_customers(&h, 1..=5, 6..=8);
    h.start("backfill").await;
    h.drain().await;
    assert_eq!(h.store.len(), 8, "inactive customers are in the copy too");
    h.age_the_copy();
    h.company().objects.remove("customer", 3);
    h.company()
        .objects
        .put("customer", customer(4, 2, "inactive"));
    let run_id = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.stored_version("customer", 3), Some((Some(1), true)));
    assert_eq!(h.stored_version("customer", 4), Some((Some(2), false)));
    for id in 6..=8 {
        assert_eq!(h.stored_version("customer", id), Some((Some(1), false)));
    }
    let counts = h.counts(&run_id, "customer");
    assert_eq!((counts.tombstoned, counts.kept_after_lookup), (1, 0));
}

#[tokio::test]
async fn a_window_over_the_limit_is_halved_until_every_voucher_is_listed() {
    let mut h = harness(&["voucher.update"], small_pages());
    seed_vouchers(&h, 40);
    h.company().objects.set_list_limit(15);
    let run_id = h.start("backfill").await;
    h.drain().await;
    assert_eq!(h.store.len(), 40);
    assert_eq!(h.run(&run_id).state, RunState::Done);
    assert!(h.counts(&run_id, "voucher").pages > 4, "windows were split");
}

#[tokio::test]
async fn a_backfill_knows_what_each_type_holds_from_its_first_step() {
    let mut h = harness(&["customer.update", "voucher.update"], small_pages());
    seed_customers(&h, 1..=14, 15..=22);
    seed_vouchers(&h, 40);
    h.company().objects.set_list_limit(15);
    let run_id = h.start("backfill").await;
    let first = h.tasks.next().unwrap();
    h.sync.run_task(first, 1).await.unwrap();
    let customers = h.counts(&run_id, "customer");
    assert_eq!(
        (customers.listing_size, customers.listed),
        (22, 10),
        "both partitions' sizes with the first page"
    );
    while h
        .tasks
        .waiting()
        .first()
        .is_some_and(|task| task.current().unwrap().object_type == "customer")
    {
        let task = h.tasks.next().unwrap();
        h.sync.run_task(task, 1).await.unwrap();
        h.apply_queued().await;
    }
    let task = h.tasks.next().unwrap();
    h.sync.run_task(task, 1).await.unwrap();
    let vouchers = h.counts(&run_id, "voucher");
    assert_eq!(
        vouchers.listing_size, 40,
        "windows over the limit halved before the first page, each sized"
    );
    h.drain().await;
    let (customers, vouchers) = (h.counts(&run_id, "customer"), h.counts(&run_id, "voucher"));
    assert_eq!((customers.listing_size, customers.listed), (22, 22));
    assert_eq!((vouchers.listing_size, vouchers.listed), (40, 40));
    assert_eq!(h.store.len(), 62);
    assert_eq!(h.run(&run_id).state, RunState::Done);
}

#[tokio::test]
async fn a_rate_limit_that_outlasts_every_delivery_fails_the_type_and_tombstones_nothing() {
    let mut h = harness(&["product.update", "contact.update"], small_pages());
    for id in 1..=5 {
        h.company().objects.put_simple("product", id, 1);
        h.company().objects.put_simple("contact", id, 1);
    }
    h.start("backfill").await;
    h.drain().await;
    h.age_the_copy();
    h.company().objects.remove("product", 1);
    let run_id = h.start("reconcile").await;
    h.company().objects.fail_next(
        ObjectCallKind::ListPage,
        [rate_limited(), rate_limited(), rate_limited()],
    );
    let task = h.tasks.next().unwrap();
    for delivery in 1..3 {
        assert!(
            h.sync.run_task(task.clone(), delivery).await.is_err(),
            "delivery {delivery} goes back to the queue"
        );
    }
    h.sync.run_task(task, 3).await.unwrap();
    h.drain().await;
    let run = h.run(&run_id);
    assert_eq!(run.state, RunState::Failed);
    assert!(
        run.failures[0].starts_with("product: "),
        "{:?}",
        run.failures
    );
    assert_eq!(
        h.stored_version("product", 1),
        Some((Some(1), false)),
        "not tombstoned"
    );
    assert_eq!(
        h.counts(&run_id, "contact").listed,
        5,
        "the next type still ran"
    );
    assert_eq!(h.counts(&run_id, "product").rate_limited, 1);
}

#[tokio::test]
async fn a_step_delivered_twice_is_counted_once_and_its_successor_sent_once() {
    let mut h = harness(&["product.update"], small_pages());
    for id in 1..=15 {
        h.company().objects.put_simple("product", id, 1);
    }
    let run_id = h.start("backfill").await;
    let first = h.tasks.next().unwrap();
    h.sync.run_task(first.clone(), 1).await.unwrap();
    h.sync.run_task(first.clone(), 2).await.unwrap();
    assert_eq!(h.tasks.waiting().len(), 1, "one successor");
    assert_eq!(h.run(&run_id).steps, 1);
    h.drain().await;
    // A copy of the first step delivered after the chain moved on is dropped.
    h.sync.run_task(first, 3).await.unwrap();
    assert_eq!(h.counts(&run_id, "product").listed, 15);
    assert!(h.tasks.waiting().is_empty());
}

#[tokio::test]
async fn the_keepers_requests_start_a_backfill_and_are_marked_done_with_their_run() {
    let mut h = harness(&["product.update"], small_pages());
    h.company().objects.put_simple("product", 1, 1);
    let request = resync_request(7, ResyncReason::Created);
    h.ledger.record(&request).await.unwrap();
    let report = h
        .sync
        .start(StartRequest {
            mode: StartMode::Pending,
            ..StartRequest::every_company(StartMode::Pending)
        })
        .await
        .unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].mode, RunMode::Backfill);
    assert_eq!(h.ledger.states()[0].1, "RUNNING");
    let again = h
        .sync
        .start(StartRequest {
            mode: StartMode::Pending,
            ..StartRequest::every_company(StartMode::Pending)
        })
        .await
        .unwrap();
    assert!(
        again.runs.is_empty(),
        "a taken request is not started twice"
    );
    h.drain().await;
    assert_eq!(h.ledger.states()[0].1, "DONE");
    assert_eq!(h.store.len(), 1);
}

#[tokio::test]
async fn a_tombstone_stays_final_against_late_webhooks_never_against_tripletexs_own_answer() {
    let mut h = harness(&["product.update"], small_pages());
    h.company().objects.put_simple("product", 1, 1);
    h.start("backfill").await;
    h.drain().await;
    deliver_webhook(&h, "product.delete", 1, None).await;
    deliver_webhook(&h, "product.update", 1, Some(2)).await;
    assert_eq!(
        h.stored_version("product", 1),
        Some((Some(1), true)),
        "a late webhook does not lift a tombstone"
    );
    // But Tripletex still lists the object and has it by id: the delete was not its.
    h.company().objects.put_simple("product", 1, 2);
    let run_id = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.stored_version("product", 1), Some((Some(2), false)));
    let counts = h.counts(&run_id, "product");
    assert_eq!((counts.contradicted, counts.fetched), (1, 0));
}

#[tokio::test]
async fn types_with_nothing_to_list_are_reported_and_bad_requests_refused() {
    let h = harness(&["notification.create", "product.update"], small_pages());
    let report = h
        .sync
        .start(StartRequest {
            mode: StartMode::Run(RunMode::Reconcile),
            companies: None,
            types: None,
        })
        .await
        .unwrap();
    assert_eq!(report.runs.len(), 3, "every configured company");
    assert_eq!(report.runs[0].types, ["product"]);
    assert!(report.runs[0].not_reconcilable.contains_key("notification"));
    let bad_mode = h
        .sync
        .handle(serde_json::json!({"mode": "everything"}))
        .await
        .unwrap_err();
    let said = domain::error::error_chain(&bad_mode);
    assert!(said.contains("everything"), "{said}");
    let unknown = h
        .sync
        .start(StartRequest {
            mode: StartMode::Run(RunMode::Reconcile),
            companies: Some(vec!["nobody".into()]),
            types: None,
        })
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("nobody"), "{unknown}");
}

#[tokio::test]
async fn a_webhook_queue_outage_sends_the_task_back_and_counts_nothing() {
    let h = harness(&["product.update"], small_pages());
    h.company().objects.put_simple("product", 1, 1);
    let run_id = h.start("backfill").await;
    h.webhooks.set_unavailable(true);
    let task = h.tasks.next().unwrap();
    assert!(h.sync.run_task(task, 1).await.is_err());
    assert_eq!(h.run(&run_id).steps, 0);
    assert!(
        h.tasks.waiting().is_empty(),
        "no successor before the step counts"
    );
}

fn sample(name: &str) -> serde_json::Value {
    let path = test_support::paths::workspace_root()
        .join("events/object-sync")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_sample_events_start_what_they_say() {
    let h = harness(&["customer.update", "product.update"], small_pages());
    let nightly = h
        .sync
        .handle(sample("scheduler-nightly.json"))
        .await
        .unwrap();
    assert_eq!(nightly["runs"].as_array().unwrap().len(), 3);
    assert_eq!(nightly["runs"][0]["mode"], "reconcile");
    assert_eq!(
        nightly["runs"][0]["types"],
        serde_json::json!(["customer", "product"])
    );
    let manual = h
        .sync
        .handle(sample("manual-backfill-customers.json"))
        .await
        .unwrap();
    assert_eq!(manual["runs"][0]["tenant"], "default");
    assert_eq!(manual["runs"][0]["types"], serde_json::json!(["customer"]));
    let pending = h
        .sync
        .handle(sample("scheduler-pending.json"))
        .await
        .unwrap();
    assert_eq!(pending["runs"], serde_json::json!([]), "nothing asked for");
    assert_eq!(h.tasks.sent(), 4, "one chain per company and run");
}

#[tokio::test]
async fn the_sample_task_is_read_and_a_step_of_an_unknown_run_is_dropped() {
    let h = harness(&["customer.update"], small_pages());
    let answer = h.sync.handle(sample("sqs-first-task.json")).await.unwrap();
    assert_eq!(answer["batchItemFailures"], serde_json::json!([]));
    assert_eq!(h.tasks.sent(), 0, "no run record: nothing follows");
    let task: domain::sync::SyncTask = serde_json::from_str(
        sample("sqs-first-task.json")["Records"][0]["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(task.work.len(), 3, "two partitions, then the check");
    let bad = h
        .sync
        .handle(serde_json::json!({"Records": [{"messageId": "m1", "body": "not json"}]}))
        .await
        .unwrap();
    assert_eq!(
        bad["batchItemFailures"][0]["itemIdentifier"], "m1",
        "kept for the dead-letter queue"
    );
}

#[tokio::test]
async fn a_few_changes_per_page_are_fetched_in_one_batch_at_the_end_of_the_listing() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(30, 1).await;
    for id in [3, 13, 23] {
        h.company().objects.put_simple("product", id, 2);
    }
    // A resync fetches as it lists (a reconciliation keeps its findings for its recheck).
    let run_id = h.start("resync").await;
    h.drain().await;
    for id in [3, 13, 23] {
        assert_eq!(h.stored_version("product", id), Some((Some(2), false)));
    }
    let counts = h.counts(&run_id, "product");
    assert_eq!(counts.fetched, 3);
    assert_eq!(
        counts.requests,
        4 + 1,
        "4 list pages and one fetch for the three changes, not one per page"
    );
    // Once their changes were fetched, the pages they rode along from are confirmed: all 304 now.
    let again = h.start("reconcile").await;
    h.drain().await;
    let quiet = h.counts(&again, "product");
    assert_eq!((quiet.requests, quiet.pages_not_modified), (4, 4));
    assert_eq!(quiet.fetched, 0);
}

#[tokio::test]
async fn requests_taken_by_a_run_that_could_not_start_are_given_back() {
    let mut h = harness(&["product.update"], small_pages());
    h.company().objects.put_simple("product", 1, 1);
    let request = resync_request(9, ResyncReason::ReEnabled);
    h.ledger.record(&request).await.unwrap();
    let pending = StartRequest {
        mode: StartMode::Pending,
        ..StartRequest::every_company(StartMode::Pending)
    };
    h.tasks.set_unavailable(true);
    assert!(h.sync.start(pending.clone()).await.is_err());
    assert_eq!(h.ledger.states()[0].1, "PENDING", "given back");
    let not_started = h.records.runs().pop().unwrap();
    assert_eq!(
        not_started.state,
        RunState::Failed,
        "no run stays running that never took a step"
    );
    assert!(
        not_started.failures[0].contains("the sync queue did not take the run's first task"),
        "{:?}",
        not_started.failures
    );
    h.tasks.set_unavailable(false);
    let report = h.sync.start(pending).await.unwrap();
    assert_eq!(report.runs[0].mode, RunMode::Resync);
    h.drain().await;
    assert_eq!(h.ledger.states()[0].1, "DONE");
}

#[tokio::test]
async fn a_failed_claim_gives_back_the_requests_taken_before_it() {
    let mut h = harness(&["product.update", "customer.update"], small_pages());
    h.ledger
        .record(&resync_request(1, ResyncReason::ReEnabled))
        .await
        .unwrap();
    let mut second = resync_request(2, ResyncReason::ReEnabled);
    second.window_to += jiff::SignedDuration::from_secs(1);
    h.ledger.record(&second).await.unwrap();
    let pending = StartRequest {
        mode: StartMode::Pending,
        ..StartRequest::every_company(StartMode::Pending)
    };
    // The first claim goes through, the second fails: the first is given back at once.
    h.ledger.fail_calls(LedgerCall::Claim, 1, 1);
    assert!(h.sync.start(pending.clone()).await.is_err());
    assert!(
        h.ledger
            .states()
            .iter()
            .all(|(_, state, _)| *state == "PENDING"),
        "{:?}",
        h.ledger.states()
    );
    let report = h.sync.start(pending).await.unwrap();
    assert_eq!(report.runs[0].answers, 2);
    h.drain().await;
    assert!(
        h.ledger
            .states()
            .iter()
            .all(|(_, state, _)| *state == "DONE")
    );
}

#[tokio::test]
async fn a_request_its_run_could_not_mark_is_marked_when_the_last_step_comes_back() {
    let mut h = harness(&["product.update"], small_pages());
    h.company().objects.put_simple("product", 1, 1);
    h.ledger
        .record(&resync_request(7, ResyncReason::Created))
        .await
        .unwrap();
    h.sync
        .start(StartRequest {
            mode: StartMode::Pending,
            ..StartRequest::every_company(StartMode::Pending)
        })
        .await
        .unwrap();
    h.ledger.fail_next(LedgerCall::Settle, 1);
    let mut failed_once = None;
    while let Some(task) = h.tasks.next() {
        if let Err(error) = h.sync.run_task(task.clone(), 1).await {
            failed_once = Some(error.to_string());
            // The queue hands the task out again.
            h.sync.run_task(task, 2).await.unwrap();
        }
        h.apply_queued().await;
    }
    assert_eq!(
        failed_once.as_deref(),
        Some("the keeper's requests this run answers could not be marked")
    );
    assert_eq!(h.ledger.states()[0].1, "DONE");
    assert_eq!(h.store.len(), 1);
}

#[tokio::test]
async fn a_later_tick_repairs_requests_a_run_left_taken() {
    let mut h = harness(&["product.update"], small_pages());
    h.company().objects.put_simple("product", 1, 1);
    let pending = StartRequest {
        mode: StartMode::Pending,
        ..StartRequest::every_company(StartMode::Pending)
    };
    // A run ended while the ledger was down, and its last task never came back (the DLQ has it).
    h.ledger
        .record(&resync_request(7, ResyncReason::Created))
        .await
        .unwrap();
    let run_id = h.sync.start(pending.clone()).await.unwrap().runs[0]
        .run_id
        .clone();
    h.ledger.fail_next(LedgerCall::Settle, 1);
    let mut failures = Vec::new();
    while let Some(task) = h.tasks.next() {
        if let Err(error) = h.sync.run_task(task, 1).await {
            failures.push(error.to_string());
        }
        h.apply_queued().await;
    }
    assert_eq!(
        failures,
        ["the keeper's requests this run answers could not be marked"],
        "only the last step failed, and it is never delivered again here"
    );
    assert_eq!(h.run(&run_id).state, RunState::Done);
    assert_eq!(h.ledger.states()[0].1, "RUNNING");
    // A request taken by a run that never wrote its record (the invocation died in between).
    let orphan = resync_request(8, ResyncReason::ReEnabled);
    h.ledger.record(&orphan).await.unwrap();
    let orphan_key = test_support::fakes::resync_key(&orphan);
    h.ledger
        .claim(&orphan_key, "20261201T000000.000000000Z-resync")
        .await
        .unwrap();

    // A fresh claim may belong to a run about to write its record: left alone.
    let report = h.sync.start(pending.clone()).await.unwrap();
    assert!(report.runs.is_empty());
    let states = h.ledger.states();
    assert_eq!(
        (states[0].1, states[1].1),
        ("DONE", "RUNNING"),
        "the ended run's request is marked"
    );

    // Past the grace, the orphan is given back and answered by a new run.
    h.ledger.backdate_claims(domain::sync::CLAIM_GRACE);
    let report = h.sync.start(pending).await.unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].mode, RunMode::Resync);
    h.drain().await;
    let states = h.ledger.states();
    assert_eq!((states[0].1, states[1].1), ("DONE", "DONE"));
    assert_eq!(states[1].2.as_deref(), Some(report.runs[0].run_id.as_str()));
}

#[tokio::test]
async fn a_type_without_date_filters_over_the_limit_fails_at_once_with_the_reason() {
    let mut h = harness(&["product.update"], small_pages());
    for id in 1..=20 {
        h.company().objects.put_simple("product", id, 1);
    }
    h.company().objects.set_list_limit(15);
    let run_id = h.start("backfill").await;
    h.drain().await;
    let run = h.run(&run_id);
    assert_eq!(run.state, RunState::Failed);
    assert!(
        run.failures[0].contains("no date filter"),
        "{:?}",
        run.failures
    );
    assert_eq!(
        h.counts(&run_id, "product").requests,
        1,
        "no split is tried"
    );
}

#[tokio::test]
async fn a_page_whose_changes_were_never_fetched_is_listed_in_full_next_time() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(30, 1).await;
    h.company().objects.put_simple("product", 3, 2);
    let failed = h.start("resync").await;
    // Page 1 lists the change and carries it along; page 2 never answers.
    let first = h.tasks.next().unwrap();
    h.sync.run_task(first, 1).await.unwrap();
    h.company().objects.fail_next(
        ObjectCallKind::ListPage,
        [rate_limited(), rate_limited(), rate_limited()],
    );
    let second = h.tasks.next().unwrap();
    for delivery in 1..3 {
        assert!(h.sync.run_task(second.clone(), delivery).await.is_err());
    }
    h.sync.run_task(second, 3).await.unwrap();
    h.drain().await;
    assert_eq!(h.run(&failed).state, RunState::Failed);
    assert_eq!(h.stored_version("product", 3), Some((Some(1), false)));
    // Page 1's digest was never confirmed: it is listed in full, not skipped as a 304.
    let next = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.stored_version("product", 3), Some((Some(2), false)));
    assert_eq!(h.counts(&next, "product").fetched, 1);
}

#[tokio::test]
async fn the_next_run_starts_from_the_windows_that_worked_and_halves_nothing_again() {
    let mut h = harness(&["voucher.update"], small_pages());
    seed_vouchers(&h, 40);
    h.company().objects.set_list_limit(15);
    let calls_before = h.company().objects.calls().len();
    let backfill = h.start("backfill").await;
    h.drain().await;
    let company = h.company();
    let list_calls = |from: usize| {
        company.objects.calls()[from..]
            .iter()
            .filter(|call| **call == ObjectCallKind::ListPage)
            .count() as u64
    };
    let first = h.counts(&backfill, "voucher");
    assert!(
        list_calls(calls_before) > first.pages,
        "the backfill halved windows Tripletex refused"
    );
    h.age_the_copy();
    let calls_before = h.company().objects.calls().len();
    let nightly = h.start("reconcile").await;
    h.drain().await;
    let night = h.counts(&nightly, "voucher");
    assert_eq!(h.run(&nightly).state, RunState::Done);
    assert_eq!(night.listed, 40);
    assert_eq!(
        list_calls(calls_before),
        night.pages,
        "every list call answered a page: no window was refused"
    );
    assert_eq!(
        night.pages, first.pages,
        "the same windows, each listed once"
    );
}

#[tokio::test]
async fn a_deletion_mid_scan_that_moves_a_changed_object_past_the_listing_still_brings_it_up_to_date()
 {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(25, 1).await;
    // Product 11, the first of page 2, changed before the run; its webhook never came.
    h.company().objects.put_simple("product", 11, 2);
    // Product 5 is deleted just after page 1 is listed: every later product moves up one place, so
    // page 2 (from 10) starts at 12 and no page shows 11.
    h.company().objects.delete_after_next_page("product", 5);
    let run_id = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(
        h.stored_version("product", 11),
        Some((Some(2), false)),
        "the lookup that found it asked for the object in full: it is queued as found"
    );
    let counts = h.counts(&run_id, "product");
    assert_eq!(
        (counts.kept_after_lookup, counts.refreshed_after_lookup),
        (1, 1)
    );
    assert_eq!(counts.tombstoned, 0, "5 was listed before it went");
    assert_eq!(h.run(&run_id).state, RunState::Done);
}

#[tokio::test]
async fn a_fetch_answer_that_leaves_out_an_object_is_looked_up_and_its_change_queued() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(30, 1).await;
    h.company().objects.put_simple("product", 7, 2);
    h.company().objects.put_simple("product", 8, 2);
    h.company().objects.leave_out_of_next_fetch([7]);
    let run_id = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.stored_version("product", 7), Some((Some(2), false)));
    assert_eq!(h.stored_version("product", 8), Some((Some(2), false)));
    let counts = h.counts(&run_id, "product");
    assert_eq!((counts.left_out_by_fetch, counts.vanished), (1, 0));
    assert_eq!(counts.fetched, 2, "one by the fetch, one by its lookup");
    // The page is trusted now, and rightly: every change it showed is in the copy.
    let next = h.start("reconcile").await;
    h.drain().await;
    let quiet = h.counts(&next, "product");
    assert_eq!((quiet.fetched, quiet.pages_not_modified), (0, 4));
}

#[tokio::test]
async fn an_object_gone_between_its_listing_and_its_fetch_leaves_its_page_unconfirmed() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(30, 1).await;
    h.company().objects.put_simple("product", 15, 2);
    let run_id = h.start("reconcile").await;
    // Pages 1 and 2 are listed (15 is behind, its fetch rides along); then 15 is deleted.
    for _ in 0..2 {
        let task = h.tasks.next().unwrap();
        h.sync.run_task(task, 1).await.unwrap();
    }
    h.company().objects.remove("product", 15);
    h.drain().await;
    let counts = h.counts(&run_id, "product");
    assert_eq!((counts.left_out_by_fetch, counts.vanished), (1, 1));
    assert_eq!(
        h.stored_version("product", 15),
        Some((Some(1), false)),
        "a 404 after a listing that showed it is not yet a deletion"
    );
    let tenant = TenantId::parse(TENANT).unwrap();
    let page_2 = h
        .records
        .page_memory(&tenant, "product/all/-/10+10")
        .await
        .unwrap()
        .unwrap();
    assert!(!page_2.confirmed, "its digest would hide 15 for good");
    let next = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.stored_version("product", 15), Some((Some(1), true)));
    assert_eq!(h.counts(&next, "product").tombstoned, 1);
}

#[tokio::test]
async fn an_object_the_worker_could_never_store_is_reported_and_not_fetched_again() {
    let mut h = harness(&["product.update"], small_pages());
    for id in 1..=9 {
        h.company().objects.put_simple("product", id, 1);
    }
    let unstorable = |version: i64| FakeObject {
        id: 4,
        version,
        partition: "all",
        date: None,
        json: format!(r#"{{"id":4,"version":{version},"name":"example"}}"#),
    };
    h.company().objects.put("product", unstorable(-1));
    let backfill = h.start("backfill").await;
    h.drain().await;
    h.age_the_copy();
    assert_eq!(h.stored_version("product", 4), None);
    assert_eq!(h.counts(&backfill, "product").unstorable, 1);
    assert_eq!(
        h.run(&backfill).unstorable,
        [
            "product: id 4 version -1: the worker refuses it: value.version must be a non-negative integer"
        ]
    );
    assert!(
        h.webhooks
            .sent()
            .iter()
            .all(|m| m.attribute("objectId") != Some("4")),
        "never queued: the worker would only quarantine it"
    );
    // The page changes for another reason: product 4 is not fetched again, nor counted as drift.
    h.company().objects.put_simple("product", 9, 2);
    let night = h.start("reconcile").await;
    h.drain().await;
    let counts = h.counts(&night, "product");
    assert_eq!((counts.fetched, counts.drift_corrected), (1, 1));
    assert_eq!(counts.unstorable, 1, "still reported");
    assert!(
        !h.company()
            .objects
            .calls()
            .iter()
            .skip_while(|call| **call != ObjectCallKind::ListPage)
            .any(|call| *call == ObjectCallKind::Lookup),
        "nor looked up"
    );
    // Once Tripletex holds a version the worker can store, it is fetched.
    h.company().objects.put("product", unstorable(2));
    let fixed = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.stored_version("product", 4), Some((Some(2), false)));
    assert_eq!(h.counts(&fixed, "product").fetched, 1);
}

#[tokio::test]
async fn a_type_is_confirmed_complete_only_by_a_listing_and_check_without_an_error() {
    let mut h = harness(&["product.update", "contact.update"], small_pages());
    for id in 1..=5 {
        h.company().objects.put_simple("product", id, 1);
        h.company().objects.put_simple("contact", id, 1);
    }
    let tenant = TenantId::parse(TENANT).unwrap();
    h.start("backfill").await;
    h.drain().await;
    let backfill = h.records.runs()[0].start.started_at;
    let confirmed = h.records.confirmed_complete(&tenant).await.unwrap();
    assert_eq!(
        confirmed,
        [
            ("contact".to_owned(), backfill),
            ("product".to_owned(), backfill)
        ]
    );
    // The next run's product listing fails: product keeps its old confirmation, contact moves on.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let run_id = h.start("reconcile").await;
    h.company()
        .objects
        .fail_next(ObjectCallKind::ListPage, [rate_limited()]);
    let task = h.tasks.next().unwrap();
    // Its last delivery: the type is given up, reported failed.
    h.sync.run_task(task, 3).await.unwrap();
    h.drain().await;
    let started = h.run(&run_id).start.started_at;
    let confirmed = h.records.confirmed_complete(&tenant).await.unwrap();
    assert_eq!(
        confirmed,
        [
            ("contact".to_owned(), started),
            ("product".to_owned(), backfill)
        ]
    );
    // Every tick reports the figures the alarms watch.
    let report = h
        .sync
        .start(StartRequest {
            mode: StartMode::Pending,
            companies: None,
            types: None,
        })
        .await
        .unwrap();
    assert!(report.runs.is_empty());
}

/// A webhook the worker applies: what a late delivery does to the copy.
async fn deliver_webhook(h: &Harness, event: &str, id: i64, version: Option<i64>) {
    let value = version.map_or("null".to_owned(), |v| {
        format!(r#"{{"id":{id},"version":{v}}}"#)
    });
    let body = format!(r#"{{"subscriptionId":1,"event":"{event}","id":{id},"value":{value}}}"#);
    let change = change_from_message(
        Some(&body),
        |name| (name == "tenant").then_some(TENANT),
        Timestamp::now(),
    )
    .unwrap();
    h.store.apply(&change).await.unwrap();
}

#[tokio::test]
async fn drift_counts_only_what_is_still_behind_once_its_webhook_had_its_chance() {
    let mut h = harness(&["product.update", "product.delete"], small_pages());
    h.backfilled_products(25, 1).await;
    // Five changes and two deletes; the webhooks of three changes and one delete are in flight
    // while the run lists, the others never come.
    for id in [2, 4, 6, 8, 10] {
        h.company().objects.put_simple("product", id, 2);
    }
    for id in [20, 22] {
        h.company().objects.remove("product", id);
    }
    let run_id = h.start("reconcile").await;
    loop {
        let task = h.tasks.next().unwrap();
        if task.current().unwrap().stage == domain::sync::Stage::Recheck {
            // The late webhooks land before the recheck, as the grace lets them.
            for id in [2, 4, 6] {
                deliver_webhook(&h, "product.update", id, Some(2)).await;
            }
            deliver_webhook(&h, "product.delete", 20, None).await;
            h.sync.run_task(task, 1).await.unwrap();
            h.apply_queued().await;
            break;
        }
        h.sync.run_task(task, 1).await.unwrap();
        h.apply_queued().await;
        assert_eq!(
            h.stored_version("product", 8),
            Some((Some(1), false)),
            "nothing found behind is queued before the recheck"
        );
    }
    h.drain().await;
    for id in [2, 4, 6, 8, 10] {
        assert_eq!(
            h.stored_version("product", id),
            Some((Some(2), false)),
            "{id}"
        );
    }
    assert_eq!(h.stored_version("product", 22), Some((Some(1), true)));
    let counts = h.counts(&run_id, "product");
    assert_eq!(
        (counts.drift_corrected, counts.late_webhooks),
        (3, 4),
        "8 and 10 fetched and 22 tombstoned were missed; 2, 4, 6 and 20 were late"
    );
    assert_eq!((counts.fetched, counts.tombstoned), (2, 1));
    assert_eq!(h.run(&run_id).state, RunState::Done);
}

#[tokio::test]
async fn a_company_whose_copy_was_purged_is_backfilled_whole_though_every_page_answers_304() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(25, 3).await;
    // The copy is erased (a purge that left the sync's page memory behind); Tripletex is unchanged.
    for key in h.store.items().keys() {
        h.store.remove(key);
    }
    let run_id = h.start("backfill").await;
    h.drain().await;
    assert_eq!(h.store.len(), 25, "every object is back");
    assert_eq!(h.stored_version("product", 17), Some((Some(3), false)));
    let counts = h.counts(&run_id, "product");
    assert_eq!(
        (counts.pages_not_modified, counts.fetched, counts.unchanged),
        (3, 25, 0),
        "each page answered 304, and each was compared with the copy, not with the memory"
    );
}

#[tokio::test]
async fn objects_lost_from_the_table_or_rolled_back_are_restored_while_every_page_answers_304() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(30, 2).await;
    let quiet = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.counts(&quiet, "product").pages_not_modified, 4);
    // Outside the worker: three objects deleted from the table, one set back to an older version.
    for id in [3, 14, 29] {
        assert!(h.store.remove(&format!("{TENANT}#product#{id}")).is_some());
    }
    h.store.roll_back(&format!("{TENANT}#product#21"), 1);
    let run_id = h.start("reconcile").await;
    h.drain().await;
    for id in [3, 14, 21, 29] {
        assert_eq!(
            h.stored_version("product", id),
            Some((Some(2), false)),
            "{id}"
        );
    }
    let counts = h.counts(&run_id, "product");
    assert_eq!(counts.pages_not_modified, 4, "Tripletex had nothing new");
    assert_eq!(
        (counts.fetched, counts.drift_corrected),
        (4, 4),
        "found by comparing each page with the copy, fetched after the recheck"
    );
    assert_eq!(h.run(&run_id).state, RunState::Done);
    // And the night after is quiet again: the pages the recheck fetched answer 304 and match.
    let after = h.start("reconcile").await;
    h.drain().await;
    let counts = h.counts(&after, "product");
    assert_eq!((counts.pages_not_modified, counts.fetched), (4, 0));
}

/// What happens between two nights, to Tripletex and to the copy.
#[derive(Debug, Clone)]
enum Happening {
    /// An object changes (or is created, past the last id); its webhook comes or is lost.
    Changed { id: i64, webhook: bool },
    /// An object is deleted; its webhook comes or is lost.
    Deleted { id: i64, webhook: bool },
    /// The copy loses an object outside the worker (a mistaken delete, a restored table).
    LostFromCopy { id: i64 },
    /// The copy is set back one version.
    RolledBack { id: i64 },
    /// The next fetch answers without an object.
    LeftOutOfFetch { id: i64 },
    /// An object is deleted just after the next list page (every later one moves up a place).
    DeletedMidScan { id: i64 },
    /// A forged or mistaken webhook: a version Tripletex never had, or a delete of an object it
    /// still has.
    Forged { id: i64, delete: bool },
}

fn happening() -> impl proptest::strategy::Strategy<Value = Happening> {
    use proptest::prelude::*;
    let id = 1..45_i64;
    prop_oneof![
        3 => (id.clone(), any::<bool>()).prop_map(|(id, webhook)| Happening::Changed { id, webhook }),
        2 => (id.clone(), any::<bool>()).prop_map(|(id, webhook)| Happening::Deleted { id, webhook }),
        2 => id.clone().prop_map(|id| Happening::LostFromCopy { id }),
        2 => id.clone().prop_map(|id| Happening::RolledBack { id }),
        1 => id.clone().prop_map(|id| Happening::LeftOutOfFetch { id }),
        1 => id.clone().prop_map(|id| Happening::DeletedMidScan { id }),
        2 => (id, any::<bool>()).prop_map(|(id, delete)| Happening::Forged { id, delete }),
    ]
}

impl Harness {
    /// Plays one happening against the fake Tripletex and the copy. Tripletex never gives a
    /// deleted object's id to another (`gone`).
    async fn play(&self, happening: &Happening, gone: &mut std::collections::BTreeSet<i64>) {
        let objects = &self.company().objects;
        let key = |id: i64| format!("{TENANT}#product#{id}");
        let exists = |id: i64| objects.versions_of("product").contains_key(&id);
        match *happening {
            Happening::Changed { id, .. }
            | Happening::Deleted { id, .. }
            | Happening::DeletedMidScan { id }
                if gone.contains(&id) => {}
            Happening::Deleted { id, .. } | Happening::DeletedMidScan { id } if !exists(id) => {}
            Happening::Changed { id, webhook } => {
                let version = objects.versions_of("product").get(&id).map_or(0, |v| v + 1);
                objects.put_simple("product", id, version);
                if webhook {
                    deliver_webhook(self, "product.update", id, Some(version)).await;
                }
            }
            Happening::Deleted { id, webhook } => {
                gone.insert(id);
                objects.remove("product", id);
                if webhook {
                    deliver_webhook(self, "product.delete", id, None).await;
                }
            }
            Happening::LostFromCopy { id } => {
                self.store.remove(&key(id));
            }
            Happening::RolledBack { id } => {
                if let Some((Some(version), false)) = self.stored_version("product", id)
                    && version > 0
                {
                    self.store.roll_back(&key(id), version - 1);
                }
            }
            Happening::LeftOutOfFetch { id } => objects.leave_out_of_next_fetch([id]),
            Happening::Forged { id, .. } if !exists(id) => {}
            Happening::Forged { id, delete: true } => {
                deliver_webhook(self, "product.delete", id, None).await;
            }
            Happening::Forged { id, delete: false } => {
                let version = objects
                    .versions_of("product")
                    .get(&id)
                    .copied()
                    .unwrap_or(0);
                deliver_webhook(self, "product.update", id, Some(version + 50)).await;
            }
            Happening::DeletedMidScan { id } => {
                gone.insert(id);
                objects.delete_after_next_page("product", id);
            }
        }
    }

    /// Where the copy differs from Tripletex: an object missing, behind or ahead, or one
    /// Tripletex no longer has that the copy holds live.
    fn differences(&self) -> Vec<String> {
        let truth = self.company().objects.versions_of("product");
        let mut differences = Vec::new();
        for (&id, &version) in &truth {
            match self.stored_version("product", id) {
                Some((Some(stored), false)) if stored == version => {}
                other => differences.push(format!("{id}: Tripletex v{version}, copy {other:?}")),
            }
        }
        for key in self.store.items().keys() {
            let id: i64 = key.rsplit('#').next().unwrap().parse().unwrap();
            if !truth.contains_key(&id)
                && let Some((_, false)) = self.stored_version("product", id)
            {
                differences.push(format!("{id}: gone from Tripletex, live in the copy"));
            }
        }
        differences
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Whatever happened between two nights (lost webhooks, objects lost from the copy or set
    /// back, fetch answers that leave objects out, deletions mid-scan, forged webhooks), the copy is Tripletex's
    /// again after the next nights' reconciliations, with Tripletex answering 304 wherever it can.
    #[test]
    fn reconciliations_bring_the_copy_back_to_tripletex_whatever_happened(
        objects in 1..40_i64,
        page_size in 3..12_u32,
        happenings in proptest::collection::vec(happening(), 0..25),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let differences = runtime.block_on(async {
            let limits = StepLimits { page_size, ..small_pages() };
            let mut h = harness(&["product.update", "product.delete"], limits);
            h.backfilled_products(objects, 1).await;
            let first = h.start("reconcile").await;
            h.drain().await;
            assert_eq!(h.counts(&first, "product").fetched, 0, "a quiet night fetches nothing");
            let mut gone = std::collections::BTreeSet::new();
            for happening in &happenings {
                h.play(happening, &mut gone).await;
            }
            h.age_the_copy();
            // A deletion mid-scan or an object left out of a fetch may take a second night.
            for _ in 0..2 {
                h.start("reconcile").await;
                h.drain().await;
                h.age_the_copy();
            }
            h.differences()
        });
        proptest::prop_assert!(differences.is_empty(), "{differences:?}");
    }
}

#[tokio::test]
async fn a_type_is_confirmed_complete_only_once_what_its_listing_showed_is_stored() {
    let mut h = harness(&["product.update"], small_pages());
    for id in 1..=12 {
        h.company().objects.put_simple("product", id, 1);
    }
    let tenant = TenantId::parse(TENANT).unwrap();
    // The worker is behind: nothing the backfill queued is stored when the copy is checked.
    let run_id = h.start("backfill").await;
    while let Some(task) = h.tasks.next() {
        h.sync.run_task(task, 1).await.unwrap();
    }
    assert!(
        h.records
            .confirmed_complete(&tenant)
            .await
            .unwrap()
            .is_empty(),
        "queued is not stored"
    );
    let counts = h.counts(&run_id, "product");
    assert_eq!(counts.not_stored, 12);
    assert_eq!(
        counts.fetched,
        12 + 3,
        "fetched once, and the 3 its one check step looked up by id queued again"
    );
    assert_eq!(h.run(&run_id).state, RunState::Done);
    // Once the worker has stored them, the next run confirms the type.
    h.apply_queued().await;
    let next = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.counts(&next, "product").not_stored, 0);
    let confirmed = h.records.confirmed_complete(&tenant).await.unwrap();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].1, h.run(&next).start.started_at);
}

#[tokio::test]
async fn a_reconciliation_whose_recheck_stores_its_findings_confirms_the_type() {
    let mut h = harness(&["product.update", "product.delete"], small_pages());
    h.backfilled_products(15, 1).await;
    h.company().objects.put_simple("product", 4, 2);
    h.company().objects.remove("product", 9);
    let tenant = TenantId::parse(TENANT).unwrap();
    let run_id = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(h.counts(&run_id, "product").drift_corrected, 2);
    let confirmed = h.records.confirmed_complete(&tenant).await.unwrap();
    assert_eq!(
        confirmed,
        [("product".to_owned(), h.run(&run_id).start.started_at)],
        "confirmed by the recheck once its findings were stored"
    );
}

#[tokio::test]
async fn a_forged_version_or_delete_is_replaced_by_tripletexs_answer_and_a_late_webhook_is_not() {
    let mut h = harness(&["product.update", "product.delete"], small_pages());
    h.backfilled_products(12, 3).await;
    // A leaked credential: a version Tripletex never had, and a delete of an object it has.
    deliver_webhook(&h, "product.update", 4, Some(90)).await;
    deliver_webhook(&h, "product.delete", 7, None).await;
    let run_id = h.start("reconcile").await;
    // A real change whose webhook lands after the listing began: the copy is ahead, rightly.
    h.company().objects.put_simple("product", 9, 4);
    deliver_webhook(&h, "product.update", 9, Some(4)).await;
    h.drain().await;
    assert_eq!(
        h.stored_version("product", 4),
        Some((Some(3), false)),
        "back to Tripletex's"
    );
    assert_eq!(
        h.stored_version("product", 7),
        Some((Some(3), false)),
        "the forged delete undone"
    );
    assert_eq!(
        h.stored_version("product", 9),
        Some((Some(4), false)),
        "a real change stays"
    );
    let counts = h.counts(&run_id, "product");
    assert_eq!(counts.contradicted, 2);
    let value = h
        .store
        .get(&format!("{TENANT}#product#4"))
        .unwrap()
        .value
        .unwrap();
    assert!(value.contains("product 4 v3"), "{value}");
}

#[tokio::test]
async fn a_copy_written_after_the_run_began_is_asked_about_only_by_the_next_run() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(12, 3).await;
    let run_id = h.start("reconcile").await;
    // Written after the run began: on a busy day, a webhook after the listing. This one is forged,
    // and the run that began before it does not ask (it cannot tell it from a real one cheaply).
    deliver_webhook(&h, "product.update", 5, Some(40)).await;
    h.drain().await;
    let lookups = |h: &Harness| {
        h.company()
            .objects
            .calls()
            .iter()
            .filter(|c| **c == ObjectCallKind::Lookup)
            .count()
    };
    assert_eq!(lookups(&h), 0, "nothing asked by id");
    assert_eq!(h.counts(&run_id, "product").contradicted, 0);
    // The next run began after it was written: it asks, and Tripletex's answer replaces it.
    h.age_the_copy();
    let next = h.start("reconcile").await;
    h.drain().await;
    assert_eq!(lookups(&h), 1);
    assert_eq!(h.counts(&next, "product").contradicted, 1);
    assert_eq!(h.stored_version("product", 5), Some((Some(3), false)));
}

#[tokio::test]
async fn the_recheck_waits_until_the_worker_has_reached_its_marker_behind_the_webhooks_in_flight() {
    let mut h = harness(&["product.update"], small_pages());
    h.backfilled_products(12, 1).await;
    for id in [3, 6, 9] {
        h.company().objects.put_simple("product", id, 2);
    }
    let run_id = h.start("reconcile").await;
    let recheck = loop {
        let task = h.tasks.next().unwrap();
        if task.current().unwrap().stage == domain::sync::Stage::Recheck {
            break task;
        }
        h.sync.run_task(task, 1).await.unwrap();
        h.apply_queued().await;
    };
    // Its first step puts the marker behind what the webhook queue holds, and fetches nothing.
    h.sync.run_task(recheck, 1).await.unwrap();
    let markers = h.live.sent();
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0].attribute("syncMarker"), Some(run_id.as_str()));
    // The worker has not reached it yet: the recheck looks again, still fetching nothing.
    for _ in 0..3 {
        let task = h.tasks.next().unwrap();
        assert_eq!(task.current().unwrap().stage, domain::sync::Stage::Recheck);
        h.sync.run_task(task, 1).await.unwrap();
    }
    assert_eq!(h.counts(&run_id, "product").fetched, 0);
    // The webhooks queued before the marker are applied (two of three: one was lost), then the
    // worker reaches the marker: only the lost one is drift.
    deliver_webhook(&h, "product.update", 3, Some(2)).await;
    deliver_webhook(&h, "product.update", 6, Some(2)).await;
    h.drain().await;
    let counts = h.counts(&run_id, "product");
    assert_eq!((counts.late_webhooks, counts.drift_corrected), (2, 1));
    assert_eq!(h.stored_version("product", 9), Some((Some(2), false)));
    assert_eq!(h.run(&run_id).state, RunState::Done);
}
