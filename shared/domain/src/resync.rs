//! What a sync must fetch again: the keeper records one request per subscription it created (the
//! type's objects must be backfilled) or re-enabled (what Tripletex did not deliver while it was
//! down), and the object sync answers them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;

/// A request's state as the ledger stores it: `PENDING` until a sync run takes it, `RUNNING` (with
/// the run's id), then `DONE` or `FAILED` as that run ended (`RunState::request_state`).
pub mod state {
    pub const PENDING: &str = "PENDING";
    pub const RUNNING: &str = "RUNNING";
    pub const DONE: &str = "DONE";
    pub const FAILED: &str = "FAILED";
}

/// Why the keeper asked for a resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// A new subscription: the objects that exist already never get a webhook.
    Created,
    /// A subscription came back from `DISABLED_TOO_MANY_ERRORS`.
    ReEnabled,
}

impl ResyncReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::ReEnabled => "re_enabled",
        }
    }

    /// Requests written before the reason was recorded were all re-enables.
    pub fn parse(text: Option<&str>) -> Self {
        match text {
            Some("created") => Self::Created,
            _ => Self::ReEnabled,
        }
    }
}

/// A subscription's request for the changes Tripletex did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncRequest {
    pub tenant: TenantId,
    pub subscription_id: i64,
    pub event: String,
    /// The object type to fetch again: the event's part before the dot.
    pub object_type: String,
    pub reason: ResyncReason,
    pub previous_status: String,
    pub window_from: Timestamp,
    pub window_to: Timestamp,
}

/// Where a request is kept, so that the run answering it can mark it done.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResyncKey {
    pub key: String,
    pub requested_at: String,
}

/// A request not yet answered, as the sync reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingResync {
    pub key: ResyncKey,
    pub request: ResyncRequest,
}
