//! Tables for people (comfy-table); `--json` prints the same data with serde instead.

use comfy_table::Table;

use crate::aws::{QueuedMessage, StoredObject};
use crate::status::Status;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

pub fn status(status: &Status) -> String {
    let mut out = format!("deployment {}\n\n", status.deployment);
    let mut queues = table(&["queue", "waiting", "in flight"]);
    for queue in &status.queues {
        queues.add_row(vec![
            queue.name.to_owned(),
            queue.visible.to_string(),
            queue.in_flight.to_string(),
        ]);
    }
    out.push_str(&format!("{queues}\n\n"));
    let mut runs = table(&[
        "company",
        "type",
        "last sync run",
        "state",
        "listed",
        "fetched",
        "tombstoned",
        "drift",
    ]);
    for company in &status.companies {
        for t in &company.types {
            runs.add_row(vec![
                company.tenant.clone(),
                t.object_type.clone(),
                t.run_id.clone(),
                t.state.clone(),
                t.listed.to_string(),
                t.fetched.to_string(),
                t.tombstoned.to_string(),
                t.drift_corrected.to_string(),
            ]);
        }
    }
    out.push_str(&format!("{runs}\n\n"));
    let mut requests = table(&["company", "keeper's resync requests"]);
    for company in &status.companies {
        let counts: Vec<String> = company
            .resync_requests
            .iter()
            .map(|(state, count)| format!("{count} {state}"))
            .collect();
        requests.add_row(vec![company.tenant.clone(), counts.join(", ")]);
    }
    out.push_str(&format!("{requests}\n\n"));
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

pub fn stored(object: &StoredObject) -> String {
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
    format!("{rows}\n")
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
