//! The message the receiver queues: the raw body exactly as Tripletex sent it, plus attributes that
//! let the worker (and a person reading the quarantine queue) route it without parsing the body.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;

use crate::ids::TenantId;

/// Message attribute names, shared by the receiver that writes them and the worker that reads them.
pub mod attribute {
    pub const TENANT: &str = "tenant";
    pub const EVENT: &str = "event";
    pub const OBJECT_ID: &str = "objectId";
    pub const SUBSCRIPTION_ID: &str = "subscriptionId";
    pub const RECEIVED_AT: &str = "receivedAt";
    pub const REQUEST_ID: &str = "requestId";
    pub const IDEMPOTENCY_KEY: &str = "idempotencyKey";
    pub const QUARANTINE_REASON: &str = "quarantineReason";
    pub const BODY_ENCODING: &str = "bodyEncoding";
    /// `resync` on messages the keeper's resync queues; absent on webhooks.
    pub const SOURCE: &str = "source";
    /// On a reconciliation's marker in the webhook queue (not an envelope): its run id. The
    /// worker records that it reached it (`sync::marker`).
    pub const SYNC_MARKER: &str = "syncMarker";
    /// On a sync's message only: Tripletex contradicted the copy, which held this (`dedup::Seen`,
    /// `7:live`, `-:deleted`); the object replaces it (`dedup::Write::Replace`).
    pub const REPLACES: &str = "replaces";
    /// On a message too large for SQS: the payload bucket's key of its body (`claim`).
    pub const BODY_CLAIM: &str = "bodyClaim";
    /// The SHA-256 of a claim-checked body, checked when it is read.
    pub const BODY_DIGEST: &str = "bodyDigest";
}

/// Longest attribute value we copy from a request header; longer ones are left out, not truncated,
/// so that a stored key is always the key that was sent.
const MAX_COPIED_HEADER_LEN: usize = 256;

/// How the message body holds the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// The body as sent (valid UTF-8 of characters SQS accepts).
    Raw,
    /// Base64 of the bytes as sent: only for quarantined bodies SQS could not carry as text.
    Base64,
}

impl fmt::Display for BodyEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Raw => "raw",
            Self::Base64 => "base64",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookMessage {
    pub body: String,
    pub body_encoding: BodyEncoding,
    pub tenant: TenantId,
    pub event: Option<String>,
    pub object_id: Option<i64>,
    pub subscription_id: Option<i64>,
    pub received_at: Timestamp,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    /// Set on quarantined messages only: why the body is not a valid envelope.
    pub quarantine_reason: Option<String>,
}

/// What a queue carries: a body and string attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub body: String,
    pub attributes: Vec<(String, String)>,
}

/// The most SQS takes in one message, body and attributes together (256 KiB).
pub const MAX_QUEUE_MESSAGE_BYTES: usize = 256 * 1024;

impl QueueMessage {
    /// What the message weighs against SQS's limits: the body, and each attribute's name and value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The same message with one attribute set (replacing any value it had).
    pub fn with_attribute(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.retain(|(key, _)| key != name);
        self.attributes.push((name.to_owned(), value.into()));
        self
    }
}

impl From<&WebhookMessage> for QueueMessage {
    fn from(message: &WebhookMessage) -> Self {
        Self {
            body: message.body.clone(),
            attributes: message
                .attributes()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        }
    }
}

impl WebhookMessage {
    /// The attributes as name/value pairs (every value is an SQS `String`).
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            (attribute::TENANT, self.tenant.to_string()),
            (attribute::RECEIVED_AT, self.received_at.to_string()),
            (attribute::BODY_ENCODING, self.body_encoding.to_string()),
        ];
        let optional = [
            (attribute::EVENT, self.event.clone()),
            (
                attribute::OBJECT_ID,
                self.object_id.map(|id| id.to_string()),
            ),
            (
                attribute::SUBSCRIPTION_ID,
                self.subscription_id.map(|id| id.to_string()),
            ),
            (
                attribute::REQUEST_ID,
                Some(self.request_id.clone()).filter(|id| !id.is_empty()),
            ),
            (attribute::IDEMPOTENCY_KEY, self.idempotency_key.clone()),
            (attribute::QUARANTINE_REASON, self.quarantine_reason.clone()),
        ];
        pairs.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        );
        pairs
    }
}

/// The request body as an SQS message body: as sent when SQS can carry it, else base64.
pub fn message_body(body: &[u8]) -> (String, BodyEncoding) {
    match std::str::from_utf8(body) {
        Ok(text) if text.chars().all(is_sqs_char) => (text.to_owned(), BodyEncoding::Raw),
        _ => (BASE64.encode(body), BodyEncoding::Base64),
    }
}

/// Text for an attribute value we compose ourselves (a reason, a request id): characters SQS
/// rejects are replaced, so the message is never refused for them.
pub fn attribute_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if is_sqs_char(c) {
                c
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect()
}

/// A header value worth copying into an attribute: printable ASCII and of sane length.
pub fn copied_header_value(value: &[u8]) -> Option<String> {
    let printable = value.iter().all(|b| (0x20..0x7f).contains(b));
    (printable && !value.is_empty() && value.len() <= MAX_COPIED_HEADER_LEN)
        .then(|| String::from_utf8_lossy(value).into_owned())
}

/// The characters SQS accepts in a message body or attribute (its XML 1.0 character set).
fn is_sqs_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_json_body_as_sent() {
        let body = "{\n  \"event\": \"product.create\", \"name\": \"Smørbrød ✓\"\n}";
        assert_eq!(
            message_body(body.as_bytes()),
            (body.to_owned(), BodyEncoding::Raw)
        );
    }

    #[test]
    fn base64_encodes_bodies_sqs_cannot_carry() {
        let invalid_utf8 = [0x7b, 0xff, 0xfe, 0x7d];
        let (text, encoding) = message_body(&invalid_utf8);
        assert_eq!(encoding, BodyEncoding::Base64);
        assert_eq!(BASE64.decode(text).unwrap(), invalid_utf8);

        let control_char = b"{\"a\":\"\x01\"}";
        assert_eq!(message_body(control_char).1, BodyEncoding::Base64);
    }

    #[test]
    fn attribute_text_replaces_characters_sqs_rejects() {
        assert_eq!(attribute_text("bad\u{0}event"), "bad\u{FFFD}event");
        assert_eq!(attribute_text("fine ✓"), "fine ✓");
    }

    #[test]
    fn copies_only_printable_header_values_of_sane_length() {
        assert_eq!(copied_header_value(b"5f0c-11"), Some("5f0c-11".to_owned()));
        assert_eq!(copied_header_value(b""), None);
        assert_eq!(copied_header_value(b"a\x01b"), None);
        assert_eq!(copied_header_value(&[b'k'; 257]), None);
    }

    #[test]
    fn attributes_leave_out_what_is_unknown() {
        let message = WebhookMessage {
            body: "{}".into(),
            body_encoding: BodyEncoding::Raw,
            tenant: TenantId::default_tenant(),
            event: Some("product.create".into()),
            object_id: Some(42),
            subscription_id: None,
            received_at: Timestamp::UNIX_EPOCH,
            request_id: "req-1".into(),
            idempotency_key: None,
            quarantine_reason: None,
        };
        let names: Vec<_> = message
            .attributes()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "tenant",
                "receivedAt",
                "bodyEncoding",
                "event",
                "objectId",
                "requestId"
            ]
        );
    }
}
