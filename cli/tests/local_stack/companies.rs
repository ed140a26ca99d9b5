//! `companies`: discovered, added, listed and removed.

use super::*;

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
    assert_eq!(
        listed[0]["name"], "Client company 201",
        "added by id, named from Tripletex as one added by discovery"
    );
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
    let (status, _) = local.json(&["status", "--no-subscriptions"]);
    let states: Vec<(&str, &str)> = status["companies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["tenant"].as_str().unwrap(),
                c["registryState"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert!(
        states.contains(&("201", "offboarding")),
        "status says the company is leaving: {states:?}"
    );
    let (listed, _) = local.json(&["companies", "list"]);
    let leaving = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["tenant"] == "201")
        .unwrap();
    assert_eq!(leaving["state"], "offboarding", "{leaving}");
}
