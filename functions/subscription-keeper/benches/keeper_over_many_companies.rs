//! The keeper over many companies against the Tripletex simulator, over real HTTP: each company has
//! 13 subscriptions of ours in place, and every tenth has two that Tripletex disabled after errors.
//! Prints the run's wall time, its Tripletex requests against the least a run can make (a session,
//! one page of subscriptions, one update per re-enable, per company) and the peak heap of the run.
//!
//! `cargo bench -p subscription-keeper --bench keeper_over_many_companies` (500 companies; `-- --companies N`).
//!
//! `-- --accountant --companies 2000 --latency-ms 150`: the companies are client companies of one
//! accountant key, added to the registry (the credentials secret holds the one named credential,
//! the receiver's secret one master key), and the simulator answers each call after 150 ms, about
//! Tripletex's own latency. The run has the keeper's default timeout (120 s) as its deadline, and
//! the secrets' sizes are printed beside it. One key's calls share one rate limit (per employee and
//! consumer token): `-- --rate-limit N` sets the simulator's per minute (default 1,000); runs are
//! repeated, a period apart, until every company was handled.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_adapters::secrets::SecretSource;
use domain::auth::AuthConfig;
use domain::keeper::KeeperRequest;
use domain::keeper::{DEFAULT_RESYNC_LOOKBACK, KeeperPolicy, ReEnablePolicy};
use domain::ports::CompanyRegistry as _;
use domain::tripletex::CredentialsSecret;
use serde_json::{Value, json};
use subscription_keeper::handler::Keeper;
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

/// A real-length token: base64 of `{"tokenId", "token"}`, 88 characters.
fn token(seed: &str) -> String {
    format!("{seed:-<88}")
}

/// The keeper's default timeout, and so the deadline of the run.
const KEEPER_TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    let mut companies = 500_usize;
    let mut latency_ms = 0_u64;
    let mut accountant = false;
    let mut rate_limit: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--companies" => {
                companies = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--companies N");
            }
            "--latency-ms" => {
                latency_ms = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--latency-ms N");
            }
            "--accountant" => accountant = true,
            "--rate-limit" => {
                rate_limit = args.next().and_then(|n| n.parse().ok());
            }
            _ => {}
        }
    }
    let sim = TripletexSimulator::start();
    let started = Instant::now();
    let mut secrets = serde_json::Map::new();
    let mut tenants = serde_json::Map::new();
    let mut disabled = 0;
    let ledger = InMemoryResyncLedger::new();
    let master = "a-master-key-of-at-least-32-characters-for-the-bench";
    if accountant {
        let clients: Vec<i64> = (0..companies).map(|n| 1000 + n as i64).collect();
        sim.control(
            "POST",
            "/_sim/companies",
            &json!({"companyId": 999, "consumerToken": token("consumer"),
                    "employeeToken": token("accountant"), "clientCompanyIds": clients}),
        )
        .unwrap();
    }
    for n in 0..companies {
        let company_id = 1000 + n as i64;
        let tenant = if accountant {
            company_id.to_string()
        } else {
            format!("c{n}")
        };
        if accountant {
            let company = domain::registry::RegisteredCompany {
                state: domain::registry::CompanyState::Active,
                ..domain::registry::RegisteredCompany::added(
                    domain::ids::TenantId::parse(&tenant).unwrap(),
                    company_id,
                    "firm",
                    jiff::Timestamp::now(),
                )
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            assert!(runtime.block_on(ledger.add(&company)).unwrap());
        } else {
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
        }
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
        "keeper over {companies} companies{}: {} subscriptions of ours, {disabled} disabled (set up in {:.1} s)",
        if accountant {
            " of one accountant key, in the registry"
        } else {
            ""
        },
        companies * EVENTS.len(),
        started.elapsed().as_secs_f64()
    );
    let credentials_json = if accountant {
        json!({"credentials": {"firm": {"consumerToken": token("consumer"), "employeeToken": token("accountant")}}})
    } else {
        json!({ "companies": secrets })
    }
    .to_string();
    let auth_json = if accountant {
        json!({"tenants": {}, "derived": {"masters": [master], "scope": "bench", "header": HEADER_NAME}})
    } else {
        json!({ "tenants": tenants })
    }
    .to_string();
    println!(
        "  credentials secret {} bytes, receiver auth secret {} bytes",
        credentials_json.len(),
        auth_json.len()
    );
    if let Some(limit) = rate_limit {
        sim.control(
            "POST",
            "/_sim/rate-limit",
            &json!({"limit": limit, "periodSeconds": RATE_LIMIT_PERIOD.as_secs()}),
        )
        .unwrap();
    }
    println!(
        "  Tripletex's rate limit: {} requests a minute per credential (the simulator's; Tripletex publishes none)",
        rate_limit.unwrap_or(1000)
    );
    if latency_ms > 0 {
        sim.control("POST", "/_sim/latency", &json!({ "ms": latency_ms }))
            .unwrap();
        println!("  the simulator answers each call after {latency_ms} ms");
    }

    let keeper = Keeper::new(
        HttpTripletexCompanies::new(sim.api_base_url(), RetryPolicy::default()).unwrap(),
        ledger.clone(),
        SecretSource::Fixed(Arc::new(
            CredentialsSecret::from_json(&credentials_json).unwrap(),
        )),
        SecretSource::Fixed(Arc::new(AuthConfig::from_json(&auth_json).unwrap())),
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
    // Runs as the schedule would make them (the next one after Tripletex's rate-limit period), until
    // every company was handled in one of them: a company a run could not reach goes first in the next.
    let mut runs = Vec::new();
    let mut handled_once = std::collections::BTreeSet::new();
    loop {
        let run_started = Instant::now();
        let report = runtime
            .block_on(keeper.handle_until(
                KeeperRequest::default(),
                Some(Instant::now() + KEEPER_TIMEOUT),
            ))
            .unwrap();
        let wall = run_started.elapsed();
        let handled = report.companies.iter().filter(|c| !c.rate_limited).count();
        println!(
            "  run {}: {handled} companies handled, {} not reached (rate-limited or past the deadline), wall time {:.2} s against the keeper's timeout of {} s",
            runs.len() + 1,
            report.not_reached.len(),
            wall.as_secs_f64(),
            KEEPER_TIMEOUT.as_secs()
        );
        handled_once.extend(
            report
                .companies
                .iter()
                .filter(|c| !c.rate_limited)
                .map(|c| c.tenant.clone()),
        );
        println!("    handled in some run so far: {}", handled_once.len());
        let done = handled_once.len() == companies;
        runs.push((report, wall));
        if done || runs.len() == 5 {
            break;
        }
        std::thread::sleep(RATE_LIMIT_PERIOD);
    }
    let peak = peak_since(mark);
    let requests = api_requests(&sim) - requests_before;
    // A session per credential, one page of subscriptions per company, one update per re-enable.
    let sessions = if accountant { 1 } else { companies };
    let minimum = sessions + companies + disabled;

    let re_enabled: usize = runs.iter().map(|(r, _)| r.totals.counts.re_enabled).sum();
    let step_failures: Vec<_> = runs
        .iter()
        .flat_map(|(r, _)| &r.companies)
        .filter(|c| !c.rate_limited && (c.error.is_some() || !c.failed.is_empty()))
        .collect();
    assert!(step_failures.is_empty(), "{:?}", step_failures.first());
    assert_eq!(
        handled_once.len(),
        companies,
        "every company handled within 5 runs"
    );
    assert_eq!(re_enabled, disabled);
    println!(
        "  every company handled within {} run(s) (the keeper runs every 15 minutes by default)",
        runs.len()
    );
    let (first, wall) = &runs[0];
    println!(
        "  first run: {}",
        serde_json::to_value(first.totals).unwrap()
    );
    println!(
        "  first run's wall time {:.2} s ({:.1} ms per company handled)",
        wall.as_secs_f64(),
        per(*wall, first.companies.len().max(1))
    );
    println!(
        "  Tripletex requests {requests} over {} run(s), against a minimum of {minimum} for one pass ({:.3}×): {sessions} session(s), one page per company, one update per re-enable (a rate-limited call counts, and a company handled twice)",
        runs.len(),
        requests as f64 / minimum as f64
    );
    println!(
        "  peak heap of the runs {:.1} MiB",
        peak as f64 / (1024.0 * 1024.0)
    );
}

/// The simulator's rate-limit period (Tripletex's is not published).
const RATE_LIMIT_PERIOD: Duration = Duration::from_secs(60);

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
