//! A record of the objects table's stream read as a change of the mirror: the item's new image as a
//! `MirrorRow` (its value still to be read from the payload bucket when the item holds a pointer), or
//! the key of a removed item.

use domain::claim::CLAIM_KEY;
use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use domain::item;
use domain::mirror::MirrorRow;
use jiff::Timestamp;
use serde_json::{Map, Value};

/// What one stream record asks of the mirror.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamChange {
    Image(Box<PendingRow>),
    /// The item was deleted from the table (its company purged): the row and its history go.
    Removed(ObjectKey),
}

/// A row whose value, or last value, may still be in the payload bucket under these keys.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRow {
    pub row: MirrorRow,
    pub value_claim: Option<String>,
    pub last_value_claim: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the record has no dynamodb part")]
    NoChange,
    #[error("the record's image has no {0}")]
    Missing(&'static str),
    #[error("the record's {0} is not what the objects table writes")]
    Invalid(&'static str),
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
        return Ok(StreamChange::Removed(object_key(image)?));
    }
    let image = change
        .get("NewImage")
        .and_then(Value::as_object)
        .ok_or(ImageError::Missing("NewImage"))?;
    let key = object_key(image)?;
    let (value, value_claim) = value_of(image, item::VALUE);
    let (last_value, last_value_claim) = value_of(image, item::LAST_VALUE);
    Ok(StreamChange::Image(Box::new(PendingRow {
        row: MirrorRow {
            tenant: key.tenant.to_string(),
            object_type: key.object_type,
            object_id: key.object_id,
            version: number(image, item::VERSION)?,
            version_unknown: boolean(image, item::VERSION_UNKNOWN),
            deleted: boolean(image, item::DELETED),
            value,
            last_value,
            source: text(image, item::SOURCE),
            received_at: timestamp(image, item::RECEIVED_AT)?,
            updated_at: timestamp(image, item::UPDATED_AT)?
                .ok_or(ImageError::Missing(item::UPDATED_AT))?,
            deleted_at: timestamp(image, item::DELETED_AT)?,
            forgotten_at: timestamp(image, item::FORGOTTEN_AT)?,
            replaced_at: timestamp(image, item::REPLACED_AT)?,
        },
        value_claim,
        last_value_claim,
    })))
}

type Image = Map<String, Value>;

/// The object's key from its attributes, or from `pk` (`tenant#type#id`) when only the keys came.
fn object_key(image: &Image) -> Result<ObjectKey, ImageError> {
    if let (Some(tenant), Some(object_type), Some(object_id)) = (
        text(image, item::TENANT),
        text(image, item::OBJECT_TYPE),
        number(image, item::OBJECT_ID)?,
    ) {
        return Ok(ObjectKey {
            tenant: TenantId::parse(&tenant).map_err(|_| ImageError::Invalid(item::TENANT))?,
            object_type,
            object_id,
        });
    }
    text(image, item::KEY)
        .ok_or(ImageError::Missing(item::KEY))?
        .parse()
        .map_err(|_| ImageError::Invalid(item::KEY))
}

fn text(image: &Image, name: &str) -> Option<String> {
    image.get(name)?.get("S")?.as_str().map(str::to_owned)
}

fn boolean(image: &Image, name: &str) -> bool {
    image
        .get(name)
        .and_then(|v| v.get("BOOL"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn number(image: &Image, name: &'static str) -> Result<Option<i64>, ImageError> {
    match image
        .get(name)
        .and_then(|v| v.get("N"))
        .and_then(Value::as_str)
    {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ImageError::Invalid(name)),
    }
}

fn timestamp(image: &Image, name: &'static str) -> Result<Option<Timestamp>, ImageError> {
    match text(image, name) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ImageError::Invalid(name)),
    }
}

/// A value as the item holds it: the JSON text, or the payload bucket's key of it.
fn value_of(image: &Image, name: &str) -> (Option<String>, Option<String>) {
    match image.get(name) {
        Some(value) if value.get("S").is_some() => (text(image, name), None),
        Some(value) => (
            None,
            value
                .get("M")
                .and_then(|claim| claim.get(CLAIM_KEY))
                .and_then(|key| key.get("S"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_an_image_with_an_inline_value_and_one_kept_by_pointer() {
        let record = json!({"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "1", "NewImage": {
            "pk": {"S": "acme#voucher#7"}, "tenant": {"S": "acme"}, "objectType": {"S": "voucher"},
            "objectId": {"N": "7"}, "version": {"N": "3"}, "deleted": {"BOOL": false},
            "value": {"M": {"claimCheck": {"S": "values/acme/voucher/7/ab"}, "bytes": {"N": "500000"}}},
            "source": {"S": "webhook"}, "receivedAt": {"S": "2026-12-01T10:00:00Z"},
            "updatedAt": {"S": "2026-12-01T10:00:01.5Z"}}}});
        let StreamChange::Image(pending) = read_record(&record).unwrap() else {
            panic!("an image");
        };
        assert_eq!(pending.row.key(), ("acme", "voucher", 7));
        assert_eq!(pending.row.version, Some(3));
        assert_eq!(pending.row.value, None);
        assert_eq!(
            pending.value_claim.as_deref(),
            Some("values/acme/voucher/7/ab")
        );
        assert_eq!(pending.row.updated_at.to_string(), "2026-12-01T10:00:01.5Z");
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
        assert_eq!(read_record(&no_time), Err(ImageError::Missing("updatedAt")));
        let bad_version = json!({"eventName": "INSERT", "dynamodb": {"NewImage": {
            "pk": {"S": "acme#customer#1"}, "version": {"N": "x"}, "updatedAt": {"S": "2026-12-01T10:00:00Z"}}}});
        assert_eq!(
            read_record(&bad_version),
            Err(ImageError::Invalid("version"))
        );
    }
}
