//! Forgetting one object on request (`tripletex-webhooks forget`, e.g. a GDPR erasure): its value
//! leaves the copy, the payload bucket and the queues that keep bodies for a person to read. What may
//! write it back afterwards is `dedup::decide`'s rule for a forgotten item; this module says which
//! queued messages name the object.

use serde::Deserialize;

use crate::dedup::ObjectKey;
use crate::message::attribute;

/// Whether a queued message is about `key`: by the attributes the receiver and the sync set
/// (tenant, event, object id), or, for a quarantined body whose attributes say less, by the event
/// and id its body names. A body that is not JSON names nothing.
pub fn names_object<'a>(
    key: &ObjectKey,
    attribute_of: impl Fn(&str) -> Option<&'a str>,
    body: &str,
) -> bool {
    if attribute_of(attribute::TENANT) != Some(key.tenant.as_str()) {
        return false;
    }
    let type_of = |event: &str| event.split_once('.').map(|(object, _)| object.to_owned());
    let by_attributes = attribute_of(attribute::EVENT).and_then(type_of).as_deref()
        == Some(key.object_type.as_str())
        && attribute_of(attribute::OBJECT_ID).and_then(|id| id.parse().ok()) == Some(key.object_id);
    by_attributes
        || serde_json::from_str::<Named>(body).is_ok_and(|named| {
            named.event.as_deref().and_then(type_of).as_deref() == Some(key.object_type.as_str())
                && named.id.as_ref().and_then(id_of) == Some(key.object_id)
        })
}

/// The parts of an envelope that name its object, read leniently (a quarantined body may be
/// malformed elsewhere).
#[derive(Deserialize)]
struct Named {
    event: Option<String>,
    id: Option<serde_json::Value>,
}

fn id_of(id: &serde_json::Value) -> Option<i64> {
    id.as_i64()
        .or_else(|| id.as_str().and_then(|text| text.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn key() -> ObjectKey {
        ObjectKey {
            tenant: TenantId::parse("acme").unwrap(),
            object_type: "customer".into(),
            object_id: 42,
        }
    }

    #[test]
    fn a_message_names_the_object_by_its_attributes_or_its_body() {
        let attributes = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        };
        let tagged = attributes(&[
            ("tenant", "acme"),
            ("event", "customer.update"),
            ("objectId", "42"),
        ]);
        assert!(names_object(&key(), tagged, "not json"));
        let bare = attributes(&[("tenant", "acme")]);
        let body = r#"{"event":"customer.update","id":42,"value":{"name":"Kari"}}"#;
        assert!(names_object(&key(), bare, body), "a quarantined body");
        assert!(names_object(
            &key(),
            bare,
            r#"{"event":"customer.delete","id":"42"}"#
        ));
        assert!(!names_object(
            &key(),
            bare,
            r#"{"event":"customer.update","id":43}"#
        ));
        assert!(!names_object(
            &key(),
            bare,
            r#"{"event":"product.update","id":42}"#
        ));
        assert!(!names_object(&key(), bare, "{broken"));
        let other_company = attributes(&[
            ("tenant", "other"),
            ("event", "customer.update"),
            ("objectId", "42"),
        ]);
        assert!(!names_object(&key(), other_company, body));
    }
}
