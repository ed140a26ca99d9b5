//! `keeper run`: the keeper invoked with what was asked.

use super::*;

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
