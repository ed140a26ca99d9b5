//! The dedup rule held by both stores: the in-memory fake, and DynamoDB (moto) through the real
//! adapter's condition expression.
//!
//! - Property: for any sequence of events on one object (duplicates, any order, skipped versions,
//!   now and then a payload without a version), every outcome is the pure rule's, and the final
//!   item is the tombstone if any delete was in the sequence, else at the highest version seen, with
//!   a value that agrees with it: that version's payload, or an unversioned payload marked
//!   `versionUnknown` (the version then a floor).
//! - Race: concurrent writers on one object; DynamoDB lets exactly one of them win each contest.
//!   The harness's moto applies each DynamoDB request atomically, as DynamoDB does (plain moto does
//!   not; see `tools/localstack/moto_atomic.py`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_adapters::dynamodb::{DynamoObjectStore, item, stored_state};
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use domain::dedup::{
    ObjectChange, ObjectKey, Outcome, Payload, Seen, Source, StoredState, Write, apply,
    apply_change, decide, decide_change,
};
use domain::ids::TenantId;
use domain::ports::ObjectStore;
use jiff::Timestamp;
use proptest::prelude::*;
use test_support::{InMemoryObjectStore, MotoServer, sdk_config_for};

#[derive(Debug, Clone, Copy)]
enum Event {
    Update(i64),
    /// A payload without a version (a subscription whose `fields` leave it out); n tells contents apart.
    Unversioned(i64),
    Delete,
}

fn payload(version: i64) -> Payload {
    Payload::from_json(&format!(
        r#"{{"id":1,"version":{version},"name":"v{version}"}}"#
    ))
}

fn unversioned_payload(n: i64) -> Payload {
    Payload::from_json(&format!(r#"{{"id":1,"name":"unversioned {n}"}}"#))
}

fn change(object_id: i64, event: Event) -> ObjectChange {
    let (write, name) = match event {
        Event::Unversioned(n) => (
            Write::Unversioned {
                payload: unversioned_payload(n),
            },
            "product.update",
        ),
        Event::Update(version) => (
            Write::Versioned {
                version,
                payload: payload(version),
            },
            "product.update",
        ),
        Event::Delete => (Write::Delete, "product.delete"),
    };
    ObjectChange {
        key: ObjectKey {
            tenant: TenantId::default_tenant(),
            object_type: "product".into(),
            object_id,
        },
        write,
        event: name.into(),
        subscription_id: Some(1),
        received_at: Timestamp::UNIX_EPOCH,
        source: Source::Webhook,
        probe: None,
        request: None,
    }
}

/// Sequences with duplicates (versions drawn from a small range repeat), skipped versions, any
/// order, and now and then a delete.
fn sequences() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        prop_oneof![
            9 => (0i64..25).prop_map(Event::Update),
            1 => (0i64..3).prop_map(Event::Unversioned),
            1 => Just(Event::Delete),
        ],
        1..30,
    )
}

/// What the final item must be.
fn expected_final(events: &[Event]) -> (bool, Option<i64>) {
    let deleted = events.iter().any(|e| matches!(e, Event::Delete));
    let highest = events
        .iter()
        .filter_map(|e| match e {
            Event::Update(v) => Some(*v),
            Event::Unversioned(_) | Event::Delete => None,
        })
        .max();
    (deleted, highest)
}

/// Applies the events in order, checking each outcome against the pure rule; returns the final
/// state the rule predicts.
async fn apply_checking_each_outcome(
    store: &impl ObjectStore,
    object_id: i64,
    events: &[Event],
) -> Option<StoredState> {
    let mut reference: Option<StoredState> = None;
    for (at, event) in events.iter().enumerate() {
        // Every third change comes from the sync: a duplicate across the two paths corroborates.
        let change = ObjectChange {
            source: if at % 3 == 2 {
                Source::Resync
            } else {
                Source::Webhook
            },
            ..change(object_id, *event)
        };
        let outcome = match store.apply(&change).await {
            Ok(outcome) => outcome,
            Err(error) => panic!("store failed: {error:?}"),
        };
        let expected = decide_change(reference.as_ref(), &change);
        assert_eq!(outcome, expected, "event {event:?} after {reference:?}");
        if outcome == Outcome::Accepted {
            reference = Some(apply_change(reference.as_ref(), &change));
        }
    }
    reference
}

fn check_final(events: &[Event], state: &StoredState, value: Option<&str>) {
    let (deleted, highest) = expected_final(events);
    assert_eq!(state.deleted, deleted, "{events:?}");
    if deleted {
        assert_eq!(value, None, "a tombstone keeps no value");
        assert!(!state.version_unknown, "{events:?}");
        return;
    }
    assert_eq!(state.version, highest, "{events:?}");
    let value = value.unwrap_or_else(|| panic!("a live item has a value: {events:?}"));
    if state.version_unknown {
        let unversioned = (0..3).any(|n| unversioned_payload(n).json() == value);
        assert!(
            unversioned,
            "marked versionUnknown, so an unversioned value: {events:?}"
        );
    } else {
        let highest = highest.unwrap_or_else(|| panic!("no version, no mark: {events:?}"));
        assert_eq!(
            value,
            payload(highest).json(),
            "value and version agree: {events:?}"
        );
    }
    // The mark is there exactly when the last write that changed the item was unversioned.
    let last_accepted_unversioned = {
        let mut reference: Option<StoredState> = None;
        let mut last = false;
        for event in events {
            let write = change(0, *event).write;
            if decide(reference.as_ref(), &write) == Outcome::Accepted {
                last = matches!(event, Event::Unversioned(_));
                reference = Some(apply(reference.as_ref(), &write));
            }
        }
        last
    };
    assert_eq!(
        state.version_unknown, last_accepted_unversioned,
        "{events:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn in_memory_store_keeps_the_tombstone_or_the_highest_version(events in sequences()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let store = InMemoryObjectStore::new();
        runtime.block_on(apply_checking_each_outcome(&store, 1, &events));
        let item = store.get("default#product#1").unwrap();
        check_final(&events, &item.state, item.value.as_deref());
    }
}

// ---- DynamoDB (moto) ----------------------------------------------------------------------------

struct Dynamo {
    client: DynamoDbClient,
    table: String,
    runtime: tokio::runtime::Runtime,
}

/// One table for the whole test binary; each case uses an object id of its own.
fn dynamo() -> &'static Dynamo {
    static DYNAMO: OnceLock<Dynamo> = OnceLock::new();
    DYNAMO.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let table = format!("objects-{}", std::process::id());
        let client = runtime.block_on(async {
            let client =
                DynamoDbClient::new(&sdk_config_for(MotoServer::shared().endpoint()).await);
            client
                .create_table()
                .table_name(&table)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(item::KEY)
                        .key_type(KeyType::Hash)
                        .build()
                        .unwrap(),
                )
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(item::KEY)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .stream_specification(
                    StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(StreamViewType::NewAndOldImages)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            client
        });
        Dynamo {
            client,
            table,
            runtime,
        }
    })
}

fn next_object_id() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

async fn stored_item(dynamo: &Dynamo, object_id: i64) -> HashMap<String, AttributeValue> {
    dynamo
        .client
        .get_item()
        .table_name(&dynamo.table)
        .key(
            item::KEY,
            AttributeValue::S(format!("default#product#{object_id}")),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn dynamodb_condition_expression_follows_the_same_rule(events in sequences()) {
        let dynamo = dynamo();
        let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
        let object_id = next_object_id();
        dynamo.runtime.block_on(async {
            apply_checking_each_outcome(&store, object_id, &events).await;
            let item = stored_item(dynamo, object_id).await;
            let value = item.get(item::VALUE).and_then(|v| v.as_s().ok()).map(String::as_str);
            check_final(&events, &stored_state(&item).unwrap(), value);
        });
    }
}

async fn race(
    store: &DynamoObjectStore,
    object_id: i64,
    events: Vec<Event>,
) -> Vec<(Event, Outcome)> {
    let writers: Vec<_> = events
        .into_iter()
        .map(|event| {
            let store = store.clone();
            tokio::spawn(async move { (event, store.apply(&change(object_id, event)).await) })
        })
        .collect();
    let mut outcomes = Vec::new();
    for writer in writers {
        let (event, result) = writer.await.unwrap();
        outcomes.push((event, result.unwrap()));
    }
    outcomes
}

#[test]
fn concurrent_writers_of_one_version_have_exactly_one_winner() {
    let dynamo = dynamo();
    let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
    let object_id = next_object_id();
    let outcomes = dynamo
        .runtime
        .block_on(race(&store, object_id, vec![Event::Update(7); 16]));
    let accepted = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Accepted)
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Duplicate)
        .count();
    assert_eq!((accepted, duplicates), (1, 15));
}

#[test]
fn once_the_highest_version_is_stored_every_racing_write_is_stale_or_duplicate() {
    let dynamo = dynamo();
    let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
    let object_id = next_object_id();
    dynamo.runtime.block_on(async {
        assert_eq!(
            store
                .apply(&change(object_id, Event::Update(50)))
                .await
                .unwrap(),
            Outcome::Accepted
        );
        let mut racers: Vec<_> = (1..50).map(Event::Update).collect();
        racers.extend([Event::Update(50); 5]);
        for (event, outcome) in race(&store, object_id, racers).await {
            let expected = match event {
                Event::Update(50) => Outcome::Duplicate,
                _ => Outcome::Stale,
            };
            assert_eq!(outcome, expected, "{event:?}");
        }
        let item = stored_item(dynamo, object_id).await;
        assert_eq!(stored_state(&item).unwrap().version, Some(50));
    });
}

#[test]
fn many_concurrent_versions_end_with_the_highest() {
    let dynamo = dynamo();
    let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
    let object_id = next_object_id();
    dynamo.runtime.block_on(async {
        // 1..=40 in a scrambled order (17 is coprime with 40), so low and high versions start together.
        let racers: Vec<_> = (0..40).map(|i| Event::Update((i * 17) % 40 + 1)).collect();
        let outcomes = race(&store, object_id, racers).await;
        for (event, outcome) in &outcomes {
            assert!(
                matches!(outcome, Outcome::Accepted | Outcome::Stale),
                "{event:?}: {outcome:?}"
            );
        }
        let highest = outcomes
            .iter()
            .find(|(e, _)| matches!(e, Event::Update(40)))
            .unwrap();
        assert_eq!(
            highest.1,
            Outcome::Accepted,
            "the highest version always wins"
        );
        let item = stored_item(dynamo, object_id).await;
        assert_eq!(stored_state(&item).unwrap().version, Some(40));
        assert_eq!(item[item::VALUE].as_s().unwrap(), payload(40).json());
    });
}

#[test]
fn a_late_update_racing_a_delete_never_resurrects_the_object() {
    let dynamo = dynamo();
    let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
    let object_id = next_object_id();
    dynamo.runtime.block_on(async {
        store
            .apply(&change(object_id, Event::Update(1)))
            .await
            .unwrap();
        let mut racers: Vec<_> = (2..30).map(Event::Update).collect();
        racers.insert(10, Event::Delete);
        race(&store, object_id, racers).await;
        let item = stored_item(dynamo, object_id).await;
        assert!(stored_state(&item).unwrap().deleted);
        assert!(!item.contains_key(item::VALUE));
        // And any later update, however new, is answered after-delete.
        let late = store
            .apply(&change(object_id, Event::Update(1_000)))
            .await
            .unwrap();
        assert_eq!(late, Outcome::AfterDelete);
    });
}

/// A `send` probe is recorded on the item whatever its write did (stored, or refused as a
/// duplicate), in both stores, and a plain delivery leaves the last probe as it was.
#[test]
fn a_send_probe_is_recorded_on_the_item_whether_or_not_the_write_was_new() {
    let probe = |object_id, event, key: Option<&str>| ObjectChange {
        probe: key.map(str::to_owned),
        request: None,
        ..change(object_id, event)
    };
    let dynamo = dynamo();
    let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
    let fake = InMemoryObjectStore::new();
    let object_id = next_object_id();
    let first = "tripletex-webhooks-send-1";
    let second = "tripletex-webhooks-send-2";
    dynamo.runtime.block_on(async {
        let steps = [
            (Event::Update(3), Some(first), Outcome::Accepted, first),
            (Event::Update(3), Some(second), Outcome::Duplicate, second),
            (Event::Update(4), None, Outcome::Accepted, second),
        ];
        for (event, key, outcome, recorded) in steps {
            let change = probe(object_id, event, key);
            assert_eq!(store.apply(&change).await.unwrap(), outcome, "{event:?}");
            assert_eq!(fake.apply(&change).await.unwrap(), outcome, "{event:?}");
            let item = stored_item(dynamo, object_id).await;
            assert_eq!(
                item.get(item::LAST_PROBE).and_then(|v| v.as_s().ok()),
                Some(&recorded.to_owned()),
                "DynamoDB after {event:?}"
            );
            let in_memory = fake.get(&change.key.to_string()).unwrap();
            assert_eq!(
                in_memory.last_probe.as_deref(),
                Some(recorded),
                "fake after {event:?}"
            );
        }
    });
}

/// Written before; the replacement (version, seen version, seen deleted); its outcome; the copy
/// after (version, deleted).
type ReplacementCase = (
    &'static [Event],
    (i64, Option<i64>, bool),
    Outcome,
    (Option<i64>, bool),
);

/// Tripletex's answer replaces a copy it contradicts (a forged version, a forged delete) in both
/// stores alike, only while the copy is as the sync saw it, and never a forgotten object.
#[test]
fn a_replacement_undoes_a_forged_write_only_while_the_copy_is_as_seen_in_both_stores() {
    let replace = |object_id, version, seen_version, seen_deleted| ObjectChange {
        write: Write::Replace {
            version,
            payload: payload(version),
            seen: Seen {
                version: seen_version,
                deleted: seen_deleted,
            },
        },
        source: Source::Resync,
        ..change(object_id, Event::Update(version))
    };
    let dynamo = dynamo();
    let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
    let fake = InMemoryObjectStore::new();
    dynamo.runtime.block_on(async {
        // (what was written before, the replacement, its outcome, the copy after: version, deleted)
        let cases: [ReplacementCase; 5] = [
            (
                &[Event::Update(3), Event::Update(99)],
                (3, Some(99), false),
                Outcome::Replaced,
                (Some(3), false),
            ),
            (
                &[Event::Update(4), Event::Delete],
                (4, Some(4), true),
                Outcome::Replaced,
                (Some(4), false),
            ),
            (
                &[Event::Update(3), Event::Update(99), Event::Update(100)],
                (3, Some(99), false),
                Outcome::Stale,
                (Some(100), false),
            ),
            (
                &[Event::Update(4)],
                (4, Some(4), true),
                Outcome::Stale,
                (Some(4), false),
            ),
            (&[], (5, None, false), Outcome::Accepted, (Some(5), false)),
        ];
        for (before, (version, seen_version, seen_deleted), outcome, after) in cases {
            let object_id = next_object_id();
            for event in before {
                store.apply(&change(object_id, *event)).await.unwrap();
                fake.apply(&change(object_id, *event)).await.unwrap();
            }
            let replacement = replace(object_id, version, seen_version, seen_deleted);
            assert_eq!(
                store.apply(&replacement).await.unwrap(),
                outcome,
                "DynamoDB after {before:?}"
            );
            assert_eq!(
                fake.apply(&replacement).await.unwrap(),
                outcome,
                "fake after {before:?}"
            );
            let item = stored_item(dynamo, object_id).await;
            let state = stored_state(&item).unwrap();
            assert_eq!(
                (state.version, state.deleted),
                after,
                "DynamoDB after {before:?}"
            );
            let in_memory = fake.get(&replacement.key.to_string()).unwrap().state;
            assert_eq!(
                (in_memory.version, in_memory.deleted),
                after,
                "fake after {before:?}"
            );
            if outcome == Outcome::Replaced {
                assert!(
                    item.contains_key(item::REPLACED_AT),
                    "the mirror orders by it"
                );
                assert_eq!(
                    item.get(item::VALUE).and_then(|v| v.as_s().ok()),
                    Some(&payload(version).json().to_owned())
                );
            }
        }
    });
}

/// A change of another type, to object 1 of it in its own key space.
fn typed_change(object_type: &str, object_id: i64, event: Event) -> ObjectChange {
    let mut change = change(object_id, event);
    change.key.object_type = object_type.into();
    change.event = change.event.replacen("product", object_type, 1);
    change
}

#[test]
fn a_close_group_tombstone_keeps_the_postings_its_create_stored_and_a_customer_tombstone_nothing() {
    let dynamo = dynamo();
    let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
    let fake = InMemoryObjectStore::new();
    let (group, customer) = (next_object_id(), next_object_id());
    dynamo.runtime.block_on(async {
        for change in [
            typed_change("closeGroup", group, Event::Update(0)),
            typed_change("closeGroup", group, Event::Delete),
            typed_change("closeGroup", group, Event::Update(5)),
            typed_change("customer", customer, Event::Update(3)),
            typed_change("customer", customer, Event::Delete),
        ] {
            let (real, fake_outcome) = (
                store.apply(&change).await.unwrap(),
                fake.apply(&change).await.unwrap(),
            );
            assert_eq!(real, fake_outcome, "{change:?}");
        }
        let read = |key: String| {
            let client = dynamo.client.clone();
            let table = dynamo.table.clone();
            async move {
                client
                    .get_item()
                    .table_name(table)
                    .key(item::KEY, AttributeValue::S(key))
                    .consistent_read(true)
                    .send()
                    .await
                    .unwrap()
                    .item
                    .unwrap()
            }
        };
        let group_key = typed_change("closeGroup", group, Event::Delete)
            .key
            .to_string();
        let stored = read(group_key.clone()).await;
        assert_eq!(stored[item::DELETED], AttributeValue::Bool(true));
        assert!(
            !stored.contains_key(item::VALUE),
            "a tombstone has no value"
        );
        assert_eq!(
            stored[item::LAST_VALUE],
            AttributeValue::S(payload(0).json().to_owned()),
            "the create's postings, kept by the delete; the later update did not lift the tombstone"
        );
        assert_eq!(
            fake.get(&group_key).unwrap().last_value.as_deref(),
            Some(payload(0).json())
        );
        let customer_key = typed_change("customer", customer, Event::Delete)
            .key
            .to_string();
        assert!(
            !read(customer_key.clone())
                .await
                .contains_key(item::LAST_VALUE)
        );
        assert_eq!(fake.get(&customer_key).unwrap().last_value, None);
    });
}

#[test]
fn a_close_group_deleted_before_any_create_keeps_a_null_last_value() {
    let dynamo = dynamo();
    let store = DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table);
    let group = next_object_id();
    dynamo.runtime.block_on(async {
        let delete = typed_change("closeGroup", group, Event::Delete);
        assert_eq!(store.apply(&delete).await.unwrap(), Outcome::Accepted);
        let stored = dynamo
            .client
            .get_item()
            .table_name(&dynamo.table)
            .key(item::KEY, AttributeValue::S(delete.key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        assert_eq!(stored[item::LAST_VALUE], AttributeValue::Null(true));
    });
}

mod large_values {
    //! Values over an item's limit on the real S3 and DynamoDB adapters (moto): the value in the
    //! payload bucket, a pointer on the item, and never a pointer to a missing object.

    use aws_adapters::blobs::S3BlobStore;
    use domain::claim::{LargeValues, values_prefix};
    use domain::item::StoredValue;
    use domain::ports::{BlobStore, StoreError};

    use super::*;

    fn large_change(object_type: &str, object_id: i64, version: i64, bytes: usize) -> ObjectChange {
        let mut change = typed_change(object_type, object_id, Event::Update(version));
        change.write = Write::Versioned {
            version,
            payload: Payload::from_json(&format!(
                r#"{{"id":{object_id},"version":{version},"postings":"{}"}}"#,
                "p".repeat(bytes)
            )),
        };
        change
    }

    async fn bucket(name: &str) -> S3BlobStore {
        let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
        S3BlobStore::new(&sdk, test_support::create_bucket(&sdk, name).await)
    }

    async fn read(dynamo: &Dynamo, key: &ObjectKey) -> Option<HashMap<String, AttributeValue>> {
        dynamo
            .client
            .get_item()
            .table_name(&dynamo.table)
            .key(item::KEY, AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    #[test]
    fn a_1_mib_and_a_5_mib_voucher_are_kept_whole_by_pointer_and_a_tombstone_remembers_one() {
        let dynamo = dynamo();
        dynamo.runtime.block_on(async {
            let blobs = bucket(&format!("payloads-{}", std::process::id())).await;
            let store = LargeValues::new(
                DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table),
                blobs.clone(),
            );
            for mib in [1, 5] {
                let change = large_change("voucher", next_object_id(), 3, mib * 1024 * 1024);
                assert_eq!(store.apply(&change).await.unwrap(), Outcome::Accepted);
                let stored = read(dynamo, &change.key).await.unwrap();
                let Some(StoredValue::Claimed { key, bytes, sha256 }) =
                    aws_adapters::dynamodb::stored_item(&stored).unwrap().value
                else {
                    panic!(
                        "a {mib} MiB value is kept by pointer: {:?}",
                        stored.get(item::VALUE)
                    );
                };
                let Write::Versioned { payload, .. } = &change.write else {
                    unreachable!()
                };
                assert!(key.starts_with(&values_prefix(&change.key)));
                assert_eq!(
                    (bytes, sha256.as_str()),
                    (payload.json().len() as u64, payload.hash())
                );
                let held = blobs.get(&key).await.unwrap().unwrap();
                assert_eq!(held, payload.json().as_bytes(), "the whole value, as sent");
                assert_eq!(store.apply(&change).await.unwrap(), Outcome::Duplicate);
            }
            let group = large_change("closeGroup", next_object_id(), 1, 500_000);
            store.apply(&group).await.unwrap();
            let mut delete = typed_change("closeGroup", group.key.object_id, Event::Delete);
            delete.key = group.key.clone();
            assert_eq!(store.apply(&delete).await.unwrap(), Outcome::Accepted);
            let tombstone = read(dynamo, &group.key).await.unwrap();
            assert!(
                matches!(
                    aws_adapters::dynamodb::stored_item(&tombstone)
                        .unwrap()
                        .last_value,
                    Some(StoredValue::Claimed { .. })
                ),
                "the tombstone keeps the pointer to the postings"
            );
        });
    }

    #[test]
    fn a_failure_on_either_side_of_the_two_writes_leaves_no_pointer_to_a_missing_object() {
        let dynamo = dynamo();
        dynamo.runtime.block_on(async {
            let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
            // The bucket fails: the item is never written.
            let change = large_change("voucher", next_object_id(), 1, 600_000);
            let no_bucket = LargeValues::new(
                DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table),
                S3BlobStore::new(&sdk, "no-such-bucket"),
            );
            let error = no_bucket.apply(&change).await.unwrap_err();
            assert!(matches!(error, StoreError::Rejected { .. }), "{error:?}");
            assert!(read(dynamo, &change.key).await.is_none());

            // The value is stored, then the item write fails (as a crash between the two would
            // leave it): an unused object, and no item pointing anywhere.
            let blobs = bucket(&format!("payloads-fault-{}", std::process::id())).await;
            let no_table = LargeValues::new(
                DynamoObjectStore::new(dynamo.client.clone(), "no-such-table"),
                blobs.clone(),
            );
            assert!(no_table.apply(&change).await.is_err());
            assert!(
                read(dynamo, &change.key).await.is_none(),
                "no pointer was written"
            );
            assert_eq!(
                blobs
                    .delete_under(&values_prefix(&change.key))
                    .await
                    .unwrap(),
                1
            );

            // Once both work, the retried record is stored whole.
            let store = LargeValues::new(
                DynamoObjectStore::new(dynamo.client.clone(), &dynamo.table),
                blobs.clone(),
            );
            assert_eq!(store.apply(&change).await.unwrap(), Outcome::Accepted);
            let Some(StoredValue::Claimed { key, .. }) =
                aws_adapters::dynamodb::stored_item(&read(dynamo, &change.key).await.unwrap())
                    .unwrap()
                    .value
            else {
                panic!("kept by pointer");
            };
            assert!(blobs.get(&key).await.unwrap().is_some());
        });
    }
}
