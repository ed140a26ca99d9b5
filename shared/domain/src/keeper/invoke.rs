//! The keeper's invocation contract: the request it is invoked with (by its schedule, or by the
//! operator's `keeper run` and `status`) and the report it answers with. One type on both sides, so
//! that a renamed field is a compile error or a failing test, never a silently different `status`.

use serde::{Deserialize, Serialize};

use super::report::{CompanyReport, RunCounts};
use super::schedule::UnknownTenant;
use crate::ids::TenantId;

/// The event the keeper is invoked with. The schedule sends `{"trigger": "schedule"}`; a person may
/// ask for a dry run, or for some tenants only. Other fields (e.g. of an EventBridge event) are
/// ignored; a field of the wrong type is refused rather than guessed at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeeperRequest {
    /// Who asked: `schedule`, or `manual` for a person (logged, never acted on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// Give every active subscription of ours the current credentials (after adding a new value
    /// to the receiver's auth secret; see the book, rotation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resend_auth: bool,
}

impl KeeperRequest {
    /// The companies asked for, if only some were; a name that is no tenant key is no company.
    pub fn wanted(&self) -> Result<Option<Vec<TenantId>>, UnknownTenant> {
        self.tenants
            .as_ref()
            .map(|tenants| {
                tenants
                    .iter()
                    .map(|tenant| {
                        TenantId::parse(tenant).map_err(|_| UnknownTenant(tenant.clone()))
                    })
                    .collect()
            })
            .transpose()
    }

    /// What a person asks for from the command line.
    pub fn manual() -> Self {
        Self {
            trigger: Some("manual".to_owned()),
            ..Self::default()
        }
    }
}

/// Read leniently: a field a keeper of another version leaves out reads as its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunReport {
    pub dry_run: bool,
    pub totals: Totals,
    pub companies: Vec<CompanyReport>,
    /// Companies not started before the invocation's deadline, or cut short by Tripletex's rate
    /// limit: the next run starts with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_reached: Vec<String>,
}

impl RunReport {
    /// Whether a company or one of its steps failed (the CLI's exit status 1).
    pub fn failed(&self) -> bool {
        self.totals.companies_failed > 0 || self.totals.counts.failed > 0
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Totals {
    pub companies: usize,
    pub companies_failed: usize,
    pub companies_not_reached: usize,
    #[serde(flatten)]
    pub counts: RunCounts,
}

impl Totals {
    pub fn of(companies: &[CompanyReport], not_reached: usize) -> Self {
        let mut totals = Self {
            companies: companies.len(),
            companies_not_reached: not_reached,
            ..Self::default()
        };
        for company in companies {
            totals.companies_failed += usize::from(company.error.is_some());
            totals.counts += RunCounts::of(company);
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keeper::{Done, Failed, LeftAlone, Reason};

    #[test]
    fn the_requests_in_events_read_as_the_cli_writes_them() {
        let dry_run: KeeperRequest = serde_json::from_str(include_str!(
            "../../../../events/subscription-keeper/manual-dry-run.json"
        ))
        .unwrap();
        let written = KeeperRequest {
            dry_run: Some(true),
            ..KeeperRequest::manual()
        };
        assert_eq!(dry_run, written);
        assert_eq!(
            serde_json::from_value::<serde_json::Value>(serde_json::to_value(&written).unwrap())
                .unwrap(),
            serde_json::json!({"trigger": "manual", "dryRun": true})
        );
        let resend: KeeperRequest = serde_json::from_str(include_str!(
            "../../../../events/subscription-keeper/manual-resend-auth.json"
        ))
        .unwrap();
        assert!(resend.resend_auth && resend.dry_run.is_none());
    }

    #[test]
    fn a_report_reads_back_as_it_was_written_every_field_and_reason() {
        let company = CompanyReport {
            tenant: "acme".into(),
            seen: 3,
            re_enabled: vec![Done {
                subscription_id: Some(1),
                event: "customer.update".into(),
                reason: Reason::TooManyErrors,
                drift: Vec::new(),
            }],
            left_alone: vec![LeftAlone {
                subscription_id: Some(2),
                event: "product.create".into(),
                status: Some("DISABLED_MISUSE".into()),
                reason: Reason::DisabledForMisuse,
            }],
            failed: vec![Failed {
                subscription_id: Some(3),
                event: "order.create".into(),
                action: "update".into(),
                kind: "conflict".into(),
                error: "409".into(),
            }],
            error: Some("no credentials".into()),
            ..CompanyReport::default()
        };
        let report = RunReport {
            dry_run: true,
            totals: Totals::of(std::slice::from_ref(&company), 1),
            companies: vec![company],
            not_reached: vec!["late".into()],
        };
        let read: RunReport =
            serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
        assert_eq!(read, report);
        assert!(read.failed());
    }
}
