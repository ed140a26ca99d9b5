//! Figures for a nightly reconciliation over many companies (docs/src/benchmarks.md; never a timed
//! test): 50 companies of 2,000 products each are backfilled, 1 % of each company's products change,
//! and one reconciliation of every company runs, one task at a time as Lambda hands them over. It
//! prints the wall time, Tripletex requests next to the least a sync could make, and the peak heap of
//! one step, then checks that every company's copy is exact.
//!
//! `cargo bench -p object-sync --bench sync_over_many_companies [-- --companies N --objects M]`
//!
//! Tripletex is the simulator over HTTP through the real client (one HTTP client for every company,
//! as in the function); the AWS side is the in-memory fakes, as in `sync_against_simulator`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use domain::tripletex::Companies;
use object_sync::config::StepLimits;
use serde_json::json;
use test_support::TripletexSimulator;

#[global_allocator]
static ALLOCATOR: test_support::heap::CountingAllocator = test_support::heap::CountingAllocator;

const PAGE_SIZE: u32 = 1000;
const FETCH_BATCH: usize = 100;

fn company_id(index: usize) -> i64 {
    1000 + index as i64
}

fn tenant(index: usize) -> String {
    format!("company-{index}")
}

fn argument(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |n| n.parse().unwrap())
}

/// Every request the simulator has answered so far.
fn simulator_requests(sim: &TripletexSimulator) -> usize {
    sim.control("GET", "/_sim/requests", &serde_json::Value::Null)
        .unwrap()["values"]
        .as_array()
        .unwrap()
        .len()
}

struct Night {
    sync_time: Duration,
    wall_time: Duration,
    steps: usize,
    peak_step_heap: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let companies = argument(&args, "--companies", 50);
    let objects = argument(&args, "--objects", 2000);

    let sim = TripletexSimulator::start();
    sim.control(
        "POST",
        "/_sim/rate-limit",
        &json!({"limit": 100_000_000, "periodSeconds": 60}),
    )
    .unwrap();
    let mut credentials = serde_json::Map::new();
    let mut ids: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    let seeding = Instant::now();
    for index in 0..companies {
        let employee = format!("employee-{index}");
        sim.add_company(company_id(index), "consumer", &employee)
            .unwrap();
        credentials.insert(
            tenant(index),
            json!({"consumerToken": "consumer", "employeeToken": employee}),
        );
        let created = sim
            .control(
                "POST",
                "/_sim/objects",
                &json!({"companyId": company_id(index), "type": "product", "count": objects}),
            )
            .unwrap();
        ids.insert(
            index,
            serde_json::from_value(created["ids"].clone()).unwrap(),
        );
    }
    println!(
        "{companies} companies x {objects} products in the simulator ({:.1} s); pages of {PAGE_SIZE}, fetches of {FETCH_BATCH}",
        seeding.elapsed().as_secs_f64()
    );

    let harness = support::harness(
        sim.api_base_url(),
        Companies::from_json(&json!({ "companies": credentials }).to_string()).unwrap(),
        StepLimits {
            page_size: PAGE_SIZE,
            fetch_batch: FETCH_BATCH,
            // The bench applies every queued envelope before the next step: nothing is in flight.
            drift_grace: std::time::Duration::ZERO,
            // The worker's part is played between steps: what was queued is stored.
            store_wait: std::time::Duration::ZERO,
            marker_poll: std::time::Duration::ZERO,
            ..StepLimits::default()
        },
    );
    let (sync, tasks, store, records) = (
        &harness.sync,
        &harness.tasks,
        &harness.store,
        &harness.records,
    );

    // Every company's run, its tasks taken one at a time; what the sync queues is applied with the
    // worker's rule between steps, as the worker would.
    let run_all = |mode: &'static str| {
        let harness = &harness;
        async move {
            let started = Instant::now();
            let report = harness.start(mode).await;
            let mut night = Night {
                sync_time: Duration::ZERO,
                wall_time: Duration::ZERO,
                steps: 0,
                peak_step_heap: 0,
            };
            while let Some(task) = tasks.next() {
                let baseline = test_support::heap::start_peak();
                let step_started = Instant::now();
                sync.run_task(task, 1).await.unwrap();
                night.sync_time += step_started.elapsed();
                night.peak_step_heap = night
                    .peak_step_heap
                    .max(test_support::heap::peak_since(baseline));
                night.steps += 1;
                harness.apply_webhooks().await;
            }
            night.wall_time = started.elapsed();
            (report, night)
        }
    };

    let (backfill, night) = run_all("backfill").await;
    assert_eq!(backfill.runs.len(), companies, "a run per company");
    assert_eq!(store.len(), companies * objects, "every product copied");
    println!(
        "backfill of every company: {} steps, {:.1} s",
        night.steps,
        night.wall_time.as_secs_f64()
    );

    // 1 % of each company's products, spread over its pages.
    let mut changed = 0_u64;
    for (index, company_ids) in &ids {
        for id in company_ids.iter().step_by(100) {
            sim.control(
                "POST",
                "/_sim/changes",
                &json!({"companyId": company_id(*index), "type": "product", "verb": "update",
                        "id": id, "fields": {"name": "changed tonight"}}),
            )
            .unwrap();
            changed += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;

    let seen_before = simulator_requests(&sim);
    let (reconcile, night) = run_all("reconcile").await;
    let seen = simulator_requests(&sim) - seen_before;
    let mut requests = 0;
    let mut fetched = 0;
    let mut states = BTreeMap::new();
    for run in &reconcile.runs {
        let record = records.run(&run.tenant, &run.run_id).unwrap();
        *states.entry(record.state.as_str().to_owned()).or_insert(0) += 1;
        let counts = record.counts["product"].named();
        let count = |name: &str| {
            counts
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, v)| *v)
        };
        requests += count("requests");
        fetched += count("fetched");
    }
    let pages_per_company = objects as u64 / u64::from(PAGE_SIZE) + 1;
    let fetches_per_company = (objects as u64).div_ceil(100).div_ceil(FETCH_BATCH as u64);
    let minimum = companies as u64 * (pages_per_company + fetches_per_company);
    println!("nightly reconciliation of {companies} companies, {changed} products changed (1 %)");
    println!(
        "  runs {states:?}, {} steps, fetched {fetched}",
        night.steps
    );
    println!(
        "  Tripletex requests {requests} (minimum {minimum}: {pages_per_company} list pages + {fetches_per_company} fetch per company) = {:.3} x minimum",
        requests as f64 / minimum as f64
    );
    println!(
        "  the simulator saw {seen} requests in all (each company's session, made in the backfill, still valid)"
    );
    println!(
        "  wall time {:.1} s (sync steps {:.1} s, the rest is the worker's part); peak heap of one step {:.1} MiB",
        night.wall_time.as_secs_f64(),
        night.sync_time.as_secs_f64(),
        night.peak_step_heap as f64 / (1024.0 * 1024.0)
    );

    let truth = sim
        .control("GET", "/_sim/objects", &serde_json::Value::Null)
        .unwrap();
    let mut checked = 0;
    for object in truth["values"].as_array().unwrap() {
        let index = (object["companyId"].as_i64().unwrap() - 1000) as usize;
        let key = format!("{}#product#{}", tenant(index), object["id"]);
        let item = store.get(&key).unwrap();
        assert_eq!(item.state.version, object["version"].as_i64(), "{key}");
        let value: serde_json::Value =
            serde_json::from_str(item.value.as_deref().unwrap()).unwrap();
        assert_eq!(value, object["value"], "{key}");
        checked += 1;
    }
    assert_eq!(checked, companies * objects);
    assert_eq!(fetched, changed, "only the changed products fetched");
    println!(
        "every company's copy is exact: {checked} products, every version as the simulator has it"
    );
}
