//! `quarantine`: bodies listed with their reasons, and replayed when they can be applied.

use super::*;

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
