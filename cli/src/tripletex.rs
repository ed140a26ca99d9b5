//! What Tripletex has now of one object, for `show --tripletex` and `send`: the same object endpoint and
//! partitions the sync fetches through (an inactive customer is found too).

use domain::ids::TenantId;
use domain::ports::{ObjectsApi, TripletexCompanies};
use domain::registry::{self, RegisteredCompany};
use domain::sync::{FULL_RANGE, FetchRequest, listable};
use domain::tripletex::{Companies, CredentialsSecret, TripletexCredentials};
use serde::Serialize;
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

#[derive(Debug, thiserror::Error)]
pub enum TripletexError {
    #[error("the deployment names no {0}")]
    NotConfigured(&'static str),
    #[error("{0} is not an object type the sync can fetch from Tripletex")]
    NotFetchable(String),
    #[error("the Tripletex credentials secret is not valid")]
    Credentials(#[source] domain::tripletex::CompaniesError),
    #[error("no Tripletex credentials for company {0:?}")]
    UnknownCompany(String),
    #[error("the Tripletex credentials secret has no credential {0:?}")]
    UnknownCredential(String),
    #[error("Tripletex could not be asked")]
    Call(#[source] domain::tripletex::TripletexError),
}

/// The object as Tripletex has it now; none when Tripletex has no such object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InTripletex {
    pub version: Option<i64>,
    pub value: serde_json::Value,
}

/// Every company with credentials: the secret's own and the registry's, removed ones left out.
pub fn companies_of(
    credentials_json: &str,
    registered: &[RegisteredCompany],
) -> Result<Companies, TripletexError> {
    let secret =
        CredentialsSecret::from_json(credentials_json).map_err(TripletexError::Credentials)?;
    let mut directory = registry::directory(&secret.companies, &secret.credentials, registered);
    directory.looked_after.0.append(&mut directory.leaving.0);
    Ok(directory.looked_after)
}

pub async fn object_now(
    base_url: &str,
    companies: &Companies,
    company: &str,
    object_type: &str,
    id: i64,
    fields: &str,
) -> Result<Option<InTripletex>, TripletexError> {
    let spec = listable(object_type)
        .ok_or_else(|| TripletexError::NotFetchable(object_type.to_owned()))?;
    let credentials = TenantId::parse(company)
        .ok()
        .and_then(|tenant| companies.0.get(&tenant).map(|c| (tenant, c)))
        .ok_or_else(|| TripletexError::UnknownCompany(company.to_owned()))?;
    let pool = HttpTripletexCompanies::new(base_url, RetryPolicy::default())
        .map_err(TripletexError::Call)?;
    let api = pool
        .company(&credentials.0, credentials.1)
        .map_err(TripletexError::Call)?;
    for partition in spec.partitions {
        let found = api
            .fetch(&FetchRequest {
                spec,
                partition,
                window: spec.date_window.map(|_| FULL_RANGE),
                ids: &[id],
                fields,
            })
            .await
            .map_err(TripletexError::Call)?;
        if let Some(object) = found.into_iter().find(|object| object.id == id) {
            return Ok(Some(InTripletex {
                version: object.version,
                value: serde_json::from_str(object.value.get()).unwrap_or(serde_json::Value::Null),
            }));
        }
    }
    Ok(None)
}

/// Whose tokens discovery asks with.
pub enum Asking<'a> {
    /// A named credential of the secret (an accountant's key).
    Credential(&'a str),
    /// The tokens of a company of the secret.
    Company(&'a str),
}

/// The client companies a key may log into, each marked with the tenant that already looks after
/// it.
pub async fn discover(
    base_url: &str,
    credentials_json: &str,
    registered: &[RegisteredCompany],
    asking: Asking<'_>,
) -> Result<Vec<domain::tripletex::DiscoveredCompany>, TripletexError> {
    let secret =
        CredentialsSecret::from_json(credentials_json).map_err(TripletexError::Credentials)?;
    let companies = companies_of(credentials_json, registered)?;
    let key = match asking {
        Asking::Credential(name) => secret
            .credentials
            .get(name)
            .ok_or_else(|| TripletexError::UnknownCredential(name.to_owned()))?,
        Asking::Company(using) => TenantId::parse(using)
            .ok()
            .and_then(|tenant| companies.0.get(&tenant))
            .ok_or_else(|| TripletexError::UnknownCompany(using.to_owned()))?,
    };
    let clients = clients_of(base_url, key).await?;
    Ok(domain::tripletex::discovered(&clients, &companies))
}

/// The client companies a key may log into (`/company/>withLoginAccess`, every page). The key's
/// own company is asked (Basic user 0), whichever client the credentials act for.
/// Whether the credential reaches a company: a session for it that may list its event
/// subscriptions, the first thing the keeper does there.
pub async fn reaches(
    base_url: &str,
    key: &TripletexCredentials,
    company_id: i64,
) -> Result<(), domain::tripletex::TripletexError> {
    use domain::ports::SubscriptionsApi as _;
    let mut acting = key.clone();
    acting.company_id = Some(company_id);
    let api = tripletex_client::HttpTripletexApi::new(base_url, acting, RetryPolicy::default())?;
    api.list_subscriptions().await.map(|_| ())
}

pub async fn clients_of(
    base_url: &str,
    key: &TripletexCredentials,
) -> Result<Vec<domain::tripletex::ClientCompany>, TripletexError> {
    let mut own = key.clone();
    own.company_id = None;
    let api = tripletex_client::HttpTripletexApi::new(base_url, own, RetryPolicy::default())
        .map_err(TripletexError::Call)?;
    api.clients_with_login_access()
        .await
        .map_err(TripletexError::Call)
}
