//! The subscription keeper's rules: which of a company's Tripletex subscriptions are ours, what each
//! needs (`plan`, pure), how a run spreads its companies over its time (`schedule`), and what a run
//! reports. The run itself, which talks to Tripletex through
//! the `SubscriptionsApi` port, is the keeper function's (`functions/subscription-keeper/src/run.rs`).

mod invoke;
mod plan;
mod report;
pub mod schedule;
mod settings;
mod waiting;

pub use invoke::{KeeperRequest, RunReport, Totals};
pub use plan::{Action, Drift, Reason, Step, is_ours, plan, plan_subscription, subscription_write};
pub use report::{CompanyReport, Done, Failed, LastRun, LeftAlone, MAX_KEPT_FAILURES, RunCounts};
pub use settings::{
    DEFAULT_RESYNC_LOOKBACK, Endpoint, KeeperPolicy, KeeperSettings, ReEnablePolicy, SettingsError,
    check_receiver_url, desired_fields,
};
pub use waiting::{place_in_line, still_waiting};
