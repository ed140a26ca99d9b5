//! The object endpoints over the wire, against the Tripletex simulator (tools/simulator/): paging to
//! the end, hidden partitions, date windows halved on "result set too large", 304 for an unchanged
//! page, fetches by id with the subscription's fields, 404 for a deleted object, and the rate limit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::BTreeSet;
use std::time::Duration;

use domain::ports::ObjectsApi;
use domain::sync::{DateWindow, FULL_RANGE, FetchRequest, ListedPage, Lookup, PageRequest};
use domain::tripletex::TripletexCredentials;
use serde_json::{Value, json};
use test_support::TripletexSimulator;
use tripletex_client::{HttpTripletexApi, RetryPolicy};

const COMPANY: i64 = 100;

fn start() -> (TripletexSimulator, HttpTripletexApi) {
    let sim = TripletexSimulator::start();
    sim.add_company(COMPANY, "consumer", "employee").unwrap();
    let credentials: TripletexCredentials =
        serde_json::from_value(json!({"consumerToken": "consumer", "employeeToken": "employee"}))
            .unwrap();
    let retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(10),
    };
    let api = HttpTripletexApi::new(&sim.api_base_url(), credentials, retry).unwrap();
    (sim, api)
}

fn seed(sim: &TripletexSimulator, kind: &str, count: usize) -> Vec<i64> {
    let created = sim
        .control(
            "POST",
            "/_sim/objects",
            &json!({"companyId": COMPANY, "type": kind, "count": count}),
        )
        .unwrap();
    serde_json::from_value(created["ids"].clone()).unwrap()
}

fn listable(object_type: &str) -> &'static domain::sync::ObjectTypeSpec {
    domain::sync::listable(object_type).unwrap_or_else(|| panic!("{object_type} is listable"))
}

/// Every id of one partition and window, page by page.
async fn list_all(
    api: &HttpTripletexApi,
    object_type: &str,
    partition: usize,
    window: Option<DateWindow>,
    count: u32,
) -> Result<(Vec<i64>, usize), domain::tripletex::TripletexError> {
    let spec = listable(object_type);
    let (mut ids, mut pages, mut from) = (Vec::new(), 0, 0);
    loop {
        let page = PageRequest {
            spec,
            partition: &spec.partitions[partition],
            window,
            from,
            count,
            digest: None,
        };
        let ListedPage::Listed { objects, .. } = api.list_page(&page).await? else {
            panic!("a page without a digest is never 304");
        };
        pages += 1;
        from += objects.len() as u64;
        let short = objects.len() < count as usize;
        ids.extend(objects.iter().map(|o| o.id));
        if short {
            return Ok((ids, pages));
        }
    }
}

#[tokio::test]
async fn lists_every_object_page_by_page_in_id_order() {
    let (sim, api) = start();
    let seeded = seed(&sim, "product", 250);

    let (ids, pages) = list_all(&api, "product", 0, None, 100).await.unwrap();

    assert_eq!(ids, seeded, "all of them, once, by id");
    assert_eq!(pages, 3, "ceil(250 / 100)");
}

#[tokio::test]
async fn inactive_customers_are_listed_in_their_own_partition() {
    let (sim, api) = start();
    let seeded: BTreeSet<i64> = seed(&sim, "customer", 30).into_iter().collect();

    let (active, _) = list_all(&api, "customer", 0, None, 1000).await.unwrap();
    let (inactive, _) = list_all(&api, "customer", 1, None, 1000).await.unwrap();

    assert!(!inactive.is_empty() && !active.is_empty());
    let all: BTreeSet<i64> = active.iter().chain(&inactive).copied().collect();
    assert_eq!(
        all, seeded,
        "the two partitions together are every customer"
    );
    assert_eq!(
        all.len(),
        active.len() + inactive.len(),
        "and no customer twice"
    );
}

#[tokio::test]
async fn a_window_too_large_is_refused_and_its_halves_list_everything() {
    let (sim, api) = start();
    let seeded: BTreeSet<i64> = seed(&sim, "order", 40).into_iter().collect();
    sim.control("POST", "/_sim/list-limit", &json!({"limit": 15}))
        .unwrap();

    let whole = list_all(&api, "order", 0, Some(FULL_RANGE), 1000).await;
    assert!(
        whole.as_ref().is_err_and(|e| e.is_result_too_large()),
        "{whole:?}"
    );

    // Halve every refused window until each is small enough: the windows tile the range.
    let mut windows = vec![FULL_RANGE];
    let mut listed = BTreeSet::new();
    let mut calls = 0;
    while let Some(window) = windows.pop() {
        calls += 1;
        match list_all(&api, "order", 0, Some(window), 1000).await {
            Ok((ids, _)) => listed.extend(ids),
            Err(error) if error.is_result_too_large() => {
                let (first, second) = window.halves().expect("splittable");
                windows.extend([first, second]);
            }
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!(listed, seeded);
    assert!(
        calls < 40,
        "bisection, not a day-by-day walk: {calls} calls"
    );
}

#[tokio::test]
async fn vouchers_not_yet_posted_are_listed_at_their_own_endpoint_and_fetched_by_id() {
    let (sim, api) = start();
    let seeded: BTreeSet<i64> = seed(&sim, "voucher", 30).into_iter().collect();
    let (posted, _) = list_all(&api, "voucher", 0, Some(FULL_RANGE), 1000)
        .await
        .unwrap();
    let (non_posted, _) = list_all(&api, "voucher", 1, Some(FULL_RANGE), 1000)
        .await
        .unwrap();
    assert!(!non_posted.is_empty(), "the simulator holds some");
    let both: BTreeSet<i64> = posted.iter().chain(&non_posted).copied().collect();
    assert_eq!(both, seeded, "the two lists together are every voucher");
    let spec = listable("voucher");
    let fetched = api
        .fetch(&FetchRequest {
            spec,
            partition: &spec.partitions[1],
            window: Some(FULL_RANGE),
            ids: &non_posted,
            fields: "*",
        })
        .await
        .unwrap();
    assert_eq!(
        fetched.iter().map(|o| o.id).collect::<Vec<_>>(),
        non_posted,
        "one by id each: that endpoint filters on no id"
    );
}

#[tokio::test]
async fn an_unchanged_page_is_304_and_a_changed_one_comes_back_in_full() {
    let (sim, api) = start();
    let ids = seed(&sim, "product", 3);
    let spec = listable("product");
    let mut page = PageRequest {
        spec,
        partition: &spec.partitions[0],
        window: None,
        from: 0,
        count: 1000,
        digest: None,
    };
    let ListedPage::Listed { digest, .. } = api.list_page(&page).await.unwrap() else {
        panic!("first listing");
    };
    page.digest = digest;

    assert_eq!(api.list_page(&page).await.unwrap(), ListedPage::Unchanged);

    sim.control(
        "POST",
        "/_sim/changes",
        &json!({"companyId": COMPANY, "type": "product", "verb": "update", "id": ids[1],
                "fields": {"name": "renamed"}}),
    )
    .unwrap();
    let ListedPage::Listed {
        objects, digest, ..
    } = api.list_page(&page).await.unwrap()
    else {
        panic!("a changed page is not 304");
    };
    assert_ne!(digest, page.digest);
    assert_eq!(objects[1].version, Some(1));
}

#[tokio::test]
async fn fetches_objects_by_id_with_the_subscription_fields_as_tripletex_holds_them() {
    let (sim, api) = start();
    let ids = seed(&sim, "customer", 14);
    let inactive: Vec<i64> = ids.iter().copied().filter(|id| id % 7 == 0).collect();
    let spec = listable("customer");

    let fetched = api
        .fetch(&FetchRequest {
            spec,
            partition: &spec.partitions[1],
            window: None,
            ids: &inactive,
            fields: "id,version,name,isInactive",
        })
        .await
        .unwrap();

    assert_eq!(fetched.iter().map(|o| o.id).collect::<Vec<_>>(), inactive);
    let truth = sim.control("GET", "/_sim/objects", &Value::Null).unwrap();
    let first: Value = serde_json::from_str(fetched[0].value.get()).unwrap();
    let held = truth["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == fetched[0].id)
        .unwrap();
    assert_eq!(first["name"], held["value"]["name"]);
    assert_eq!(first["isInactive"], true);
    assert!(
        first.get("customerNumber").is_none(),
        "only the fields asked for"
    );
    assert_eq!(fetched[0].version, Some(0));
}

#[tokio::test]
async fn a_deleted_object_is_not_found_and_a_live_one_is_found_in_full() {
    let (sim, api) = start();
    let ids = seed(&sim, "order", 2);
    sim.control(
        "POST",
        "/_sim/changes",
        &json!({"companyId": COMPANY, "type": "order", "verb": "delete", "id": ids[0]}),
    )
    .unwrap();
    let spec = listable("order");

    assert!(matches!(
        api.lookup(spec, ids[0], "*").await.unwrap(),
        Lookup::NotFound
    ));
    let Lookup::Found(found) = api.lookup(spec, ids[1], "*").await.unwrap() else {
        panic!("a live order is found");
    };
    assert_eq!((found.id, found.version), (ids[1], Some(0)));
    let value: serde_json::Value = serde_json::from_str(found.value.get()).unwrap();
    assert!(
        value.as_object().unwrap().len() > 2,
        "in full, with the fields asked: {value}"
    );
}

#[tokio::test]
async fn the_rate_limit_is_waited_out_without_a_reset_header() {
    let (sim, api) = start();
    seed(&sim, "product", 5);
    sim.control(
        "POST",
        "/_sim/rate-limit",
        &json!({"limit": 3, "periodSeconds": 1}),
    )
    .unwrap();

    let (ids, pages) = list_all(&api, "product", 0, None, 1).await.unwrap();

    assert_eq!(
        (ids.len(), pages),
        (5, 6),
        "every page, after waiting out the 429s"
    );
    let requests = sim.control("GET", "/_sim/requests", &Value::Null).unwrap();
    let listed = requests["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r[1] == "/v2/product")
        .count();
    assert!(listed > 6, "some calls were refused and repeated: {listed}");
}
