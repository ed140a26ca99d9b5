#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The command itself, run as a person runs it (`--local`, the summary scripts/run writes), against
//! the template's queues and tables created in moto by the local stack tool: what it prints in JSON
//! and as tables, and how it exits.

use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde_json::Value;
use test_support::{MotoServer, paths, sdk_config_for};

mod support;

struct Local {
    summary: std::path::PathBuf,
    resources: Value,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

async fn local_stack(name: &str) -> Local {
    local_stack_invoking(name, "http://127.0.0.1:9").await
}

/// The local stack, its functions answering Lambda's Invoke API at `lambda_endpoint`.
async fn local_stack_invoking(name: &str, lambda_endpoint: &str) -> Local {
    local_stack_with(name, lambda_endpoint, &[]).await
}

/// The local stack with more of `local_stack create`'s arguments (secrets, parameters).
async fn local_stack_with(name: &str, lambda_endpoint: &str, more: &[String]) -> Local {
    let moto = MotoServer::shared();
    let stack_name = format!("{name}-{}", std::process::id());
    let env_file = std::env::temp_dir().join(format!("{stack_name}.env"));
    let output = Command::new(paths::venv_python())
        .current_dir(paths::workspace_root())
        .args(["-m", "tools.localstack.local_stack", "create", "--endpoint"])
        .arg(moto.endpoint())
        .arg("--stack-name")
        .arg(&stack_name)
        .arg("--env-file")
        .arg(&env_file)
        .args(["--function-url", "WebhookReceiver=http://127.0.0.1:9/"])
        .args(["--lambda-endpoint", lambda_endpoint])
        .args(more)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "local stack: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = std::env::temp_dir().join(format!("{stack_name}.json"));
    std::fs::write(&summary, &output.stdout).unwrap();
    let resources = serde_json::from_slice::<Value>(&output.stdout).unwrap()["resources"].clone();
    let sdk = sdk_config_for(moto.endpoint()).await;
    Local {
        summary,
        resources,
        sqs: aws_sdk_sqs::Client::new(&sdk),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
    }
}

impl Local {
    fn url(&self, logical: &str) -> String {
        self.resources[logical]["url"].as_str().unwrap().to_owned()
    }

    fn table(&self, logical: &str) -> String {
        self.resources[logical]["name"].as_str().unwrap().to_owned()
    }

    /// The command, in an environment with no AWS settings (a new shell): the summary's endpoint,
    /// region and throwaway credentials are used.
    fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tripletex-webhooks"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .arg(format!("--local={}", self.summary.display()))
            .args(args)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> (Value, Option<i32>) {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let output = self.cli(&with_json);
        let text = String::from_utf8_lossy(&output.stdout);
        let value = serde_json::from_str(&text).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {text}\nstderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (value, output.status.code())
    }

    async fn put(&self, table: &str, item: &[(&str, AttributeValue)]) {
        let mut put = self.dynamodb.put_item().table_name(self.table(table));
        for (name, value) in item {
            put = put.item(*name, value.clone());
        }
        put.send().await.unwrap();
    }

    async fn send(&self, queue: &str, body: &str, attributes: &[(&str, &str)]) {
        let mut send = self
            .sqs
            .send_message()
            .queue_url(self.url(queue))
            .message_body(body);
        for (name, value) in attributes {
            send = send.message_attributes(
                *name,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(*value)
                    .build()
                    .unwrap(),
            );
        }
        send.send().await.unwrap();
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_queues_subscriptions_sync_runs_and_requests_and_exits_1_only_when_a_person_is_needed()
 {
    let keeper = StandInLambda::start(|function| {
        assert_eq!(function, "subscription-keeper");
        (
            None,
            serde_json::json!({"dryRun": true, "totals": {}, "companies": [{"tenant": "default",
                "dryRun": true, "seen": 3, "reEnabled": [], "created": [], "updated": [], "failed": [],
                "leftAlone": [
                    {"subscriptionId": 1, "event": "customer.update", "status": "ACTIVE", "reason": "in_place"},
                    {"subscriptionId": 2, "event": "product.update", "status": "ACTIVE", "reason": "in_place"},
                    {"subscriptionId": 3, "event": "order.create", "status": "ACTIVE", "reason": "foreign"}]}]}),
        )
    });
    let local = local_stack_invoking("cli-status", &keeper.endpoint).await;
    let (status, code) = local.json(&["status"]);
    assert_eq!(code, Some(0), "a new deployment needs nobody: {status}");
    assert_eq!(
        status["agesUnknown"], "the local stack keeps no SQS metrics",
        "said, not guessed"
    );
    assert_eq!(status["queues"][0]["oldestMessageAgeSeconds"], Value::Null);
    assert_eq!(
        keeper.requests(),
        [(
            "subscription-keeper".to_owned(),
            serde_json::json!({"trigger": "manual", "dryRun": true})
        )],
        "the subscriptions come from the keeper's dry run"
    );
    let subscriptions = &status["companies"][0]["subscriptions"];
    assert_eq!(subscriptions["foreign"], 1);
    assert_eq!(
        subscriptions["ours"],
        serde_json::json!([
            {"event": "customer.update", "status": "ACTIVE", "nextRun": null, "needsAPerson": false},
            {"event": "product.update", "status": "ACTIVE", "nextRun": null, "needsAPerson": false}])
    );
    assert_eq!(status["deployment"], "local");
    assert_eq!(status["attention"], Value::Array(Vec::new()));
    let names: Vec<&str> = status["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "webhook queue",
            "sync objects",
            "webhook DLQ",
            "quarantine",
            "sync queue",
            "sync DLQ"
        ]
    );

    // Two runs of one company: the later one is each type's last; a failed type says why.
    let run = |id: &str, state: &str, types: &[&str]| {
        vec![
            ("pk", s("run#default")),
            ("sk", s(id)),
            ("mode", s("reconcile")),
            ("state", s(state)),
            ("startedAt", s("2026-12-01T02:00:00Z")),
            (
                "types",
                AttributeValue::L(types.iter().map(|t| s(t)).collect()),
            ),
        ]
    };
    let mut earlier = run(
        "20261130T020000.000000000Z-reconcile",
        "done",
        &["customer", "product"],
    );
    earlier.push(("customer:listed", n(10)));
    local.put("SyncTable", &earlier).await;
    let mut later = run(
        "20261201T020000.000000000Z-reconcile",
        "failed",
        &["customer"],
    );
    later.push(("customer:listed", n(12)));
    later.push(("customer:driftCorrected", n(2)));
    later.push((
        "failures",
        AttributeValue::L(vec![s("customer: Tripletex answered 401")]),
    ));
    local.put("SyncTable", &later).await;
    // Product was last confirmed complete days ago (its nightly runs stopped completing); customer
    // just now.
    let confirmed = |object_type: &str, seconds: i64| {
        vec![
            ("pk", s("confirmed#default")),
            ("sk", s(object_type)),
            ("confirmedAt", n(seconds)),
        ]
    };
    local
        .put("SyncTable", &confirmed("product", 1_796_090_400))
        .await;
    local
        .put(
            "SyncTable",
            &confirmed("customer", jiff::Timestamp::now().as_second()),
        )
        .await;
    local
        .put(
            "ResyncTable",
            &[
                ("pk", s("default#7")),
                ("requestedAt", s("2026-12-01T01:00:00Z")),
                ("tenant", s("default")),
                ("state", s("DONE")),
            ],
        )
        .await;
    local
        .send(
            "QuarantineQueue",
            "not an envelope",
            &[
                ("tenant", "default"),
                ("quarantineReason", "body is not JSON"),
            ],
        )
        .await;

    let (status, code) = local.json(&["status"]);
    assert_eq!(code, Some(1), "{status}");
    let company = &status["companies"][0];
    assert_eq!(company["tenant"], "default");
    let types = company["types"].as_array().unwrap();
    assert_eq!(types.len(), 2);
    let customer = types
        .iter()
        .find(|t| t["objectType"] == "customer")
        .unwrap();
    assert_eq!(customer["runId"], "20261201T020000.000000000Z-reconcile");
    assert_eq!(customer["state"], "failed");
    assert_eq!(customer["listed"], 12);
    assert_eq!(customer["driftCorrected"], 2);
    assert_eq!(customer["failure"], "Tripletex answered 401");
    assert_eq!(customer["confirmationOverdue"], false);
    let product = types.iter().find(|t| t["objectType"] == "product").unwrap();
    assert_eq!(product["runId"], "20261130T020000.000000000Z-reconcile");
    assert_eq!(product["confirmedCompleteAt"], "2026-12-01T02:00:00Z");
    assert_eq!(product["confirmationOverdue"], true);
    assert_eq!(company["resyncRequests"], serde_json::json!([["DONE", 1]]));
    assert_eq!(
        company["subscriptions"]["ours"].as_array().unwrap().len(),
        2
    );
    let quarantine = status["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "quarantine")
        .unwrap();
    assert_eq!(
        quarantine["visible"].as_u64().unwrap() + quarantine["inFlight"].as_u64().unwrap(),
        1
    );
    assert_eq!(
        status["attention"],
        serde_json::json!([
            "1 quarantined bodies: read their reasons (`quarantine`)",
            "default customer: the last sync run (20261201T020000.000000000Z-reconcile) failed: Tripletex answered 401",
            "default product: the copy was last confirmed complete at 2026-12-01T02:00:00Z, over 26 hours ago: the nightly reconciliation is not completing (its schedule, its role, throttling?)"
        ])
    );

    // The table says the same to a person.
    let table = local.cli(&["status"]);
    assert_eq!(keeper.requests().len(), 3, "asked each time");
    assert!(String::from_utf8_lossy(&table.stdout).contains("1 of other integrations"));
    let (quiet, _) = local.json(&["status", "--no-subscriptions"]);
    assert_eq!(keeper.requests().len(), 3, "--no-subscriptions asks nobody");
    assert_eq!(quiet["companies"][0]["subscriptions"], Value::Null);
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1));
    assert!(text.contains("needs a person:"), "{text}");
    assert!(
        text.contains("20261201T020000.000000000Z-reconcile"),
        "{text}"
    );
    assert!(text.contains("1 DONE"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_a_stored_object_and_exits_1_for_one_not_in_the_copy() {
    let local = local_stack("cli-show").await;
    local
        .put(
            "ObjectsTable",
            &[
                ("pk", s("default#customer#42")),
                ("version", n(7)),
                ("deleted", AttributeValue::Bool(false)),
                ("source", s("resync")),
                ("lastEvent", s("customer.update")),
                ("receivedAt", s("2026-12-01T10:00:00Z")),
                ("updatedAt", s("2026-12-01T10:00:01Z")),
                ("value", s(r#"{"id":42,"version":7,"name":"Acme AS"}"#)),
            ],
        )
        .await;
    let (shown, code) = local.json(&["show", "default", "customer", "42"]);
    assert_eq!(code, Some(0));
    assert_eq!(shown["key"], "default#customer#42");
    assert_eq!(shown["checkedTripletex"], false);
    let object = &shown["stored"];
    assert_eq!(object["version"], 7);
    assert_eq!(object["deleted"], false);
    assert_eq!(object["source"], "resync");
    assert_eq!(object["value"]["name"], "Acme AS");

    let (missing, code) = local.json(&["show", "default", "customer", "43"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        missing,
        serde_json::json!({"key": "default#customer#43", "stored": null, "inTripletex": null,
                           "checkedTripletex": false})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn show_tripletex_puts_the_version_tripletex_has_beside_the_stored_one() {
    let (sim, ids) = simulator_with_two_customers();
    let truth = sim.control("GET", "/_sim/objects", &Value::Null).unwrap();
    let version_of = |id: i64| {
        truth["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap()["version"]
            .as_i64()
            .unwrap()
    };
    let credentials = credentials_of_the_default_company("show");
    let local = local_stack_on_tripletex("cli-show-tripletex", &sim, &credentials).await;
    let stored = |id: i64, version: i64| {
        vec![
            ("pk", s(&format!("default#customer#{id}"))),
            ("version", n(version)),
            ("deleted", AttributeValue::Bool(false)),
            // Every write of the worker stamps it, and the item's one reading asks for it.
            ("updatedAt", s("2026-12-01T10:00:01Z")),
            ("value", s(&format!(r#"{{"id":{id},"version":{version}}}"#))),
        ]
    };
    // One at Tripletex's version, one behind it.
    local
        .put("ObjectsTable", &stored(ids[0], version_of(ids[0])))
        .await;
    local
        .put("ObjectsTable", &stored(ids[1], version_of(ids[1]) - 1))
        .await;

    let id = ids[0].to_string();
    let (same, code) = local.json(&["show", "default", "customer", &id, "--tripletex"]);
    assert_eq!(code, Some(0), "{same}");
    assert_eq!(same["inTripletex"]["version"], version_of(ids[0]));
    assert_eq!(same["inTripletex"]["value"]["id"], ids[0]);

    let id = ids[1].to_string();
    let behind = local.cli(&["show", "default", "customer", &id, "--tripletex"]);
    let text = String::from_utf8_lossy(&behind.stdout);
    assert_eq!(behind.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "Tripletex has version {}: the copy differs: the next reconciliation corrects it",
            version_of(ids[1])
        )),
        "{text}"
    );

    let (gone, code) = local.json(&["show", "default", "customer", "999", "--tripletex"]);
    assert_eq!(code, Some(1), "not in the copy");
    assert_eq!(
        (
            gone["inTripletex"].clone(),
            gone["checkedTripletex"].clone()
        ),
        (Value::Null, Value::Bool(true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dlq_lists_dead_letters_with_their_attributes_and_redrive_sends_them_back_once() {
    let local = local_stack("cli-dlq").await;
    let (empty, code) = local.json(&["dlq"]);
    assert_eq!((empty, code), (serde_json::json!([]), Some(0)));
    for id in [1, 2, 3] {
        local
            .send(
                "WebhookDeadLetterQueue",
                &format!(
                    r#"{{"subscriptionId":9,"event":"product.update","id":{id},"value":null}}"#
                ),
                &[
                    ("tenant", "default"),
                    ("event", "product.update"),
                    ("objectId", &id.to_string()),
                ],
            )
            .await;
    }
    let (listed, code) = local.json(&["dlq"]);
    assert_eq!(code, Some(1), "dead letters need a person");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "each message once");
    let mut ids: Vec<&str> = listed
        .iter()
        .map(|m| m["attributes"]["objectId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["1", "2", "3"]);
    assert!(
        listed
            .iter()
            .all(|m| m["attributes"]["tenant"] == "default")
    );

    // Listing gives the messages back when it is done: a redrive right after takes them all.
    let (redriven, code) = local.json(&["dlq", "redrive"]);
    assert_eq!(
        (redriven, code),
        (serde_json::json!({"redriven": 3}), Some(0))
    );
    let received = local
        .sqs
        .receive_message()
        .queue_url(local.url("WebhookQueue"))
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages().len(), 3);
    assert!(
        received.messages().iter().all(|m| {
            m.message_attributes().unwrap()["tenant"].string_value() == Some("default")
        })
    );
    let (after, _) = local.json(&["dlq"]);
    assert_eq!(after, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_lists_each_body_with_its_reason_and_a_missing_summary_is_a_clear_error() {
    let local = local_stack("cli-quarantine").await;
    local
        .send(
            "QuarantineQueue",
            "{\"not\": \"an envelope\"}",
            &[
                ("tenant", "hmac-demo"),
                ("quarantineReason", "body is not an envelope"),
            ],
        )
        .await;
    let table = local.cli(&["quarantine"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1));
    assert!(text.contains("quarantine: 1 messages"), "{text}");
    assert!(
        text.contains("quarantineReason=body is not an envelope"),
        "{text}"
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_tripletex-webhooks"))
        .args(["--local=/nonexistent/stack.json", "status"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "tripletex-webhooks: could not find the deployment: could not read /nonexistent/stack.json: No such file or directory (os error 2)\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn companies_discover_lists_the_clients_a_key_reaches_and_which_are_added() {
    let sim = test_support::TripletexSimulator::start();
    sim.control(
        "POST",
        "/_sim/companies",
        &serde_json::json!({"companyId": 100, "consumerToken": "consumer",
                            "employeeToken": "employee", "clientCompanyIds": [202, 201]}),
    )
    .unwrap();
    let credentials = std::env::temp_dir().join(format!(
        "cli-discover-credentials-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &credentials,
        r#"{"companies": {"default": {"consumerToken": "consumer", "employeeToken": "employee"},
                          "acme": {"consumerToken": "consumer", "employeeToken": "employee",
                                   "companyId": 202}}}"#,
    )
    .unwrap();
    let local = local_stack_on_tripletex("cli-discover", &sim, &credentials).await;
    // Asked with an entry that acts for a client: the key's own company is asked all the same.
    let (found, code) = local.json(&["companies", "discover", "--using", "acme"]);
    assert_eq!(code, Some(0), "{found}");
    assert_eq!(
        found,
        serde_json::json!([
            {"companyId": 201, "name": "Client company 201", "organizationNumber": "900000201",
             "tenant": null},
            {"companyId": 202, "name": "Client company 202", "organizationNumber": "900000202",
             "tenant": "acme"}
        ])
    );
    let table = local.cli(&["companies", "discover", "--using", "default"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("2 client companies, 1 of them added"),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );
    let unknown = local.cli(&["companies", "discover", "--using", "nosuch"]);
    assert_eq!(unknown.status.code(), Some(2));
}

/// Lambda's Invoke API as `cargo lambda watch` serves it, answering each function with what the
/// test scripts and keeping every request's path and payload.
/// The local stack with its Tripletex credentials secret from `credentials` and the simulator as
/// Tripletex.
async fn local_stack_on_tripletex(
    name: &str,
    sim: &test_support::TripletexSimulator,
    credentials: &std::path::Path,
) -> Local {
    local_stack_with(
        name,
        "http://127.0.0.1:9",
        &[
            "--secret".into(),
            format!("TripletexCredentialsSecret={}", credentials.display()),
            "--parameter".into(),
            format!("TripletexApiBaseUrl={}", sim.api_base_url()),
        ],
    )
    .await
}

/// The simulator with company 100 and two customers in it (their ids).
fn simulator_with_two_customers() -> (test_support::TripletexSimulator, Vec<i64>) {
    let sim = test_support::TripletexSimulator::start();
    sim.add_company(100, "consumer", "employee").unwrap();
    let created = sim
        .control(
            "POST",
            "/_sim/objects",
            &serde_json::json!({"companyId": 100, "type": "customer", "count": 2}),
        )
        .unwrap();
    let ids = serde_json::from_value(created["ids"].clone()).unwrap();
    (sim, ids)
}

/// A Tripletex credentials secret's file naming the simulator's company 100 as `default`.
fn credentials_of_the_default_company(test: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "cli-{test}-credentials-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &path,
        r#"{"companies": {"default": {"consumerToken": "consumer", "employeeToken": "employee"}}}"#,
    )
    .unwrap();
    path
}

struct StandInLambda {
    endpoint: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
}

impl StandInLambda {
    /// `answer(function) -> (function error?, payload)`.
    fn start(answer: impl Fn(&str) -> (Option<&'static str>, Value) + Send + 'static) -> Self {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let request = support::read_request(&stream);
                let (path, body) = (request.target, request.body);
                let function = path
                    .trim_start_matches("/2015-03-31/functions/")
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                kept.lock().unwrap().push((
                    function.clone(),
                    serde_json::from_slice(&body).unwrap_or(Value::Null),
                ));
                let (error, payload) = answer(&function);
                let payload = payload.to_string();
                let error = error
                    .map(|e| format!("X-Amz-Function-Error: {e}\r\n"))
                    .unwrap_or_default();
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{error}Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                    payload.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            }
        });
        Self { endpoint, requests }
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keeper_run_invokes_the_keeper_with_what_was_asked_and_prints_its_report() {
    let lambda = StandInLambda::start(|function| {
        assert_eq!(function, "subscription-keeper");
        (
            None,
            serde_json::json!({"dryRun": true,
                "totals": {"companies": 1, "companiesFailed": 0, "failed": 1},
                "companies": [{"tenant": "default", "dryRun": true, "seen": 13,
                    "reEnabled": [{"subscriptionId": 3, "event": "customer.update", "reason": "too_many_errors"}],
                    "created": [], "updated": [], "leftAlone": [],
                    "failed": [{"subscriptionId": 4, "event": "order.create", "action": "update",
                                "kind": "conflict", "error": "409 twice"}]}]}),
        )
    });
    let local = local_stack_invoking("cli-keeper", &lambda.endpoint).await;
    let output = local.cli(&["keeper", "run", "--dry-run", "--company", "default"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed step needs a person: {text}"
    );
    assert!(
        text.contains("keeper run (dry run: nothing was changed)"),
        "{text}"
    );
    assert!(
        text.contains("failed: default order.create (update): 409 twice"),
        "{text}"
    );
    assert_eq!(
        lambda.requests(),
        [(
            "subscription-keeper".to_owned(),
            serde_json::json!({"trigger": "manual", "dryRun": true, "tenants": ["default"]})
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resync_starts_a_run_follows_it_to_its_end_and_exits_1_when_it_failed() {
    let lambda = StandInLambda::start(|_| {
        (
            None,
            serde_json::json!({"runs": [{"tenant": "default", "runId": "20261201T120000.000000000Z-reconcile", "mode": "reconcile"}]}),
        )
    });
    let local = local_stack_invoking("cli-resync", &lambda.endpoint).await;
    let record = |state: &str| {
        vec![
            ("pk", s("run#default")),
            ("sk", s("20261201T120000.000000000Z-reconcile")),
            ("mode", s("reconcile")),
            ("state", s(state)),
            ("steps", n(3)),
            (
                "types",
                AttributeValue::L(vec![s("customer"), s("product")]),
            ),
            ("customer:listed", n(2500)),
            ("customer:fetched", n(12)),
        ]
    };
    local.put("SyncTable", &record("running")).await;
    // The run ends while the command follows it.
    let table = local.table("SyncTable");
    let dynamodb = local.dynamodb.clone();
    let finisher = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        dynamodb
            .update_item()
            .table_name(table)
            .key("pk", s("run#default"))
            .key("sk", s("20261201T120000.000000000Z-reconcile"))
            .update_expression("SET #state = :failed, failures = :why")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(
                ":why",
                AttributeValue::L(vec![s("product: Tripletex answered 401")]),
            )
            .send()
            .await
            .unwrap();
    });
    let started = std::time::Instant::now();
    let (runs, code) = local.json(&[
        "resync",
        "--company",
        "default",
        "--type",
        "customer",
        "--type",
        "product",
    ]);
    finisher.await.unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "followed until the end"
    );
    assert_eq!(code, Some(1), "{runs}");
    assert_eq!(runs[0]["state"], "failed");
    let types = runs[0]["types"].as_array().unwrap();
    assert_eq!(types[0]["objectType"], "customer");
    assert_eq!(
        (types[0]["state"].as_str(), types[0]["listed"].as_u64()),
        (Some("done"), Some(2500))
    );
    assert_eq!(types[1]["failure"], "Tripletex answered 401");
    assert_eq!(
        lambda.requests()[0],
        (
            "object-sync".to_owned(),
            serde_json::json!({"mode": "reconcile", "companies": ["default"], "types": ["customer", "product"]})
        )
    );

    // --no-wait returns the run as it stands.
    local.put("SyncTable", &record("running")).await;
    let (runs, code) = local.json(&[
        "resync",
        "--company",
        "default",
        "--mode",
        "backfill",
        "--no-wait",
    ]);
    assert_eq!(
        (runs[0]["state"].as_str(), code),
        (Some("running"), Some(0))
    );
    assert_eq!(
        lambda.requests()[1].1,
        serde_json::json!({"mode": "backfill", "companies": ["default"]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_error_is_said_with_its_message_and_exits_2() {
    let lambda = StandInLambda::start(|_| {
        (
            Some("Unhandled"),
            serde_json::json!({"errorType": "UnknownTenant", "errorMessage": "no Tripletex company is configured for tenant \"nobody\""}),
        )
    });
    let local = local_stack_invoking("cli-function-error", &lambda.endpoint).await;
    let output = local.cli(&["resync", "--company", "nobody"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "tripletex-webhooks: object-sync failed (Unhandled): no Tripletex company is configured for tenant \"nobody\"\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keeper_that_cannot_be_asked_is_said_and_needs_a_person() {
    let local = local_stack("cli-no-keeper").await; // nothing answers the Invoke API
    let (status, code) = local.json(&["status"]);
    assert_eq!(code, Some(1));
    let first = status["attention"][0].as_str().unwrap();
    assert!(
        first.starts_with("the keeper could not say what the subscriptions are: invoking subscription-keeper failed"),
        "{first}"
    );
    let (quiet, code) = local.json(&["status", "--no-subscriptions"]);
    assert_eq!(
        (quiet["attention"].clone(), code),
        (serde_json::json!([]), Some(0))
    );
}

/// A stand-in for the receiver and the worker, built from their own parts: the receiver's intake
/// rules with the local auth config decide each request (401 when they refuse it), and the queued
/// message waits in `queued` for the test to apply it as the worker does (its record reading and
/// the DynamoDB store) — or to leave it, as a worker that is down would.
struct StandInReceiver {
    url: String,
    queued: std::sync::mpsc::Receiver<domain::message::QueueMessage>,
}

impl StandInReceiver {
    fn start(auth: domain::auth::AuthConfig) -> Self {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (queue, queued) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let request = support::read_request(&stream);
                let method: http::Method = request.method.parse().unwrap();
                let target =
                    url::Url::parse(&format!("http://receiver{}", request.target)).unwrap();
                let mut headers = http::HeaderMap::new();
                for (name, value) in &request.headers {
                    headers.append(
                        http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        value.parse().unwrap(),
                    );
                }
                let body = request.body;
                let query: Vec<(String, String)> = target.query_pairs().into_owned().collect();
                let incoming = domain::intake::IncomingRequest {
                    method: &method,
                    path: target.path(),
                    headers: &headers,
                    query: &query,
                    body: &body,
                    request_id: "stand-in",
                    received_at: jiff::Timestamp::now(),
                };
                let verdict = domain::intake::assess(&auth, &Default::default(), &incoming);
                let (status, answer) = match verdict {
                    domain::intake::Verdict::Queue(message) => {
                        queue
                            .send(domain::message::QueueMessage::from(&message))
                            .unwrap();
                        ("200 OK", r#"{"status":"queued"}"#)
                    }
                    _ => ("401 Unauthorized", r#"{"error":"unauthorized"}"#),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            }
        });
        Self { url, queued }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn send_posts_what_tripletex_has_as_tripletex_would_and_waits_for_the_worker() {
    let (sim, ids) = simulator_with_two_customers();
    let credentials = credentials_of_the_default_company("send");
    let auth_file = paths::workspace_root().join("infra/local/receiver-auth.json");
    let auth =
        domain::auth::AuthConfig::from_json(&std::fs::read_to_string(&auth_file).unwrap()).unwrap();
    let receiver = StandInReceiver::start(auth);
    let local = local_stack_with(
        "cli-send",
        "http://127.0.0.1:9",
        &[
            "--secret".into(),
            format!("TripletexCredentialsSecret={}", credentials.display()),
            "--secret".into(),
            format!("ReceiverAuthSecret={}", auth_file.display()),
            "--parameter".into(),
            format!("TripletexApiBaseUrl={}", sim.api_base_url()),
            "--function-url".into(),
            format!("WebhookReceiver={}", receiver.url),
        ],
    )
    .await;
    let store = aws_adapters::dynamodb::DynamoObjectStore::new(
        local.dynamodb.clone(),
        local.table("ObjectsTable"),
    );
    // The worker's part: read the queued message as the worker does and store it.
    let work_one = || async {
        let message = receiver
            .queued
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the receiver queued nothing");
        test_support::apply_as_worker(&store, &message).await
    };
    let send_in_background = |args: Vec<String>| {
        let summary = local.summary.clone();
        std::thread::spawn(move || {
            let output = Command::new(env!("CARGO_BIN_EXE_tripletex-webhooks"))
                .env("AWS_CONFIG_FILE", "/nonexistent")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
                .arg(format!("--local={}", summary.display()))
                .args(["--json", "send"])
                .args(args)
                .output()
                .unwrap();
            let value: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
            (value, output.status.code(), output.stderr)
        })
    };
    let id = ids[0].to_string();

    let sending = send_in_background(vec!["customer.update".into(), id.clone()]);
    assert_eq!(work_one().await, domain::dedup::Outcome::Accepted);
    let (sent, code, stderr) = sending.join().unwrap();
    assert_eq!(code, Some(0), "{sent} {}", String::from_utf8_lossy(&stderr));
    assert_eq!(sent["progress"], "stored");
    assert_eq!(sent["receiverStatus"], 200);
    assert_eq!(sent["version"], sent["stored"]["version"]);
    assert_eq!(sent["stored"]["value"]["id"], ids[0], "Tripletex's object");
    let first_probe = sent["stored"]["lastProbe"].as_str().unwrap().to_owned();
    assert!(first_probe.starts_with("tripletex-webhooks-send-"));

    // Again: the copy holds it, the worker's dedup changes nothing, and the probe still shows
    // that the worker handled this delivery.
    let sending = send_in_background(vec!["customer.update".into(), id.clone()]);
    assert_eq!(work_one().await, domain::dedup::Outcome::Duplicate);
    let (sent, code, _) = sending.join().unwrap();
    assert_eq!(
        (sent["progress"].clone(), code),
        ("alreadyCurrent".into(), Some(0))
    );
    assert_ne!(sent["stored"]["lastProbe"], first_probe.as_str());

    // A worker that never handles it: exit 1 once the time is up.
    let (sent, code) = local.json(&[
        "send",
        "customer.update",
        &ids[1].to_string(),
        "--timeout-seconds",
        "1",
    ]);
    assert_eq!(
        (sent["progress"].clone(), code),
        ("waiting".into(), Some(1))
    );
    assert_eq!(sent["webhookQueueDepth"], 0, "no backlog to be behind");
    assert!(
        receiver.queued.try_recv().is_ok(),
        "it was queued all the same"
    );

    // Refused before anything is posted: a delete of a live object, of an id the copy never
    // held, an object Tripletex does not have, a company the receiver has no credentials for.
    for (args, error) in [
        (
            vec!["customer.delete", id.as_str()],
            format!(
                "Tripletex still has customer {id}: a delete would leave a tombstone in the copy, and tombstones are final"
            ),
        ),
        (
            vec!["customer.delete", "999"],
            "the copy has never held customer 999: a tombstone for an id Tripletex may give a new object later would block that object".to_owned(),
        ),
        (
            vec!["customer.update", "999"],
            "Tripletex has no customer 999: only its delete event can be sent".to_owned(),
        ),
        (
            vec!["customer.update", "1", "--company", "nobody"],
            // The local receiver derives a credential for any tenant: Tripletex's side is missing.
            "no Tripletex credentials for company \"nobody\"".to_owned(),
        ),
    ] {
        let mut full = vec!["send"];
        full.extend(args);
        let output = local.cli(&full);
        assert_eq!(output.status.code(), Some(2), "{full:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("tripletex-webhooks: {error}\n")
        );
    }
    assert!(
        receiver.queued.try_recv().is_err(),
        "nothing more was posted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_keepers_last_run_and_one_with_failed_steps_needs_a_person() {
    use domain::ports::{PendingResyncs, ResyncLedger};

    let local = local_stack("cli-keeper-last-run").await;
    let ledger = aws_adapters::resync_ledger::DynamoResyncLedger::new(
        local.dynamodb.clone(),
        local.table("ResyncTable"),
    );
    let run = |tenant: &str, failures: Vec<String>| domain::keeper::LastRun {
        tenant: tenant.into(),
        finished_at: "2026-12-01T20:00:00Z".parse().unwrap(),
        counts: domain::keeper::RunCounts {
            seen: 13,
            re_enabled: 1,
            created: 0,
            updated: 2,
            left_alone: 10,
            failed: failures.len(),
        },
        failures,
        error: None,
    };
    ledger
        .record_run(&run("default", Vec::new()))
        .await
        .unwrap();
    ledger
        .record_run(&run("hmac-demo", vec!["order.create update: 409".into()]))
        .await
        .unwrap();
    // The next run replaces the last one.
    ledger
        .record_run(&run("default", Vec::new()))
        .await
        .unwrap();
    assert!(
        ledger.pending().await.unwrap().is_empty() && ledger.taken().await.unwrap().is_empty(),
        "the sync's scans for requests pass a last run by"
    );

    let (status, code) = local.json(&["status", "--no-subscriptions"]);
    assert_eq!(code, Some(1), "{status}");
    let companies = status["companies"].as_array().unwrap();
    assert_eq!(companies.len(), 2, "{status}");
    assert_eq!(
        companies[0]["keeperLastRun"],
        serde_json::json!({"finishedAt": "2026-12-01T20:00:00Z", "seen": 13, "reEnabled": 1,
            "created": 0, "updated": 2, "leftAlone": 10, "failed": 0, "failures": [], "error": null})
    );
    assert_eq!(companies[0]["resyncRequests"], serde_json::json!([]));
    assert_eq!(
        status["attention"],
        serde_json::json!([
            "hmac-demo: the keeper's last run (2026-12-01T20:00:00Z) had 1 failed step: order.create update: 409"
        ])
    );
    let text =
        String::from_utf8_lossy(&local.cli(&["status", "--no-subscriptions"]).stdout).into_owned();
    assert!(text.contains("keeper's last run"), "{text}");
    assert!(text.contains("2026-12-01T20:00:00Z"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_replay_sends_back_what_can_be_applied_now_and_keeps_what_cannot() {
    let local = local_stack("cli-replay").await;
    let fixed =
        r#"{"subscriptionId":9,"event":"customer.update","id":7,"value":{"id":7,"version":2}}"#;
    let broken = r#"{"event":"customer.update","id":"seven"}"#;
    for body in [fixed, broken] {
        local
            .send(
                "QuarantineQueue",
                body,
                &[
                    ("tenant", "acme"),
                    ("receivedAt", "2026-12-01T10:00:00Z"),
                    ("quarantineReason", "an older receiver's reason"),
                ],
            )
            .await;
    }
    let (listed, code) = local.json(&["quarantine"]);
    assert_eq!(code, Some(1));
    let id_of = |body: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["body"] == body)
            .unwrap()["messageId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (fixed_id, broken_id) = (id_of(fixed), id_of(broken));

    // Right after the listing: it gave its messages back.
    let (replayed, code) = local.json(&["quarantine", "replay", &fixed_id]);
    assert_eq!(code, Some(0), "{replayed}");
    assert_eq!(
        replayed,
        serde_json::json!({"messageId": fixed_id, "replayed": true, "refusedBecause": null,
            "tenant": "acme", "event": "customer.update", "objectId": 7})
    );
    let received = local
        .sqs
        .receive_message()
        .queue_url(local.url("WebhookQueue"))
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let [message] = received.messages() else {
        panic!("one message on the webhook queue: {received:?}");
    };
    assert_eq!(message.body(), Some(fixed));
    let mut attributes: Vec<(String, String)> = message
        .message_attributes()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.string_value().unwrap().to_owned()))
        .collect();
    attributes.sort();
    assert_eq!(
        attributes,
        [
            ("event", "customer.update"),
            ("objectId", "7"),
            ("receivedAt", "2026-12-01T10:00:00Z"),
            ("subscriptionId", "9"),
            ("tenant", "acme"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
        "the reason is gone; the body's names are set as the receiver sets them"
    );

    let refused = local.cli(&["quarantine", "replay", &broken_id]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains(&format!(
            "{broken_id}: stays in the quarantine: id must be a positive integer"
        )),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let (left, _) = local.json(&["quarantine"]);
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(left, [broken_id.as_str()], "kept, and visible at once");

    let missing = local.cli(&["quarantine", "replay", &fixed_id]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        format!(
            "tripletex-webhooks: no message {fixed_id} in the quarantine (`quarantine` lists them)\n"
        )
    );

    let (anyway, code) = local.json(&["quarantine", "replay", &broken_id, "--anyway"]);
    assert_eq!(code, Some(0), "{anyway}");
    assert_eq!(anyway["replayed"], true);
    assert_eq!(anyway["refusedBecause"], "id must be a positive integer");
    let (left, code) = local.json(&["quarantine"]);
    assert_eq!((left, code), (serde_json::json!([]), Some(0)));
}

/// An object item of the copy, as the worker writes it.
fn object_item(tenant: &str, object_type: &str, id: i64) -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("pk", s(&format!("{tenant}#{object_type}#{id}"))),
        ("tenant", s(tenant)),
        ("objectType", s(object_type)),
        ("objectId", n(id)),
        ("typeKey", s(&format!("{tenant}#{object_type}"))),
        ("version", n(1)),
        ("deleted", AttributeValue::Bool(false)),
        ("updatedAt", s("2026-12-01T10:00:01Z")),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn companies_add_list_and_remove_work_the_registry_and_purge_only_that_company() {
    let sim = test_support::TripletexSimulator::start();
    sim.control(
        "POST",
        "/_sim/companies",
        &serde_json::json!({"companyId": 100, "consumerToken": "consumer",
                            "employeeToken": "accountant", "clientCompanyIds": [201, 202]}),
    )
    .unwrap();
    let credentials = std::env::temp_dir().join(format!(
        "cli-companies-credentials-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &credentials,
        r#"{"credentials": {"firm": {"consumerToken": "consumer", "employeeToken": "accountant"}}}"#,
    )
    .unwrap();
    let keeper_calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let calls = std::sync::Arc::clone(&keeper_calls);
    let lambda = StandInLambda::start(move |function| match function {
        "subscription-keeper" if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => (
            None,
            serde_json::json!({"companies": [{"tenant": "201", "created": [
                {"subscriptionId": 1, "event": "customer.create", "reason": "missing"},
                {"subscriptionId": 2, "event": "customer.update", "reason": "missing"}],
                "failed": [], "state": "active"}]}),
        ),
        "subscription-keeper" => (
            None,
            serde_json::json!({"companies": [{"tenant": "201", "unsubscribed": [1, 2],
                "failed": [], "state": "removed"}]}),
        ),
        _ => (
            None,
            serde_json::json!({"runs": [{"tenant": "201", "runId": "20261204T120000.000000000Z-backfill", "mode": "backfill"}]}),
        ),
    });
    let local = local_stack_with(
        "cli-companies",
        &lambda.endpoint,
        &[
            "--secret".into(),
            format!("TripletexCredentialsSecret={}", credentials.display()),
            "--parameter".into(),
            format!("TripletexApiBaseUrl={}", sim.api_base_url()),
        ],
    )
    .await;
    local
        .put(
            "SyncTable",
            &[
                ("pk", s("run#201")),
                ("sk", s("20261204T120000.000000000Z-backfill")),
                ("mode", s("backfill")),
                ("state", s("done")),
                ("startedAt", s("2026-12-04T12:00:00Z")),
                ("steps", n(2)),
                ("types", AttributeValue::L(vec![s("customer")])),
                ("customer:listed", n(3)),
                ("customer:listingSize", n(3)),
                ("customer:fetched", n(3)),
            ],
        )
        .await;
    for id in [1, 2, 3] {
        local
            .put("ObjectsTable", &object_item("201", "customer", id))
            .await;
    }
    local
        .put("ObjectsTable", &object_item("202", "customer", 1))
        .await;

    let (found, code) = local.json(&["companies", "discover", "--credential", "firm"]);
    assert_eq!(code, Some(0), "{found}");
    assert_eq!(found.as_array().map(Vec::len), Some(2));
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["tenant"].is_null())
    );

    let (added, code) = local.json(&["companies", "add", "201", "--credential", "firm"]);
    assert_eq!(code, Some(0), "{added}");
    assert_eq!(added[0]["tenant"], "201");
    assert_eq!(added[0]["state"], "active");
    assert_eq!(added[0]["subscriptionsCreated"], 2);
    assert_eq!(
        added[0]["verdict"],
        "active; backfill done: 3 objects listed in 1 types, every one of them in the copy: complete"
    );
    let requests = lambda.requests();
    assert_eq!(
        requests[0],
        (
            "subscription-keeper".to_owned(),
            serde_json::json!({"trigger": "manual", "tenants": ["201"]})
        )
    );
    assert_eq!(
        requests[1],
        (
            "object-sync".to_owned(),
            serde_json::json!({"mode": "pending"})
        )
    );

    let again = local.cli(&["companies", "add", "201", "--credential", "firm"]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "tripletex-webhooks: 201: a company that is onboarding cannot be added\n"
    );
    let unknown = local.cli(&["companies", "add", "203", "--credential", "nosuch"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("has no credential \"nosuch\""));
    let unreachable = local.cli(&["companies", "add", "999999", "--credential", "firm"]);
    assert_eq!(unreachable.status.code(), Some(2));
    let said = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        said.contains("credential \"firm\" does not reach company 999999")
            && said.contains("nothing was added"),
        "{said}"
    );

    let (listed, code) = local.json(&["companies", "list"]);
    assert_eq!(code, Some(0), "{listed}");
    assert_eq!(listed[0]["tenant"], "201");
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "a company the key cannot reach is never registered"
    );
    assert_eq!(
        listed[0]["state"], "onboarding",
        "the stand-in keeper moved nothing"
    );
    assert_eq!(listed[0]["credential"], "firm");
    assert_eq!(listed[0]["objects"], serde_json::json!({"customer": 3}));
    let (discovered, _) = local.json(&["companies", "discover", "--credential", "firm"]);
    assert_eq!(discovered[0]["tenant"], "201", "an added company is marked");

    // What the sync keeps of 201 (and of 2010 and 202, which stay): a purge leaves none of 201's.
    let sync_records = [
        ("page#201", "customer/all/-/0+1000"),
        ("confirmed#201", "customer"),
        (
            "listed#201#20261204T120000.000000000Z-backfill#customer",
            "8000000000000000",
        ),
        ("page#2010", "customer/all/-/0+1000"),
        ("run#202", "20261204T120000.000000000Z-backfill"),
    ];
    for (pk, sk) in sync_records {
        local
            .put(
                "SyncTable",
                &[("pk", s(pk)), ("sk", s(sk)), ("digest", s("d"))],
            )
            .await;
    }
    for tenant in ["201", "202"] {
        local
            .put(
                "ResyncTable",
                &[
                    ("pk", s(&format!("{tenant}#7"))),
                    ("requestedAt", s("2026-12-04T12:00:00Z")),
                    ("tenant", s(tenant)),
                    ("state", s("pending")),
                ],
            )
            .await;
    }

    let (removed, code) = local.json(&["companies", "remove", "201", "--purge"]);
    assert_eq!(code, Some(0), "{removed}");
    assert_eq!(removed["subscriptionsDeleted"], 2);
    assert_eq!(removed["purged"], 3);
    assert_eq!(
        (&removed["syncRecordsPurged"], &removed["requestsPurged"]),
        (&serde_json::json!(4), &serde_json::json!(1)),
        "its run record, page memory, confirmation and listed ids; its request"
    );
    let sync_left = local
        .dynamodb
        .scan()
        .table_name(local.table("SyncTable"))
        .send()
        .await
        .unwrap();
    let mut partitions: Vec<String> = sync_left
        .items()
        .iter()
        .map(|item| item["pk"].as_s().unwrap().clone())
        .collect();
    partitions.sort();
    assert_eq!(
        partitions,
        ["page#2010", "run#202"],
        "another company's records stay"
    );
    assert_eq!(removed["state"], "removed");
    assert_eq!(
        lambda.requests()[2],
        (
            "subscription-keeper".to_owned(),
            serde_json::json!({"trigger": "manual", "tenants": ["201"]})
        )
    );
    let registered = local
        .dynamodb
        .get_item()
        .table_name(local.table("ResyncTable"))
        .key("pk", s("company"))
        .key("requestedAt", s("201"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        registered.item.unwrap()["companyState"],
        s("offboarding"),
        "refused from the moment the command began"
    );
    let left = local
        .dynamodb
        .scan()
        .table_name(local.table("ObjectsTable"))
        .send()
        .await
        .unwrap();
    let tenants: Vec<_> = left
        .items()
        .iter()
        .map(|item| item["tenant"].clone())
        .collect();
    assert_eq!(tenants, [s("202")], "another company's copy is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn forget_erases_the_value_from_table_bucket_quarantine_and_dead_letters_and_keeps_it_erased()
{
    use aws_adapters::blobs::S3BlobStore;
    use aws_adapters::dynamodb::DynamoObjectStore;
    use domain::claim::{self, LargeValues};
    use domain::dedup::{ObjectChange, ObjectKey, Outcome, Payload, Source, Write};
    use domain::ids::TenantId;
    use domain::message::QueueMessage;
    use domain::ports::{BlobStore, ObjectStore};

    let local = local_stack("cli-forget").await;
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let bucket = local.resources["PayloadBucket"]["name"].as_str().unwrap();
    let payloads = S3BlobStore::new(&sdk, bucket);
    let store = LargeValues::new(
        DynamoObjectStore::new(local.dynamodb.clone(), local.table("ObjectsTable")),
        payloads.clone(),
    );
    let key = |id| ObjectKey {
        tenant: TenantId::default_tenant(),
        object_type: "customer".into(),
        object_id: id,
    };
    let customer = |id: i64, version: i64, padding: usize| ObjectChange {
        key: key(id),
        write: Write::Versioned {
            version,
            payload: Payload::from_json(&format!(
                r#"{{"id":{id},"version":{version},"name":"Kari Nordmann","notes":"{}"}}"#,
                "n".repeat(padding)
            )),
        },
        event: "customer.update".into(),
        subscription_id: Some(1),
        received_at: jiff::Timestamp::now(),
        source: Source::Webhook,
        probe: None,
    };
    // 42 over an item's limit (its value in the bucket), 43 beside it.
    assert_eq!(
        store.apply(&customer(42, 3, 500_000)).await.unwrap(),
        Outcome::Accepted
    );
    assert_eq!(
        store.apply(&customer(43, 1, 10)).await.unwrap(),
        Outcome::Accepted
    );
    let naming = |id: i64, padding: usize| QueueMessage {
        body: format!(
            r#"{{"event":"customer.update","id":{id},"value":{{"name":"Kari Nordmann","notes":"{}"}}}}"#,
            "q".repeat(padding)
        ),
        attributes: vec![
            ("tenant".into(), "default".into()),
            ("quarantineReason".into(), "value.version is missing".into()),
        ],
    };
    // A quarantined body over SQS's limit, claim-checked as the receiver would.
    let large = naming(42, 300_000);
    let claimed = claim::checked(&payloads, &large).await.unwrap();
    let claim_key = claimed.attribute("bodyClaim").unwrap().to_owned();
    for message in [claimed.as_ref(), &naming(43, 10)] {
        let attributes: Vec<(&str, &str)> = message
            .attributes
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        local
            .send("QuarantineQueue", &message.body, &attributes)
            .await;
    }
    local
        .send(
            "WebhookDeadLetterQueue",
            r#"{"event":"customer.update","id":42,"value":{"id":42,"version":2}}"#,
            &[
                ("tenant", "default"),
                ("event", "customer.update"),
                ("objectId", "42"),
            ],
        )
        .await;

    let (listed, _) = local.json(&["quarantine"]);
    assert!(
        listed.as_array().unwrap().iter().any(|m| m["body"]
            .as_str()
            .unwrap()
            .starts_with(r#"{"event":"customer.update","id":42"#)),
        "the claim-checked body is listed whole: {listed}"
    );

    let (forgotten, code) = local.json(&["forget", "default", "customer", "42"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        forgotten,
        serde_json::json!({
            "key": "default#customer#42", "inCopy": true, "version": 3, "deleted": false,
            "valueErased": true, "lastValueErased": false, "forgottenBefore": false,
            "payloadObjectsDeleted": 1, "quarantinedDeleted": 1, "deadLettersDeleted": 1
        })
    );
    let (shown, _) = local.json(&["show", "default", "customer", "42"]);
    assert_eq!(shown["stored"]["value"], Value::Null, "{shown}");
    assert!(shown["stored"]["forgottenAt"].is_string(), "{shown}");
    assert!(
        payloads.get(&claim_key).await.unwrap().is_none(),
        "the claim-checked body is gone"
    );
    assert_eq!(
        payloads
            .delete_under(&claim::values_prefix(&key(42)))
            .await
            .unwrap(),
        0,
        "no value of it is left in the bucket"
    );
    let (left, _) = local.json(&["quarantine"]);
    let left: Vec<_> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].to_string())
        .collect();
    assert_eq!(left.len(), 1);
    assert!(
        left[0].contains(r#"\"id\":43"#),
        "the other object's message stays: {left:?}"
    );
    let (dead, _) = local.json(&["dlq"]);
    assert_eq!(dead, serde_json::json!([]));

    // A redelivered webhook of the forgotten version, and an older one, do not bring it back.
    assert_eq!(
        store.apply(&customer(42, 3, 500_000)).await.unwrap(),
        Outcome::Forgotten
    );
    assert_eq!(
        store.apply(&customer(42, 2, 10)).await.unwrap(),
        Outcome::Forgotten
    );
    let (shown, _) = local.json(&["show", "default", "customer", "42"]);
    assert_eq!(shown["stored"]["value"], Value::Null);
    // A change Tripletex made after the request is stored again.
    assert_eq!(
        store.apply(&customer(42, 4, 10)).await.unwrap(),
        Outcome::Accepted
    );
    let (shown, _) = local.json(&["show", "default", "customer", "42"]);
    assert_eq!(shown["stored"]["version"], 4);
    assert_eq!(shown["stored"]["value"]["name"], "Kari Nordmann");
    assert!(shown["stored"].get("forgottenAt").is_none(), "{shown}");

    let text = String::from_utf8_lossy(&local.cli(&["forget", "default", "customer", "77"]).stdout)
        .into_owned();
    assert!(
        text.contains("default#customer#77: not in the copy"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mirror_check_finds_what_the_mirror_lacks_rebuild_fills_it_once_and_status_counts_it() {
    use aws_adapters::blobs::S3BlobStore;
    use aws_adapters::dynamodb::DynamoObjectStore;
    use domain::claim::LargeValues;
    use domain::dedup::{ObjectChange, ObjectKey, Payload, Source, Write};
    use domain::ids::TenantId;
    use domain::ports::ObjectStore;

    let database = test_support::PostgresServer::shared().fresh_database("cli_mirror");
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let secret = format!("cli-mirror-database-{}", std::process::id());
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret)
        .secret_string(&database)
        .send()
        .await
        .unwrap();
    let local = local_stack_with(
        "cli-mirror",
        "http://127.0.0.1:9",
        &[
            "--parameter".into(),
            "EnablePostgresMirror=true".into(),
            "--parameter".into(),
            format!("MirrorDatabaseSecretName={secret}"),
        ],
    )
    .await;
    let bucket = local.resources["PayloadBucket"]["name"].as_str().unwrap();
    let store = LargeValues::new(
        DynamoObjectStore::new(local.dynamodb.clone(), local.table("ObjectsTable")),
        S3BlobStore::new(&sdk, bucket),
    );
    for (tenant, id, padding) in [
        ("default", 1, 10),
        ("default", 2, 400_000),
        ("other", 3, 10),
    ] {
        let change = ObjectChange {
            key: ObjectKey {
                tenant: TenantId::parse(tenant).unwrap(),
                object_type: "product".into(),
                object_id: id,
            },
            write: Write::Versioned {
                version: 2,
                payload: Payload::from_json(&format!(
                    r#"{{"id":{id},"version":2,"name":"n","description":"{}"}}"#,
                    "d".repeat(padding)
                )),
            },
            event: "product.update".into(),
            subscription_id: None,
            received_at: jiff::Timestamp::now(),
            source: Source::Resync,
            probe: None,
        };
        store.apply(&change).await.unwrap();
    }

    let (checked, code) = local.json(&["mirror", "check"]);
    assert_eq!(code, Some(1), "{checked}");
    assert_eq!(checked["differences"].as_array().unwrap().len(), 3);
    let (rebuilt, code) = local.json(&["mirror", "rebuild", "--company", "default"]);
    assert_eq!(
        (code, &rebuilt["items"], &rebuilt["rowsChanged"]),
        (Some(0), &2.into(), &2.into())
    );
    let (rebuilt, _) = local.json(&["mirror", "rebuild"]);
    assert_eq!(
        (&rebuilt["items"], &rebuilt["rowsChanged"]),
        (&3.into(), &1.into()),
        "idempotent"
    );
    let (checked, code) = local.json(&["mirror", "check"]);
    assert_eq!(
        (code, checked["differences"].as_array().unwrap().len()),
        (Some(0), 0)
    );
    let (status, code) = local.json(&["mirror", "status"]);
    assert_eq!(code, Some(0));
    let default_products = status["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "default")
        .unwrap();
    assert_eq!(
        (&default_products["rows"], &default_products["items"]),
        (&2.into(), &2.into())
    );
    let large = std::process::Command::new("psql")
        .arg(&database)
        .args([
            "-Atc",
            "SELECT length(value->>'description') FROM tripletex.object WHERE id = 2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&large.stdout).trim(),
        "400000",
        "read whole from the bucket"
    );
}
