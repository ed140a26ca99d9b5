//! `dlq`: dead letters listed and redriven.

use super::*;

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
