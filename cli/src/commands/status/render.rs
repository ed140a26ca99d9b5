//! `status` as tables for a person: the queues, the subscriptions, the last sync runs, the keeper's
//! last runs and the requests, and what needs a person.

use std::collections::BTreeMap;

use super::Status;
use crate::ops::companies::{CompanyStatus, KeeperLastRun};
use crate::render::{age, or_dash, table};

pub fn render(status: &Status) -> String {
    [
        format!("deployment {}\n\n", status.deployment),
        queues(status),
        subscriptions(status),
        sync_runs(status),
        keeper_runs(status),
        attention(status),
    ]
    .concat()
}

/// A company as the tables name it: a company leaving or removed says so.
fn company_label(company: &CompanyStatus) -> String {
    match company.registry_state.as_deref() {
        Some(state @ ("offboarding" | "removed")) => format!("{} ({state})", company.tenant),
        _ => company.tenant.clone(),
    }
}

/// Each queue's depth and its oldest message's age.
fn queues(status: &Status) -> String {
    let mut out = String::new();
    let mut queues = table(&["queue", "waiting", "in flight", "oldest"]);
    for queue in &status.queues {
        queues.add_row(vec![
            queue.name.to_owned(),
            queue.visible.to_string(),
            queue.in_flight.to_string(),
            queue
                .oldest_message_age_seconds
                .map_or_else(|| "-".to_owned(), age),
        ]);
    }
    out.push_str(&format!("{queues}\n"));
    if let Some(why) = &status.ages_unknown {
        out.push_str(&format!("oldest-message ages unknown: {why}\n"));
    }
    out.push('\n');
    out
}

/// Our subscriptions per company, grouped by status and the keeper's next step; none without the
/// keeper's dry run.
fn subscriptions(status: &Status) -> String {
    let mut out = String::new();
    if status.companies.iter().any(|c| c.subscriptions.is_some()) {
        let mut subscriptions = table(&[
            "company",
            "our subscriptions",
            "status",
            "the keeper's next run",
        ]);
        for company in &status.companies {
            let Some(found) = &company.subscriptions else {
                continue;
            };
            // One row per status and next step; the events named where something is off.
            let mut groups: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
            for s in &found.ours {
                groups
                    .entry((s.status.clone(), or_dash(s.next_run.as_deref())))
                    .or_default()
                    .push(&s.event);
            }
            for ((state, next_run), events) in groups {
                let named = if state == "ACTIVE" && next_run == "-" {
                    format!("{} events", events.len())
                } else {
                    events.join("\n")
                };
                subscriptions.add_row(vec![company_label(company), named, state, next_run]);
            }
            if found.foreign > 0 {
                subscriptions.add_row(vec![
                    company_label(company),
                    format!("{} of other integrations", found.foreign),
                    "-".to_owned(),
                    "never touched".to_owned(),
                ]);
            }
            if let Some(error) = &found.error {
                subscriptions.add_row(vec![
                    company_label(company),
                    "-".to_owned(),
                    "not seen".to_owned(),
                    error.clone(),
                ]);
            }
        }
        out.push_str(&format!("{subscriptions}\n\n"));
    }
    out
}

/// The last sync run of each type, and when its copy was last proven complete.
fn sync_runs(status: &Status) -> String {
    let mut out = String::new();
    let mut runs = table(&[
        "company",
        "type",
        "last sync run",
        "state",
        "listed",
        "fetched",
        "tombstoned",
        "drift",
        "confirmed complete",
    ]);
    for company in &status.companies {
        for t in &company.types {
            let confirmed = match (&t.confirmed_complete_at, t.confirmation_overdue) {
                (None, _) => "never".to_owned(),
                (Some(at), true) => format!("{at} (overdue)"),
                (Some(at), false) => at.clone(),
            };
            runs.add_row(vec![
                company_label(company),
                t.object_type.clone(),
                t.run_id.clone(),
                t.state.clone(),
                t.listed.to_string(),
                t.fetched.to_string(),
                t.tombstoned.to_string(),
                match t.drift_delivered_late {
                    Some(late) if late > 0 => format!("{}, {late} came late", t.drift_corrected),
                    _ => t.drift_corrected.to_string(),
                },
                confirmed,
            ]);
        }
    }
    out.push_str(&format!("{runs}\n\n"));
    out
}

/// The keeper's last run per company and its resync requests by state.
fn keeper_runs(status: &Status) -> String {
    let mut out = String::new();
    let mut keeper = table(&[
        "company",
        "keeper's last run",
        "seen",
        "re-enabled",
        "created",
        "updated",
        "failed",
        "resync requests",
    ]);
    for company in &status.companies {
        let counts: Vec<String> = company
            .resync_requests
            .iter()
            .map(|(state, count)| format!("{count} {state}"))
            .collect();
        let run = company.keeper_last_run.as_ref();
        let count = |of: fn(&KeeperLastRun) -> u64| {
            run.map_or_else(|| "-".to_owned(), |run| of(run).to_string())
        };
        keeper.add_row(vec![
            company_label(company),
            run.map_or_else(|| "none yet".to_owned(), |run| run.finished_at.clone()),
            count(|r| r.seen),
            count(|r| r.re_enabled),
            count(|r| r.created),
            count(|r| r.updated),
            run.and_then(|run| run.error.as_ref()).map_or_else(
                || count(|r| r.failed),
                |_| "all: could not handle the company (why: below)".to_owned(),
            ),
            counts.join(", "),
        ]);
    }
    out.push_str(&format!("{keeper}\n\n"));
    out
}

/// What needs a person, or that nothing does.
fn attention(status: &Status) -> String {
    let mut out = String::new();
    if status.attention.is_empty() {
        out.push_str("nothing needs a person\n");
    } else {
        out.push_str("needs a person:\n");
        for line in &status.attention {
            out.push_str(&format!("  - {line}\n"));
        }
    }
    out
}
