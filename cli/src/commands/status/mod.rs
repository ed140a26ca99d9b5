//! `status`: the queues, each company's subscriptions (the keeper's dry run), the last sync run per
//! object type and the resync requests, and the rule for when a deployment needs a person (the
//! command's exit status). `read` gathers it, `render` prints it.

mod read;
mod render;

use domain::error::error_chain;
use domain::keeper::{CompanyReport, Reason};
use serde::Serialize;

use crate::context::{Answer, CliError, Context};
use crate::ops::companies::{CompanyStatus, OurSubscription, Subscriptions, companies};
use crate::ops::queues::{QueueRole, QueueStatus};
use read::{add_oldest_ages, add_subscriptions, keeper_dry_run, queues};
use render::render;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Leave out the subscriptions (no keeper dry run, no call to Tripletex).
    #[arg(long)]
    no_subscriptions: bool,
}

pub async fn run(ctx: &Context, args: &StatusArgs) -> Result<Answer, CliError> {
    let deployment = &ctx.deployment;
    let mut queues = queues(ctx.sqs(), deployment).await?;
    let ages_unknown = add_oldest_ages(&ctx.sdk, deployment, &mut queues).await;
    let mut companies = companies(ctx.dynamodb(), deployment).await?;
    let mut unseen = None;
    if !args.no_subscriptions {
        match keeper_dry_run(ctx).await {
            Ok(report) => add_subscriptions(&mut companies, &report),
            Err(error) => unseen = Some(error),
        }
    }
    let mut attention = needs_a_person(&queues, &companies);
    if let Some(error) = unseen {
        attention.insert(
            0,
            format!(
                "the keeper could not say what the subscriptions are: {}",
                error_chain(&error)
            ),
        );
    }
    let status = Status {
        deployment: deployment.name.clone(),
        queues,
        ages_unknown,
        companies,
        attention,
    };
    let needs = !status.attention.is_empty();
    ctx.answer(&status, render, needs)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub deployment: String,
    pub queues: Vec<QueueStatus>,
    /// Why the queues' oldest-message ages are not shown, when they are not.
    pub ages_unknown: Option<String>,
    pub companies: Vec<CompanyStatus>,
    /// What needs a person, one line each; empty when all is well.
    pub attention: Vec<String>,
}

/// Past this, the webhook queue's oldest message says the worker is not keeping up.
pub const WEBHOOK_AGE_NEEDS_A_PERSON_SECONDS: u64 = 15 * 60;

/// A company's subscriptions from its part of the keeper's dry-run report.
pub fn subscriptions_of(company: &CompanyReport) -> Subscriptions {
    let mut found = Subscriptions {
        error: company.error.clone(),
        ..Subscriptions::default()
    };
    let mut ours = |event: &str, status: &str, next_run: Option<&str>, person: bool| {
        found.ours.push(OurSubscription {
            event: event.to_owned(),
            status: status.to_owned(),
            next_run: next_run.map(str::to_owned),
            needs_a_person: person,
        });
    };
    for done in &company.re_enabled {
        ours(
            &done.event,
            "DISABLED_TOO_MANY_ERRORS",
            Some("re-enables it"),
            false,
        );
    }
    for done in &company.created {
        ours(&done.event, "missing", Some("creates it"), false);
    }
    for done in &company.updated {
        ours(&done.event, "ACTIVE", Some("repairs its drift"), false);
    }
    let mut foreign = 0;
    for left in &company.left_alone {
        let status = left.status.as_deref().unwrap_or("unknown");
        match left.reason {
            Reason::Foreign => foreign += 1,
            Reason::DisabledForMisuse
            | Reason::DisabledForRateLimit
            | Reason::UnknownStatus
            | Reason::NoId => ours(&left.event, status, None, true),
            _ => ours(&left.event, status, None, false),
        }
    }
    for failed in &company.failed {
        ours(&failed.event, "failed", Some(&failed.error), true);
    }
    found.foreign = foreign;
    found.ours.sort_by(|a, b| a.event.cmp(&b.event));
    found
}

/// What needs a person: anything dead-lettered or quarantined, and any type whose last sync run
/// failed (its copy is not proven exact).
pub fn needs_a_person(queues: &[QueueStatus], companies: &[CompanyStatus]) -> Vec<String> {
    let mut attention: Vec<String> = queues.iter().filter_map(queue_needs_a_person).collect();
    for company in companies {
        company_needs_a_person(company, &mut attention);
    }
    attention
}

fn queue_needs_a_person(queue: &QueueStatus) -> Option<String> {
    let depth = queue.depth();
    match queue.role {
        QueueRole::DeadLetters if depth > 0 => Some(format!(
            "{depth} messages in {}: redrive them once the cause is fixed (`dlq redrive`)",
            queue.name
        )),
        QueueRole::Quarantine if depth > 0 => Some(format!(
            "{depth} quarantined bodies: read their reasons (`quarantine`)"
        )),
        QueueRole::Webhooks
            if queue
                .oldest_message_age_seconds
                .is_some_and(|age| age > WEBHOOK_AGE_NEEDS_A_PERSON_SECONDS) =>
        {
            Some(format!(
                "the oldest webhook in the {} has waited {} minutes: the worker is not keeping up",
                queue.name,
                queue.oldest_message_age_seconds.unwrap_or_default() / 60
            ))
        }
        _ => None,
    }
}

fn company_needs_a_person(company: &CompanyStatus, attention: &mut Vec<String>) {
    if let Some(subscriptions) = &company.subscriptions {
        if let Some(error) = &subscriptions.error {
            attention.push(format!(
                "{}: the keeper cannot see its subscriptions: {error}",
                company.tenant
            ));
        }
        for subscription in subscriptions.ours.iter().filter(|s| s.needs_a_person) {
            attention.push(format!(
                "{} {}: {}{}",
                company.tenant,
                subscription.event,
                subscription.status,
                subscription
                    .next_run
                    .as_ref()
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_else(|| " (the keeper leaves it to a person)".to_owned())
            ));
        }
    }
    if let Some(run) = &company.keeper_last_run {
        if let Some(error) = &run.error {
            attention.push(format!(
                "{}: the keeper's last run ({}) could not handle the company: {error}",
                company.tenant, run.finished_at
            ));
        } else if run.failed > 0 {
            attention.push(format!(
                "{}: the keeper's last run ({}) had {} failed step{}: {}",
                company.tenant,
                run.finished_at,
                run.failed,
                if run.failed == 1 { "" } else { "s" },
                run.failures.join("; ")
            ));
        }
    }
    for object_type in &company.types {
        if object_type.confirmation_overdue {
            attention.push(format!(
                "{} {}: the copy was last confirmed complete at {}, over 26 hours ago: the nightly reconciliation is not completing (its schedule, its role, throttling?)",
                company.tenant,
                object_type.object_type,
                object_type.confirmed_complete_at.as_deref().unwrap_or("?"),
            ));
        }
        if object_type.state == "failed" {
            attention.push(format!(
                "{} {}: the last sync run ({}) failed: {}",
                company.tenant,
                object_type.object_type,
                object_type.run_id,
                object_type
                    .failure
                    .as_deref()
                    .unwrap_or("see the run record")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::companies::KeeperLastRun;
    use crate::ops::metrics::latest_value;
    use crate::ops::sync_runs::{TypeStatus, type_state};

    fn queue(name: &'static str, role: QueueRole, visible: u64, in_flight: u64) -> QueueStatus {
        QueueStatus {
            name,
            role,
            url: String::new(),
            visible,
            in_flight,
            oldest_message_age_seconds: None,
        }
    }

    fn company(state: &str) -> CompanyStatus {
        CompanyStatus {
            tenant: "acme".into(),
            subscriptions: None,
            types: vec![TypeStatus {
                object_type: "customer".into(),
                run_id: "r1".into(),
                mode: "reconcile".into(),
                state: state.into(),
                started_at: None,
                finished_at: None,
                listed: 0,
                listing_size: 0,
                fetched: 0,
                tombstoned: 0,
                drift_corrected: 0,
                drift_delivered_late: None,
                not_stored: 0,
                failure: (state == "failed").then(|| "Tripletex answered 401".into()),
                confirmed_complete_at: Some("2026-12-03T22:00:00Z".into()),
                confirmation_overdue: false,
            }],
            resync_requests: Vec::new(),
            keeper_last_run: None,
            registry_state: None,
        }
    }

    #[test]
    fn a_type_not_confirmed_complete_for_26_hours_needs_a_person() {
        let mut stale = company("done");
        stale.types[0].confirmation_overdue = true;
        assert_eq!(
            needs_a_person(&[], &[stale]),
            [
                "acme customer: the copy was last confirmed complete at 2026-12-03T22:00:00Z, over 26 hours ago: the nightly reconciliation is not completing (its schedule, its role, throttling?)"
            ]
        );
        assert!(needs_a_person(&[], &[company("done")]).is_empty());
    }

    #[test]
    fn a_backlog_or_a_run_in_progress_needs_nobody_but_dead_letters_quarantine_and_failed_runs_do()
    {
        let busy = [
            queue("webhook queue", QueueRole::Webhooks, 500, 10),
            queue("sync queue", QueueRole::SyncTasks, 1, 1),
            queue("webhook DLQ", QueueRole::DeadLetters, 0, 0),
            queue("quarantine", QueueRole::Quarantine, 0, 0),
        ];
        assert!(needs_a_person(&busy, &[company("running"), company("done")]).is_empty());

        let dead = [queue("webhook DLQ", QueueRole::DeadLetters, 2, 1)];
        assert_eq!(
            needs_a_person(&dead, &[]),
            ["3 messages in webhook DLQ: redrive them once the cause is fixed (`dlq redrive`)"]
        );
        let quarantined = [queue("quarantine", QueueRole::Quarantine, 1, 0)];
        assert_eq!(
            needs_a_person(&quarantined, &[]),
            ["1 quarantined bodies: read their reasons (`quarantine`)"]
        );
        assert_eq!(
            needs_a_person(&[], &[company("failed")]),
            ["acme customer: the last sync run (r1) failed: Tripletex answered 401"]
        );
    }

    #[test]
    fn an_old_webhook_in_the_queue_needs_a_person_and_the_latest_datapoint_counts() {
        let aged = |role, age| QueueStatus {
            oldest_message_age_seconds: Some(age),
            ..queue("webhook queue", role, 3, 0)
        };
        assert!(needs_a_person(&[aged(QueueRole::Webhooks, 900)], &[]).is_empty());
        assert_eq!(
            needs_a_person(&[aged(QueueRole::Webhooks, 1_860)], &[]),
            [
                "the oldest webhook in the webhook queue has waited 31 minutes: the worker is not keeping up"
            ]
        );
        assert!(
            needs_a_person(&[aged(QueueRole::SyncTasks, 7_200)], &[]).is_empty(),
            "a long sync run is no backlog"
        );
        assert_eq!(latest_value(&[60, 180, 120], &[1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(latest_value(&[], &[]), None);
    }

    #[test]
    fn a_keeper_run_that_changed_things_needs_nobody_but_one_that_failed_does() {
        let with_run = |run: KeeperLastRun| CompanyStatus {
            keeper_last_run: Some(KeeperLastRun {
                finished_at: "T".into(),
                ..run
            }),
            ..company("done")
        };
        let clean = KeeperLastRun {
            seen: 13,
            re_enabled: 2,
            created: 1,
            ..KeeperLastRun::default()
        };
        assert!(needs_a_person(&[], &[with_run(clean)]).is_empty());
        let failed = KeeperLastRun {
            failed: 2,
            failures: vec!["a.create create: 409".into(), "b.update update: 500".into()],
            ..KeeperLastRun::default()
        };
        assert_eq!(
            needs_a_person(&[], &[with_run(failed)]),
            [
                "acme: the keeper's last run (T) had 2 failed steps: a.create create: 409; b.update update: 500"
            ]
        );
        let unseen = KeeperLastRun {
            error: Some("Tripletex answered 401".into()),
            ..KeeperLastRun::default()
        };
        assert_eq!(
            needs_a_person(&[], &[with_run(unseen)]),
            [
                "acme: the keeper's last run (T) could not handle the company: Tripletex answered 401"
            ]
        );
    }

    #[test]
    fn the_keepers_dry_run_says_each_subscription_of_ours_and_counts_the_others() {
        let report = serde_json::json!({"tenant": "acme", "dryRun": true, "seen": 6,
            "reEnabled": [{"subscriptionId": 1, "event": "customer.update", "reason": "too_many_errors"}],
            "created": [{"event": "order.create", "reason": "missing"}],
            "updated": [],
            "leftAlone": [
                {"subscriptionId": 2, "event": "product.update", "status": "ACTIVE", "reason": "in_place"},
                {"subscriptionId": 3, "event": "invoice.charged", "status": "DISABLED", "reason": "disabled_by_person"},
                {"subscriptionId": 4, "event": "voucher.create", "status": "DISABLED_MISUSE", "reason": "disabled_for_misuse"},
                {"subscriptionId": 5, "event": "customer.create", "status": "ACTIVE", "reason": "foreign"},
                {"subscriptionId": 6, "event": "customer.delete", "status": "ACTIVE", "reason": "foreign"}],
            "failed": []});
        let report: CompanyReport = serde_json::from_value(report).unwrap();
        let found = subscriptions_of(&report);
        assert_eq!(found.foreign, 2);
        let seen: Vec<(&str, &str, bool)> = found
            .ours
            .iter()
            .map(|s| (s.event.as_str(), s.status.as_str(), s.needs_a_person))
            .collect();
        assert_eq!(
            seen,
            [
                ("customer.update", "DISABLED_TOO_MANY_ERRORS", false),
                ("invoice.charged", "DISABLED", false),
                ("order.create", "missing", false),
                ("product.update", "ACTIVE", false),
                ("voucher.create", "DISABLED_MISUSE", true),
            ]
        );
        let mut acme = company("done");
        acme.subscriptions = Some(found);
        assert_eq!(
            needs_a_person(&[], &[acme]),
            ["acme voucher.create: DISABLED_MISUSE (the keeper leaves it to a person)"]
        );
        let blind = subscriptions_of(&CompanyReport {
            tenant: "acme".into(),
            error: Some("401 from Tripletex".into()),
            ..CompanyReport::default()
        });
        let mut acme = company("done");
        acme.subscriptions = Some(blind);
        assert_eq!(
            needs_a_person(&[], &[acme]),
            ["acme: the keeper cannot see its subscriptions: 401 from Tripletex"]
        );
    }

    #[test]
    fn a_types_state_in_a_run_says_whether_it_or_another_type_or_the_whole_run_failed() {
        let types = ["customer".to_owned(), "product".to_owned()];
        let one_failed = ["product: Tripletex answered 401".to_owned()];
        let not_started =
            ["run: the sync queue did not take the run's first task: refused".to_owned()];
        // (run state, failures, type, (its state, its failure))
        type Case<'a> = (
            Option<&'a str>,
            &'a [String],
            &'a str,
            (&'a str, Option<&'a str>),
        );
        let cases: [Case; 6] = [
            (Some("done"), &[], "customer", ("done", None)),
            (Some("running"), &[], "customer", ("running", None)),
            (
                Some("failed"),
                &one_failed,
                "product",
                ("failed", Some("Tripletex answered 401")),
            ),
            // Another type failed the run: this one came through.
            (Some("failed"), &one_failed, "customer", ("done", None)),
            // The run failed before any type: every type failed, with the run's reason.
            (
                Some("failed"),
                &not_started,
                "customer",
                (
                    "failed",
                    Some("run: the sync queue did not take the run's first task: refused"),
                ),
            ),
            (None, &[], "customer", ("unknown", None)),
        ];
        for (run_state, failures, object_type, (state, failure)) in cases {
            assert_eq!(
                type_state(run_state, failures, &types, object_type),
                (state.to_owned(), failure.map(str::to_owned)),
                "{run_state:?} {failures:?} {object_type}"
            );
        }
    }
}
