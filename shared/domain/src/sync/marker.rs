//! How a reconciliation's recheck knows that the webhooks in flight when it found its suspects have
//! been applied: SQS tells no age of a queue's oldest message, so the recheck puts a marker on the
//! webhook queue and waits until the worker has reached it (what was queued before it has been
//! handed to the worker), bounded by `MARKER_WAIT`. Then what is still behind is drift, not late.

use std::time::Duration;

use jiff::Timestamp;

use crate::ids::TenantId;
use crate::message::{QueueMessage, attribute};

/// The longest a recheck waits for its marker (a worker that is down, a queue far behind): then it
/// counts what is still behind as drift, as a fixed grace would.
pub const MARKER_WAIT: Duration = Duration::from_secs(10 * 60);

/// What the recheck does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecheckGate {
    /// Put the marker on the webhook queue, then wait for it.
    SendMarker,
    /// The worker has not reached the marker yet: look again shortly.
    Wait,
    /// The webhooks queued before the marker are applied (or the wait is over): recheck.
    Go,
}

pub fn recheck_gate(
    marker_sent_at: Option<Timestamp>,
    marker_seen: bool,
    now: Timestamp,
) -> RecheckGate {
    match marker_sent_at {
        None => RecheckGate::SendMarker,
        Some(_) if marker_seen => RecheckGate::Go,
        Some(sent) => {
            let waited = Duration::try_from(now.duration_since(sent)).unwrap_or_default();
            if waited >= MARKER_WAIT {
                RecheckGate::Go
            } else {
                RecheckGate::Wait
            }
        }
    }
}

/// The marker: not an envelope; the worker records it instead of applying it.
pub fn marker_message(tenant: &TenantId, run_id: &str) -> QueueMessage {
    QueueMessage {
        body: serde_json::json!({ "syncMarker": run_id }).to_string(),
        attributes: vec![
            (attribute::TENANT.to_owned(), tenant.to_string()),
            (attribute::SYNC_MARKER.to_owned(), run_id.to_owned()),
        ],
    }
}

/// The tenant and run of a marker, from a queued message's attributes; none for any other message.
pub fn marker_of<'a>(
    attribute: impl Fn(&str) -> Option<&'a str>,
) -> Option<(Option<TenantId>, &'a str)> {
    let run_id = attribute(attribute::SYNC_MARKER)?;
    let tenant = attribute(attribute::TENANT).and_then(|t| TenantId::parse(t).ok());
    Some((tenant, run_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn the_recheck_waits_for_its_marker_and_no_longer_than_the_bound() {
        assert_eq!(recheck_gate(None, false, at(0)), RecheckGate::SendMarker);
        assert_eq!(recheck_gate(Some(at(0)), false, at(30)), RecheckGate::Wait);
        assert_eq!(recheck_gate(Some(at(0)), true, at(30)), RecheckGate::Go);
        let bound = MARKER_WAIT.as_secs() as i64;
        assert_eq!(recheck_gate(Some(at(0)), false, at(bound)), RecheckGate::Go);
    }

    #[test]
    fn a_marker_reads_back_from_its_attributes_and_nothing_else_is_one() {
        let tenant = TenantId::parse("acme").unwrap();
        let message = marker_message(&tenant, "20261206T010000.000000000Z-reconcile");
        let (found_tenant, run) = marker_of(|name| message.attribute(name)).unwrap();
        assert_eq!(
            (found_tenant, run),
            (Some(tenant), "20261206T010000.000000000Z-reconcile")
        );
        assert!(marker_of(|name| (name == attribute::TENANT).then_some("acme")).is_none());
    }
}
