#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The sync with every real adapter (tests/support: the simulator over HTTP, the template's queues
//! and tables in moto): backfill, missed changes and deletes corrected by the nightly run, a night
//! of 304s, and a tight rate limit waited out.

use std::time::Duration;

use object_sync::config::StepLimits;
use serde_json::json;

mod support;
use support::{COMPANY, stack};

/// Pages, fetches and checks small enough that 130 objects take several of each.
fn small_steps() -> StepLimits {
    StepLimits {
        page_size: 40,
        fetch_batch: 25,
        verify_batch: 30,
        lookups_per_step: 10,
        attempts: 3,
        // Nothing is in flight at the recheck: every queued envelope is applied before the next task.
        drift_grace: Duration::ZERO,
        // The worker's part is played between steps: what was queued is stored.
        store_wait: Duration::ZERO,
        marker_poll: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_then_nightly_runs_keep_the_copy_exact_over_the_wire() {
    let stack = stack("sync-wire", "customer", small_steps()).await;
    let created = stack
        .sim
        .control(
            "POST",
            "/_sim/objects",
            &json!({"companyId": COMPANY, "type": "customer", "count": 130}),
        )
        .unwrap();
    let ids: Vec<i64> = serde_json::from_value(created["ids"].clone()).unwrap();

    // Backfill: 130 customers in pages of 40 (both partitions), fetched in batches of 25.
    let backfill = stack.start("backfill").await;
    let tasks = stack.run_until_idle().await;
    assert!(tasks >= 5, "4 pages and the check: {tasks}");
    assert_eq!(stack.state(&backfill).await, "done");
    assert_eq!(stack.count(&backfill, "listed").await, 130);
    assert_eq!(stack.count(&backfill, "fetched").await, 130);
    stack.assert_exact().await;

    // Missed webhooks: changes and deletes Tripletex made that no subscription delivered.
    for &id in &ids[..5] {
        stack.change(id, "update");
    }
    for &id in &ids[100..103] {
        stack.change(id, "delete");
    }
    // The deletion rule compares with when the run began: the copy must be older than that.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let nightly = stack.start("reconcile").await;
    stack.run_until_idle().await;
    assert_eq!(stack.state(&nightly).await, "done");
    assert_eq!(stack.count(&nightly, "fetched").await, 5);
    assert_eq!(stack.count(&nightly, "tombstoned").await, 3);
    assert_eq!(stack.count(&nightly, "driftCorrected").await, 8);
    stack.assert_exact().await;

    // Nothing changed since: every page is a 304 (those whose changes rode along to a later page's
    // fetch included, confirmed once it was done), and nothing is fetched.
    let quiet = stack.start("reconcile").await;
    stack.run_until_idle().await;
    let pages = stack.count(&quiet, "pages").await;
    assert_eq!(stack.count(&quiet, "pagesNotModified").await, pages);
    assert_eq!(stack.count(&quiet, "fetched").await, 0);
    assert_eq!(stack.count(&quiet, "tombstoned").await, 0);
    assert_eq!(
        stack.count(&quiet, "requests").await,
        pages,
        "list pages only"
    );

    // A tight rate limit: the sync waits out the 429s and finishes all the same.
    stack
        .sim
        .control(
            "POST",
            "/_sim/rate-limit",
            &json!({"limit": 3, "periodSeconds": 1}),
        )
        .unwrap();
    stack.change(ids[7], "update");
    let started = std::time::Instant::now();
    let limited = stack.start("reconcile").await;
    stack.run_until_idle().await;
    assert_eq!(stack.state(&limited).await, "done");
    // The limit was met: a 429 waited out, or the reset waited for before one could come.
    let rate_limited = stack.count(&limited, "rateLimited").await;
    assert!(
        rate_limited > 0 || started.elapsed() >= Duration::from_secs(1),
        "neither a 429 nor a wait: {:?}",
        started.elapsed()
    );
    assert_eq!(stack.count(&limited, "fetched").await, 1);
    stack.assert_exact().await;
}

/// The keeper's requests through the DynamoDB ledger, as the sync answers and repairs them: a claim
/// carries its time, a run only marks what it holds, and a run record tells how its run stands.
#[tokio::test(flavor = "multi_thread")]
async fn the_ledger_on_dynamodb_hands_requests_to_one_run_and_tells_what_became_of_them() {
    use domain::ports::{PendingResyncs, ResyncLedger, SyncRecords};
    use domain::resync::{ResyncReason, ResyncRequest};
    use domain::sync::RunState;

    let stack = stack("sync-ledger", "product", small_steps()).await;
    let tenant = domain::ids::TenantId::parse(support::TENANT).unwrap();
    let request = ResyncRequest {
        tenant: tenant.clone(),
        subscription_id: 41,
        event: "product.update".into(),
        object_type: "product".into(),
        reason: ResyncReason::ReEnabled,
        previous_status: "DISABLED_TOO_MANY_ERRORS".into(),
        window_from: jiff::Timestamp::UNIX_EPOCH,
        window_to: jiff::Timestamp::now(),
    };
    let ledger = &stack.ledger;
    ledger.record(&request).await.unwrap();
    let key = ledger.pending().await.unwrap()[0].key.clone();
    assert!(ledger.taken().await.unwrap().is_empty());

    let before = jiff::Timestamp::now();
    assert!(ledger.claim(&key, "run-a").await.unwrap());
    assert!(
        !ledger.claim(&key, "run-b").await.unwrap(),
        "one run takes it"
    );
    let taken = ledger.taken().await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].run_id.as_str(), &taken[0].tenant),
        ("run-a", &tenant)
    );
    assert!(taken[0].claimed_at.unwrap() >= before - jiff::SignedDuration::from_secs(1));

    // Another run marks nothing and fails nothing; the run that holds it does.
    ledger.settle(&key, "run-b", RunState::Done).await.unwrap();
    ledger.release(&key, "run-b").await.unwrap();
    assert_eq!(ledger.taken().await.unwrap().len(), 1, "still run-a's");
    ledger.release(&key, "run-a").await.unwrap();
    assert!(ledger.taken().await.unwrap().is_empty());
    assert_eq!(ledger.pending().await.unwrap().len(), 1, "given back");

    // A run's record says how it stands; an unknown run has none.
    let state_of = |run_id: String| {
        let (records, tenant) = (&stack.records, tenant.clone());
        async move { records.run_state(&tenant, &run_id).await.unwrap() }
    };
    assert_eq!(state_of("no-such-run".into()).await, None);
    let run_id = stack.start("reconcile").await;
    assert_eq!(state_of(run_id.clone()).await, Some(RunState::Running));
    stack.run_until_idle().await;
    assert_eq!(state_of(run_id).await, Some(RunState::Done));
}
