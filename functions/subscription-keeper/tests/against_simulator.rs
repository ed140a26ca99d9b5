//! The keeper against the Tripletex simulator (tools/tripletex_simulator.py), over real HTTP: the
//! client's sessions, retries and paging, and the keeper's plan carried out.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shared::adapters::tripletex::RetryPolicy;
use shared::auth::AuthConfig;
use shared::config::parse_companies;
use shared::keeper::ReEnablePolicy;
use shared::secrets::SecretSource;
use shared::testing::{InMemoryResyncLedger, TripletexSimulator};
use subscription_keeper::handler::{Keeper, KeeperOptions, KeeperRequest, RunReport};

const RECEIVER: &str = "https://receiver.example.com/";
const HEADER_NAME: &str = "X-Tripletex-Webhook-Token";
const HEADER_VALUE: &str = "hook-token-current";
const COMPANY: i64 = 100;

struct Harness {
    sim: TripletexSimulator,
    ledger: Arc<InMemoryResyncLedger>,
    keeper: Keeper<Arc<InMemoryResyncLedger>>,
}

fn options(sim: &TripletexSimulator) -> KeeperOptions {
    KeeperOptions {
        receiver_url: RECEIVER.into(),
        api_base_url: sim.api_base_url(),
        events: vec!["product.create".into(), "product.update".into()],
        fields: "*".into(),
        reenable: ReEnablePolicy::default(),
        dry_run: false,
        resync_lookback: Duration::from_secs(8 * 24 * 3600),
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            attempt_timeout: Duration::from_secs(5),
        },
        page_size: 1000,
    }
}

fn harness_with(companies: Value, tweak: impl FnOnce(&mut KeeperOptions)) -> Harness {
    let sim = TripletexSimulator::start();
    sim.control(
        "POST",
        "/_sim/companies",
        &json!({"companyId": COMPANY, "consumerToken": "consumer-a", "employeeToken": "employee-a"}),
    )
    .unwrap();
    let auth = AuthConfig::from_json(
        &json!({"tenants": {
            "default": {"header": {"name": HEADER_NAME, "values": [HEADER_VALUE, "hook-token-old"]}},
            "acme": {"hmac": {"secrets": ["acme-hmac-secret"]}}
        }})
        .to_string(),
    )
    .unwrap();
    let companies = parse_companies(&companies.to_string()).unwrap();
    let mut options = options(&sim);
    tweak(&mut options);
    let ledger = Arc::new(InMemoryResyncLedger::new());
    let keeper = Keeper::new(
        Arc::clone(&ledger),
        SecretSource::Fixed(Arc::new(companies)),
        SecretSource::Fixed(Arc::new(auth)),
        options,
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
        |_| {},
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

fn ids(done: &[shared::keeper::Done]) -> Vec<i64> {
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
    let requests = h.ledger.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].subscription_id, id);
    assert_eq!(requests[0].object_type, "product");
    assert_eq!(requests[0].previous_status, "DISABLED_TOO_MANY_ERRORS");
    assert_eq!(
        requests[0]
            .window_to
            .duration_since(requests[0].window_from)
            .as_hours(),
        8 * 24
    );
    // The other desired event had no subscription: created, pointing at the receiver.
    assert_eq!(company.created.len(), 1);
    assert_eq!(company.created[0].event, "product.update");
}

#[tokio::test]
async fn never_touches_a_foreign_subscription_whatever_its_status() {
    let h = harness();
    let foreign = h.existing(
        "product.create",
        "https://other-integration.example/hook",
        "DISABLED_TOO_MANY_ERRORS",
    );

    let report = h.run().await;

    let stored = h.stored(foreign);
    assert_eq!(stored["status"], "DISABLED_TOO_MANY_ERRORS");
    assert_eq!(stored["version"], 0);
    assert_eq!(stored["authHeaderValue"], "stale");
    let company = &report.companies[0];
    let left = company
        .left_alone
        .iter()
        .find(|l| l.subscription_id == Some(foreign))
        .unwrap();
    assert_eq!(serde_json::to_value(left.reason).unwrap(), "foreign");
    assert_eq!(company.created.len(), 2, "ours are created beside it");
    assert!(h.ledger.requests().is_empty());
}

#[tokio::test]
async fn leaves_a_subscription_a_person_disabled_and_reports_it() {
    let h = harness();
    let id = h.existing("product.create", RECEIVER, "DISABLED");

    let report = h.run().await;

    assert_eq!(h.stored(id)["status"], "DISABLED");
    assert_eq!(h.stored(id)["version"], 0);
    let company = &report.companies[0];
    let left = &company.left_alone[0];
    assert_eq!(left.subscription_id, Some(id));
    assert_eq!(left.status.as_deref(), Some("DISABLED"));
    assert_eq!(
        serde_json::to_value(left.reason).unwrap(),
        "disabled_by_person"
    );
    assert_eq!(
        company
            .created
            .iter()
            .map(|c| c.event.as_str())
            .collect::<Vec<_>>(),
        ["product.update"],
        "a disabled subscription of ours still covers its event"
    );
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
        |options| options.page_size = 2,
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
        |_| {},
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
async fn creates_missing_and_updates_drifted_subscriptions_with_id_and_version_in_fields() {
    let h = harness_with(
        json!({"companies": {"default": {"consumerToken": "consumer-a", "employeeToken": "employee-a"}}}),
        |options| options.fields = "name,number".into(),
    );
    let drifted = h.existing("product.create", RECEIVER, "ACTIVE"); // fields "*"

    let report = h.run().await;

    let company = &report.companies[0];
    assert_eq!(ids(&company.updated), [drifted]);
    assert_eq!(h.stored(drifted)["fields"], "id,version,name,number");
    let created = company.created[0].subscription_id.unwrap();
    let stored = h.stored(created);
    assert_eq!(stored["event"], "product.update");
    assert_eq!(stored["targetUrl"], RECEIVER);
    assert_eq!(stored["fields"], "id,version,name,number");
    assert_eq!(stored["authHeaderName"], HEADER_NAME);
    assert_eq!(stored["authHeaderValue"], HEADER_VALUE);
    assert_eq!(stored["status"], "ACTIVE");

    let again = h.run().await;
    let company = &again.companies[0];
    assert!(
        company.created.is_empty() && company.updated.is_empty(),
        "idempotent"
    );
    assert_eq!(company.left_alone.len(), 2);
}

#[tokio::test]
async fn a_dry_run_reports_the_plan_and_writes_nothing() {
    let h = harness();
    let id = h.existing("product.create", RECEIVER, "DISABLED_TOO_MANY_ERRORS");

    let report = h
        .keeper
        .handle(KeeperRequest {
            dry_run: Some(true),
            ..KeeperRequest::default()
        })
        .await
        .unwrap();

    assert!(report.dry_run);
    assert_eq!(ids(&report.companies[0].re_enabled), [id]);
    assert_eq!(report.companies[0].created.len(), 1);
    assert_eq!(h.stored(id)["status"], "DISABLED_TOO_MANY_ERRORS");
    assert_eq!(
        h.requests("PUT", &format!("/v2/event/subscription/{id}")),
        0
    );
    assert_eq!(h.requests("POST", "/v2/event/subscription"), 0);
    assert!(h.ledger.requests().is_empty());
}

#[tokio::test]
async fn a_tenant_subscription_points_at_its_path_and_carries_its_hmac_secret() {
    let h = harness_with(
        json!({"companies": {"acme": {"consumerToken": "consumer-a", "employeeToken": "employee-a"}}}),
        |_| {},
    );

    let report = h.run().await;

    let created = &report.companies[0].created;
    assert_eq!(created.len(), 2);
    let stored = h.stored(created[0].subscription_id.unwrap());
    assert_eq!(stored["targetUrl"], "https://receiver.example.com/t/acme");
    assert_eq!(stored["hmacSharedSecret"], "acme-hmac-secret");
}

#[tokio::test]
async fn a_re_enabled_subscription_that_cannot_be_recorded_is_reported_as_failed() {
    let h = harness();
    let id = h.existing("product.create", RECEIVER, "DISABLED_TOO_MANY_ERRORS");
    h.ledger.set_unavailable(true);

    let report = h.run().await;

    let company = &report.companies[0];
    assert_eq!(ids(&company.re_enabled), [id], "re-enabled all the same");
    assert_eq!(company.failed.len(), 1);
    assert_eq!(company.failed[0].action, "record_resync");
}

#[tokio::test]
async fn an_unknown_tenant_in_the_request_is_refused() {
    let h = harness();
    let error = h
        .keeper
        .handle(KeeperRequest {
            tenants: Some(vec!["nobody".into()]),
            ..KeeperRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "tenant \"nobody\" is not among the configured companies"
    );
}

#[tokio::test]
async fn the_sample_events_run_the_keeper_for_real_and_as_a_dry_run() {
    let tick: KeeperRequest = serde_json::from_str(include_str!(
        "../../../events/subscription-keeper/scheduler-tick.json"
    ))
    .unwrap();
    let dry_run: KeeperRequest = serde_json::from_str(include_str!(
        "../../../events/subscription-keeper/manual-dry-run.json"
    ))
    .unwrap();
    let h = harness();
    let id = h.existing("product.create", RECEIVER, "DISABLED_TOO_MANY_ERRORS");

    let planned = h.keeper.handle(dry_run).await.unwrap();
    assert!(planned.dry_run);
    assert_eq!(h.stored(id)["status"], "DISABLED_TOO_MANY_ERRORS");

    let done = h.keeper.handle(tick).await.unwrap();
    assert!(!done.dry_run);
    assert_eq!(ids(&done.companies[0].re_enabled), [id]);
    assert_eq!(h.stored(id)["status"], "ACTIVE");
}

#[test]
fn a_request_with_a_mistyped_dry_run_is_refused_not_guessed_at() {
    assert!(serde_json::from_str::<KeeperRequest>(r#"{"dryRun": "yes"}"#).is_err());
}

#[tokio::test]
async fn a_rotation_re_sends_the_current_header_value_to_every_active_subscription_of_ours() {
    let h = harness();
    let active = h.existing("product.create", RECEIVER, "ACTIVE");
    let foreign = h.existing("product.update", "https://other.example/", "ACTIVE");
    let request: KeeperRequest = serde_json::from_str(include_str!(
        "../../../events/subscription-keeper/manual-resend-auth.json"
    ))
    .unwrap();

    let report = h.keeper.handle(request).await.unwrap();

    let company = &report.companies[0];
    assert_eq!(ids(&company.updated), [active]);
    assert_eq!(h.stored(active)["authHeaderValue"], HEADER_VALUE);
    assert_eq!(
        h.stored(foreign)["authHeaderValue"],
        "stale",
        "never another's"
    );
}

#[tokio::test]
async fn an_accountant_token_acts_for_its_client_company_with_the_company_id_as_basic_user() {
    let h = harness_with(
        json!({"companies": {"default": {"consumerToken": "consumer-acc", "employeeToken": "employee-acc",
                                         "companyId": 300}}}),
        |_| {},
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
    use shared::ports::TripletexApi;
    use shared::tripletex::TripletexCredentials;
    let h = harness();
    let credentials: TripletexCredentials = serde_json::from_value(
        json!({"consumerToken": "consumer-a", "employeeToken": "employee-a"}),
    )
    .unwrap();
    let api = shared::adapters::tripletex::HttpTripletexApi::new(
        &h.sim.api_base_url(),
        credentials,
        options(&h.sim).retry,
    )
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
