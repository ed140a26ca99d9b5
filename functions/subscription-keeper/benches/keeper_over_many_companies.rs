//! The keeper over many companies against the Tripletex simulator, over real HTTP: each company has
//! 13 subscriptions of ours in place, and every tenth has two that Tripletex disabled after errors.
//! Prints the run's wall time, its Tripletex requests against the least a run can make (a session,
//! one page of subscriptions, one update per re-enable, per company) and the peak heap of the run.
//!
//! `cargo bench -p subscription-keeper --bench keeper_over_many_companies` (500 companies; `-- --companies N`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_adapters::secrets::SecretSource;
use domain::auth::AuthConfig;
use domain::keeper::{DEFAULT_RESYNC_LOOKBACK, KeeperPolicy, ReEnablePolicy};
use domain::tripletex::CredentialsSecret;
use serde_json::{Value, json};
use subscription_keeper::handler::{Keeper, KeeperRequest};
use test_support::heap::{CountingAllocator, peak_since, start_peak};
use test_support::{InMemoryResyncLedger, TripletexSimulator};
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const RECEIVER: &str = "https://receiver.example.com/";
const HEADER_NAME: &str = "X-Tripletex-Webhook-Token";
const EVENTS: [&str; 13] = [
    "customer.create",
    "customer.update",
    "customer.delete",
    "product.create",
    "product.update",
    "product.delete",
    "order.create",
    "order.update",
    "order.delete",
    "invoice.charged",
    "voucher.create",
    "voucher.update",
    "voucher.delete",
];
/// Every this many companies, one has two subscriptions disabled.
const DISABLED_EVERY: usize = 10;
const DISABLED_EACH: usize = 2;

fn main() {
    let mut companies = 500_usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--companies" {
            companies = args
                .next()
                .and_then(|n| n.parse().ok())
                .expect("--companies N");
        }
    }
    let sim = TripletexSimulator::start();
    let started = Instant::now();
    let mut secrets = serde_json::Map::new();
    let mut tenants = serde_json::Map::new();
    let mut disabled = 0;
    for n in 0..companies {
        let (tenant, company_id) = (format!("c{n}"), 1000 + n as i64);
        let (consumer, employee) = (format!("consumer-{n}"), format!("employee-{n}"));
        sim.add_company(company_id, &consumer, &employee).unwrap();
        secrets.insert(
            tenant.clone(),
            json!({"consumerToken": consumer, "employeeToken": employee}),
        );
        tenants.insert(
            tenant.clone(),
            json!({"header": {"name": HEADER_NAME, "values": [format!("token-{n}")]}}),
        );
        for (index, event) in EVENTS.iter().enumerate() {
            let created = sim
                .control(
                    "POST",
                    "/_sim/subscriptions",
                    &json!({"_company": company_id, "event": event,
                        "targetUrl": format!("{RECEIVER}t/{tenant}"), "fields": "*",
                        "authHeaderName": HEADER_NAME, "authHeaderValue": format!("token-{n}")}),
                )
                .unwrap();
            if n % DISABLED_EVERY == 0 && index < DISABLED_EACH {
                let id = created["value"]["id"].as_i64().unwrap();
                sim.control(
                    "PUT",
                    &format!("/_sim/subscriptions/{id}/status"),
                    &json!({"status": "DISABLED_TOO_MANY_ERRORS"}),
                )
                .unwrap();
                disabled += 1;
            }
        }
    }
    println!(
        "keeper over {companies} companies: {} subscriptions of ours, {disabled} disabled (set up in {:.1} s)",
        companies * EVENTS.len(),
        started.elapsed().as_secs_f64()
    );

    let keeper = Keeper::new(
        HttpTripletexCompanies::new(sim.api_base_url(), RetryPolicy::default()).unwrap(),
        Arc::new(InMemoryResyncLedger::new()),
        SecretSource::Fixed(Arc::new(
            CredentialsSecret::from_json(&json!({ "companies": secrets }).to_string()).unwrap(),
        )),
        SecretSource::Fixed(Arc::new(
            AuthConfig::from_json(&json!({ "tenants": tenants }).to_string()).unwrap(),
        )),
        KeeperPolicy {
            receiver_url: RECEIVER.into(),
            events: EVENTS.iter().map(|e| (*e).to_owned()).collect(),
            fields: "*".into(),
            reenable: ReEnablePolicy::default(),
            resync_lookback: DEFAULT_RESYNC_LOOKBACK,
            dry_run: false,
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let requests_before = api_requests(&sim);
    let mark = start_peak();
    let run_started = Instant::now();
    let report = runtime
        .block_on(keeper.handle(KeeperRequest::default()))
        .unwrap();
    let wall = run_started.elapsed();
    let peak = peak_since(mark);
    let requests = api_requests(&sim) - requests_before;
    let minimum = 2 * companies + disabled;

    let totals = serde_json::to_value(report.totals).unwrap();
    assert_eq!(totals["companiesFailed"], 0, "{totals}");
    assert_eq!(totals["failed"], 0, "{totals}");
    assert_eq!(totals["reEnabled"], disabled, "{totals}");
    assert_eq!(totals["created"], 0, "{totals}");
    println!("  run: {}", totals);
    println!(
        "  wall time {:.2} s ({:.1} ms per company)",
        wall.as_secs_f64(),
        per(wall, companies)
    );
    println!(
        "  Tripletex requests {requests}, against a minimum of {minimum} ({:.3}×): a session and one page per company, one update per re-enable",
        requests as f64 / minimum as f64
    );
    println!(
        "  peak heap of the run {:.1} MiB",
        peak as f64 / (1024.0 * 1024.0)
    );
}

fn per(wall: Duration, companies: usize) -> f64 {
    wall.as_secs_f64() * 1000.0 / companies as f64
}

/// The simulator's API requests so far (its control calls are not counted).
fn api_requests(sim: &TripletexSimulator) -> usize {
    let all: Value = sim.control("GET", "/_sim/requests", &Value::Null).unwrap();
    all["values"]
        .as_array()
        .map(|requests| {
            requests
                .iter()
                .filter(|r| !r[1].as_str().unwrap_or_default().starts_with("/_sim"))
                .count()
        })
        .unwrap_or(0)
}
