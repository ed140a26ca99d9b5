//! What a sync puts on the webhook queue: the envelope a webhook would have brought, with `source`
//! `resync`, so the worker applies it with the same one conditional write (a resync can never
//! overwrite a newer webhook, nor lift a tombstone).

use jiff::Timestamp;
use serde_json::value::RawValue;

use super::listing::FetchedObject;
use crate::claim::LARGEST_MESSAGE_BYTES;
use crate::dedup::Source;
use crate::envelope::{EventName, OutgoingEnvelope};
use crate::ids::TenantId;
use crate::message::{BodyEncoding, QueueMessage, WebhookMessage, attribute};
use crate::record::{RecordError, change_from_message};

fn message(
    tenant: &TenantId,
    event: &str,
    subscription_id: Option<i64>,
    id: i64,
    value: Option<&RawValue>,
    at: Timestamp,
) -> QueueMessage {
    let body = OutgoingEnvelope {
        subscription_id,
        event,
        id,
        value,
    }
    .body();
    let message = WebhookMessage {
        body,
        body_encoding: BodyEncoding::Raw,
        tenant: tenant.clone(),
        event: Some(event.to_owned()),
        object_id: Some(id),
        subscription_id,
        received_at: at,
        request_id: String::new(),
        idempotency_key: None,
        quarantine_reason: None,
    };
    QueueMessage::from(&message).with_attribute(attribute::SOURCE, Source::Resync.as_str())
}

/// Why the worker could never store a message the sync would queue: the worker's own reading of it
/// refuses it (and would quarantine it), or the queue cannot carry it.
#[derive(Debug, thiserror::Error)]
pub enum Unstorable {
    #[error("the worker refuses it")]
    Refused(#[source] RecordError),
    #[error("it is {bytes} bytes, over the {limit} bytes a queued message may have")]
    TooLarge { bytes: usize, limit: usize },
}

/// The worker's rule, applied before queueing: a message it would quarantine, or that the queue
/// cannot take, is reported by the sync and never queued (nor fetched again at the same version).
pub fn check_storable(message: &QueueMessage) -> Result<(), Unstorable> {
    if message.size() > LARGEST_MESSAGE_BYTES {
        return Err(Unstorable::TooLarge {
            bytes: message.size(),
            limit: LARGEST_MESSAGE_BYTES,
        });
    }
    change_from_message(
        Some(&message.body),
        |name| message.attribute(name),
        Timestamp::UNIX_EPOCH,
    )
    .map(|_| ())
    .map_err(Unstorable::Refused)
}

/// A fetched object as the upsert `event` (one the type's subscription has, e.g. `product.update`).
pub fn upsert_message(
    tenant: &TenantId,
    event: &EventName,
    subscription_id: Option<i64>,
    object: &FetchedObject,
    at: Timestamp,
) -> QueueMessage {
    message(
        tenant,
        event.as_str(),
        subscription_id,
        object.id,
        Some(&object.value),
        at,
    )
}

/// Tripletex's answer by id for an object whose copy it contradicts (`compare::contradicts`):
/// an upsert that replaces the copy while it is still as `seen` (`dedup::Write::Replace`).
pub fn replace_message(
    tenant: &TenantId,
    event: &EventName,
    object: &FetchedObject,
    seen: crate::dedup::Seen,
    at: Timestamp,
) -> QueueMessage {
    upsert_message(tenant, event, None, object, at)
        .with_attribute(crate::message::attribute::REPLACES, seen.to_string())
}

/// A confirmed deletion: `<type>.delete` with no value, as Tripletex sends deletes.
pub fn delete_message(
    tenant: &TenantId,
    object_type: &str,
    subscription_id: Option<i64>,
    id: i64,
    at: Timestamp,
) -> QueueMessage {
    message(
        tenant,
        &format!("{object_type}.delete"),
        subscription_id,
        id,
        None,
        at,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::{ObjectKey, Write};
    use crate::message::MAX_QUEUE_MESSAGE_BYTES;

    fn read(message: &QueueMessage) -> crate::dedup::ObjectChange {
        change_from_message(
            Some(&message.body),
            |name| message.attribute(name),
            Timestamp::UNIX_EPOCH,
        )
        .unwrap()
    }

    #[test]
    fn a_fetched_object_becomes_the_change_a_webhook_would_have_brought_marked_resync() {
        let tenant = TenantId::parse("acme").unwrap();
        let object = FetchedObject {
            id: 42,
            version: Some(7),
            value: RawValue::from_string(r#"{"id":42,"version":7,"name":"Å"}"#.into()).unwrap(),
        };
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let message = upsert_message(
            &tenant,
            &EventName::parse("product.update").unwrap(),
            Some(9),
            &object,
            at,
        );
        let change = read(&message);
        assert_eq!(
            change.key,
            ObjectKey {
                tenant,
                object_type: "product".into(),
                object_id: 42
            }
        );
        assert_eq!(change.source, Source::Resync);
        assert_eq!(change.subscription_id, Some(9));
        assert_eq!(change.received_at, at);
        let Write::Versioned { version, payload } = change.write else {
            panic!("versioned");
        };
        assert_eq!(version, 7);
        assert_eq!(
            payload.json(),
            r#"{"id":42,"version":7,"name":"Å"}"#,
            "as Tripletex sent it"
        );
    }

    #[test]
    fn a_confirmed_deletion_becomes_a_delete_envelope() {
        let tenant = TenantId::default_tenant();
        let message = delete_message(&tenant, "closeGroup", None, 5, Timestamp::UNIX_EPOCH);
        assert_eq!(
            message.body,
            r#"{"subscriptionId":null,"event":"closeGroup.delete","id":5,"value":null}"#
        );
        let change = read(&message);
        assert_eq!(change.write, Write::Delete);
        assert_eq!(change.key.object_type, "closeGroup");
        assert_eq!(message.attribute(attribute::SOURCE), Some("resync"));
    }

    #[test]
    fn what_the_worker_would_quarantine_or_the_queue_refuse_is_unstorable() {
        let tenant = TenantId::default_tenant();
        let event = EventName::parse("product.update").unwrap();
        let object = |json: String| FetchedObject::read(RawValue::from_string(json).unwrap());
        let storable = object(r#"{"id":3,"version":1}"#.into()).unwrap();
        let message = upsert_message(&tenant, &event, None, &storable, Timestamp::UNIX_EPOCH);
        assert!(check_storable(&message).is_ok());
        let negative = object(r#"{"id":3,"version":-1}"#.into()).unwrap();
        let message = upsert_message(&tenant, &event, None, &negative, Timestamp::UNIX_EPOCH);
        let refused = check_storable(&message).unwrap_err();
        assert_eq!(
            crate::error::error_chain(&refused),
            "the worker refuses it: value.version must be a non-negative integer"
        );
        let zero_id = object(r#"{"id":0,"version":1}"#.into()).unwrap();
        let message = upsert_message(&tenant, &event, None, &zero_id, Timestamp::UNIX_EPOCH);
        assert!(matches!(
            check_storable(&message),
            Err(Unstorable::Refused(_))
        ));
        let claim_checked = object(format!(
            r#"{{"id":3,"version":1,"notes":"{}"}}"#,
            "x".repeat(MAX_QUEUE_MESSAGE_BYTES)
        ))
        .unwrap();
        let message = upsert_message(&tenant, &event, None, &claim_checked, Timestamp::UNIX_EPOCH);
        assert!(
            check_storable(&message).is_ok(),
            "over SQS's limit goes by claim check"
        );
        let large = object(format!(
            r#"{{"id":3,"version":1,"notes":"{}"}}"#,
            "x".repeat(LARGEST_MESSAGE_BYTES)
        ))
        .unwrap();
        let message = upsert_message(&tenant, &event, None, &large, Timestamp::UNIX_EPOCH);
        assert!(matches!(
            check_storable(&message),
            Err(Unstorable::TooLarge { .. })
        ));
    }
}
