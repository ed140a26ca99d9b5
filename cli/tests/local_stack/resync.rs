//! `resync`: a run started and followed to its end; a function's error said.

use super::*;

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
            serde_json::json!({"errorType": "SyncError", "errorMessage": "the sync queue is not reachable"}),
        )
    });
    let local = local_stack_invoking("cli-function-error", &lambda.endpoint).await;
    let output = local.cli(&["resync", "--company", "default"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "tripletex-webhooks: object-sync failed (Unhandled): the sync queue is not reachable\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_company_or_type_is_an_error_that_says_what_exists_and_nothing_is_asked() {
    let lambda = StandInLambda::start(|_| (None, serde_json::json!({"runs": []})));
    let local = local_stack_invoking("cli-resync-typos", &lambda.endpoint).await;
    for (args, error) in [
        (
            vec!["resync", "--company", "nosuch"],
            "no company 'nosuch'; companies: default, hmac-demo",
        ),
        (
            vec!["resync", "--company", "default", "--type", "banana"],
            "no object type 'banana'; types: ",
        ),
        (
            vec!["show", "default", "nosuchtype", "1"],
            "no object type 'nosuchtype'; types: ",
        ),
        (
            vec!["forget", "nosuch", "customer", "1"],
            "no company 'nosuch'; companies: default, hmac-demo",
        ),
        (
            vec!["forget", "default", "banana", "1"],
            "no object type 'banana'; types: ",
        ),
        (
            vec!["show", "nosuch", "customer", "1"],
            "no company 'nosuch'; companies: default, hmac-demo",
        ),
        (
            vec!["send", "customer.update", "1", "--company", "nosuch"],
            "no company 'nosuch'; companies: default, hmac-demo",
        ),
        (
            vec![
                "mirror",
                "rebuild",
                "--company",
                "nosuch",
                "--database-url",
                "postgresql://127.0.0.1:9/x",
            ],
            "no company 'nosuch'; companies: default, hmac-demo",
        ),
        (
            vec!["log", "--company", "nosuch"],
            "no company 'nosuch'; companies: default, hmac-demo",
        ),
        (
            vec!["log", "--type", "banana"],
            "no object type 'banana'; types: ",
        ),
        (
            vec!["log", "--outcome", "banana"],
            "no outcome 'banana'; outcomes: ",
        ),
    ] {
        let output = local.cli(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("tripletex-webhooks: {error}")),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        lambda.requests().is_empty(),
        "no run was asked for a mistake"
    );
}
