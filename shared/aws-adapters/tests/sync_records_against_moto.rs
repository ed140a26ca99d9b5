//! The sync's records held to one rule on both sides: the in-memory fake and DynamoDB (moto) through
//! the real adapter. The listed ids of a run come back in id order, bucket by bucket, within the
//! budget, whatever the pages and windows they were listed in; unstorable objects are remembered at
//! their newest version; a type's confirmation only moves forward.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

mod support;

use aws_adapters::sync_records::{DynamoSyncRecords, item, read_drift_finding, read_run};
use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use domain::ports::SyncRecords;
use domain::sync::drift::{DriftFinding, Held};
use domain::sync::{
    LISTED_BUCKET_WIDTH, Listed, ListedStretch, RunMode, RunStart, RunState, StepReport, TypeCounts,
};
use jiff::Timestamp;
use test_support::InMemorySyncRecords;

async fn dynamo(table: &str) -> DynamoSyncRecords {
    DynamoSyncRecords::new(
        support::keyed_table(table, item::KEY, item::SORT).await,
        table,
    )
}

/// Reads the whole listing back as the check of the copy does: stretch by stretch.
async fn walk(records: &impl SyncRecords, budget: usize) -> (Vec<i64>, Vec<ListedStretch>) {
    let tenant = TenantId::parse("acme").unwrap();
    let (mut after, mut all, mut stretches) = (0, Vec::new(), Vec::new());
    loop {
        let stretch = records
            .listed_after(&tenant, "run-1", "voucher", after, budget)
            .await
            .unwrap();
        all.extend(&stretch.ids);
        stretches.push(stretch.clone());
        match stretch.complete_to {
            None => return (all, stretches),
            Some(to) => {
                assert!(to > after, "a stretch moves on");
                assert!(stretch.ids.iter().all(|&id| after < id && id <= to));
                after = to;
            }
        }
    }
}

async fn exercise(
    records: &impl SyncRecords,
) -> (Vec<i64>, Vec<ListedStretch>, Vec<Listed>, Timestamp) {
    let tenant = TenantId::parse("acme").unwrap();
    let w = LISTED_BUCKET_WIDTH;
    // Two windows listed the same id range; a page spans three buckets; one page is listed twice
    // (a step delivered again).
    let pages: [(&str, Vec<i64>); 4] = [
        (
            "voucher/all/2020-01-01..2021-01-01/0+1000",
            vec![3, 9, w + 1, 2 * w + 5],
        ),
        (
            "voucher/all/2021-01-01..2022-01-01/0+1000",
            vec![4, 8, w + 2],
        ),
        (
            "voucher/all/2022-01-01..2023-01-01/0+1000",
            vec![5 * w, 5 * w + 1],
        ),
        (
            "voucher/all/2020-01-01..2021-01-01/0+1000",
            vec![3, 9, w + 1, 2 * w + 5],
        ),
    ];
    for (page, ids) in &pages {
        records
            .record_listed(&tenant, "run-1", page, ids)
            .await
            .unwrap();
    }
    records
        .record_listed(&tenant, "run-0", "voucher/all/-/0+1000", &[7])
        .await
        .unwrap();
    let (all, stretches) = walk(records, 3).await;

    let listed = |id, version| Listed {
        id,
        version: Some(version),
    };
    records
        .remember_unstorable(&tenant, "voucher", &[listed(4, 1), listed(9, 2)])
        .await
        .unwrap();
    records
        .remember_unstorable(&tenant, "voucher", &[listed(4, 3)])
        .await
        .unwrap();
    let mut unstorable = records.known_unstorable(&tenant, "voucher").await.unwrap();
    unstorable.sort_by_key(|object| object.id);

    let later = Timestamp::from_second(1_800_000_100).unwrap();
    let earlier = Timestamp::from_second(1_800_000_000).unwrap();
    records
        .confirm_complete(&tenant, "voucher", later)
        .await
        .unwrap();
    records
        .confirm_complete(&tenant, "voucher", earlier)
        .await
        .unwrap();
    let confirmed = records.confirmed_complete(&tenant).await.unwrap();
    assert_eq!(confirmed, [("voucher".to_owned(), later)], "only forward");
    (all, stretches, unstorable, later)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fake_and_dynamodb_keep_the_sync_records_alike() {
    let fake = exercise(&InMemorySyncRecords::new()).await;
    let table = format!("sync-records-{}", std::process::id());
    let real = exercise(&dynamo(&table).await).await;
    let w = LISTED_BUCKET_WIDTH;
    assert_eq!(
        fake.0,
        [3, 4, 8, 9, w + 1, w + 2, 2 * w + 5, 5 * w, 5 * w + 1],
        "every listed id once, in id order, another run's never"
    );
    assert_eq!(fake.0, real.0);
    assert_eq!(
        fake.1.iter().map(|s| s.complete_to).collect::<Vec<_>>(),
        real.1.iter().map(|s| s.complete_to).collect::<Vec<_>>(),
        "the same stretches"
    );
    assert_eq!(
        fake.1[0],
        ListedStretch {
            ids: vec![3, 4, 8, 9],
            complete_to: Some(w - 1)
        },
        "whole buckets until the budget is read"
    );
    assert_eq!(
        fake.2,
        [
            Listed {
                id: 4,
                version: Some(3)
            },
            Listed {
                id: 9,
                version: Some(2)
            }
        ]
    );
    assert_eq!(fake.2, real.2);
}

/// The adapter reads back what it wrote (the operator's `status` and `resync` read run records only
/// through `read_run`), and a step delivered twice is counted once.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_record_reads_back_as_it_was_written_and_a_step_counts_once() {
    let table = format!("run-records-{}", std::process::id());
    let client = support::keyed_table(&table, item::KEY, item::SORT).await;
    let records = DynamoSyncRecords::new(client.clone(), &table);
    let tenant = TenantId::parse("acme").unwrap();
    let started_at = Timestamp::from_second(1_800_000_000).unwrap();
    records
        .start_run(&RunStart {
            tenant: tenant.clone(),
            run_id: "run-7".into(),
            mode: RunMode::Reconcile,
            started_at,
            types: vec!["customer".into(), "voucher".into()],
            not_reconcilable: Vec::new(),
        })
        .await
        .unwrap();
    let customers = StepReport {
        object_type: "customer".into(),
        counts: TypeCounts {
            listed: 40,
            listing_size: 41,
            fetched: 3,
            ..TypeCounts::default()
        },
        failure: None,
        unstorable: Vec::new(),
        finished: false,
    };
    records
        .record_step(&tenant, "run-7", 0, &customers)
        .await
        .unwrap();
    records
        .record_step(&tenant, "run-7", 0, &customers)
        .await
        .unwrap();
    let vouchers = StepReport {
        object_type: "voucher".into(),
        counts: TypeCounts::default(),
        failure: Some("Tripletex answered 500".into()),
        unstorable: Vec::new(),
        finished: true,
    };
    records
        .record_step(&tenant, "run-7", 1, &vouchers)
        .await
        .unwrap();

    let run = records
        .recorded_run(&tenant, "run-7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            run.tenant.as_str(),
            run.run_id.as_str(),
            run.mode,
            run.steps
        ),
        ("acme", "run-7", Some(RunMode::Reconcile), 2)
    );
    assert_eq!(run.state, Some(RunState::Failed));
    assert_eq!(run.started_at, Some(started_at.to_string()));
    assert_eq!(run.types, ["customer", "voucher"]);
    assert_eq!(run.counts["customer"], customers.counts, "counted once");
    assert_eq!(run.counts["voucher"], TypeCounts::default());
    assert_eq!(run.failures, ["voucher: Tripletex answered 500"]);
    assert_eq!(records.recorded_run(&tenant, "run-8").await.unwrap(), None);

    // Read from a scan, as `status` does: the run is the table's one run record.
    let items = support::items(&client, &table).await;
    let runs: Vec<_> = items.iter().filter_map(read_run).collect();
    assert_eq!(runs, [run]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_marker_the_worker_reached_is_seen_for_its_company_and_run_only_in_both() {
    let table = format!("sync-markers-{}", std::process::id());
    let real = dynamo(&table).await;
    let fake = InMemorySyncRecords::new();
    let acme = TenantId::parse("acme").unwrap();
    let beta = TenantId::parse("beta").unwrap();
    let run = "20261206T010000.000000000Z-reconcile";
    for records in [&real as &dyn MarkerProbe, &fake] {
        assert!(!records.seen(&acme, run).await, "not reached yet");
        records.reach(&acme, run).await;
        records.reach(&acme, run).await;
        assert!(records.seen(&acme, run).await, "reached (twice: harmless)");
        assert!(!records.seen(&beta, run).await, "another company's");
        assert!(
            !records
                .seen(&acme, "20261207T010000.000000000Z-reconcile")
                .await,
            "another run's"
        );
    }
    assert_eq!(
        real.purge_tenant(&acme).await.unwrap(),
        1,
        "a purge takes its markers too"
    );
    assert!(!real.marker_seen(&acme, run).await.unwrap());
}

/// The two stores behind one probe, so that one loop asks both the same.
trait MarkerProbe {
    fn reach<'a>(
        &'a self,
        tenant: &'a TenantId,
        run: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
    fn seen<'a>(
        &'a self,
        tenant: &'a TenantId,
        run: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>>;
}

impl<R: SyncRecords> MarkerProbe for R {
    fn reach<'a>(
        &'a self,
        tenant: &'a TenantId,
        run: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> {
        Box::pin(async move { self.record_marker(tenant, run).await.unwrap() })
    }
    fn seen<'a>(
        &'a self,
        tenant: &'a TenantId,
        run: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> {
        Box::pin(async move { self.marker_seen(tenant, run).await.unwrap() })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drift_finding_is_settled_once_by_the_change_it_brought_and_purged_with_its_company() {
    let table = format!("sync-drift-{}", std::process::id());
    let client = support::keyed_table(&table, item::KEY, item::SORT).await;
    let real = DynamoSyncRecords::new(client.clone(), &table);
    settles_each_finding_once(&real).await;
    settles_each_finding_once(&InMemorySyncRecords::new()).await;
    let acme = TenantId::parse("acme").unwrap();
    real.record_drift(&acme, "product", "run-2", &[DriftFinding::deleted(9)])
        .await
        .unwrap();
    // As `status` reads what is still waiting for its webhook: from a scan.
    let waiting: Vec<_> = support::items(&client, &table)
        .await
        .iter()
        .filter_map(read_drift_finding)
        .collect();
    assert_eq!(
        waiting,
        [("acme".to_owned(), "product".to_owned(), "run-2".to_owned())]
    );
    assert_eq!(
        real.purge_tenant(&acme).await.unwrap(),
        1,
        "a purge takes the findings not settled"
    );
    assert_eq!(
        real.settle_drift(&key(&acme, "product", 9), Held::Deleted)
            .await
            .unwrap(),
        None
    );
}

fn key(tenant: &TenantId, object_type: &str, object_id: i64) -> ObjectKey {
    ObjectKey {
        tenant: tenant.clone(),
        object_type: object_type.to_owned(),
        object_id,
    }
}

async fn settles_each_finding_once(records: &impl SyncRecords) {
    let acme = TenantId::parse("acme").unwrap();
    let beta = TenantId::parse("beta").unwrap();
    let findings = [
        DriftFinding::fetched(1, Some(3)).unwrap(),
        DriftFinding::deleted(2),
    ];
    records
        .record_drift(&acme, "customer", "run-1", &findings)
        .await
        .unwrap();
    let settle = |tenant: &TenantId, id, held| {
        let key = key(tenant, "customer", id);
        async move { records.settle_drift(&key, held).await.unwrap() }
    };
    assert_eq!(
        settle(&acme, 1, Held::Version(2)).await,
        None,
        "another version"
    );
    assert_eq!(
        settle(&beta, 1, Held::Version(3)).await,
        None,
        "another company"
    );
    assert_eq!(
        settle(&acme, 1, Held::Version(3)).await.as_deref(),
        Some("run-1")
    );
    assert_eq!(settle(&acme, 1, Held::Version(3)).await, None, "once");
    assert_eq!(
        settle(&acme, 2, Held::Deleted).await.as_deref(),
        Some("run-1")
    );
    assert_eq!(settle(&acme, 3, Held::Deleted).await, None, "no finding");
}
