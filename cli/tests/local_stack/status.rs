//! `status`: the queues, subscriptions, sync runs and requests, the keeper's last run, and when a person is needed.

use super::*;

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
async fn a_stopped_local_stack_is_said_so_with_what_to_do() {
    let local = local_stack("cli-stopped").await;
    let mut summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&local.summary).unwrap()).unwrap();
    // A port nothing answers on: the stack's moto, stopped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    summary["endpoint"] = Value::String(endpoint.clone());
    let stopped = local.summary.with_extension("stopped.json");
    std::fs::write(&stopped, summary.to_string()).unwrap();
    // Every command that talks to the deployment, each answered the same way before it asks anything.
    for command in [
        vec!["status"],
        vec!["show", "default", "customer", "1"],
        vec!["log", "--since", "1h"],
        vec!["replay", "--from", "2026-12-06T10:00:00Z"],
        vec!["dlq"],
        vec!["dlq", "redrive"],
        vec!["quarantine"],
        vec!["quarantine", "replay", "m-1"],
        vec!["resync", "--company", "default"],
        vec!["send", "customer.update", "1"],
        vec!["forget", "default", "customer", "1"],
        vec!["keeper", "run", "--dry-run"],
        vec!["mirror", "status"],
        vec!["mirror", "check"],
        vec!["mirror", "rebuild"],
        vec!["companies", "list"],
        vec!["companies", "discover", "--credential", "firm"],
        vec!["companies", "add", "301", "--credential", "firm"],
        vec!["companies", "remove", "301"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_tripletex-webhooks"))
            .arg(format!("--local={}", stopped.display()))
            .args(&command)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!(
                "tripletex-webhooks: the local stack is not running (nothing answers at {endpoint}): \
                 start it with scripts/run\n"
            ),
            "{command:?}"
        );
    }
}
