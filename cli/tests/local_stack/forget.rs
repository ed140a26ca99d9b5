//! `forget`: an object's value erased everywhere, and kept erased.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn forget_erases_the_value_from_table_bucket_quarantine_and_dead_letters_and_keeps_it_erased()
{
    use aws_adapters::blobs::S3BlobStore;
    use aws_adapters::dynamodb::DynamoObjectStore;
    use domain::claim::{self, LargeValues};
    use domain::dedup::{ObjectChange, ObjectKey, Outcome, Payload, Source, Write};
    use domain::ids::TenantId;
    use domain::message::QueueMessage;
    use domain::ports::{BlobStore, ObjectStore};

    let local = local_stack("cli-forget").await;
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let bucket = local.resources["PayloadBucket"]["name"].as_str().unwrap();
    let payloads = S3BlobStore::new(&sdk, bucket);
    let store = LargeValues::new(
        DynamoObjectStore::new(local.dynamodb.clone(), local.table("ObjectsTable")),
        payloads.clone(),
    );
    let key = |id| ObjectKey {
        tenant: TenantId::default_tenant(),
        object_type: "customer".into(),
        object_id: id,
    };
    let customer = |id: i64, version: i64, padding: usize| ObjectChange {
        key: key(id),
        write: Write::Versioned {
            version,
            payload: Payload::from_json(&format!(
                r#"{{"id":{id},"version":{version},"name":"Kari Nordmann","notes":"{}"}}"#,
                "n".repeat(padding)
            )),
        },
        event: "customer.update".into(),
        subscription_id: Some(1),
        received_at: jiff::Timestamp::now(),
        source: Source::Webhook,
        probe: None,
        request: None,
    };
    // 42 over an item's limit (its value in the bucket), 43 beside it.
    assert_eq!(
        store.apply(&customer(42, 3, 500_000)).await.unwrap(),
        Outcome::Accepted
    );
    assert_eq!(
        store.apply(&customer(43, 1, 10)).await.unwrap(),
        Outcome::Accepted
    );
    let naming = |id: i64, padding: usize| QueueMessage {
        body: format!(
            r#"{{"event":"customer.update","id":{id},"value":{{"name":"Kari Nordmann","notes":"{}"}}}}"#,
            "q".repeat(padding)
        ),
        attributes: vec![
            ("tenant".into(), "default".into()),
            ("quarantineReason".into(), "value.version is missing".into()),
        ],
    };
    // A quarantined body over SQS's limit, claim-checked as the receiver would.
    let large = naming(42, 300_000);
    let claimed = claim::checked(&payloads, &large).await.unwrap();
    let claim_key = claimed.attribute("bodyClaim").unwrap().to_owned();
    for message in [claimed.as_ref(), &naming(43, 10)] {
        let attributes: Vec<(&str, &str)> = message
            .attributes
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        local
            .send("QuarantineQueue", &message.body, &attributes)
            .await;
    }
    local
        .send(
            "WebhookDeadLetterQueue",
            r#"{"event":"customer.update","id":42,"value":{"id":42,"version":2}}"#,
            &[
                ("tenant", "default"),
                ("event", "customer.update"),
                ("objectId", "42"),
            ],
        )
        .await;

    let (listed, _) = local.json(&["quarantine"]);
    assert!(
        listed.as_array().unwrap().iter().any(|m| m["body"]
            .as_str()
            .unwrap()
            .starts_with(r#"{"event":"customer.update","id":42"#)),
        "the claim-checked body is listed whole: {listed}"
    );

    let (forgotten, code) = local.json(&["forget", "default", "customer", "42"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        forgotten,
        serde_json::json!({
            "key": "default#customer#42", "inCopy": true, "version": 3, "deleted": false,
            "valueErased": true, "lastValueErased": false, "forgottenBefore": false,
            "payloadObjectsDeleted": 1, "quarantinedDeleted": 1, "deadLettersDeleted": 1
        })
    );
    let (shown, _) = local.json(&["show", "default", "customer", "42"]);
    assert_eq!(shown["stored"]["value"], Value::Null, "{shown}");
    assert!(shown["stored"]["forgottenAt"].is_string(), "{shown}");
    let table = String::from_utf8_lossy(&local.cli(&["show", "default", "customer", "42"]).stdout)
        .into_owned();
    assert!(
        table.contains(
            "its value was erased on request; only a version newer than 3 is stored again"
        ) && table.contains("- (forgotten)"),
        "show says it was forgotten, not only that it has no value: {table}"
    );
    assert!(
        payloads.get(&claim_key).await.unwrap().is_none(),
        "the claim-checked body is gone"
    );
    assert_eq!(
        payloads
            .delete_under(&claim::values_prefix(&key(42)))
            .await
            .unwrap(),
        0,
        "no value of it is left in the bucket"
    );
    let (left, _) = local.json(&["quarantine"]);
    let left: Vec<_> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].to_string())
        .collect();
    assert_eq!(left.len(), 1);
    assert!(
        left[0].contains(r#"\"id\":43"#),
        "the other object's message stays: {left:?}"
    );
    let (dead, _) = local.json(&["dlq"]);
    assert_eq!(dead, serde_json::json!([]));

    // A redelivered webhook of the forgotten version, and an older one, do not bring it back.
    assert_eq!(
        store.apply(&customer(42, 3, 500_000)).await.unwrap(),
        Outcome::Forgotten
    );
    assert_eq!(
        store.apply(&customer(42, 2, 10)).await.unwrap(),
        Outcome::Forgotten
    );
    let (shown, _) = local.json(&["show", "default", "customer", "42"]);
    assert_eq!(shown["stored"]["value"], Value::Null);
    // A change Tripletex made after the request is stored again.
    assert_eq!(
        store.apply(&customer(42, 4, 10)).await.unwrap(),
        Outcome::Accepted
    );
    let (shown, _) = local.json(&["show", "default", "customer", "42"]);
    assert_eq!(shown["stored"]["version"], 4);
    assert_eq!(shown["stored"]["value"]["name"], "Kari Nordmann");
    assert!(shown["stored"].get("forgottenAt").is_none(), "{shown}");

    let text = String::from_utf8_lossy(&local.cli(&["forget", "default", "customer", "77"]).stdout)
        .into_owned();
    assert!(
        text.contains("default#customer#77: not in the copy"),
        "{text}"
    );
}
