//! What the sync benches share: the sync over the simulator with the AWS side in memory, and the
//! worker's part (each queued envelope applied with the worker's rule).

use std::sync::Arc;

use aws_adapters::companies::CompanySource;
use domain::envelope::EventName;
use domain::sync::{StartReport, StartRequest};
use domain::tripletex::Companies;
use object_sync::config::{StepLimits, SyncSettings};
use object_sync::handler::{ObjectSync, SyncPorts};
use test_support::{
    InMemoryObjectStore, InMemoryResyncLedger, InMemorySyncRecords, RecordingQueue,
    RecordingSyncTasks,
};
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

pub type Sync = ObjectSync<
    HttpTripletexCompanies,
    RecordingQueue,
    RecordingSyncTasks,
    InMemoryObjectStore,
    InMemorySyncRecords,
    InMemoryResyncLedger,
>;

pub struct Harness {
    pub sync: Sync,
    pub webhooks: RecordingQueue,
    pub tasks: RecordingSyncTasks,
    pub store: InMemoryObjectStore,
    pub records: InMemorySyncRecords,
}

/// The sync of products for these companies, against Tripletex at `api_base_url`.
pub fn harness(api_base_url: String, companies: Companies, limits: StepLimits) -> Harness {
    let webhooks = RecordingQueue::new();
    let tasks = RecordingSyncTasks::new();
    let store = InMemoryObjectStore::new();
    let records = InMemorySyncRecords::new();
    let ports = SyncPorts {
        tripletex: HttpTripletexCompanies::new(api_base_url, RetryPolicy::default()).unwrap(),
        webhooks: webhooks.clone(),
        // The worker's part is played between steps: nothing is in flight at a recheck.
        live_webhooks: None,
        tasks: tasks.clone(),
        copy: store.clone(),
        records: records.clone(),
        ledger: InMemoryResyncLedger::new(),
    };
    let settings = SyncSettings {
        events: vec![EventName::parse("product.update").unwrap()],
        fields: "*".into(),
        limits,
    };
    let sync = ObjectSync::new(ports, CompanySource::Fixed(Arc::new(companies)), settings);
    Harness {
        sync,
        webhooks,
        tasks,
        store,
        records,
    }
}

impl Harness {
    /// Starts a run of `mode` for every company and type.
    pub async fn start(&self, mode: &str) -> StartReport {
        self.sync
            .start(StartRequest {
                mode: mode.parse().unwrap(),
                companies: None,
                types: None,
            })
            .await
            .unwrap()
    }

    /// What the sync queued, applied with the worker's rule.
    pub async fn apply_webhooks(&self) {
        for message in self.webhooks.drain() {
            test_support::apply_as_worker(&self.store, &message).await;
        }
    }
}
