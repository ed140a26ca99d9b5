//! `replay`: the change bus's archived events sent to its consumers again, on moto's EventBridge
//! (which replays every archived event to every rule at once, whatever the window and the rules
//! asked for: what is asserted here is what holds there too).

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};

use super::*;

/// A change event as the pipe puts it on the bus: its detail the stream record of the item.
fn change(bus: &str, pk: &str, version: i64) -> PutEventsRequestEntry {
    let record = serde_json::json!({
        "eventName": "MODIFY",
        "dynamodb": {"Keys": {"pk": {"S": pk}},
                     "NewImage": {"pk": {"S": pk}, "version": {"N": version.to_string()},
                                  "lastRequestId": {"S": format!("req-{version}")}}}
    });
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source("tripletex.webhooks")
        .detail_type("Tripletex object changed")
        .detail(record.to_string())
        .build()
}

async fn received(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    loop {
        let batch = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            return bodies;
        }
        for message in batch {
            bodies.push(serde_json::from_str(message.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_sends_the_archived_changes_to_the_consumers_again_and_leaves_no_rule_behind() {
    let more = [
        "--parameter".to_owned(),
        "EnableChangeEvents=true".to_owned(),
        "--parameter".to_owned(),
        "ChangeEventArchiveDays=7".to_owned(),
    ];
    let local = local_stack_with("cli-change-replay", "http://127.0.0.1:9", &more).await;
    let bus = local.resources["ChangeEventBus"]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);

    // A consumer: every change event to a queue of its own.
    let queue = local
        .sqs
        .create_queue()
        .queue_name(format!("consumer-{}", std::process::id()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = local
        .sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .event_bus_name(&bus)
        .name("consumer")
        .event_pattern(r#"{"source":["tripletex.webhooks"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .event_bus_name(&bus)
        .rule("consumer")
        .targets(
            Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let before = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_mins(1))
        .unwrap();
    let changes = [
        ("default#customer#7", 4),
        ("default#customer#8", 1),
        ("hmac-demo#voucher#9", 2),
    ];
    let mut put = events.put_events();
    for (pk, version) in changes {
        put = put.entries(change(&bus, pk, version));
    }
    assert_eq!(put.send().await.unwrap().failed_entry_count, 0);
    let live = received(&local.sqs, &queue).await;
    assert_eq!(
        live.len(),
        changes.len(),
        "the consumer had them once, live"
    );

    let (replayed, code) = local.json(&["replay", "--from", &before.to_string()]);
    assert_eq!(code, Some(0), "{replayed}");
    assert_eq!(replayed["state"], "COMPLETED");
    assert_eq!(replayed["narrowed"], false);
    assert_eq!(replayed["rules"], serde_json::json!(["consumer"]));
    let again = received(&local.sqs, &queue).await;
    assert_eq!(
        again.len(),
        changes.len(),
        "each change once more: {again:?}"
    );
    assert!(
        again
            .iter()
            .all(|event| event["replay-name"] == replayed["replay"]),
        "marked as the replay's"
    );
    assert!(
        again
            .iter()
            .any(|event| event["detail"]["dynamodb"]["NewImage"]["lastRequestId"]["S"] == "req-4"),
        "the request that made each version rides along"
    );

    // Narrowed to a company: a copy of the consumer's rule that matches only its changes, and
    // only replayed ones, gone again once the replay ends.
    let (narrowed, code) = local.json(&[
        "replay",
        "--from",
        &before.to_string(),
        "--company",
        "hmac-demo",
    ]);
    assert_eq!(code, Some(0), "{narrowed}");
    assert_eq!(narrowed["narrowed"], true);
    let through_the_copy: Vec<Value> = received(&local.sqs, &queue)
        .await
        .into_iter()
        .filter(|event| event["replay-name"] == narrowed["replay"])
        .collect();
    assert!(
        through_the_copy
            .iter()
            .any(|event| event["detail"]["dynamodb"]["Keys"]["pk"]["S"] == "hmac-demo#voucher#9"),
        "{through_the_copy:?}"
    );
    let rules: Vec<String> = events
        .list_rules()
        .event_bus_name(&bus)
        .send()
        .await
        .unwrap()
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter_map(|rule| rule.name)
        .collect();
    assert!(
        !rules.iter().any(|rule| rule.starts_with("tw-replay-")),
        "the narrowed copies are deleted: {rules:?}"
    );

    for (words, said) in [
        (vec!["replay", "--from", "yesterday"], "is not a time"),
        (
            vec![
                "replay",
                "--from",
                "2026-12-06T10:00:00Z",
                "--to",
                "2026-12-06T09:00:00Z",
            ],
            "ends before it starts",
        ),
        (
            vec![
                "replay",
                "--from",
                "2026-12-06T10:00:00Z",
                "--company",
                "nosuch",
            ],
            "no company 'nosuch'",
        ),
    ] {
        let refused = local.cli(&words);
        let error = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{words:?}: {error}");
        assert!(error.contains(said), "{words:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_on_a_deployment_without_an_archive_says_how_to_keep_one() {
    let local = local_stack("cli-change-replay-none").await;
    let refused = local.cli(&["replay", "--from", "2026-12-06T10:00:00Z"]);
    let error = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{error}");
    assert!(
        error.contains("EnableChangeEvents=true and ChangeEventArchiveDays above 0"),
        "{error}"
    );
}
