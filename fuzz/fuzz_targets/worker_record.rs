//! The worker's reading of an SQS event on any bytes: the event as the runtime deserialises it, then
//! each record's body and attributes into the change it asks for (or the reason it never can be).
#![no_main]

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use domain::dedup::{SEND_PROBE_PREFIX, Write};
use domain::envelope::WebhookEnvelope;
use domain::message::attribute;
use domain::record::change_from_message;
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<SqsEvent>(data) else {
        return;
    };
    let now = Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
    for record in &event.records {
        let Ok(change) = change_from_message(
            record.body.as_deref(),
            |name| string_attribute(record, name),
            now,
        ) else {
            continue;
        };
        // A change is only ever made from a readable envelope with a valid tenant.
        let body = record.body.as_deref().unwrap_or_default();
        let envelope = WebhookEnvelope::parse(body.as_bytes())
            .unwrap_or_else(|error| panic!("a change from a body that is no envelope: {error}"));
        assert_eq!(change.key.object_id, envelope.object_id);
        assert_eq!(change.key.object_type, envelope.event.object());
        assert_eq!(
            change.key.tenant.to_string(),
            string_attribute(record, attribute::TENANT).unwrap_or_default()
        );
        assert_eq!(
            matches!(change.write, Write::Delete),
            envelope.event.is_delete()
        );
        if let Some(probe) = &change.probe {
            assert!(probe.starts_with(SEND_PROBE_PREFIX));
        }
    }
});

/// As the worker looks an attribute up: its string value.
fn string_attribute<'a>(record: &'a SqsMessage, name: &str) -> Option<&'a str> {
    record.message_attributes.get(name)?.string_value.as_deref()
}
