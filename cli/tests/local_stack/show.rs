//! `show`: one object of the copy, beside what Tripletex has.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_a_stored_object_and_exits_1_for_one_not_in_the_copy() {
    let local = local_stack("cli-show").await;
    local
        .put(
            "ObjectsTable",
            &[
                ("pk", s("default#customer#42")),
                ("version", n(7)),
                ("deleted", AttributeValue::Bool(false)),
                ("source", s("resync")),
                ("lastEvent", s("customer.update")),
                ("receivedAt", s("2026-12-01T10:00:00Z")),
                ("updatedAt", s("2026-12-01T10:00:01Z")),
                ("lastRequestId", s("sync:20261201T0959Z-nightly")),
                ("value", s(r#"{"id":42,"version":7,"name":"Acme AS"}"#)),
            ],
        )
        .await;
    let (shown, code) = local.json(&["show", "default", "customer", "42"]);
    assert_eq!(code, Some(0));
    assert_eq!(shown["key"], "default#customer#42");
    assert_eq!(shown["checkedTripletex"], false);
    let object = &shown["stored"];
    assert_eq!(object["version"], 7);
    assert_eq!(object["deleted"], false);
    assert_eq!(object["source"], "resync");
    assert_eq!(object["value"]["name"], "Acme AS");
    assert_eq!(object["lastRequest"], "sync:20261201T0959Z-nightly");
    let table = local.cli(&["show", "default", "customer", "42"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains(
            "sync:20261201T0959Z-nightly (tripletex-webhooks log --request sync:20261201T0959Z-nightly)"
        ),
        "show names the request that made the version, and how to follow it"
    );

    let (missing, code) = local.json(&["show", "default", "customer", "43"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        missing,
        serde_json::json!({"key": "default#customer#43", "stored": null, "inTripletex": null,
                           "checkedTripletex": false})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn show_tripletex_puts_the_version_tripletex_has_beside_the_stored_one() {
    let (sim, ids) = simulator_with_two_customers();
    let truth = sim.control("GET", "/_sim/objects", &Value::Null).unwrap();
    let version_of = |id: i64| {
        truth["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap()["version"]
            .as_i64()
            .unwrap()
    };
    let credentials = credentials_of_the_default_company("show");
    let local = local_stack_on_tripletex("cli-show-tripletex", &sim, &credentials).await;
    let stored = |id: i64, version: i64| {
        vec![
            ("pk", s(&format!("default#customer#{id}"))),
            ("version", n(version)),
            ("deleted", AttributeValue::Bool(false)),
            // Every write of the worker stamps it, and the item's one reading asks for it.
            ("updatedAt", s("2026-12-01T10:00:01Z")),
            ("value", s(&format!(r#"{{"id":{id},"version":{version}}}"#))),
        ]
    };
    // One at Tripletex's version, one behind it.
    local
        .put("ObjectsTable", &stored(ids[0], version_of(ids[0])))
        .await;
    local
        .put("ObjectsTable", &stored(ids[1], version_of(ids[1]) - 1))
        .await;

    let id = ids[0].to_string();
    let (same, code) = local.json(&["show", "default", "customer", &id, "--tripletex"]);
    assert_eq!(code, Some(0), "{same}");
    assert_eq!(same["inTripletex"]["version"], version_of(ids[0]));
    assert_eq!(same["inTripletex"]["value"]["id"], ids[0]);

    let id = ids[1].to_string();
    let behind = local.cli(&["show", "default", "customer", &id, "--tripletex"]);
    let text = String::from_utf8_lossy(&behind.stdout);
    assert_eq!(behind.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "Tripletex has version {}: the copy differs: the next reconciliation corrects it",
            version_of(ids[1])
        )),
        "{text}"
    );

    let (gone, code) = local.json(&["show", "default", "customer", "999", "--tripletex"]);
    assert_eq!(code, Some(1), "not in the copy");
    assert_eq!(
        (
            gone["inTripletex"].clone(),
            gone["checkedTripletex"].clone()
        ),
        (Value::Null, Value::Bool(true))
    );
}
