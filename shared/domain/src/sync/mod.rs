//! The object sync's rules (backfill, nightly reconciliation, window resync): which Tripletex list
//! endpoint holds each object type and how to list it completely (`catalog`), the date windows that
//! cover every date and halve when Tripletex says a result is too large (`window`), where a listing
//! stands between invocations (`cursor`), a run as a chain of bounded tasks (`run`), the keeper's
//! requests a run took but never marked (`claims`), what a
//! listing means for the stored copy: which objects to fetch, which stored ones may be gone
//! (`compare`), what a listed page decides, a 304 included (`page`), the envelopes it queues for the worker (`envelope`), and the drift whose webhook
//! came after all (`drift`). Pure: the function that runs
//! a sync calls these and does the I/O.

pub mod catalog;
pub mod claims;
pub mod compare;
pub mod cursor;
pub mod drift;
pub mod envelope;
pub mod freshness;
pub mod listing;
pub mod marker;
pub mod page;
pub mod run;
pub mod start;
pub mod window;

pub use catalog::{
    IdFilter, ObjectTypeSpec, Partition, Reconcilable, is_object_type, listable, object_types,
    spec_for,
};
pub use claims::{CLAIM_GRACE, ClaimRepair, TakenResync, repair_claim};
pub use compare::{
    AfterLookup, Behind, LISTED_BUCKET_WIDTH, ListedStretch, PageVerdict, StoredVersion,
    StretchCheck, behind, bucket_end, by_listed_bucket, check_stretch, compare_page, contradicts,
    listed_bucket,
};
pub use cursor::{CannotSplit, Cursor, first_cursors};
pub use envelope::Unstorable;
pub use freshness::{CONFIRMATION_DUE, FreshnessSummary, TypeFreshness, type_freshness};
pub use listing::{FetchRequest, FetchedObject, Listed, ListedPage, Lookup, PageRequest};
pub use page::{PageAnswer, PageInput, PagePlan, PageSettled, plan_page};
pub use run::{
    Finding, ListedWindow, MAX_SUSPECTS, PageMemory, RecheckPlan, RecordedRun, RunMode, RunStart,
    RunState, Stage, StepRecorded, StepReport, Suspect, SyncTask, TypeCounts, TypePlan, Work,
    plan_types, run_id, starting_cursors,
};
pub use start::{StartMode, StartReport, StartRequest, StartedRun, UnknownStartMode};
pub use window::{DateWindow, FULL_RANGE, tile_every_date};
