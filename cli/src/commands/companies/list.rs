//! `companies list`: every company, its state, our subscriptions, its last keeper and sync runs and
//! its objects per type.

use std::collections::BTreeMap;

use aws_adapters::dynamodb::DynamoObjectStore;
use domain::ids::TenantId;
use domain::registry::CompanyState;
use domain::tripletex::CredentialsSecret;
use serde::Serialize;

use super::{CompaniesError, invalid};
use crate::deployment::Deployment;
use crate::render::{or_dash, table};

/// One company as `companies list` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub tenant: String,
    pub company_id: Option<i64>,
    pub name: Option<String>,
    /// The registry's state, or `configured` for a company of the credentials secret.
    pub state: String,
    pub credential: Option<String>,
    pub added_at: Option<String>,
    /// Our subscriptions the keeper's last run saw, and when it ran.
    pub subscriptions: Option<u64>,
    pub keeper_ran_at: Option<String>,
    pub keeper_error: Option<String>,
    /// The last sync run: when it started and how it stands.
    pub last_sync: Option<String>,
    /// Items in the copy per type, tombstones included.
    pub objects: BTreeMap<String, u64>,
}

pub async fn list(
    deployment: &Deployment,
    dynamodb: &aws_sdk_dynamodb::Client,
    secret_json: &str,
) -> Result<Vec<Listed>, CompaniesError> {
    let secret = CredentialsSecret::from_json(secret_json)
        .map_err(crate::tripletex::TripletexError::Credentials)?;
    let registered = crate::ops::companies::registered(dynamodb, deployment).await?;
    let mut rows: BTreeMap<String, Listed> = BTreeMap::new();
    for (tenant, credentials) in &secret.companies.0 {
        rows.insert(
            tenant.to_string(),
            Listed::new(tenant.to_string(), credentials.company_id, "configured"),
        );
    }
    for company in &registered {
        let mut row = Listed::new(
            company.tenant.to_string(),
            Some(company.company_id),
            company.state.as_str(),
        );
        row.credential = Some(company.credential.clone());
        row.name = company.name.clone();
        row.added_at = Some(company.added_at.to_string());
        rows.insert(company.tenant.to_string(), row);
    }
    let copy = DynamoObjectStore::new(dynamodb.clone(), &deployment.objects_table);
    for status in crate::ops::companies::companies(dynamodb, deployment).await? {
        let Some(row) = rows.get_mut(&status.tenant) else {
            continue;
        };
        if let Some(run) = &status.keeper_last_run {
            // A removed company's subscriptions were ours to delete, not to count: what its last
            // run saw is no longer there (or, refused, no longer ours to know).
            row.subscriptions = (row.state != CompanyState::Removed.as_str()).then_some(run.seen);
            row.keeper_ran_at = Some(run.finished_at.clone());
            row.keeper_error = run.error.clone();
        }
        row.last_sync = status
            .types
            .iter()
            .max_by_key(|t| t.started_at.clone())
            .map(|t| {
                format!(
                    "{} {} ({})",
                    t.mode,
                    t.state,
                    t.started_at.as_deref().unwrap_or("-")
                )
            });
        if row.state == CompanyState::Removed.as_str() {
            continue;
        }
        let Ok(tenant) = TenantId::parse(&status.tenant) else {
            continue;
        };
        for t in &status.types {
            let count = copy
                .count_of_type(&tenant, &t.object_type)
                .await
                .map_err(|e| invalid(domain::error::error_chain(&e)))?;
            row.objects.insert(t.object_type.clone(), count);
        }
    }
    Ok(rows.into_values().collect())
}

impl Listed {
    fn new(tenant: String, company_id: Option<i64>, state: &str) -> Self {
        Self {
            tenant,
            company_id,
            name: None,
            state: state.to_owned(),
            credential: None,
            added_at: None,
            subscriptions: None,
            keeper_ran_at: None,
            keeper_error: None,
            last_sync: None,
            objects: BTreeMap::new(),
        }
    }
}

pub fn render_listed(companies: &[crate::commands::companies::Listed]) -> String {
    let mut rows = table(&[
        "tenant",
        "company id",
        "name",
        "state",
        "subscriptions",
        "keeper ran",
        "last sync",
        "objects",
    ]);
    for company in companies {
        let objects: Vec<String> = company
            .objects
            .iter()
            .map(|(object_type, count)| format!("{object_type} {count}"))
            .collect();
        rows.add_row(vec![
            company.tenant.clone(),
            company
                .company_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            or_dash(company.name.as_deref()),
            company.state.clone(),
            company
                .subscriptions
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            match (&company.keeper_ran_at, &company.keeper_error) {
                (_, Some(error)) => format!("failed: {error}"),
                (Some(at), None) => at.clone(),
                (None, None) => "-".to_owned(),
            },
            or_dash(company.last_sync.as_deref()),
            if objects.is_empty() {
                "-".to_owned()
            } else {
                objects.join("\n")
            },
        ]);
    }
    format!("{rows}\n{} companies\n", companies.len())
}
