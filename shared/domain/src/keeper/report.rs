//! What a keeper run did for one company, as the JSON report and the log lines show it.

use serde::Serialize;

use super::plan::{Drift, Reason};

/// What a run did for one company.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyReport {
    pub tenant: String,
    pub dry_run: bool,
    pub seen: usize,
    pub re_enabled: Vec<Done>,
    pub created: Vec<Done>,
    pub updated: Vec<Done>,
    pub left_alone: Vec<LeftAlone>,
    pub failed: Vec<Failed>,
    /// Set when the company could not be handled at all (credentials, listing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub subscription_id: Option<i64>,
    pub event: String,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftAlone {
    pub subscription_id: Option<i64>,
    pub event: String,
    pub status: Option<String>,
    pub reason: Reason,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    pub subscription_id: Option<i64>,
    pub event: String,
    pub action: &'static str,
    pub kind: &'static str,
    pub error: String,
}

impl CompanyReport {
    pub fn is_failure(&self) -> bool {
        self.error.is_some() || !self.failed.is_empty()
    }
}
