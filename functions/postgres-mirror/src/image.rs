//! A record of the objects table's stream read as a change of the mirror: the item's new image, read
//! by the objects table's item codec (`domain::item::StoredItem`, as `mirror rebuild` reads the
//! table), or the key of a removed item.

use domain::dedup::ObjectKey;
use domain::item::{self, ItemError, StoredItem};
use serde_json::Value;

/// What one stream record asks of the mirror.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamChange {
    Image(Box<StoredItem>),
    /// The item was deleted from the table (its company purged): the row and its history go.
    Removed(ObjectKey),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the record has no dynamodb part")]
    NoChange,
    #[error("the record has no {0}")]
    Missing(&'static str),
    #[error("the record's image: {0}")]
    Item(#[from] ItemError),
}

/// One stream record as Lambda delivers it (`{"eventName", "dynamodb": {"Keys", "NewImage",
/// "OldImage", "SequenceNumber"}}`, images in DynamoDB's JSON).
pub fn read_record(record: &Value) -> Result<StreamChange, ImageError> {
    let change = record.get("dynamodb").ok_or(ImageError::NoChange)?;
    if record.get("eventName").and_then(Value::as_str) == Some("REMOVE") {
        let image = change
            .get("OldImage")
            .or_else(|| change.get("Keys"))
            .and_then(Value::as_object)
            .ok_or(ImageError::Missing("OldImage"))?;
        return Ok(StreamChange::Removed(item::key(image)?));
    }
    let image = change
        .get("NewImage")
        .and_then(Value::as_object)
        .ok_or(ImageError::Missing("NewImage"))?;
    Ok(StreamChange::Image(Box::new(StoredItem::decode(image)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ids::TenantId;
    use domain::item::StoredValue;
    use domain::mirror::MirrorRow;
    use serde_json::json;

    #[test]
    fn reads_an_image_with_an_inline_value_and_one_kept_by_pointer() {
        let record = json!({"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "1", "NewImage": {
            "pk": {"S": "acme#voucher#7"}, "tenant": {"S": "acme"}, "objectType": {"S": "voucher"},
            "objectId": {"N": "7"}, "version": {"N": "3"}, "deleted": {"BOOL": false},
            "value": {"M": {"claimCheck": {"S": "values/acme/voucher/7/ab"}, "bytes": {"N": "500000"},
                "sha256": {"S": "ab"}}},
            "source": {"S": "webhook"}, "receivedAt": {"S": "2026-12-01T10:00:00Z"},
            "updatedAt": {"S": "2026-12-01T10:00:01.5Z"}}}});
        let StreamChange::Image(item) = read_record(&record).unwrap() else {
            panic!("an image");
        };
        let (row, [value, last_value]) = MirrorRow::of(&item);
        assert_eq!(row.key(), ("acme", "voucher", 7));
        assert_eq!(row.version, Some(3));
        assert_eq!(row.value, None, "still to be read from the bucket");
        assert!(
            matches!(value, Some(StoredValue::Claimed { key, .. }) if key == "values/acme/voucher/7/ab")
        );
        assert_eq!(last_value, None);
        assert_eq!(row.updated_at.to_string(), "2026-12-01T10:00:01.5Z");
    }

    #[test]
    fn a_removed_item_names_its_object_and_a_broken_image_says_what_is_wrong() {
        let removed =
            json!({"eventName": "REMOVE", "dynamodb": {"Keys": {"pk": {"S": "acme#customer#42"}}}});
        assert_eq!(
            read_record(&removed).unwrap(),
            StreamChange::Removed(ObjectKey {
                tenant: TenantId::parse("acme").unwrap(),
                object_type: "customer".into(),
                object_id: 42
            })
        );
        let no_time = json!({"eventName": "INSERT", "dynamodb": {"NewImage": {
            "pk": {"S": "acme#customer#1"}}}});
        assert_eq!(
            read_record(&no_time),
            Err(ImageError::Item(ItemError::Missing("updatedAt")))
        );
        let bad_version = json!({"eventName": "INSERT", "dynamodb": {"NewImage": {
            "pk": {"S": "acme#customer#1"}, "version": {"N": "x"}, "updatedAt": {"S": "2026-12-01T10:00:00Z"}}}});
        assert_eq!(
            read_record(&bad_version),
            Err(ImageError::Item(ItemError::Invalid("version")))
        );
    }
}
