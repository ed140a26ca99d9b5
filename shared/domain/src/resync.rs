//! What a sync must fetch again: the keeper records one request per re-enabled subscription, and
//! the sync reads them.

use jiff::Timestamp;

use crate::ids::TenantId;

/// A re-enabled subscription's request for the changes Tripletex did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncRequest {
    pub tenant: TenantId,
    pub subscription_id: i64,
    pub event: String,
    /// The object type to fetch again: the event's part before the dot.
    pub object_type: String,
    pub previous_status: String,
    pub window_from: Timestamp,
    pub window_to: Timestamp,
}
