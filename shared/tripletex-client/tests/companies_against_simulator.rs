#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure
//! An accountant's key against the simulator: the client companies it may log into, page by page,
//! and a company it may not log into refused.

use std::time::Duration;

use domain::tripletex::{Companies, TripletexCredentials, discovered};
use serde_json::json;
use test_support::TripletexSimulator;
use tripletex_client::{HttpTripletexApi, RetryPolicy};

const FIRM: i64 = 100;

fn api(sim: &TripletexSimulator, company_id: Option<i64>) -> HttpTripletexApi {
    let credentials: TripletexCredentials = serde_json::from_value(
        json!({"consumerToken": "consumer", "employeeToken": "accountant", "companyId": company_id}),
    )
    .unwrap();
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(10),
    };
    HttpTripletexApi::new(&sim.api_base_url(), credentials, retry).unwrap()
}

#[tokio::test]
async fn an_accountant_key_discovers_every_client_company_and_reaches_nothing_else() {
    let sim = TripletexSimulator::start();
    let clients: Vec<i64> = (201..=1_450).collect();
    sim.control(
        "POST",
        "/_sim/companies",
        &json!({"companyId": FIRM, "consumerToken": "consumer", "employeeToken": "accountant",
                "clientCompanyIds": clients}),
    )
    .unwrap();

    let found = api(&sim, None).clients_with_login_access().await.unwrap();
    assert_eq!(found.len(), clients.len(), "past one page of 1,000");
    assert_eq!(found[0].customer_company_id, Some(201));
    assert_eq!(found[0].name.as_deref(), Some("Client company 201"));

    let configured = Companies::from_json(
        r#"{"companies": {"acme": {"consumerToken": "consumer", "employeeToken": "accountant",
                                    "companyId": 300}}}"#,
    )
    .unwrap();
    let marked = discovered(&found, &configured);
    let added: Vec<_> = marked.iter().filter(|c| c.tenant.is_some()).collect();
    assert_eq!(added.len(), 1);
    assert_eq!(
        (added[0].company_id, added[0].tenant.as_deref()),
        (300, Some("acme"))
    );

    // Acting for a client works; acting for a company the key has no access to is refused.
    assert!(
        api(&sim, Some(300))
            .clients_with_login_access()
            .await
            .is_ok()
    );
    let refused = api(&sim, Some(99_999))
        .clients_with_login_access()
        .await
        .unwrap_err();
    assert!(!refused.may_pass(), "{refused}");
}

#[tokio::test]
async fn the_companies_of_one_credential_share_one_session() {
    use domain::ids::TenantId;
    use domain::ports::TripletexCompanies;
    let sim = TripletexSimulator::start();
    sim.control(
        "POST",
        "/_sim/companies",
        &json!({"companyId": FIRM, "consumerToken": "consumer", "employeeToken": "accountant",
                "clientCompanyIds": [201, 202, 203]}),
    )
    .unwrap();
    let companies = Companies::from_json(
        r#"{"credentials": {"firm": {"consumerToken": "consumer", "employeeToken": "accountant"}},
            "companies": {"a": {"credential": "firm", "companyId": 201},
                          "b": {"credential": "firm", "companyId": 202},
                          "c": {"credential": "firm", "companyId": 203}}}"#,
    )
    .unwrap();
    let pool =
        tripletex_client::HttpTripletexCompanies::new(sim.api_base_url(), RetryPolicy::default())
            .unwrap();
    for (tenant, credentials) in &companies.0 {
        let api = pool.company(tenant, credentials).unwrap();
        api.clients_with_login_access().await.unwrap();
    }
    // Once more for one of them: still no new session.
    let a = TenantId::parse("a").unwrap();
    pool.company(&a, &companies.0[&a])
        .unwrap()
        .clients_with_login_access()
        .await
        .unwrap();
    let requests = sim
        .control("GET", "/_sim/requests", &serde_json::Value::Null)
        .unwrap();
    let sessions = requests["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r[1].as_str()
                .is_some_and(|path| path.ends_with("/token/session/:create"))
        })
        .count();
    assert_eq!(
        sessions, 1,
        "one session for the credential, not one per company"
    );
}
