//! The envelope rule on any bytes: an envelope it takes is one the worker can store as it came.
#![no_main]

use domain::envelope::{Change, EventName, WebhookEnvelope};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = WebhookEnvelope::parse(data) else {
        return;
    };
    assert!(envelope.object_id > 0);
    let reparsed = EventName::parse(envelope.event.as_str())
        .unwrap_or_else(|error| panic!("an accepted event name does not read again: {error}"));
    assert_eq!(reparsed.as_str(), envelope.event.as_str());
    match &envelope.change {
        Change::Delete => assert!(envelope.event.is_delete() || envelope.version().is_none()),
        Change::Upsert { version, value } => {
            assert!(
                !envelope.event.is_delete(),
                "a delete event became an upsert"
            );
            let object: Value = serde_json::from_str(value.get())
                .unwrap_or_else(|error| panic!("the kept value is not JSON: {error}"));
            let object = object
                .as_object()
                .unwrap_or_else(|| panic!("value is not an object"));
            if let Some(id) = object.get("id").filter(|id| !id.is_null()) {
                assert_eq!(id.as_i64(), Some(envelope.object_id), "value.id differs");
            }
            assert_eq!(
                *version,
                object.get("version").and_then(Value::as_i64),
                "the version is the value's own"
            );
            assert!(version.is_none_or(|v| v >= 0));
        }
    }
});
