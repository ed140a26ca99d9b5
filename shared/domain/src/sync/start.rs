//! The sync's start contract: the request that starts runs (the nightly schedule, the schedule that
//! answers the keeper's resync requests, the operator's `resync` and `companies add`) and the report
//! of the runs it started. One type on both sides of the invocation.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::run::RunMode;

/// What a start request asks for: runs of one mode, or a run for each of the keeper's pending
/// resync requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StartMode {
    /// Answer the keeper's pending resync requests (their companies, types and windows).
    Pending,
    Run(RunMode),
}

impl StartMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Run(mode) => mode.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mode {0:?}: expected reconcile, backfill, resync or pending")]
pub struct UnknownStartMode(String);

impl FromStr for StartMode {
    type Err = UnknownStartMode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(Self::Pending),
            _ => RunMode::parse(text)
                .map(Self::Run)
                .ok_or_else(|| UnknownStartMode(text.to_owned())),
        }
    }
}

impl TryFrom<String> for StartMode {
    type Error = UnknownStartMode;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<StartMode> for String {
    fn from(mode: StartMode) -> Self {
        mode.as_str().to_owned()
    }
}

impl fmt::Display for StartMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to start runs. `companies` and `types` narrow a run; without them it covers every
/// configured company and every subscribed type. Other fields (the schedule's `trigger`,
/// `scheduledTime`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRequest {
    pub mode: StartMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
}

impl StartRequest {
    /// Runs of `mode` for every configured company and every subscribed type.
    pub fn every_company(mode: StartMode) -> Self {
        Self {
            mode,
            companies: None,
            types: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartReport {
    pub runs: Vec<StartedRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartedRun {
    pub tenant: String,
    pub run_id: String,
    pub mode: RunMode,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub not_reconcilable: BTreeMap<String, String>,
    /// Resync requests of the keeper this run answers.
    #[serde(default)]
    pub answers: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requests_in_events_read_as_the_cli_writes_them() {
        let backfill: StartRequest = serde_json::from_str(include_str!(
            "../../../../events/object-sync/manual-backfill-customers.json"
        ))
        .unwrap();
        let written = StartRequest {
            mode: StartMode::Run(RunMode::Backfill),
            companies: Some(vec!["default".into()]),
            types: Some(vec!["customer".into()]),
        };
        assert_eq!(backfill, written);
        assert_eq!(
            serde_json::to_value(&written).unwrap(),
            serde_json::json!({"mode": "backfill", "companies": ["default"], "types": ["customer"]})
        );
        let nightly: StartRequest = serde_json::from_str(include_str!(
            "../../../../events/object-sync/scheduler-nightly.json"
        ))
        .unwrap();
        assert_eq!(
            nightly,
            StartRequest::every_company(StartMode::Run(RunMode::Reconcile))
        );
        let pending: StartRequest = serde_json::from_str(include_str!(
            "../../../../events/object-sync/scheduler-pending.json"
        ))
        .unwrap();
        assert_eq!(pending.mode, StartMode::Pending);
    }

    #[test]
    fn an_unknown_mode_is_refused_by_name() {
        let error = serde_json::from_str::<StartRequest>(r#"{"mode": "everything"}"#).unwrap_err();
        assert!(error.to_string().contains("everything"), "{error}");
        assert!(serde_json::from_str::<StartRequest>("{}").is_err());
    }

    #[test]
    fn a_report_reads_back_as_it_was_written() {
        let report = StartReport {
            runs: vec![StartedRun {
                tenant: "acme".into(),
                run_id: "20261123T220500Z-reconcile".into(),
                mode: RunMode::Reconcile,
                types: vec!["customer".into()],
                not_reconcilable: BTreeMap::from([("notification".into(), "no list".into())]),
                answers: 2,
            }],
        };
        let read: StartReport =
            serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
        assert_eq!(read, report);
    }
}
