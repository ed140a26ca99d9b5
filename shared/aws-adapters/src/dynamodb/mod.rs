//! The objects table on DynamoDB, split by who calls it: `write` is the worker's `ObjectStore` (one
//! conditional `UpdateItem` per change: the condition is the rule of `dedup::decide`, so DynamoDB
//! decides atomically and a race between two writers has one winner; a refused write comes back with
//! the item that refused it, which `decide` then names); `copy` is the sync's `StoredCopy` (versions
//! by id, a type's copy in id order); `admin` the CLI's (a type counted, a company purged, an object
//! forgotten); `codec` reads an item (`domain::item::StoredItem`) and the row the mirror writes;
//! `batch` the batched writes and deletes every table's adapter shares.

mod admin;
mod batch;
mod codec;
mod copy;
mod write;

pub use admin::Erased;
pub(crate) use batch::{WRITE_BATCH, delete_scanned, put_items};
pub use codec::{NotMirrored, SdkItem, mirror_row, stored_item, stored_state};
pub use copy::stored_version;
pub use write::{ConditionalWrite, conditional_write};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use domain::dedup::TombstonePolicy;
use domain::ids::TenantId;
use domain::ports::StoreError;

/// Attribute names of an object item: the contract is in `domain`, shared with the mirror.
pub use domain::item;

/// The `typeKey` of a tenant's objects of one type.
pub fn type_key(tenant: &TenantId, object_type: &str) -> String {
    format!("{tenant}#{object_type}")
}

#[derive(Debug, Clone)]
pub struct DynamoObjectStore {
    client: Client,
    table_name: String,
    tombstones: TombstonePolicy,
}

impl DynamoObjectStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
            tombstones: TombstonePolicy::default(),
        }
    }

    pub fn with_tombstone_policy(mut self, tombstones: TombstonePolicy) -> Self {
        self.tombstones = tombstones;
        self
    }
}

/// An update its condition refused: an answer, not a failure.
pub(crate) fn refused_by_condition<R>(error: &SdkError<UpdateItemError, R>) -> bool {
    matches!(
        error.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

pub(crate) fn read_failed<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let throttled = error.as_service_error().is_some_and(|service| {
        matches!(
            service.code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "ThrottlingException"
            )
        )
    });
    let validation = error
        .as_service_error()
        .is_some_and(|service| service.code() == Some("ValidationException"));
    let source = Box::new(crate::sdk::AwsFailure::of(&error));
    if throttled {
        StoreError::Throttled { source }
    } else if validation {
        StoreError::Rejected { source }
    } else {
        StoreError::Unavailable { source }
    }
}
