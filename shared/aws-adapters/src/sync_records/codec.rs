//! Attribute values written and items read back: a run, a confirmation, a drift finding.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::{SignedDuration, Timestamp};

use super::keys::*;
use domain::sync::RunState;
use domain::sync::{RecordedRun, RunMode, TypeCounts};

pub(super) fn s(text: String) -> AttributeValue {
    AttributeValue::S(text)
}

pub(super) fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

pub(super) fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

pub(super) fn expires_in(days: i64) -> AttributeValue {
    expires_after(SignedDuration::from_hours(24 * days))
}

/// The TTL attribute of an item kept this long from now.
pub(super) fn expires_after(kept: SignedDuration) -> AttributeValue {
    let at = Timestamp::now().checked_add(kept).unwrap_or(Timestamp::MAX);
    n(at.as_second())
}

pub(super) fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(super) fn texts(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// A run record read back as `start_run` and `record_step` write it; none for the table's other
/// items.
pub fn read_run(item: &HashMap<String, AttributeValue>) -> Option<RecordedRun> {
    let tenant = text(item, item::KEY)?
        .strip_prefix(RUN_KEY_PREFIX)?
        .to_owned();
    let types = texts(item, item::TYPES);
    let counts = types
        .iter()
        .map(|object_type| {
            let mut counts = TypeCounts::default();
            for (name, value) in counts.named_mut() {
                *value = number(item, &count_attribute(object_type, name));
            }
            (object_type.clone(), counts)
        })
        .collect();
    Some(RecordedRun {
        tenant,
        run_id: text(item, item::SORT)?,
        mode: text(item, item::MODE).and_then(|mode| RunMode::parse(&mode)),
        state: text(item, item::STATE).and_then(|state| RunState::parse(&state)),
        started_at: text(item, item::STARTED_AT),
        finished_at: text(item, item::FINISHED_AT),
        steps: number(item, item::STEPS),
        types,
        counts,
        failures: texts(item, item::FAILURES),
    })
}

/// A type's confirmation read back: the company, the type, and when the listing that proved its
/// copy complete began; none for the table's other items.
pub fn read_confirmation(
    item: &HashMap<String, AttributeValue>,
) -> Option<(String, String, Timestamp)> {
    let tenant = text(item, item::KEY)?
        .strip_prefix(domain::sync::freshness::CONFIRMED_KEY_PREFIX)?
        .to_owned();
    let seconds = item.get(item::CONFIRMED_AT)?.as_n().ok()?.parse().ok()?;
    Some((
        tenant,
        text(item, item::SORT)?,
        Timestamp::from_second(seconds).ok()?,
    ))
}

/// A drift finding not settled yet, read from a scan of the table (as `status` reads it): its
/// company, its type and the run that counted it.
pub fn read_drift_finding(
    item: &HashMap<String, AttributeValue>,
) -> Option<(String, String, String)> {
    let tenant = text(item, item::KEY)?
        .strip_prefix(DRIFT_KEY_PREFIX)?
        .to_owned();
    let sort = text(item, item::SORT)?;
    let (object_type, _) = sort.rsplit_once('#')?;
    Some((tenant, object_type.to_owned(), text(item, item::RUN)?))
}
