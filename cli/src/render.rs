//! Tables for people (comfy-table); `--json` prints the same data with serde instead.

use comfy_table::Table;

use crate::aws::{QueuedMessage, RunProgress, StoredObject};
use crate::send::{Progress, Sent};
use crate::show::Shown;
use crate::status::Status;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

/// An age as a person reads it: seconds, minutes, hours.
fn age(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        _ => format!("{} h", seconds / 3600),
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

pub fn status(status: &Status) -> String {
    let mut out = format!("deployment {}\n\n", status.deployment);
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
            let mut groups: std::collections::BTreeMap<(String, String), Vec<&str>> =
                std::collections::BTreeMap::new();
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
                subscriptions.add_row(vec![company.tenant.clone(), named, state, next_run]);
            }
            if found.foreign > 0 {
                subscriptions.add_row(vec![
                    company.tenant.clone(),
                    format!("{} of other integrations", found.foreign),
                    "-".to_owned(),
                    "never touched".to_owned(),
                ]);
            }
            if let Some(error) = &found.error {
                subscriptions.add_row(vec![
                    company.tenant.clone(),
                    "-".to_owned(),
                    "not seen".to_owned(),
                    error.clone(),
                ]);
            }
        }
        out.push_str(&format!("{subscriptions}\n\n"));
    }
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
                company.tenant.clone(),
                t.object_type.clone(),
                t.run_id.clone(),
                t.state.clone(),
                t.listed.to_string(),
                t.fetched.to_string(),
                t.tombstoned.to_string(),
                t.drift_corrected.to_string(),
                confirmed,
            ]);
        }
    }
    out.push_str(&format!("{runs}\n\n"));
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
        let count = |of: fn(&crate::status::KeeperLastRun) -> u64| {
            run.map_or_else(|| "-".to_owned(), |run| of(run).to_string())
        };
        keeper.add_row(vec![
            company.tenant.clone(),
            run.map_or_else(|| "none yet".to_owned(), |run| run.finished_at.clone()),
            count(|r| r.seen),
            count(|r| r.re_enabled),
            count(|r| r.created),
            count(|r| r.updated),
            run.and_then(|run| run.error.as_ref())
                .map_or_else(|| count(|r| r.failed), |_| "the company".to_owned()),
            counts.join(", "),
        ]);
    }
    out.push_str(&format!("{keeper}\n\n"));
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

/// The stored copy, and beside it what Tripletex has when it was asked.
pub fn shown(shown: &Shown) -> String {
    let Some(object) = &shown.stored else {
        let mut out = format!("{}: not in the copy\n", shown.key);
        if shown.checked_tripletex {
            out.push_str(&match &shown.in_tripletex {
                Some(now) => format!(
                    "Tripletex has it at version {}: the next reconciliation fetches it\n",
                    now.version
                        .map_or_else(|| "-".to_owned(), |v| v.to_string())
                ),
                None => "Tripletex has no such object either\n".to_owned(),
            });
        }
        return out;
    };
    let mut out = stored(object);
    if shown.checked_tripletex {
        let now = match &shown.in_tripletex {
            Some(now) => format!(
                "Tripletex has version {}",
                now.version
                    .map_or_else(|| "-".to_owned(), |v| v.to_string())
            ),
            None => "Tripletex has no such object (404)".to_owned(),
        };
        let verdict = if shown.agrees() {
            "the copy agrees"
        } else {
            "the copy differs: the next reconciliation corrects it"
        };
        out.push_str(&format!("{now}: {verdict}\n"));
    }
    out
}

fn stored(object: &StoredObject) -> String {
    let mut rows = table(&["field", "value"]);
    let version = match (object.version, object.version_unknown) {
        (Some(v), true) => format!("{v} (at least: the last write had no version)"),
        (Some(v), false) => v.to_string(),
        (None, _) => "-".to_owned(),
    };
    rows.add_row(vec!["key".to_owned(), object.key.clone()]);
    rows.add_row(vec!["version".to_owned(), version]);
    rows.add_row(vec!["deleted".to_owned(), object.deleted.to_string()]);
    rows.add_row(vec!["source".to_owned(), or_dash(object.source.as_deref())]);
    rows.add_row(vec![
        "last event".to_owned(),
        or_dash(object.last_event.as_deref()),
    ]);
    rows.add_row(vec![
        "received".to_owned(),
        or_dash(object.received_at.as_deref()),
    ]);
    rows.add_row(vec![
        "updated".to_owned(),
        or_dash(object.updated_at.as_deref()),
    ]);
    let value = object
        .value
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_else(|| "-".to_owned());
    rows.add_row(vec!["value".to_owned(), value]);
    if let Some(last_value) = object
        .last_value
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
    {
        rows.add_row(vec![
            "last value (before its delete)".to_owned(),
            last_value,
        ]);
    }
    format!("{rows}\n")
}

pub fn sent(sent: &Sent) -> String {
    let version = sent
        .version
        .map_or_else(String::new, |v| format!(" at version {v}"));
    let mut out = format!(
        "sent {} for {}{version}: the receiver answered {} {}\n",
        sent.event, sent.key, sent.receiver_status, sent.receiver_answer
    );
    let seconds = sent.waited_ms as f64 / 1000.0;
    out.push_str(&match (sent.receiver_status, sent.progress) {
        (401, _) => {
            "the receiver refused the company's credentials as its auth secret holds them: \
check the secret and the receiver's cache (it rereads the secret every few minutes)\n"
                .to_owned()
        }
        (202, _) => "the receiver quarantined it: see `quarantine`\n".to_owned(),
        (200, Progress::Stored) => {
            format!("the worker stored it {seconds:.1} s after the send: the whole loop works\n")
        }
        (200, Progress::AlreadyCurrent) => format!(
            "the worker handled it {seconds:.1} s after the send; the copy held this version \
already, so its dedup changed nothing: the whole loop works\n"
        ),
        (200, Progress::Tombstoned) => "the worker handled it, but the copy holds a tombstone for \
this id, and no upsert lifts one: Tripletex gave a new object an id the copy saw deleted\n"
            .to_owned(),
        (200, Progress::Waiting) => match sent.webhook_queue_depth {
            Some(depth) if depth > 0 => format!(
                "the worker has not handled it after {seconds:.0} s; the webhook queue holds {depth} \
messages, which it may still be behind (wait longer with --timeout-seconds, or see `status`)\n"
            ),
            _ => format!(
                "the worker has not handled it after {seconds:.0} s, and the webhook queue is empty: \
see `dlq`, `quarantine` and the worker's logs\n"
            ),
        },
        (status, _) => format!("the receiver did not take it ({status}): nothing was queued\n"),
    });
    if let Some(object) = &sent.stored {
        out.push_str(&stored(object));
    }
    out
}

pub fn replayed(replayed: &crate::replay::Replayed) -> String {
    let what = match (&replayed.tenant, &replayed.event, replayed.object_id) {
        (Some(tenant), Some(event), Some(id)) => format!("{tenant} {event} {id}"),
        (Some(tenant), _, _) => format!("{tenant}'s message"),
        _ => "the message".to_owned(),
    };
    match (replayed.replayed, &replayed.refused_because) {
        (true, None) => format!(
            "{}: {what} is back on the webhook queue; the worker applies it (its dedup makes a \
replay safe)\n",
            replayed.message_id
        ),
        (true, Some(reason)) => format!(
            "{}: sent to the webhook queue anyway, though this command reads it as: {reason}; a \
worker that cannot apply it quarantines it again\n",
            replayed.message_id
        ),
        (false, reason) => format!(
            "{}: stays in the quarantine: {}; replay it once the worker can apply it (or with \
--anyway, if the deployed worker is newer than this command)\n",
            replayed.message_id,
            reason.as_deref().unwrap_or("not replayed")
        ),
    }
}

/// Bodies longer than this are cut in the table (`--json` has them whole).
const BODY_WIDTH: usize = 120;

pub fn messages(queue: &str, messages: &[QueuedMessage]) -> String {
    if messages.is_empty() {
        return format!("{queue}: empty\n");
    }
    let mut rows = table(&["message", "sent", "receives", "attributes", "body"]);
    for message in messages {
        let attributes: Vec<String> = message
            .attributes
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let mut body: String = message.body.chars().take(BODY_WIDTH).collect();
        if message.body.chars().count() > BODY_WIDTH {
            body.push('…');
        }
        rows.add_row(vec![
            message.message_id.clone(),
            or_dash(message.sent_at.as_deref()),
            message
                .receive_count
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            attributes.join("\n"),
            body,
        ]);
    }
    format!("{queue}: {} messages\n{rows}\n", messages.len())
}

/// The keeper's report: one row per company, then each failure.
pub fn keeper_report(report: &serde_json::Value) -> String {
    let count = |company: &serde_json::Value, field: &str| {
        company[field]
            .as_array()
            .map_or_else(|| company[field].to_string(), |list| list.len().to_string())
    };
    let mut rows = table(&[
        "company",
        "seen",
        "re-enabled",
        "created",
        "updated",
        "left alone",
        "failed",
    ]);
    let mut failures = Vec::new();
    for company in report["companies"].as_array().into_iter().flatten() {
        let tenant = company["tenant"].as_str().unwrap_or_default().to_owned();
        rows.add_row(vec![
            tenant.clone(),
            company["seen"].to_string(),
            count(company, "reEnabled"),
            count(company, "created"),
            count(company, "updated"),
            count(company, "leftAlone"),
            count(company, "failed"),
        ]);
        if let Some(error) = company["error"].as_str() {
            failures.push(format!("{tenant}: {error}"));
        }
        for failed in company["failed"].as_array().into_iter().flatten() {
            failures.push(format!(
                "{tenant} {} ({}): {}",
                failed["event"].as_str().unwrap_or_default(),
                failed["action"].as_str().unwrap_or_default(),
                failed["error"].as_str().unwrap_or_default()
            ));
        }
    }
    let dry = if report["dryRun"].as_bool() == Some(true) {
        " (dry run: nothing was changed)"
    } else {
        ""
    };
    let mut out = format!("keeper run{dry}\n{rows}\n");
    for failure in failures {
        out.push_str(&format!("  failed: {failure}\n"));
    }
    out
}

/// Sync runs with their counts per type.
pub fn runs(runs: &[RunProgress]) -> String {
    let mut rows = table(&[
        "company",
        "run",
        "type",
        "state",
        "listed",
        "fetched",
        "tombstoned",
        "drift",
    ]);
    for run in runs {
        for t in &run.types {
            rows.add_row(vec![
                run.tenant.clone(),
                run.run_id.clone(),
                t.object_type.clone(),
                t.failure
                    .as_ref()
                    .map_or_else(|| t.state.clone(), |why| format!("failed: {why}")),
                t.listed.to_string(),
                t.fetched.to_string(),
                t.tombstoned.to_string(),
                t.drift_corrected.to_string(),
            ]);
        }
    }
    format!("{rows}\n")
}

/// The client companies a key reaches, and which are looked after already.
pub fn discovered(companies: &Vec<domain::tripletex::DiscoveredCompany>) -> String {
    let mut rows = table(&["company id", "name", "organization number", "tenant"]);
    for company in companies {
        rows.add_row(vec![
            company.company_id.to_string(),
            company.name.clone().unwrap_or_default(),
            company.organization_number.clone().unwrap_or_default(),
            company
                .tenant
                .clone()
                .unwrap_or_else(|| "not added".to_owned()),
        ]);
    }
    let added = companies.iter().filter(|c| c.tenant.is_some()).count();
    format!(
        "{rows}\n{} client companies, {added} of them added\n",
        companies.len()
    )
}

pub fn added(companies: &[crate::companies::Added]) -> String {
    let mut rows = table(&["tenant", "company id", "state", "subscribed", "backfill"]);
    for company in companies {
        let backfill: Vec<String> = company
            .backfill
            .iter()
            .flat_map(|run| {
                run.types.iter().map(|t| {
                    format!(
                        "{} {}: {} listed, {} fetched",
                        t.object_type, t.state, t.listed, t.fetched
                    )
                })
            })
            .collect();
        rows.add_row(vec![
            company.tenant.clone(),
            company.company_id.to_string(),
            company.state.as_str().to_owned(),
            company.subscriptions_created.to_string(),
            if backfill.is_empty() {
                "-".to_owned()
            } else {
                backfill.join("\n")
            },
        ]);
    }
    let verdicts: Vec<String> = companies
        .iter()
        .map(|c| format!("{}: {}", c.tenant, c.verdict))
        .collect();
    format!("{rows}\n{}\n", verdicts.join("\n"))
}

pub fn companies(companies: &[crate::companies::Listed]) -> String {
    let mut rows = table(&[
        "tenant",
        "company id",
        "name",
        "state",
        "subscriptions",
        "keeper ran",
        "last sync",
        "objects",
    ]);
    for company in companies {
        let objects: Vec<String> = company
            .objects
            .iter()
            .map(|(object_type, count)| format!("{object_type} {count}"))
            .collect();
        rows.add_row(vec![
            company.tenant.clone(),
            company
                .company_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            or_dash(company.name.as_deref()),
            company.state.clone(),
            company
                .subscriptions
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            match (&company.keeper_ran_at, &company.keeper_error) {
                (_, Some(error)) => format!("failed: {error}"),
                (Some(at), None) => at.clone(),
                (None, None) => "-".to_owned(),
            },
            or_dash(company.last_sync.as_deref()),
            if objects.is_empty() {
                "-".to_owned()
            } else {
                objects.join("\n")
            },
        ]);
    }
    format!("{rows}\n{} companies\n", companies.len())
}

pub fn removed(removed: &crate::companies::Removed) -> String {
    format!("{}: {}\n", removed.tenant, removed.verdict)
}
