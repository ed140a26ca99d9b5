//! Tables for people (comfy-table), the pieces every command's rendering shares; `--json` prints
//! the same data with serde instead.

use comfy_table::Table;

use crate::ops::queues::QueuedMessage;
use crate::ops::tables::StoredObject;

pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

/// An age as a person reads it: seconds, minutes, hours.
pub fn age(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        _ => format!("{} h", seconds / 3600),
    }
}

pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
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
    rows.add_row(vec![
        "made by request".to_owned(),
        object.last_request.as_deref().map_or_else(
            || "-".to_owned(),
            |request| format!("{request} (tripletex-webhooks log --request {request})"),
        ),
    ]);
    if let Some(at) = &object.forgotten_at {
        rows.add_row(vec![
            "forgotten".to_owned(),
            format!(
                "{at}: its value was erased on request; only a version newer than {} is stored again",
                object
                    .version
                    .map_or_else(|| "the one it had".to_owned(), |v| v.to_string())
            ),
        ]);
    }
    let value = match (&object.value, &object.forgotten_at, object.deleted) {
        (Some(value), _, _) => {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| "-".to_owned())
        }
        (None, Some(_), _) => "- (forgotten)".to_owned(),
        (None, None, true) => "- (a tombstone keeps no value)".to_owned(),
        (None, None, false) => "-".to_owned(),
    };
    rows.add_row(vec!["value".to_owned(), value]);
    if let Some(claim) = &object.value_claim {
        rows.add_row(vec![
            "kept in".to_owned(),
            format!("the payload bucket, {claim} (over an item's limit)"),
        ]);
    }
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
