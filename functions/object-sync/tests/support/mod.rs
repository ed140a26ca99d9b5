//! The sync wired to every real adapter, for the wire test and the benchmark: Tripletex is the
//! simulator (tools/simulator/) over HTTP, and the queues and tables are the template's own, created
//! in moto by the local stack tool (the FIFO sync queue, the objects table with its `byType` index,
//! the sync table, the resync ledger). `Stack` plays Lambda's part: it hands the sync each task from
//! the FIFO queue (again, with a higher receive count, when a step fails), and applies what lands on
//! the webhook queue with the worker's store, as the worker would.

#![allow(dead_code)] // each user takes what it needs

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use aws_adapters::companies::CompanySource;
use aws_adapters::dynamodb::DynamoObjectStore;
use aws_adapters::resync_ledger::DynamoResyncLedger;
use aws_adapters::sqs::{SqsQueue, SqsSyncTasks};
use aws_adapters::sync_records::{DynamoSyncRecords, count_attribute, run_key};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::envelope::EventName;
use domain::ports::ObjectStore as _;
use domain::record::change_from_message;
use domain::sync::StartRequest;
use domain::tripletex::Companies;
use jiff::Timestamp;
use object_sync::config::{StepLimits, SyncSettings};
use object_sync::handler::{ObjectSync, SyncPorts};
use serde_json::{Value, json};
use test_support::{MotoServer, TripletexSimulator, paths, sdk_config_for};
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

pub const COMPANY: i64 = 100;
pub const TENANT: &str = "acme";

pub type Sync = ObjectSync<
    HttpTripletexCompanies,
    SqsQueue,
    SqsSyncTasks,
    DynamoObjectStore,
    DynamoSyncRecords,
    DynamoResyncLedger,
>;

pub struct Stack {
    pub sim: TripletexSimulator,
    pub sync: Sync,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub store: DynamoObjectStore,
    pub records: DynamoSyncRecords,
    pub ledger: DynamoResyncLedger,
    pub resources: Value,
    pub object_type: &'static str,
}

/// The template's resources in moto under a stack name of their own, and the sync wired to them.
pub async fn stack(name: &str, object_type: &'static str, limits: StepLimits) -> Stack {
    let moto = MotoServer::shared();
    let sim = TripletexSimulator::start();
    sim.add_company(COMPANY, "consumer", "employee").unwrap();
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
    let records = DynamoSyncRecords::new(dynamodb.clone(), text("SyncTable", "name"));
    let ledger = DynamoResyncLedger::new(dynamodb.clone(), text("ResyncTable", "name"));
    let ports = SyncPorts {
        tripletex: HttpTripletexCompanies::new(sim.api_base_url(), retry).unwrap(),
        webhooks: SqsQueue::new(sqs.clone(), text("SyncObjectsQueue", "url")),
        // The worker's part is played between steps: nothing is in flight at a recheck.
        live_webhooks: None,
        tasks: SqsSyncTasks::new(sqs.clone(), text("SyncQueue", "url")),
        copy: store.clone(),
        records: records.clone(),
        ledger: ledger.clone(),
    };
    let settings = SyncSettings {
        events: vec![EventName::parse(&format!("{object_type}.update")).unwrap()],
        fields: "*".into(),
        limits,
    };
    let sync = ObjectSync::new(
        ports,
        CompanySource::Fixed(std::sync::Arc::new(companies)),
        settings,
    );
    Stack {
        sim,
        sync,
        sqs,
        dynamodb,
        store,
        records,
        ledger,
        resources,
        object_type,
    }
}

impl Stack {
    pub fn url(&self, logical: &str) -> String {
        self.resources[logical]["url"].as_str().unwrap().to_owned()
    }

    pub fn table(&self, logical: &str) -> String {
        self.resources[logical]["name"].as_str().unwrap().to_owned()
    }

    /// Plays Lambda's SQS event source for the sync (batch size 1) and the worker, until both
    /// queues are empty. Returns the tasks run.
    pub async fn run_until_idle(&self) -> usize {
        let mut tasks = 0;
        while self.run_one_task().await {
            tasks += 1;
            self.apply_webhooks().await;
        }
        self.apply_webhooks().await;
        tasks
    }

    /// One task from the FIFO queue, as Lambda hands it over; false when none is waiting. A task
    /// that fails comes back at once with its receive count one higher (Lambda waits the
    /// visibility timeout).
    pub async fn run_one_task(&self) -> bool {
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(self.url("SyncQueue"))
                .max_number_of_messages(1)
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                )
                .send()
                .await
                .unwrap();
            let Some(message) = received.messages().first() else {
                return false;
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
            return true;
        }
    }

    pub async fn apply_webhooks(&self) {
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(self.url("SyncObjectsQueue"))
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            if received.messages().is_empty() {
                return;
            }
            let mut handles = Vec::new();
            for message in received.messages() {
                let attributes = message.message_attributes().cloned().unwrap_or_default();
                let change = change_from_message(
                    message.body(),
                    |name| attributes.get(name).and_then(|v| v.string_value()),
                    Timestamp::now(),
                )
                .unwrap();
                self.store.apply(&change).await.unwrap();
                handles.push(message.receipt_handle().unwrap().to_owned());
            }
            let entries = handles
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                        .unwrap()
                })
                .collect();
            self.sqs
                .delete_message_batch()
                .queue_url(self.url("SyncObjectsQueue"))
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
        }
    }

    pub async fn start(&self, mode: &str) -> String {
        let report = self
            .sync
            .start(StartRequest {
                mode: mode.parse().unwrap(),
                companies: None,
                types: Some(vec![self.object_type.into()]),
            })
            .await
            .unwrap();
        report.runs[0].run_id.clone()
    }

    pub async fn run_record(&self, run_id: &str) -> HashMap<String, AttributeValue> {
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

    pub async fn count(&self, run_id: &str, name: &str) -> u64 {
        self.run_record(run_id)
            .await
            .get(&count_attribute(self.object_type, name))
            .map_or(0, |v| v.as_n().unwrap().parse().unwrap())
    }

    pub async fn state(&self, run_id: &str) -> String {
        self.run_record(run_id).await["state"]
            .as_s()
            .unwrap()
            .clone()
    }

    /// The simulator's objects of the type: id -> (version, deleted, value).
    pub fn truth(&self) -> HashMap<i64, (i64, bool, Value)> {
        self.sim
            .control("GET", "/_sim/objects", &Value::Null)
            .unwrap()["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == self.object_type)
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

    /// The table's objects: id -> (version, deleted, value).
    pub async fn copy(&self) -> HashMap<i64, (i64, bool, Option<Value>)> {
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

    pub fn change(&self, id: i64, verb: &str) {
        let mut body =
            json!({"companyId": COMPANY, "type": self.object_type, "verb": verb, "id": id});
        if verb == "update" {
            body["fields"] = json!({"name": format!("renamed {id}")});
        }
        self.sim.control("POST", "/_sim/changes", &body).unwrap();
    }

    pub async fn assert_exact(&self) {
        let truth = self.truth();
        let copy = self.copy().await;
        assert_eq!(copy.len(), truth.len(), "one item per object");
        for (id, (version, deleted, value)) in truth {
            let (stored_version, stored_deleted, stored_value) = copy[&id].clone();
            assert_eq!(stored_deleted, deleted, "{id}");
            if !deleted {
                assert_eq!(stored_version, version, "{id}");
                assert_eq!(stored_value.unwrap(), value, "{id} has a webhook's shape");
            }
        }
    }
}
