//! The keeper against the Tripletex simulator (tools/simulator/), over real HTTP: what only the wire
//! shows. Session creation and renewal, retries on 429 (without a reset header) and 5xx, paging, a
//! 409 as Tripletex sends it, an accountant's client company, and the event list. The keeper's
//! orchestration itself is tested in process against `FakeTripletex` (src/handler.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::sync::Arc;
use std::time::Duration;

use aws_adapters::secrets::SecretSource;
use domain::auth::AuthConfig;
use domain::keeper::{DEFAULT_RESYNC_LOOKBACK, KeeperPolicy, ReEnablePolicy};
use domain::keeper::{KeeperRequest, RunReport};
use domain::tripletex::CredentialsSecret;
use serde_json::{Value, json};
use subscription_keeper::handler::Keeper;
use test_support::{InMemoryResyncLedger, TripletexSimulator};
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

const RECEIVER: &str = "https://receiver.example.com/";
const HEADER_NAME: &str = "X-Tripletex-Webhook-Token";
const HEADER_VALUE: &str = "hook-token-current";
const COMPANY: i64 = 100;

struct Harness {
    sim: TripletexSimulator,
    ledger: InMemoryResyncLedger,
    keeper: Keeper<HttpTripletexCompanies, InMemoryResyncLedger>,
}

fn policy() -> KeeperPolicy {
    KeeperPolicy {
        receiver_url: RECEIVER.into(),
        events: vec!["product.create".into(), "product.update".into()],
        fields: "*".into(),
        reenable: ReEnablePolicy::default(),
        resync_lookback: DEFAULT_RESYNC_LOOKBACK,
        dry_run: false,
    }
}

/// Short waits, so that the retry tests take milliseconds.
fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(5),
    }
}

fn harness_with(companies: Value, page_size: u32) -> Harness {
    let sim = TripletexSimulator::start();
    sim.add_company(COMPANY, "consumer-a", "employee-a")
        .unwrap();
    let auth = AuthConfig::from_json(
        &json!({"tenants": {
            "default": {"header": {"name": HEADER_NAME, "values": [HEADER_VALUE, "hook-token-old"]}},
            "acme": {"hmac": {"secrets": ["acme-hmac-secret"]}}
        }})
        .to_string(),
    )
    .unwrap();
    let companies = CredentialsSecret::from_json(&companies.to_string()).unwrap();
    let ledger = InMemoryResyncLedger::new();
    let keeper = Keeper::new(
        HttpTripletexCompanies::new(sim.api_base_url(), retry())
            .unwrap()
            .with_page_size(page_size),
        ledger.clone(),
        SecretSource::Fixed(Arc::new(companies)),
        SecretSource::Fixed(Arc::new(auth)),
        policy(),
    );
    Harness {
        sim,
        ledger,
        keeper,
    }
}

fn harness() -> Harness {
    harness_with(
        json!({"companies": {"default": {"consumerToken": "consumer-a", "employeeToken": "employee-a"}}}),
        tripletex_client::DEFAULT_PAGE_SIZE,
    )
}

impl Harness {
    /// A subscription made in Tripletex directly (by us earlier, another integration, or a person).
    fn existing(&self, event: &str, target_url: &str, status: &str) -> i64 {
        let created = self
            .sim
            .control(
                "POST",
                "/_sim/subscriptions",
                &json!({"_company": COMPANY, "event": event, "targetUrl": target_url,
                        "fields": "*", "authHeaderName": HEADER_NAME, "authHeaderValue": "stale"}),
            )
            .unwrap();
        let id = created["value"]["id"].as_i64().unwrap();
        if status != "ACTIVE" {
            self.sim
                .control(
                    "PUT",
                    &format!("/_sim/subscriptions/{id}/status"),
                    &json!({"status": status}),
                )
                .unwrap();
        }
        id
    }

    /// The simulator's own view, write-only fields included.
    fn stored(&self, id: i64) -> Value {
        let all = self
            .sim
            .control("GET", "/_sim/subscriptions", &Value::Null)
            .unwrap();
        all["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap()
    }

    fn requests(&self, method: &str, path: &str) -> usize {
        let all = self
            .sim
            .control("GET", "/_sim/requests", &Value::Null)
            .unwrap();
        all["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r[0] == method && r[1] == path)
            .count()
    }

    fn fault(&self, fault: Value) {
        self.sim.control("POST", "/_sim/faults", &fault).unwrap();
    }

    async fn run(&self) -> RunReport {
        self.keeper.handle(KeeperRequest::default()).await.unwrap()
    }
}

fn ids(done: &[domain::keeper::Done]) -> Vec<i64> {
    done.iter().filter_map(|d| d.subscription_id).collect()
}

#[tokio::test]
async fn re_enables_its_own_disabled_subscription_re_sending_the_auth_header_and_asks_for_a_resync()
{
    let h = harness();
    let id = h.existing("product.create", RECEIVER, "DISABLED_TOO_MANY_ERRORS");

    let report = h.run().await;

    let company = &report.companies[0];
    assert_eq!(ids(&company.re_enabled), [id]);
    assert!(company.failed.is_empty(), "{:?}", company.failed);
    let stored = h.stored(id);
    assert_eq!(stored["status"], "ACTIVE");
    assert_eq!(stored["version"], 1);
    assert_eq!(
        stored["authHeaderValue"], HEADER_VALUE,
        "the current value, re-sent"
    );
    h.ledger.assert_one_re_enable_asked(id, "product");
    // The other desired event had no subscription: created, pointing at the receiver.
    assert_eq!(company.created.len(), 1);
    assert_eq!(company.created[0].event, "product.update");
}

#[tokio::test]
async fn a_version_conflict_is_re_read_re_planned_and_retried() {
    let h = harness();
    let id = h.existing("product.create", RECEIVER, "DISABLED_TOO_MANY_ERRORS");
    // Someone edits the subscription between the keeper's read and its write.
    h.fault(json!({"kind": "concurrentEdit", "method": "PUT",
                   "path": format!("/v2/event/subscription/{id}")}));

    let report = h.run().await;

    let company = &report.companies[0];
    assert!(company.failed.is_empty(), "{:?}", company.failed);
    assert_eq!(ids(&company.re_enabled), [id]);
    assert_eq!(h.stored(id)["status"], "ACTIVE");
    assert_eq!(
        h.stored(id)["version"],
        2,
        "the edit, then the keeper's write"
    );
    let path = format!("/v2/event/subscription/{id}");
    assert_eq!(h.requests("PUT", &path), 2);
    assert_eq!(h.requests("GET", &path), 1, "re-read once");
}

#[tokio::test]
async fn waits_out_rate_limiting_and_server_errors_then_succeeds() {
    let h = harness();
    h.existing("product.create", RECEIVER, "ACTIVE");
    h.existing("product.update", RECEIVER, "ACTIVE");
    // Two 429s without the reset header (as Tripletex sends them), then a 503.
    h.fault(json!({"status": 429, "count": 2, "method": "GET", "path": "/v2/event/subscription"}));
    h.fault(json!({"status": 503, "count": 1, "method": "GET", "path": "/v2/event/subscription"}));

    let report = h.run().await;

    let company = &report.companies[0];
    assert_eq!(company.error, None);
    assert_eq!(company.seen, 2);
    assert_eq!(h.requests("GET", "/v2/event/subscription"), 4);
}

#[tokio::test]
async fn gives_up_on_a_rate_limit_that_does_not_end_and_says_so() {
    let h = harness();
    h.fault(json!({"status": 429, "count": 10, "method": "GET", "path": "/v2/event/subscription", "resetSeconds": 0}));

    let report = h.run().await;

    let error = report.companies[0].error.as_deref().unwrap();
    assert!(error.contains("rate limiting after 4 attempts"), "{error}");
    assert_eq!(report.totals.companies_failed, 1);
    assert_eq!(h.requests("GET", "/v2/event/subscription"), 4, "bounded");
}

#[tokio::test]
async fn an_expired_session_is_made_again_and_the_call_repeated() {
    let h = harness();
    h.existing("product.create", RECEIVER, "ACTIVE");
    h.existing("product.update", RECEIVER, "ACTIVE");
    h.run().await;
    assert_eq!(h.requests("POST", "/v2/token/session/:create"), 1);
    h.sim
        .control("POST", "/_sim/sessions/expire", &Value::Null)
        .unwrap();

    let report = h.run().await;

    assert_eq!(report.companies[0].error, None);
    assert_eq!(report.companies[0].seen, 2);
    assert_eq!(h.requests("POST", "/v2/token/session/:create"), 2);
}

#[tokio::test]
async fn reads_every_page_of_subscriptions() {
    let h = harness_with(
        json!({"companies": {"default": {"consumerToken": "consumer-a", "employeeToken": "employee-a"}}}),
        2,
    );
    for n in 0..5 {
        h.existing(
            "customer.create",
            &format!("https://other{n}.example/"),
            "ACTIVE",
        );
    }

    let report = h.run().await;

    assert_eq!(report.companies[0].seen, 5);
    assert_eq!(h.requests("GET", "/v2/event/subscription"), 3);
}

#[tokio::test]
async fn one_failing_company_does_not_stop_the_others() {
    let h = harness_with(
        json!({"companies": {
            "default": {"consumerToken": "consumer-a", "employeeToken": "employee-a"},
            "acme": {"consumerToken": "not-a-consumer", "employeeToken": "employee-b"}
        }}),
        tripletex_client::DEFAULT_PAGE_SIZE,
    );
    let id = h.existing("product.create", RECEIVER, "DISABLED_TOO_MANY_ERRORS");

    let report = h.run().await;

    assert_eq!(report.totals.companies, 2);
    assert_eq!(report.totals.companies_failed, 1);
    let acme = report
        .companies
        .iter()
        .find(|c| c.tenant == "acme")
        .unwrap();
    let error = acme.error.as_deref().unwrap();
    assert!(
        error.contains("did not accept the credentials") && error.contains("arg:consumerToken"),
        "{error}"
    );
    assert!(!error.contains("not-a-consumer"), "no token in the report");
    let default = report
        .companies
        .iter()
        .find(|c| c.tenant == "default")
        .unwrap();
    assert_eq!(ids(&default.re_enabled), [id]);
}

#[tokio::test]
async fn an_accountant_token_acts_for_its_client_company_with_the_company_id_as_basic_user() {
    let h = harness_with(
        json!({"companies": {"default": {"consumerToken": "consumer-acc", "employeeToken": "employee-acc",
                                         "companyId": 300}}}),
        tripletex_client::DEFAULT_PAGE_SIZE,
    );
    h.sim
        .control(
            "POST",
            "/_sim/companies",
            &json!({"companyId": 900, "consumerToken": "consumer-acc", "employeeToken": "employee-acc",
                    "clientCompanyIds": [300]}),
        )
        .unwrap();

    let report = h.run().await;

    assert_eq!(report.companies[0].error, None);
    assert_eq!(report.companies[0].created.len(), 2);
    let all = h
        .sim
        .control("GET", "/_sim/subscriptions", &Value::Null)
        .unwrap();
    let companies: Vec<_> = all["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["_company"].as_i64().unwrap())
        .collect();
    assert_eq!(
        companies,
        [300, 300],
        "made in the client company, not the accountant's"
    );
}

#[tokio::test]
async fn the_client_lists_the_events_without_spending_a_session() {
    use domain::tripletex::TripletexCredentials;
    let h = harness();
    let credentials: TripletexCredentials = serde_json::from_value(
        json!({"consumerToken": "consumer-a", "employeeToken": "employee-a"}),
    )
    .unwrap();
    let api = tripletex_client::HttpTripletexApi::new(&h.sim.api_base_url(), credentials, retry())
        .unwrap();

    let events = api.list_events().await.unwrap();

    assert!(events.contains_key("product.create"));
    assert!(events.contains_key("closeGroup.delete"));
    assert_eq!(
        events["invoice.charged"].description.as_deref(),
        Some("An invoice is charged")
    );
    assert_eq!(h.requests("POST", "/v2/token/session/:create"), 0);
}
