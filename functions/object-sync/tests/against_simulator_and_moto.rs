#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The sync with every real adapter: Tripletex is the simulator (tools/simulator/) over HTTP, and the
//! queues and tables are the template's own, created in moto by the local stack tool (the FIFO sync
//! queue, the objects table with its `byType` index, the sync table, the resync ledger). The test
//! plays Lambda's part: it hands the sync each task from the FIFO queue, and applies what lands on
//! the webhook queue with the worker's store, as the worker would.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use aws_adapters::dynamodb::DynamoObjectStore;
use aws_adapters::resync_ledger::DynamoResyncLedger;
use aws_adapters::secrets::SecretSource;
use aws_adapters::sqs::{SqsQueue, SqsSyncTasks};
use aws_adapters::sync_records::{DynamoSyncRecords, count_attribute, run_key};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::envelope::EventName;
use domain::ports::ObjectStore as _;
use domain::record::change_from_message;
use domain::tripletex::Companies;
use jiff::Timestamp;
use object_sync::config::{StepLimits, SyncSettings};
use object_sync::handler::{ObjectSync, StartRequest};
use serde_json::{Value, json};
use test_support::{MotoServer, TripletexSimulator, paths, sdk_config_for};
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

const COMPANY: i64 = 100;
const TENANT: &str = "acme";

type Sync = ObjectSync<
    HttpTripletexCompanies,
    SqsQueue,
    SqsSyncTasks,
    DynamoObjectStore,
    DynamoSyncRecords,
    DynamoResyncLedger,
>;

struct Stack {
    sim: TripletexSimulator,
    sync: Sync,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    store: DynamoObjectStore,
    resources: Value,
}

/// The template's resources in moto under a stack name of their own, and the sync wired to them.
async fn stack(name: &str) -> Stack {
    let moto = MotoServer::shared();
    let sim = TripletexSimulator::start();
    sim.control(
        "POST",
        "/_sim/companies",
        &json!({"companyId": COMPANY, "consumerToken": "consumer", "employeeToken": "employee"}),
    )
    .unwrap();
    let env_file = std::env::temp_dir().join(format!("{name}-{}.env", std::process::id()));
    let output = Command::new(paths::venv_python())
        .current_dir(paths::workspace_root())
        .args(["-m", "tools.localstack.local_stack", "create", "--endpoint"])
        .arg(moto.endpoint())
        .arg("--stack-name")
        .arg(format!("{name}-{}", std::process::id()))
        .arg("--env-file")
        .arg(&env_file)
        .args(["--function-url", "WebhookReceiver=http://127.0.0.1:9/"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "local stack: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let resources = summary["resources"].clone();
    let text = |logical: &str, field: &str| resources[logical][field].as_str().unwrap().to_owned();
    let sdk = sdk_config_for(moto.endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let companies = Companies::from_json(
        r#"{"companies": {"acme": {"consumerToken": "consumer", "employeeToken": "employee"}}}"#,
    )
    .unwrap();
    let retry = RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(1500),
        attempt_timeout: Duration::from_secs(10),
    };
    let store = DynamoObjectStore::new(dynamodb.clone(), text("ObjectsTable", "name"));
    let sync = ObjectSync {
        tripletex: HttpTripletexCompanies::new(sim.api_base_url(), retry),
        webhooks: SqsQueue::new(sqs.clone(), text("WebhookQueue", "url")),
        tasks: SqsSyncTasks::new(sqs.clone(), text("SyncQueue", "url")),
        copy: store.clone(),
        records: DynamoSyncRecords::new(dynamodb.clone(), text("SyncTable", "name")),
        ledger: DynamoResyncLedger::new(dynamodb.clone(), text("ResyncTable", "name")),
        companies: SecretSource::Fixed(std::sync::Arc::new(companies)),
        settings: SyncSettings {
            events: vec![EventName::parse("customer.update").unwrap()],
            fields: "*".into(),
            limits: StepLimits {
                page_size: 40,
                fetch_batch: 25,
                verify_batch: 30,
                lookups_per_step: 10,
                attempts: 3,
            },
        },
    };
    Stack {
        sim,
        sync,
        sqs,
        dynamodb,
        store,
        resources,
    }
}

impl Stack {
    fn url(&self, logical: &str) -> String {
        self.resources[logical]["url"].as_str().unwrap().to_owned()
    }

    fn table(&self, logical: &str) -> String {
        self.resources[logical]["name"].as_str().unwrap().to_owned()
    }

    /// Plays Lambda's SQS event source for the sync (batch size 1) and the worker, until both
    /// queues are empty. Returns the tasks run.
    async fn run_until_idle(&self) -> usize {
        let mut tasks = 0;
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(self.url("SyncQueue"))
                .max_number_of_messages(1)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            let Some(message) = received.messages().first() else {
                self.apply_webhooks().await;
                return tasks;
            };
            let delivery = message
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .and_then(|count| count.parse().ok())
                .unwrap_or(1);
            let task = serde_json::from_str(message.body().unwrap()).unwrap();
            if let Err(error) = self.sync.run_task(task, delivery).await {
                // As Lambda would: the message comes back, with its receive count one higher.
                assert!(
                    delivery < 5,
                    "a task kept failing: {}",
                    domain::error::error_chain(&error)
                );
                self.sqs
                    .change_message_visibility()
                    .queue_url(self.url("SyncQueue"))
                    .receipt_handle(message.receipt_handle().unwrap())
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
                continue;
            }
            self.sqs
                .delete_message()
                .queue_url(self.url("SyncQueue"))
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            tasks += 1;
            self.apply_webhooks().await;
        }
    }

    async fn apply_webhooks(&self) {
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(self.url("WebhookQueue"))
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            if received.messages().is_empty() {
                return;
            }
            for message in received.messages() {
                let attributes = message.message_attributes().cloned().unwrap_or_default();
                let change = change_from_message(
                    message.body(),
                    |name| attributes.get(name).and_then(|v| v.string_value()),
                    Timestamp::now(),
                )
                .unwrap();
                self.store.apply(&change).await.unwrap();
                self.sqs
                    .delete_message()
                    .queue_url(self.url("WebhookQueue"))
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    async fn start(&self, mode: &str) -> String {
        let report = self
            .sync
            .start(StartRequest {
                mode: mode.into(),
                companies: None,
                types: Some(vec!["customer".into()]),
            })
            .await
            .unwrap();
        report.runs[0].run_id.clone()
    }

    async fn run_record(&self, run_id: &str) -> HashMap<String, AttributeValue> {
        self.dynamodb
            .get_item()
            .table_name(self.table("SyncTable"))
            .key(
                "pk",
                AttributeValue::S(run_key(&domain::ids::TenantId::parse(TENANT).unwrap())),
            )
            .key("sk", AttributeValue::S(run_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    }

    async fn count(&self, run_id: &str, name: &str) -> u64 {
        self.run_record(run_id)
            .await
            .get(&count_attribute("customer", name))
            .map_or(0, |v| v.as_n().unwrap().parse().unwrap())
    }

    async fn state(&self, run_id: &str) -> String {
        self.run_record(run_id).await["state"]
            .as_s()
            .unwrap()
            .clone()
    }

    /// The simulator's customers: id -> (version, deleted, value).
    fn truth(&self) -> HashMap<i64, (i64, bool, Value)> {
        self.sim
            .control("GET", "/_sim/objects", &Value::Null)
            .unwrap()["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "customer")
            .map(|o| {
                (
                    o["id"].as_i64().unwrap(),
                    (
                        o["version"].as_i64().unwrap(),
                        o["deleted"].as_bool().unwrap(),
                        o["value"].clone(),
                    ),
                )
            })
            .collect()
    }

    /// The table's customers: id -> (version, deleted, value).
    async fn copy(&self) -> HashMap<i64, (i64, bool, Option<Value>)> {
        let mut copy = HashMap::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(self.table("ObjectsTable"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let id: i64 = item["objectId"].as_n().unwrap().parse().unwrap();
                copy.insert(
                    id,
                    (
                        item["version"].as_n().unwrap().parse().unwrap(),
                        *item["deleted"].as_bool().unwrap(),
                        item.get("value")
                            .map(|v| serde_json::from_str(v.as_s().unwrap()).unwrap()),
                    ),
                );
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return copy;
            }
        }
    }

    fn change(&self, id: i64, verb: &str) {
        let mut body = json!({"companyId": COMPANY, "type": "customer", "verb": verb, "id": id});
        if verb == "update" {
            body["fields"] = json!({"name": format!("renamed {id}")});
        }
        self.sim.control("POST", "/_sim/changes", &body).unwrap();
    }

    async fn assert_exact(&self) {
        let truth = self.truth();
        let copy = self.copy().await;
        assert_eq!(copy.len(), truth.len(), "one item per object");
        for (id, (version, deleted, value)) in truth {
            let (stored_version, stored_deleted, stored_value) = copy[&id].clone();
            assert_eq!(stored_deleted, deleted, "customer {id}");
            if !deleted {
                assert_eq!(stored_version, version, "customer {id}");
                assert_eq!(
                    stored_value.unwrap(),
                    value,
                    "customer {id} has a webhook's shape"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_then_nightly_runs_keep_the_copy_exact_over_the_wire() {
    let stack = stack("sync-wire").await;
    let created = stack
        .sim
        .control(
            "POST",
            "/_sim/objects",
            &json!({"companyId": COMPANY, "type": "customer", "count": 130}),
        )
        .unwrap();
    let ids: Vec<i64> = serde_json::from_value(created["ids"].clone()).unwrap();

    // Backfill: 130 customers in pages of 40 (both partitions), fetched in batches of 25.
    let backfill = stack.start("backfill").await;
    let tasks = stack.run_until_idle().await;
    assert!(tasks >= 5, "4 pages and the check: {tasks}");
    assert_eq!(stack.state(&backfill).await, "done");
    assert_eq!(stack.count(&backfill, "listed").await, 130);
    assert_eq!(stack.count(&backfill, "fetched").await, 130);
    stack.assert_exact().await;

    // Missed webhooks: changes and deletes Tripletex made that no subscription delivered.
    for &id in &ids[..5] {
        stack.change(id, "update");
    }
    for &id in &ids[100..103] {
        stack.change(id, "delete");
    }
    // The deletion rule compares with when the run began: the copy must be older than that.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let nightly = stack.start("reconcile").await;
    stack.run_until_idle().await;
    assert_eq!(stack.state(&nightly).await, "done");
    assert_eq!(stack.count(&nightly, "fetched").await, 5);
    assert_eq!(stack.count(&nightly, "tombstoned").await, 3);
    assert_eq!(stack.count(&nightly, "driftCorrected").await, 8);
    stack.assert_exact().await;

    // Nothing changed since: every page is a 304 and nothing is fetched.
    let quiet = stack.start("reconcile").await;
    stack.run_until_idle().await;
    let pages = stack.count(&quiet, "pages").await;
    assert_eq!(stack.count(&quiet, "pagesNotModified").await, pages);
    assert_eq!(stack.count(&quiet, "fetched").await, 0);
    assert_eq!(stack.count(&quiet, "tombstoned").await, 0);
    assert_eq!(
        stack.count(&quiet, "requests").await,
        pages,
        "list pages only"
    );

    // A tight rate limit: the sync waits out the 429s and finishes all the same.
    stack
        .sim
        .control(
            "POST",
            "/_sim/rate-limit",
            &json!({"limit": 3, "periodSeconds": 1}),
        )
        .unwrap();
    stack.change(ids[7], "update");
    let limited = stack.start("reconcile").await;
    stack.run_until_idle().await;
    assert_eq!(stack.state(&limited).await, "done");
    assert!(
        stack.count(&limited, "rateLimited").await > 0,
        "429s were met"
    );
    assert_eq!(stack.count(&limited, "fetched").await, 1);
    stack.assert_exact().await;
}
