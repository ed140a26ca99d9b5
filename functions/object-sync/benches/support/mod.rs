//! What the sync benches share: the sync over the simulator with the AWS side in memory, and the
//! worker's part (each queued envelope applied with the worker's rule).

use std::sync::Arc;

use aws_adapters::secrets::SecretSource;
use domain::envelope::EventName;
use domain::tripletex::Companies;
use object_sync::config::{StepLimits, SyncSettings};
use object_sync::handler::{ObjectSync, StartReport, StartRequest};
use test_support::{
    InMemoryObjectStore, InMemoryResyncLedger, InMemorySyncRecords, RecordingQueue,
    RecordingSyncTasks,
};
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

pub type Sync = ObjectSync<
    HttpTripletexCompanies,
    Arc<RecordingQueue>,
    Arc<RecordingSyncTasks>,
    Arc<InMemoryObjectStore>,
    Arc<InMemorySyncRecords>,
    Arc<InMemoryResyncLedger>,
>;

pub struct Harness {
    pub sync: Sync,
    pub webhooks: Arc<RecordingQueue>,
    pub tasks: Arc<RecordingSyncTasks>,
    pub store: Arc<InMemoryObjectStore>,
    pub records: Arc<InMemorySyncRecords>,
}

/// The sync of products for these companies, against Tripletex at `api_base_url`.
pub fn harness(api_base_url: String, companies: Companies, limits: StepLimits) -> Harness {
    let webhooks = Arc::new(RecordingQueue::new());
    let tasks = Arc::new(RecordingSyncTasks::new());
    let store = Arc::new(InMemoryObjectStore::new());
    let records = Arc::new(InMemorySyncRecords::new());
    let sync = ObjectSync {
        tripletex: HttpTripletexCompanies::new(api_base_url, RetryPolicy::default()).unwrap(),
        webhooks: Arc::clone(&webhooks),
        tasks: Arc::clone(&tasks),
        copy: Arc::clone(&store),
        records: Arc::clone(&records),
        ledger: Arc::new(InMemoryResyncLedger::new()),
        companies: SecretSource::Fixed(Arc::new(companies)),
        settings: SyncSettings {
            events: vec![EventName::parse("product.update").unwrap()],
            fields: "*".into(),
            limits,
        },
    };
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
                mode: mode.into(),
                companies: None,
                types: None,
            })
            .await
            .unwrap()
    }

    /// What the sync queued, applied with the worker's rule.
    pub async fn apply_webhooks(&self) {
        for message in self.webhooks.drain() {
            test_support::apply_as_worker(self.store.as_ref(), &message).await;
        }
    }
}
