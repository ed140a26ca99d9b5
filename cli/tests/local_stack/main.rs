#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The command itself, run as a person runs it (`--local`, the summary scripts/run writes), against
//! the template's queues and tables created in moto by the local stack tool: what it prints in JSON
//! and as tables, and how it exits: one module per command, as cargo's testsuite is, sharing the
//! stack and stand-ins below.

use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde_json::Value;
use test_support::{MotoServer, paths, sdk_config_for};

#[path = "../support/mod.rs"]
mod support;

mod companies;
mod dlq;
mod forget;
mod keeper;
mod log;
mod mirror;
mod quarantine;
mod replay;
mod resync;
mod send;
mod show;
mod status;

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
        // The command runs as the operator, held to the template's OperatorPolicy for this stack.
        .arg("--iam-file")
        .arg(moto.iam_file())
        // The local stack's companies (default, hmac-demo), as scripts/run gives them; a test's own
        // secret, later, takes its place.
        .args([
            "--secret",
            "TripletexCredentialsSecret=infra/local/tripletex-credentials.json",
        ])
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

/// The operator's refused calls so far, on the shared moto.
fn operator_denials() -> Vec<String> {
    MotoServer::shared()
        .denials()
        .lines()
        .filter(|line| line.contains("\"principal\": \"operator\""))
        .map(str::to_owned)
        .collect()
}

impl Local {
    fn url(&self, logical: &str) -> String {
        self.resources[logical]["url"].as_str().unwrap().to_owned()
    }

    fn table(&self, logical: &str) -> String {
        self.resources[logical]["name"].as_str().unwrap().to_owned()
    }

    /// The command, in an environment with no AWS settings (a new shell): the summary's endpoint,
    /// region and throwaway credentials are used, the operator's, which the local IAM holds to
    /// `OperatorPolicy`: a call it refuses fails the test, named.
    fn cli(&self, args: &[&str]) -> Output {
        let refused_before = operator_denials().len();
        let output = self.cli_unchecked(args);
        let refused = operator_denials();
        assert!(
            refused.len() == refused_before,
            "`{}` needed what OperatorPolicy does not grant:\n{}",
            args.join(" "),
            refused[refused_before..].join("\n")
        );
        output
    }

    fn cli_unchecked(&self, args: &[&str]) -> Output {
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
