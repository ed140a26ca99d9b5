//! Figures for the object sync (docs/src/benchmarks.md; never a timed test): a backfill of N objects of
//! one type from the simulator (default 100,000), a nightly run over the same data with 1 % changed,
//! and the same under a tight rate limit. Each prints its wall time, Tripletex requests next to the
//! least a sync could make, 304 share, and the peak heap of one step (one Lambda invocation).
//!
//! `cargo bench -p object-sync --bench sync_against_simulator [-- --objects N] [--no-rate-limit]`
//!
//! Tripletex is the simulator over HTTP through the real client; the AWS side is the in-memory fakes
//! (the same rules as their adapters; tests/against_simulator_and_moto.rs runs the sync on the
//! template's resources in moto, which cannot hold 100,000 queued messages at a useful speed). The
//! bench plays Lambda (one task per invocation) and the worker (each queued envelope applied with
//! the worker's rule), and times the sync's steps apart from the worker's part.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

mod support;

use std::time::{Duration, Instant};

use domain::tripletex::Companies;
use object_sync::config::StepLimits;
use serde_json::json;
use support::Harness;
use test_support::TripletexSimulator;

const COMPANY: i64 = 100;
const TENANT: &str = "acme";

struct Stack {
    sim: TripletexSimulator,
    harness: Harness,
}

fn stack(limits: StepLimits) -> Stack {
    let sim = TripletexSimulator::start();
    sim.add_company(COMPANY, "consumer", "employee").unwrap();
    let companies = Companies::from_json(
        r#"{"companies": {"acme": {"consumerToken": "consumer", "employeeToken": "employee"}}}"#,
    )
    .unwrap();
    let harness = support::harness(sim.api_base_url(), companies, limits);
    Stack { sim, harness }
}

impl Stack {
    async fn start(&self, mode: &str) -> String {
        let report = self.harness.start(mode).await;
        report.runs[0].run_id.clone()
    }

    /// One task, as Lambda hands it over; false when none is waiting.
    async fn run_one_task(&self) -> bool {
        let Some(task) = self.harness.tasks.next() else {
            return false;
        };
        self.harness.sync.run_task(task, 1).await.unwrap();
        true
    }

    async fn apply_webhooks(&self) {
        self.harness.apply_webhooks().await;
    }

    async fn count(&self, run_id: &str, name: &str) -> u64 {
        let counts = self.harness.records.run(TENANT, run_id).unwrap().counts["product"];
        counts
            .named()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| v)
    }

    async fn state(&self, run_id: &str) -> String {
        self.harness
            .records
            .run(TENANT, run_id)
            .unwrap()
            .state
            .as_str()
            .to_owned()
    }

    /// Every product in the simulator is in the copy at its version, with its value.
    fn assert_exact(&self) {
        let truth = self
            .sim
            .control("GET", "/_sim/objects", &serde_json::Value::Null)
            .unwrap();
        for object in truth["values"].as_array().unwrap() {
            let key = format!("{TENANT}#product#{}", object["id"]);
            let item = self.harness.store.get(&key).unwrap();
            assert_eq!(item.state.version, object["version"].as_i64(), "{key}");
            let value: serde_json::Value =
                serde_json::from_str(item.value.as_deref().unwrap()).unwrap();
            assert_eq!(value, object["value"], "{key}");
        }
    }
}

#[global_allocator]
static ALLOCATOR: test_support::heap::CountingAllocator = test_support::heap::CountingAllocator;

const PAGE_SIZE: u32 = 1000;
const FETCH_BATCH: usize = 100;

struct Phase {
    name: &'static str,
    run_id: String,
    sync_time: Duration,
    total_time: Duration,
    peak_step_heap: usize,
    steps: usize,
    /// What the steps read of the copy, as the DynamoDB adapter reads it.
    reads: test_support::StoreReads,
}

/// Runs a started run to its end, timing the sync's steps apart from the worker's writes.
async fn drive(stack: &Stack, name: &'static str, run_id: String) -> Phase {
    let started = Instant::now();
    let mut sync_time = Duration::ZERO;
    let mut peak_step_heap = 0;
    let mut steps = 0;
    stack.harness.store.take_reads();
    loop {
        let baseline = test_support::heap::start_peak();
        let step_started = Instant::now();
        let ran = stack.run_one_task().await;
        sync_time += step_started.elapsed();
        peak_step_heap = peak_step_heap.max(test_support::heap::peak_since(baseline));
        stack.apply_webhooks().await;
        if !ran {
            break;
        }
        steps += 1;
    }
    Phase {
        name,
        run_id,
        sync_time,
        total_time: started.elapsed(),
        peak_step_heap,
        steps,
        reads: stack.harness.store.take_reads(),
    }
}

async fn report(stack: &Stack, phase: &Phase, objects: u64, changed: u64) {
    let count = |name| stack.count(&phase.run_id, name);
    let (requests, pages, not_modified, fetched, listed) = (
        count("requests").await,
        count("pages").await,
        count("pagesNotModified").await,
        count("fetched").await,
        count("listed").await,
    );
    // A listing ends on a short page, so N objects take floor(N / page) + 1 pages; fetches batch.
    let minimum = objects / u64::from(PAGE_SIZE) + 1 + changed.div_ceil(FETCH_BATCH as u64);
    println!("{}", phase.name);
    println!(
        "  state {}, {} steps, listed {listed}, fetched {fetched}",
        stack.state(&phase.run_id).await,
        phase.steps
    );
    println!(
        "  Tripletex requests {requests} (minimum {minimum}: {} list pages + {} fetches) = {:.3} x minimum",
        objects / u64::from(PAGE_SIZE) + 1,
        changed.div_ceil(FETCH_BATCH as u64),
        requests as f64 / minimum as f64
    );
    println!(
        "  304 share {:.1} % ({not_modified} of {pages} pages)",
        100.0 * not_modified as f64 / pages.max(1) as f64
    );
    println!(
        "  DynamoDB reads: {} objects by id in {} BatchGetItem calls ({:.2} per object listed, a 304 page's included), {} byType index items (the check of the copy)",
        phase.reads.by_id,
        phase.reads.batch_gets,
        phase.reads.by_id as f64 / listed.max(1) as f64,
        phase.reads.index_items
    );
    println!(
        "  sync steps {:.1} s ({:.1} µs per object listed), with the worker's part {:.1} s; peak heap of one step {:.1} MiB",
        phase.sync_time.as_secs_f64(),
        phase.sync_time.as_secs_f64() * 1e6 / objects.max(1) as f64,
        phase.total_time.as_secs_f64(),
        phase.peak_step_heap as f64 / (1024.0 * 1024.0)
    );
}

/// Changes every hundredth object: 1 % of the data, spread over every page.
fn change_one_percent(stack: &Stack, ids: &[i64], round: usize) -> u64 {
    let mut changed = 0;
    for id in ids.iter().skip(round).step_by(100) {
        stack
            .sim
            .control(
                "POST",
                "/_sim/changes",
                &json!({"companyId": COMPANY, "type": "product", "verb": "update", "id": id,
                        "fields": {"name": format!("night {round}")}}),
            )
            .unwrap();
        changed += 1;
    }
    changed
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let objects: usize = args
        .iter()
        .position(|a| a == "--objects")
        .and_then(|i| args.get(i + 1))
        .map_or(100_000, |n| n.parse().unwrap());
    // The rate-limited night takes (requests / 10) x 2 s: 4 minutes at 1,000,000 objects.
    let rate_limited_night = !args.iter().any(|a| a == "--no-rate-limit");
    let limits = StepLimits {
        page_size: PAGE_SIZE,
        fetch_batch: FETCH_BATCH,
        // The bench applies every queued envelope before the next step: nothing is in flight.
        drift_grace: Duration::ZERO,
        // The worker's part is played between steps: what was queued is stored.
        store_wait: Duration::ZERO,
        marker_poll: Duration::ZERO,
        ..StepLimits::default()
    };
    let stack = stack(limits);
    stack
        .sim
        .control(
            "POST",
            "/_sim/rate-limit",
            &json!({"limit": 1_000_000, "periodSeconds": 60}),
        )
        .unwrap();
    // Whether Tripletex holds plain lists (no date filter) to its 10,000 per result is not stated
    // (docs/src/concepts/object-sync.md); the simulator does by default, so it is lifted here.
    stack
        .sim
        .control("POST", "/_sim/list-limit", &json!({"limit": 100_000_000}))
        .unwrap();
    let seeding = Instant::now();
    let mut ids: Vec<i64> = Vec::with_capacity(objects);
    while ids.len() < objects {
        let count = (objects - ids.len()).min(10_000);
        let created = stack
            .sim
            .control(
                "POST",
                "/_sim/objects",
                &json!({"companyId": COMPANY, "type": "product", "count": count}),
            )
            .unwrap();
        ids.extend(serde_json::from_value::<Vec<i64>>(created["ids"].clone()).unwrap());
    }
    println!(
        "{objects} products in the simulator ({:.1} s); pages of {PAGE_SIZE}, fetches of {FETCH_BATCH}",
        seeding.elapsed().as_secs_f64()
    );

    let run_id = stack.start("backfill").await;
    let backfill = drive(&stack, "backfill", run_id).await;
    report(&stack, &backfill, objects as u64, objects as u64).await;
    assert_eq!(
        stack.harness.store.len(),
        objects,
        "every object is in the copy"
    );

    let changed = change_one_percent(&stack, &ids, 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let run_id = stack.start("reconcile").await;
    let nightly = drive(&stack, "nightly, 1 % changed", run_id).await;
    report(&stack, &nightly, objects as u64, changed).await;

    let run_id = stack.start("reconcile").await;
    let quiet = drive(&stack, "a night with nothing changed", run_id).await;
    report(&stack, &quiet, objects as u64, 0).await;

    if !rate_limited_night {
        stack.assert_exact();
        println!("the copy is exact: {objects} products, every version as the simulator has it");
        return;
    }
    // A tight limit: the sync's pace should be the limit's, not slower.
    let (limit, period) = (10_u64, 2.0_f64);
    stack
        .sim
        .control(
            "POST",
            "/_sim/rate-limit",
            &json!({"limit": limit, "periodSeconds": period}),
        )
        .unwrap();
    let changed = change_one_percent(&stack, &ids, 2);
    let run_id = stack.start("reconcile").await;
    let limited = drive(
        &stack,
        "nightly, 1 % changed, rate limit 10 per 2 s",
        run_id,
    )
    .await;
    report(&stack, &limited, objects as u64, changed).await;
    let minimum = objects as u64 / u64::from(PAGE_SIZE) + 1 + changed.div_ceil(FETCH_BATCH as u64);
    // The first `limit` calls go at once; each further `limit` waits one period.
    let allowed = minimum.div_ceil(limit).saturating_sub(1) as f64 * period;
    if allowed > 0.0 {
        println!(
            "  the limit allows the minimum {minimum} requests in {allowed:.1} s; the sync took {:.1} s = {:.2} x",
            limited.sync_time.as_secs_f64(),
            limited.sync_time.as_secs_f64() / allowed
        );
    } else {
        println!(
            "  {minimum} requests fit in one period of the limit: nothing to wait for at this size"
        );
    }
    stack.assert_exact();
    println!("the copy is exact: {objects} products, every version as the simulator has it");
}
