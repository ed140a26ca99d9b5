//! An SDK item read by the objects table's item codec (`domain::item::StoredItem`), and the row the
//! mirror writes of it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use domain::dedup::StoredState;
use domain::item::{Attributes, ItemError, StoredItem, Typed};

/// An SDK item as the objects table's item codec reads it (`domain::item::StoredItem`).
pub struct SdkItem<'a>(pub &'a HashMap<String, AttributeValue>);

impl Attributes for SdkItem<'_> {
    fn typed(&self, name: &str) -> Option<Typed<'_>> {
        Some(match self.0.get(name)? {
            AttributeValue::S(text) => Typed::S(text),
            AttributeValue::N(text) => Typed::N(text),
            AttributeValue::Bool(flag) => Typed::Bool(*flag),
            AttributeValue::Null(_) => Typed::Null,
            AttributeValue::M(map) => Typed::M(Box::new(SdkItem(map))),
            _ => Typed::Other,
        })
    }
}

/// The rule's view of a stored item.
pub fn stored_state(item: &HashMap<String, AttributeValue>) -> Result<StoredState, ItemError> {
    domain::item::state(&SdkItem(item))
}

/// The whole item, as every reader reads it.
pub fn stored_item(item: &HashMap<String, AttributeValue>) -> Result<StoredItem, ItemError> {
    StoredItem::decode(&SdkItem(item))
}

/// Why the mirror does not write an item: one the codec cannot read, or a value the payload
/// bucket cannot give (altered, or the bucket unreachable: `is_transient`).
#[derive(Debug, thiserror::Error)]
pub enum NotMirrored {
    #[error(transparent)]
    Item(#[from] ItemError),
    #[error(transparent)]
    Value(#[from] domain::claim::ClaimError),
}

impl NotMirrored {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Value(error) if error.is_transient())
    }
}

/// An item of the table as the mirror writes it (`mirror rebuild`): read as the stream mirror reads
/// its image (`domain::claim::mirrored_row`), so that both end one odd item in the same row or refusal.
pub async fn mirror_row<B: domain::ports::BlobStore>(
    blobs: &B,
    item: &HashMap<String, AttributeValue>,
) -> Result<domain::mirror::MirrorRow, NotMirrored> {
    Ok(domain::claim::mirrored_row(blobs, &stored_item(item)?).await?)
}
