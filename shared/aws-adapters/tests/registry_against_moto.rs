//! The company registry held to one rule on both sides: the in-memory fake and DynamoDB (moto) through
//! the real adapter, in the resync table beside the keeper's requests and last runs. A company is added
//! once (again only after its removal), moves only from the state it is in, keeps when it was first
//! subscribed, and reads back in tenant order; the keeper's list of companies not reached reads back
//! as kept.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

mod support;

use aws_adapters::resync_ledger::{DynamoResyncLedger, item, read_last_run, read_request_state};
use domain::ids::TenantId;
use domain::keeper::{LastRun, RunCounts};
use domain::ports::{CompanyRegistry, ResyncLedger};
use domain::registry::{CompanyState, RegisteredCompany};
use domain::resync::{ResyncReason, ResyncRequest};
use jiff::Timestamp;
use test_support::InMemoryResyncLedger;

async fn dynamo(table: &str) -> DynamoResyncLedger {
    DynamoResyncLedger::new(
        support::keyed_table(table, item::KEY, item::REQUESTED_AT).await,
        table,
    )
}

fn company(tenant: &str, company_id: i64) -> RegisteredCompany {
    RegisteredCompany {
        name: Some("Client company".into()),
        ..RegisteredCompany::added(
            TenantId::parse(tenant).unwrap(),
            company_id,
            "firm",
            Timestamp::from_second(1_700_000_000).unwrap(),
        )
    }
}

/// The same story on either side; what each step answered.
async fn story(registry: &(impl CompanyRegistry + ResyncLedger)) -> Vec<String> {
    let mut said = Vec::new();
    let at = |second: i64| Timestamp::from_second(1_700_000_000 + second).unwrap();
    let tenant = TenantId::parse("201").unwrap();
    said.push(format!(
        "add: {}",
        registry.add(&company("201", 201)).await.unwrap()
    ));
    said.push(format!(
        "add again: {}",
        registry.add(&company("201", 201)).await.unwrap()
    ));
    said.push(format!(
        "add another: {}",
        registry.add(&company("105", 105)).await.unwrap()
    ));
    for (from, to, second) in [
        (CompanyState::Active, CompanyState::Offboarding, 1),
        (CompanyState::Onboarding, CompanyState::Active, 2),
        (CompanyState::Active, CompanyState::Active, 3),
        (CompanyState::Active, CompanyState::Offboarding, 4),
    ] {
        let moved = registry
            .change_state(&tenant, from, to, at(second))
            .await
            .unwrap();
        said.push(format!("{} -> {}: {moved}", from.as_str(), to.as_str()));
    }
    said.push(format!(
        "add while leaving: {}",
        registry.add(&company("201", 201)).await.unwrap()
    ));
    let moved = registry
        .change_state(
            &tenant,
            CompanyState::Offboarding,
            CompanyState::Removed,
            at(5),
        )
        .await
        .unwrap();
    said.push(format!("removed: {moved}"));
    let found = registry.registered_one(&tenant).await.unwrap().unwrap();
    said.push(format!(
        "read: {} {} {} changed {} subscribed {:?} {:?}",
        found.tenant,
        found.company_id,
        found.state.as_str(),
        found.changed_at,
        found.subscribed_at.map(|t| t.to_string()),
        found.name
    ));
    said.push(format!(
        "add after removal: {}",
        registry.add(&company("201", 201)).await.unwrap()
    ));
    let all: Vec<String> = registry
        .registered()
        .await
        .unwrap()
        .iter()
        .map(|c| format!("{}:{}", c.tenant, c.state.as_str()))
        .collect();
    said.push(format!("all: {}", all.join(" ")));
    said.push(format!(
        "unknown: {:?}",
        registry
            .registered_one(&TenantId::parse("nosuch").unwrap())
            .await
            .unwrap()
    ));
    said.push(format!(
        "not reached before: {:?}",
        registry.not_reached().await.unwrap()
    ));
    registry
        .keep_not_reached(&["105".into(), "201".into()])
        .await
        .unwrap();
    said.push(format!(
        "not reached: {:?}",
        registry.not_reached().await.unwrap()
    ));
    said
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_keeps_one_rule_in_dynamodb_and_in_memory() {
    let table = format!("registry-{}", std::process::id());
    let in_dynamo = story(&dynamo(&table).await).await;
    let in_memory = story(&InMemoryResyncLedger::new()).await;
    assert_eq!(in_dynamo, in_memory);
    assert_eq!(
        in_dynamo,
        [
            "add: true",
            "add again: false",
            "add another: true",
            "active -> offboarding: false",
            "onboarding -> active: true",
            "active -> active: true",
            "active -> offboarding: true",
            "add while leaving: false",
            "removed: true",
            "read: 201 201 removed changed 2023-11-14T22:13:25Z subscribed Some(\"2023-11-14T22:13:22Z\") Some(\"Client company\")",
            "add after removal: true",
            "all: 105:onboarding 201:onboarding",
            "unknown: None",
            "not reached before: []",
            "not reached: [\"105\", \"201\"]",
        ]
    );
}

/// The keeper's last run and its requests read back as written: what `status` shows of the keeper
/// comes only through `read_last_run` and `read_request_state`.
#[tokio::test(flavor = "multi_thread")]
async fn a_last_run_and_a_request_read_back_as_they_were_written() {
    let table = format!("ledger-readers-{}", std::process::id());
    let client = support::keyed_table(&table, item::KEY, item::REQUESTED_AT).await;
    let ledger = DynamoResyncLedger::new(client.clone(), &table);
    let tenant = TenantId::parse("201").unwrap();
    let last = LastRun {
        tenant: "201".into(),
        finished_at: Timestamp::from_second(1_800_000_000).unwrap(),
        counts: RunCounts {
            seen: 13,
            re_enabled: 1,
            created: 2,
            updated: 0,
            left_alone: 9,
            failed: 1,
        },
        failures: vec!["order.create update: 409".into()],
        error: None,
    };
    ledger.record_run(&last).await.unwrap();
    ledger
        .record(&ResyncRequest {
            tenant: tenant.clone(),
            subscription_id: 41,
            event: "product.update".into(),
            object_type: "product".into(),
            reason: ResyncReason::ReEnabled,
            previous_status: "DISABLED_TOO_MANY_ERRORS".into(),
            window_from: Timestamp::UNIX_EPOCH,
            window_to: Timestamp::from_second(1_800_000_000).unwrap(),
        })
        .await
        .unwrap();
    let items = support::items(&client, &table).await;
    let last_runs: Vec<LastRun> = items.iter().filter_map(read_last_run).collect();
    assert_eq!(last_runs, [last]);
    let requests: Vec<(String, String)> = items.iter().filter_map(read_request_state).collect();
    assert_eq!(requests, [("201".to_owned(), "PENDING".to_owned())]);
}
