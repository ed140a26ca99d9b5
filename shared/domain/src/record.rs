//! What a queued message means to the worker: the object change it asks for, or why it cannot be
//! applied ever (and so belongs in quarantine rather than in retries).

use jiff::Timestamp;

use crate::dedup::{ObjectChange, ObjectKey, Outcome, Payload, Source, Write, probe_of};
use crate::envelope::{Change, EnvelopeError, WebhookEnvelope};
use crate::ids::TenantId;
use crate::message::attribute;

/// Why a message can never be applied.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("message has no body")]
    NoBody,
    #[error("message body is base64 (not a JSON envelope)")]
    EncodedBody,
    #[error("message has no tenant attribute")]
    MissingTenant,
    #[error("message tenant attribute is invalid")]
    InvalidTenant,
    #[error(transparent)]
    NotAnEnvelope(#[from] EnvelopeError),
    #[error(
        "message replaces attribute {0:?} is not `<version>|-:<live|deleted>` on a versioned sync upsert"
    )]
    InvalidReplaces(String),
}

/// Reads a queued message into the change it asks for. `attribute` looks up a message attribute.
pub fn change_from_message<'a>(
    body: Option<&str>,
    attribute: impl Fn(&str) -> Option<&'a str>,
    now: Timestamp,
) -> Result<ObjectChange, RecordError> {
    let body = body.ok_or(RecordError::NoBody)?;
    if attribute(attribute::BODY_ENCODING) == Some("base64") {
        return Err(RecordError::EncodedBody);
    }
    let tenant = attribute(attribute::TENANT).ok_or(RecordError::MissingTenant)?;
    let tenant = TenantId::parse(tenant).map_err(|_| RecordError::InvalidTenant)?;
    let envelope = WebhookEnvelope::parse(body.as_bytes())?;
    let received_at = attribute(attribute::RECEIVED_AT)
        .and_then(|text| text.parse().ok())
        .unwrap_or(now);
    let source = match attribute(attribute::SOURCE) {
        Some("resync") => Source::Resync,
        _ => Source::Webhook,
    };
    let write = match &envelope.change {
        Change::Upsert {
            version: Some(version),
            value,
        } => Write::Versioned {
            version: *version,
            payload: Payload::new(value),
        },
        Change::Upsert {
            version: None,
            value,
        } => Write::Unversioned {
            payload: Payload::new(value),
        },
        Change::Delete => Write::Delete,
    };
    // Only the sync replaces a copy, and only with a versioned object it asked Tripletex for.
    let write = match (attribute(attribute::REPLACES), source, write) {
        (None, _, write) => write,
        (Some(seen), Source::Resync, Write::Versioned { version, payload }) => Write::Replace {
            version,
            payload,
            seen: seen
                .parse()
                .map_err(|()| RecordError::InvalidReplaces(seen.to_owned()))?,
        },
        (Some(seen), _, _) => return Err(RecordError::InvalidReplaces(seen.to_owned())),
    };
    Ok(ObjectChange {
        key: ObjectKey {
            tenant,
            object_type: envelope.event.object().to_owned(),
            object_id: envelope.object_id,
        },
        write,
        event: envelope.event.to_string(),
        subscription_id: envelope.subscription_id,
        received_at,
        source,
        probe: probe_of(attribute(attribute::IDEMPOTENCY_KEY)),
        request: attribute(attribute::REQUEST_ID)
            .filter(|request| !request.is_empty())
            .map(str::to_owned),
    })
}

/// How long a webhook took from the receiver to the copy, in milliseconds: only for a change a
/// webhook brought that the store accepted (a duplicate, stale or resync record says nothing about
/// how fresh the copy is). The receiver stamps `receivedAt` when Tripletex's call arrives.
pub fn freshness_ms(change: &ObjectChange, outcome: Outcome, now: Timestamp) -> Option<u64> {
    (outcome == Outcome::Accepted && change.source == Source::Webhook).then(|| {
        let elapsed = now.duration_since(change.received_at).as_millis();
        u64::try_from(elapsed.max(0)).unwrap_or(u64::MAX)
    })
}

/// Counts of what a batch did, for the batch's log line and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub accepted: u64,
    pub duplicate: u64,
    pub stale: u64,
    pub after_delete: u64,
    /// Refused because the object was forgotten on request at that version or later.
    pub forgotten: u64,
    /// Copies Tripletex contradicted (a version it never had, a delete of an object it still has),
    /// replaced by its own answer: a forged or mistaken write, seen and mended.
    pub replaced: u64,
    /// Duplicates that came the other way (a webhook of what the sync stored, or the reverse).
    pub corroborated: u64,
    /// Of those, the changes a reconciliation had counted as drift (`sync::drift`), settled once.
    pub drift_delivered_late: u64,
    /// Records without a version, whatever their outcome (they are deduplicated by content only).
    pub unversioned: u64,
    /// Records that can never be applied, moved to the quarantine queue.
    pub quarantined: u64,
    /// Records that failed for a reason that may pass, reported for retry.
    pub failed: u64,
    /// Records of a company being removed or removed: dropped, never written.
    pub removed_company: u64,
}

impl BatchCounts {
    pub fn count_outcome(&mut self, outcome: Outcome, write: &Write) {
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Duplicate => self.duplicate += 1,
            Outcome::Stale => self.stale += 1,
            Outcome::AfterDelete => self.after_delete += 1,
            Outcome::Forgotten => self.forgotten += 1,
            Outcome::Replaced => self.replaced += 1,
            Outcome::Corroborated => self.corroborated += 1,
        }
        if matches!(write, Write::Unversioned { .. }) {
            self.unversioned += 1;
        }
    }

    /// Metric name and value pairs, in a stable order.
    pub fn metrics(&self) -> [(&'static str, u64); 12] {
        [
            ("Accepted", self.accepted),
            ("Duplicate", self.duplicate),
            ("Stale", self.stale),
            ("AfterDelete", self.after_delete),
            ("Forgotten", self.forgotten),
            ("Unversioned", self.unversioned),
            ("Quarantined", self.quarantined),
            ("Failed", self.failed),
            ("RemovedCompanyDropped", self.removed_company),
            ("ReplacedByTripletex", self.replaced),
            ("Corroborated", self.corroborated),
            ("DriftDeliveredLate", self.drift_delivered_late),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read(body: &str, attributes: &HashMap<String, String>) -> Result<ObjectChange, RecordError> {
        change_from_message(
            Some(body),
            |name| attributes.get(name).map(String::as_str),
            Timestamp::UNIX_EPOCH,
        )
    }

    const UPDATE: &str = r#"{"subscriptionId":3,"event":"closeGroup.create","id":77,"value":{"id":77, "version":4}}"#;

    #[test]
    fn reads_a_versioned_change_keyed_by_tenant_object_and_id() {
        let attributes = attributes(&[("tenant", "acme"), ("receivedAt", "2026-11-23T09:30:00Z")]);
        let change = read(UPDATE, &attributes).unwrap();
        assert_eq!(change.key.to_string(), "acme#closeGroup#77");
        assert_eq!(change.event, "closeGroup.create");
        assert_eq!(change.subscription_id, Some(3));
        assert_eq!(change.received_at.to_string(), "2026-11-23T09:30:00Z");
        assert_eq!(change.source, Source::Webhook);
        let Write::Versioned { version, payload } = &change.write else {
            panic!("expected a versioned write: {:?}", change.write);
        };
        assert_eq!(*version, 4);
        assert_eq!(
            payload.json(),
            r#"{"id":77, "version":4}"#,
            "kept as received"
        );
    }

    #[test]
    fn only_an_idempotency_key_of_sends_makes_a_delivery_a_probe() {
        let probe = |key: &str| {
            read(
                UPDATE,
                &attributes(&[("tenant", "acme"), ("idempotencyKey", key)]),
            )
            .unwrap()
            .probe
        };
        assert_eq!(
            probe("tripletex-webhooks-send-17-4"),
            Some("tripletex-webhooks-send-17-4".to_owned())
        );
        assert_eq!(probe("6f1c1d3e-1d0b-4a43-9d6e-0c2d8a0e7b11"), None);
        assert_eq!(
            probe(&format!("tripletex-webhooks-send-{}", "x".repeat(200))),
            None
        );
        assert_eq!(
            read(UPDATE, &attributes(&[("tenant", "acme")]))
                .unwrap()
                .probe,
            None
        );
    }

    #[test]
    fn reads_deletes_and_unversioned_values() {
        let attributes = attributes(&[("tenant", "default")]);
        let delete = read(
            r#"{"subscriptionId":1,"event":"product.delete","id":5,"value":null}"#,
            &attributes,
        )
        .unwrap();
        assert_eq!(delete.write, Write::Delete);
        let unversioned = read(
            r#"{"event":"product.update","id":5,"value":{"id":5}}"#,
            &attributes,
        )
        .unwrap();
        assert!(matches!(unversioned.write, Write::Unversioned { .. }));
    }

    #[test]
    fn marks_resync_records_by_their_source_attribute() {
        let attributes = attributes(&[("tenant", "default"), ("source", "resync")]);
        assert_eq!(read(UPDATE, &attributes).unwrap().source, Source::Resync);
    }

    #[test]
    fn messages_that_can_never_apply_say_why() {
        let tenant = attributes(&[("tenant", "default")]);
        assert!(matches!(
            read("{oops", &tenant),
            Err(RecordError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            read(UPDATE, &attributes(&[])),
            Err(RecordError::MissingTenant)
        ));
        assert!(matches!(
            read(UPDATE, &attributes(&[("tenant", "Not#Valid")])),
            Err(RecordError::InvalidTenant)
        ));
        let encoded = attributes(&[("tenant", "default"), ("bodyEncoding", "base64")]);
        assert!(matches!(
            read("e30=", &encoded),
            Err(RecordError::EncodedBody)
        ));
        let none = change_from_message(None, |_| None, Timestamp::UNIX_EPOCH);
        assert!(matches!(none, Err(RecordError::NoBody)));
    }

    #[test]
    fn counts_unversioned_records_beside_their_outcome() {
        let mut counts = BatchCounts::default();
        let unversioned = Write::Unversioned {
            payload: Payload::from_json("{}"),
        };
        counts.count_outcome(Outcome::Duplicate, &unversioned);
        counts.count_outcome(Outcome::Accepted, &Write::Delete);
        assert_eq!(counts.duplicate, 1);
        assert_eq!(counts.accepted, 1);
        assert_eq!(counts.unversioned, 1);
    }

    #[test]
    fn freshness_is_measured_for_accepted_webhooks_only() {
        let received = Timestamp::from_second(1_800_000_000).unwrap();
        let mut change = change_from_message(
            Some(r#"{"subscriptionId":1,"event":"product.update","id":5,"value":{"id":5,"version":2}}"#),
            |name| match name {
                "tenant" => Some("acme"),
                "receivedAt" => Some("2027-01-15T08:00:00Z"),
                _ => None,
            },
            received,
        )
        .unwrap();
        let now = received + jiff::SignedDuration::from_millis(1_250);
        assert_eq!(change.received_at, received);
        assert_eq!(freshness_ms(&change, Outcome::Accepted, now), Some(1_250));
        assert_eq!(freshness_ms(&change, Outcome::Duplicate, now), None);
        change.source = Source::Resync;
        assert_eq!(freshness_ms(&change, Outcome::Accepted, now), None);
    }
}
