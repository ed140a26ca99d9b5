//! The Tripletex webhook envelope `{subscriptionId, event, id, value}` and the names it carries.
//!
//! Parsing is tolerant where Tripletex is loose (unknown fields, absent `subscriptionId` or `value`,
//! `value: null` on deletes) and strict where the worker depends on it (an `object.verb` event, an
//! integer object id, an integer `version` when one is present).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Longest event name Tripletex accepts on a subscription (`maxLength` 255).
const MAX_EVENT_LEN: usize = 255;

/// An event name `object.verb`, e.g. `product.update` or `closeGroup.create`; case is kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventName {
    name: String,
    dot: usize,
}

impl EventName {
    pub fn parse(name: &str) -> Result<Self, EnvelopeError> {
        let invalid = || EnvelopeError::InvalidEvent(name.chars().take(64).collect());
        if name.len() > MAX_EVENT_LEN {
            return Err(invalid());
        }
        let (object, verb) = name.split_once('.').ok_or_else(invalid)?;
        let is_word = |part: &str| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !is_word(object) || !is_word(verb) {
            return Err(invalid());
        }
        Ok(Self {
            name: name.to_owned(),
            dot: object.len(),
        })
    }

    /// The object type: the part before the dot, kept as sent (`closeGroup`, `voucherstatus`).
    pub fn object(&self) -> &str {
        &self.name[..self.dot]
    }

    pub fn verb(&self) -> &str {
        &self.name[self.dot + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Deletes carry no object (`value: null`) and no version.
    pub fn is_delete(&self) -> bool {
        matches!(self.verb(), "delete" | "deleted")
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// What an envelope asks the copy of an object to become.
#[derive(Debug, Clone)]
pub enum Change {
    /// The object exactly as sent, with its version when the subscription's `fields` include it.
    Upsert {
        version: Option<i64>,
        value: Box<RawValue>,
    },
    /// The object is gone; deletes carry neither object nor version.
    Delete,
}

impl PartialEq for Change {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Delete, Self::Delete) => true,
            (
                Self::Upsert { version, value },
                Self::Upsert {
                    version: other_version,
                    value: other_value,
                },
            ) => version == other_version && value.get() == other_value.get(),
            _ => false,
        }
    }
}

/// A validated webhook envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEnvelope {
    pub subscription_id: Option<i64>,
    pub event: EventName,
    pub object_id: i64,
    pub change: Change,
}

/// An envelope as Tripletex sends it, for what sends one itself: the sync's fetches and
/// tombstones, and `tripletex-webhooks send`. `value` is the object's JSON as Tripletex gave it
/// (none for a delete).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingEnvelope<'a> {
    pub subscription_id: Option<i64>,
    pub event: &'a str,
    pub id: i64,
    pub value: Option<&'a RawValue>,
}

impl OutgoingEnvelope<'_> {
    /// The body: ids, an event name and JSON already parsed cannot fail to serialise.
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a body is not a webhook envelope. The text is safe to log and to return to an authenticated
/// caller: it names fields and positions, never credentials.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("body is not an envelope {{subscriptionId, event, id, value}}: {0}")]
    NotAnEnvelope(#[source] serde_json::Error),
    #[error("event {0:?} is not of the form object.verb")]
    InvalidEvent(String),
    #[error("id must be a positive integer")]
    InvalidObjectId,
    /// What the body's first, raw read lets through and a full read refuses: a lone surrogate
    /// escape (`"\ud800"`), which no Rust string can hold.
    #[error("value cannot be read: {0}")]
    ValueUnreadable(#[source] serde_json::Error),
    #[error("value must be an object or null")]
    ValueNotAnObject,
    #[error("value is nested deeper than the {MAX_NESTING} levels a JSON object may have here")]
    NestedTooDeep,
    #[error("value is null for {0}, which is not a delete event")]
    MissingValue(String),
    #[error("value.id {value_id} differs from the envelope id {object_id}")]
    ObjectIdMismatch { object_id: i64, value_id: i64 },
    #[error("value.id must be an integer")]
    InvalidValueId,
    #[error("value.version must be a non-negative integer")]
    InvalidVersion,
}

/// The wire shape, kept loose so that each rule above can give its own error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    #[serde(default)]
    subscription_id: Option<i64>,
    event: String,
    id: Value,
    #[serde(default)]
    value: Option<Box<RawValue>>,
}

impl WebhookEnvelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        // Parsed as JSON first, so that invalid JSON and a JSON non-envelope get their own reasons.
        let json: &RawValue = serde_json::from_slice(body).map_err(EnvelopeError::InvalidJson)?;
        let raw: RawEnvelope =
            serde_json::from_str(json.get()).map_err(EnvelopeError::NotAnEnvelope)?;
        let event = EventName::parse(&raw.event)?;
        let object_id = raw
            .id
            .as_i64()
            .filter(|id| *id > 0)
            .ok_or(EnvelopeError::InvalidObjectId)?;
        let value = match raw.value {
            Some(value) if value.get() != "null" => Some(value),
            _ => None,
        };
        let change = match value {
            None if event.is_delete() => Change::Delete,
            None => return Err(EnvelopeError::MissingValue(event.name)),
            Some(value) => {
                let object: Map<String, Value> =
                    serde_json::from_str(value.get()).map_err(|error| {
                        if is_nesting_limit(&error) {
                            EnvelopeError::NestedTooDeep
                        } else if error.is_syntax() {
                            EnvelopeError::ValueUnreadable(error)
                        } else {
                            EnvelopeError::ValueNotAnObject
                        }
                    })?;
                if event.is_delete() {
                    // A delete is a delete whatever else came with it: the object is gone.
                    Change::Delete
                } else {
                    check_value_id(object_id, &object)?;
                    Change::Upsert {
                        version: version_of(&object)?,
                        value,
                    }
                }
            }
        };
        Ok(Self {
            subscription_id: raw.subscription_id,
            event,
            object_id,
            change,
        })
    }

    pub fn version(&self) -> Option<i64> {
        match &self.change {
            Change::Upsert { version, .. } => *version,
            Change::Delete => None,
        }
    }
}

/// How deep serde_json lets a value nest before it stops reading (its recursion limit).
pub const MAX_NESTING: usize = 128;

/// serde_json's recursion limit has no error category of its own; its message is stable.
fn is_nesting_limit(error: &serde_json::Error) -> bool {
    error.to_string().starts_with("recursion limit exceeded")
}

fn version_of(value: &Map<String, Value>) -> Result<Option<i64>, EnvelopeError> {
    match value.get("version") {
        None | Some(Value::Null) => Ok(None),
        Some(version) => version
            .as_i64()
            .filter(|v| *v >= 0)
            .map(Some)
            .ok_or(EnvelopeError::InvalidVersion),
    }
}

/// A value without an id is the envelope's object; one with an id must name the same object. An id
/// that is no integer (`100.0`, `"1001"`) names none, so it is refused rather than not compared.
fn check_value_id(object_id: i64, value: &Map<String, Value>) -> Result<(), EnvelopeError> {
    match value.get("id") {
        None | Some(Value::Null) => Ok(()),
        Some(id) => match id.as_i64() {
            Some(value_id) if value_id == object_id => Ok(()),
            Some(value_id) => Err(EnvelopeError::ObjectIdMismatch {
                object_id,
                value_id,
            }),
            None => Err(EnvelopeError::InvalidValueId),
        },
    }
}

#[cfg(test)]
mod tests {
    /// `{"a":{"a":…{}…}}`, `depth` objects deep.
    fn nested_objects(depth: usize) -> String {
        format!(
            "{}{{}}{}",
            "{\"a\":".repeat(depth - 1),
            "}".repeat(depth - 1)
        )
    }

    #[test]
    fn a_value_nested_too_deep_is_refused_for_its_depth_not_its_type() {
        for depth in [MAX_NESTING + 1, 10_000] {
            let nested = nested_objects(depth);
            let body = format!(
                r#"{{"subscriptionId": 1, "event": "product.update", "id": 7, "value": {nested}}}"#
            );
            let error = WebhookEnvelope::parse(body.as_bytes()).unwrap_err();
            assert!(
                matches!(error, EnvelopeError::NestedTooDeep),
                "{depth}: {error}"
            );
            assert_eq!(
                error.to_string(),
                "value is nested deeper than the 128 levels a JSON object may have here"
            );
        }
        let body = format!(
            r#"{{"event": "product.update", "id": 7, "value": {}}}"#,
            nested_objects(100)
        );
        assert!(WebhookEnvelope::parse(body.as_bytes()).is_ok());
    }

    use super::*;

    fn parse(body: &str) -> Result<WebhookEnvelope, EnvelopeError> {
        WebhookEnvelope::parse(body.as_bytes())
    }

    #[test]
    fn parses_an_update_with_its_version() {
        let envelope = parse(
            r#"{"subscriptionId": 17, "event": "product.update", "id": 123456,
                "value": {"id": 123456, "version": 7, "url": "https://tripletex.no/v2/product/123456", "name": "Widget"}}"#,
        )
        .unwrap();
        assert_eq!(envelope.subscription_id, Some(17));
        assert_eq!(envelope.event.object(), "product");
        assert_eq!(envelope.event.verb(), "update");
        assert_eq!(envelope.object_id, 123456);
        assert_eq!(envelope.version(), Some(7));
        let Change::Upsert { value, .. } = &envelope.change else {
            panic!("expected an upsert, got {:?}", envelope.change);
        };
        assert_eq!(
            value.get(),
            r#"{"id": 123456, "version": 7, "url": "https://tripletex.no/v2/product/123456", "name": "Widget"}"#,
            "the object is kept exactly as sent"
        );
    }

    #[test]
    fn parses_a_delete_with_null_value_as_delete_without_version() {
        let envelope = parse(
            r#"{"subscriptionId": 18, "event": "product.delete", "id": 123456, "value": null}"#,
        )
        .unwrap();
        assert_eq!(envelope.change, Change::Delete);
        assert_eq!(envelope.version(), None);
    }

    #[test]
    fn parses_a_delete_without_value_field() {
        let envelope =
            parse(r#"{"subscriptionId": 18, "event": "order.delete", "id": 5}"#).unwrap();
        assert_eq!(envelope.change, Change::Delete);
    }

    #[test]
    fn close_group_delete_keeps_camel_case_object_name() {
        let envelope =
            parse(r#"{"subscriptionId": 3, "event": "closeGroup.delete", "id": 9, "value": null}"#)
                .unwrap();
        assert_eq!(envelope.event.object(), "closeGroup");
        assert_eq!(envelope.change, Change::Delete);
    }

    #[test]
    fn value_without_version_is_an_unversioned_upsert() {
        // A subscription whose `fields` leave out version still delivers the object.
        let envelope =
            parse(r#"{"subscriptionId": 1, "event": "customer.update", "id": 8, "value": {"id": 8, "name": "A"}}"#)
                .unwrap();
        assert!(matches!(
            envelope.change,
            Change::Upsert { version: None, .. }
        ));
    }

    #[test]
    fn ignores_unknown_fields_and_absent_subscription_id() {
        let envelope = parse(
            r#"{"event": "invoice.charged", "id": 77, "value": {"id": 77, "version": 0}, "extra": [1, 2]}"#,
        )
        .unwrap();
        assert_eq!(envelope.subscription_id, None);
        assert_eq!(envelope.version(), Some(0));
    }

    #[test]
    fn value_without_id_is_accepted_when_fields_filter_left_it_out() {
        let envelope = parse(
            r#"{"subscriptionId": 1, "event": "voucher.create", "id": 4, "value": {"version": 2}}"#,
        )
        .unwrap();
        assert_eq!(envelope.version(), Some(2));
    }

    #[test]
    fn notification_sent_and_voucherstatus_ready_are_upserts() {
        for event in ["notification.sent", "voucherstatus.ready"] {
            let body = format!(
                r#"{{"subscriptionId": 1, "event": "{event}", "id": 4, "value": {{"id": 4}}}}"#
            );
            let envelope = parse(&body).unwrap();
            assert_eq!(envelope.event.as_str(), event);
            assert!(matches!(envelope.change, Change::Upsert { .. }));
        }
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(matches!(
            parse("{not json"),
            Err(EnvelopeError::InvalidJson(_))
        ));
        assert!(matches!(parse(""), Err(EnvelopeError::InvalidJson(_))));
    }

    #[test]
    fn rejects_json_that_is_not_an_envelope() {
        assert!(matches!(
            parse("[1,2]"),
            Err(EnvelopeError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            parse(r#"{"hello": "world"}"#),
            Err(EnvelopeError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            parse(r#"{"event": "product.create"}"#),
            Err(EnvelopeError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            parse(r#"{"event": 5, "id": 1, "value": null}"#),
            Err(EnvelopeError::NotAnEnvelope(_))
        ));
    }

    #[test]
    fn rejects_event_names_that_are_not_object_dot_verb() {
        for event in [
            "product",
            "product.",
            ".create",
            "a.b.c",
            "pro duct.create",
            "1x.create",
            "",
        ] {
            let body = format!(r#"{{"event": "{event}", "id": 1, "value": {{}}}}"#);
            assert!(
                matches!(parse(&body), Err(EnvelopeError::InvalidEvent(_))),
                "{event:?} should be rejected"
            );
        }
    }

    #[test]
    fn rejects_ids_that_are_not_positive_integers() {
        for id in [r#""12""#, "0", "-3", "1.5", "null"] {
            let body = format!(r#"{{"event": "product.create", "id": {id}, "value": {{}}}}"#);
            assert!(
                matches!(parse(&body), Err(EnvelopeError::InvalidObjectId)),
                "id {id}"
            );
        }
    }

    #[test]
    fn rejects_null_value_on_a_non_delete_event() {
        let result = parse(r#"{"event": "product.update", "id": 1, "value": null}"#);
        assert!(
            matches!(result, Err(EnvelopeError::MissingValue(event)) if event == "product.update")
        );
    }

    #[test]
    fn rejects_value_that_is_not_an_object() {
        let result = parse(r#"{"event": "product.update", "id": 1, "value": [1]}"#);
        assert!(matches!(result, Err(EnvelopeError::ValueNotAnObject)));
    }

    #[test]
    fn rejects_value_whose_id_differs_from_the_envelope_id() {
        let result =
            parse(r#"{"event": "product.update", "id": 1, "value": {"id": 2, "version": 1}}"#);
        assert!(matches!(
            result,
            Err(EnvelopeError::ObjectIdMismatch {
                object_id: 1,
                value_id: 2
            })
        ));
    }

    /// Found by the `tripletex_answers` fuzz target: Tripletex may send what the worker cannot read.
    #[test]
    fn a_value_with_a_lone_surrogate_is_unreadable_and_says_so() {
        let result =
            parse(r#"{"event": "product.update", "id": 1, "value": {"id": 1, "name": "a\ud800"}}"#);
        assert!(
            matches!(result, Err(EnvelopeError::ValueUnreadable(_))),
            "{result:?}"
        );
    }

    /// Found by the `envelope` fuzz target: `100.0` was not compared, so a value naming another
    /// object was stored under the envelope's id.
    #[test]
    fn rejects_value_ids_that_are_not_integers() {
        for id in ["1.0", "100.0", r#""1""#, "true", "{}", "[1]"] {
            let body =
                format!(r#"{{"event": "product.update", "id": 1, "value": {{"id": {id}}}}}"#);
            assert!(
                matches!(parse(&body), Err(EnvelopeError::InvalidValueId)),
                "value.id {id}"
            );
        }
        let without = parse(r#"{"event": "product.update", "id": 1, "value": {"id": null}}"#);
        assert!(without.is_ok(), "a null id is no id");
    }

    #[test]
    fn rejects_versions_that_are_not_non_negative_integers() {
        for version in [r#""7""#, "-1", "2.5", "{}"] {
            let body = format!(
                r#"{{"event": "product.update", "id": 1, "value": {{"id": 1, "version": {version}}}}}"#
            );
            assert!(
                matches!(parse(&body), Err(EnvelopeError::InvalidVersion)),
                "version {version}"
            );
        }
    }

    #[test]
    fn error_text_names_the_problem_without_echoing_the_body() {
        let error = parse(r#"{"event": "product.update", "id": 1, "value": null}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "value is null for product.update, which is not a delete event"
        );
    }
}
