//! Requests of the keeper that a run took (`RUNNING`) but that nothing will mark any more: the run
//! could not start and giving the request back failed too, or the run ended while the ledger was
//! unreachable. Each answer to the keeper's requests repairs them first, so no request stays
//! `RUNNING` for ever and none is left unanswered.

use jiff::{SignedDuration, Timestamp};

use crate::ids::TenantId;
use crate::resync::ResyncKey;
use crate::sync::run::RunState;

/// A request in `RUNNING`, with the run that took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenResync {
    pub key: ResyncKey,
    pub tenant: TenantId,
    pub run_id: String,
    /// When the run took it; unknown on requests taken before this was recorded.
    pub claimed_at: Option<Timestamp>,
}

/// How long a taken request may go without its run's record before it is given back. A run writes
/// its record right after taking its requests, in the same invocation: this is many times that.
pub const CLAIM_GRACE: SignedDuration = SignedDuration::from_mins(10);

/// What to do with a taken request, given the state of the run that took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRepair {
    /// Its run is running (or may be about to start): it will mark the request itself.
    Leave,
    /// Its run ended but the request was never marked: mark it as the run ended.
    Settle(RunState),
    /// Its run never started: give the request back, so that the next run answers it.
    Release,
}

pub fn repair_claim(
    claimed_at: Option<Timestamp>,
    run: Option<RunState>,
    now: Timestamp,
) -> ClaimRepair {
    match run {
        Some(RunState::Running) => ClaimRepair::Leave,
        Some(ended) => ClaimRepair::Settle(ended),
        None => match claimed_at {
            Some(at) if now.duration_since(at) < CLAIM_GRACE => ClaimRepair::Leave,
            _ => ClaimRepair::Release,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    #[test]
    fn a_claim_is_repaired_by_what_became_of_its_run() {
        let now = at(3600);
        let cases = [
            // (claimed, run, repair)
            (Some(at(0)), Some(RunState::Running), ClaimRepair::Leave),
            (
                Some(at(0)),
                Some(RunState::Done),
                ClaimRepair::Settle(RunState::Done),
            ),
            (
                Some(at(0)),
                Some(RunState::Failed),
                ClaimRepair::Settle(RunState::Failed),
            ),
            // The run record is written right after the claim: a fresh claim waits for it.
            (Some(at(3599)), None, ClaimRepair::Leave),
            (Some(at(3600 - 599)), None, ClaimRepair::Leave),
            (Some(at(3600 - 600)), None, ClaimRepair::Release),
            (Some(at(0)), None, ClaimRepair::Release),
            // Taken before claims had a time: old enough.
            (None, None, ClaimRepair::Release),
            (None, Some(RunState::Running), ClaimRepair::Leave),
            // A clock that moved backwards makes a claim look fresh, never stale.
            (Some(at(4000)), None, ClaimRepair::Leave),
        ];
        for (claimed_at, run, repair) in cases {
            assert_eq!(
                repair_claim(claimed_at, run, now),
                repair,
                "claimed {claimed_at:?}, run {run:?}"
            );
        }
    }
}
