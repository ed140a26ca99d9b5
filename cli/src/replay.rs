//! `quarantine replay`: whether a quarantined message can be applied now, read as the worker reads
//! a record, and the message the webhook queue gets for it.

use std::collections::BTreeMap;

use domain::message::attribute;
use domain::record::{RecordError, change_from_message};
use serde::Serialize;

/// A quarantined message as the webhook queue will carry it: its reason gone, and the names the
/// receiver sets on a valid envelope (event, object id, subscription) read from the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayable {
    pub tenant: String,
    pub event: String,
    pub object_id: i64,
    #[serde(skip)]
    pub attributes: BTreeMap<String, String>,
}

pub fn replayable(
    body: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<Replayable, RecordError> {
    let change = change_from_message(
        Some(body),
        |name| attributes.get(name).map(String::as_str),
        jiff::Timestamp::now(),
    )?;
    let mut queued = attributes.clone();
    queued.remove(attribute::QUARANTINE_REASON);
    queued.insert(attribute::EVENT.to_owned(), change.event.clone());
    queued.insert(
        attribute::OBJECT_ID.to_owned(),
        change.key.object_id.to_string(),
    );
    if let Some(subscription) = change.subscription_id {
        queued.insert(
            attribute::SUBSCRIPTION_ID.to_owned(),
            subscription.to_string(),
        );
    }
    Ok(Replayable {
        tenant: change.key.tenant.to_string(),
        event: change.event,
        object_id: change.key.object_id,
        attributes: queued,
    })
}

/// What `quarantine replay` did with one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    pub message_id: String,
    /// Sent to the webhook queue (and gone from the quarantine).
    pub replayed: bool,
    /// Why the worker's reading of a record refuses it; none when it can be applied now.
    pub refused_because: Option<String>,
    pub tenant: Option<String>,
    pub event: Option<String>,
    pub object_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_envelope_goes_back_without_its_reason_and_with_the_names_of_its_body() {
        let quarantined = attributes(&[
            ("tenant", "acme"),
            ("receivedAt", "2026-12-01T10:00:00Z"),
            ("idempotencyKey", "k-1"),
            (
                "quarantineReason",
                "invalid event name: \"Customer.Update\"",
            ),
        ]);
        let body =
            r#"{"subscriptionId":9,"event":"customer.update","id":7,"value":{"id":7,"version":2}}"#;
        let replay = replayable(body, &quarantined).unwrap();
        assert_eq!(
            (
                replay.tenant.as_str(),
                replay.event.as_str(),
                replay.object_id
            ),
            ("acme", "customer.update", 7)
        );
        assert_eq!(
            replay.attributes,
            attributes(&[
                ("tenant", "acme"),
                ("receivedAt", "2026-12-01T10:00:00Z"),
                ("idempotencyKey", "k-1"),
                ("event", "customer.update"),
                ("objectId", "7"),
                ("subscriptionId", "9"),
            ])
        );
    }

    #[test]
    fn what_the_worker_would_quarantine_again_is_refused_with_its_reason() {
        let tenant = attributes(&[("tenant", "acme")]);
        let refused = |body: &str, attributes: &BTreeMap<String, String>| {
            replayable(body, attributes).unwrap_err().to_string()
        };
        assert_eq!(
            refused(r#"{"event":"customer.update","id":"seven"}"#, &tenant),
            "id must be a positive integer"
        );
        assert_eq!(
            refused(r#"{"event":"customer.update","id":7}"#, &BTreeMap::new()),
            "message has no tenant attribute"
        );
        let encoded = attributes(&[("tenant", "acme"), ("bodyEncoding", "base64")]);
        assert_eq!(
            refused("AAEC", &encoded),
            "message body is base64 (not a JSON envelope)"
        );
    }
}
