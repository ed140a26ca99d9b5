//! Tripletex API v2 as the keeper sees it: event subscriptions, the envelopes they come in, the error
//! envelope, and the credentials a session is made from.
//!
//! Every field can be absent (Tripletex filters fields on authorization) and unknown fields are
//! ignored, so a newer Tripletex never breaks a read.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::BoxError;
use crate::ids::{InvalidTenant, Secret, TenantId};

/// Production API base.
pub const PRODUCTION_BASE_URL: &str = "https://tripletex.no/v2";
/// Tripletex's test environment.
pub const TEST_BASE_URL: &str = "https://api-test.tripletex.tech/v2";

/// A subscription's status. `Unknown` keeps a value this code does not know yet, so that a list is
/// still read and such a subscription is reported, never touched.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionStatus {
    Active,
    Disabled,
    DisabledTooManyErrors,
    DisabledRateLimitExceeded,
    DisabledMisuse,
    #[serde(other)]
    Unknown,
}

impl SubscriptionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Disabled => "DISABLED",
            Self::DisabledTooManyErrors => "DISABLED_TOO_MANY_ERRORS",
            Self::DisabledRateLimitExceeded => "DISABLED_RATE_LIMIT_EXCEEDED",
            Self::DisabledMisuse => "DISABLED_MISUSE",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// A subscription as Tripletex returns it. The write-only `authHeaderValue` and `hmacSharedSecret`
/// never come back, so they are not here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subscription {
    pub id: Option<i64>,
    pub version: Option<i32>,
    pub event: Option<String>,
    pub target_url: Option<String>,
    pub fields: Option<String>,
    pub status: Option<SubscriptionStatus>,
    pub auth_header_name: Option<String>,
}

/// What the keeper sends to create or update a subscription. PUT is a partial update, so absent
/// fields are left out; secrets are written out only when serialized for Tripletex.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionWrite {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional"
    )]
    pub target_url: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SubscriptionStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_header_name: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional"
    )]
    pub auth_header_value: Option<Secret>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional"
    )]
    pub hmac_shared_secret: Option<Secret>,
}

fn expose_optional<S: Serializer>(
    value: &Option<Secret>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(secret) => serializer.serialize_str(secret.expose()),
        None => serializer.serialize_none(),
    }
}

/// `{"value": …}`
#[derive(Debug, Clone, Deserialize)]
pub struct Single<T> {
    pub value: Option<T>,
}

/// `{"fullResultSize", "from", "count", "versionDigest", "values"}`. `fullResultSize` is not exact
/// (Tripletex says so), so paging stops on a short page instead.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    #[serde(default)]
    pub full_result_size: Option<i64>,
    #[serde(default)]
    pub from: Option<i64>,
    #[serde(default)]
    pub count: Option<i64>,
    #[serde(default)]
    pub version_digest: Option<String>,
    #[serde(default = "Vec::new")]
    pub values: Vec<T>,
}

/// `GET /event`: event name → description.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventDescription {
    #[serde(default)]
    pub description: Option<String>,
}

/// The session token `:create` answers with.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionToken {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub expiration_date: Option<String>,
}

/// Tripletex's error envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiErrorBody {
    pub status: Option<u16>,
    pub code: Option<i64>,
    pub message: Option<String>,
    pub developer_message: Option<String>,
    #[serde(deserialize_with = "null_as_empty")]
    pub validation_messages: Vec<ValidationMessage>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ValidationMessage {
    pub field: Option<String>,
    pub message: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A 2xx answer's body read as `T`. An empty body reads as JSON `null`, which Tripletex sends for
/// some writes.
pub fn parse_answer<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, TripletexError> {
    let text: &[u8] = if body.is_empty() { b"null" } else { body };
    serde_json::from_slice(text).map_err(|source| TripletexError::InvalidResponse {
        source: Box::new(source),
    })
}

/// An error answer: its envelope when the body is one, else only its status (a proxy's HTML page,
/// an empty 502).
pub fn api_error(status: u16, body: &[u8]) -> ApiError {
    ApiError {
        status,
        body: serde_json::from_slice(body).unwrap_or_default(),
    }
}

/// Tripletex's internal code for a stale `version` on a write.
pub const REVISION_CONFLICT_CODE: i64 = 8000;
/// Tripletex's internal code for "Result set too large. Limit of 10.000 reached." (422).
pub const RESULT_TOO_LARGE_CODE: i64 = 23000;
/// Tripletex's internal code for an object that does not exist (404).
pub const NOT_FOUND_CODE: i64 = 6000;

/// An error answer from Tripletex, with everything its envelope said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (the envelope's own `status` when the body had none).
    pub status: u16,
    pub body: ApiErrorBody,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = self.body.code {
            write!(f, " code {code}")?;
        }
        if let Some(message) = &self.body.message {
            write!(f, ": {message}")?;
        }
        for validation in &self.body.validation_messages {
            write!(
                f,
                " [{}: {}]",
                validation.field.as_deref().unwrap_or("?"),
                validation.message.as_deref().unwrap_or("")
            )?;
        }
        if let Some(request_id) = &self.body.request_id {
            write!(f, " (request {request_id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[derive(Debug, thiserror::Error)]
pub enum TripletexError {
    /// Tripletex answered with an error envelope (4xx other than 401/429, or a 5xx after retries).
    #[error("Tripletex refused the request")]
    Api(#[source] Box<ApiError>),
    /// The credentials do not make a session, or a fresh session was refused too.
    #[error("Tripletex did not accept the credentials")]
    Unauthorized(#[source] Box<ApiError>),
    /// Still rate limited after the bounded waits.
    #[error("Tripletex kept rate limiting after {attempts} attempts")]
    RateLimited { attempts: u32 },
    /// Connection failures, timeouts and 5xx answers that outlasted the retries.
    #[error("Tripletex is unavailable after {attempts} attempts")]
    Unavailable {
        attempts: u32,
        #[source]
        source: BoxError,
    },
    /// A 2xx answer that is not what the API describes.
    #[error("Tripletex answered with an unexpected body")]
    InvalidResponse {
        #[source]
        source: BoxError,
    },
}

impl TripletexError {
    /// A write with a stale `version` (409): re-read, re-plan, retry.
    pub fn is_revision_conflict(&self) -> bool {
        matches!(self, Self::Api(error) if error.status == 409
            && error.body.code.is_none_or(|code| code == REVISION_CONFLICT_CODE))
    }

    /// A listing whose whole result would be over Tripletex's 10,000 (422, code 23000): narrow it.
    pub fn is_result_too_large(&self) -> bool {
        matches!(self, Self::Api(error) if error.status == 422
            && error.body.code == Some(RESULT_TOO_LARGE_CODE))
    }

    /// A failure that may pass if the same call is made later: rate limits, outages, 5xx.
    pub fn may_pass(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Unavailable { .. } => true,
            Self::Api(error) => error.status >= 500,
            Self::Unauthorized(_) | Self::InvalidResponse { .. } => false,
        }
    }

    /// The object asked for by id does not exist: 404 with Tripletex's code 6000. A 404 without it
    /// (a proxy's page, a path Tripletex does not know) says nothing about the object, and a
    /// tombstone is final, so it is not taken as gone.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api(error) if error.status == 404
            && error.body.code == Some(NOT_FOUND_CODE))
    }

    /// Tripletex refuses this key the company: the credentials make no session for it (401), or
    /// the session may not see it (403). Asking again will not change that.
    pub fn is_refused(&self) -> bool {
        match self {
            Self::Unauthorized(_) => true,
            Self::Api(error) => matches!(error.status, 401 | 403),
            _ => false,
        }
    }

    /// Tripletex refused for its rate limit, after the client's retries.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::RateLimited { .. })
    }

    /// A short, stable name for reports and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Api(_) => "api_error",
            Self::Unauthorized(_) => "unauthorized",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::InvalidResponse { .. } => "invalid_response",
        }
    }
}

/// What a session is made from. `company_id` is the client company an accountant token acts for;
/// none means the employee token owner's own company (Basic user `0`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TripletexCredentials {
    pub consumer_token: Secret,
    pub employee_token: Secret,
    #[serde(default)]
    pub company_id: Option<i64>,
}

impl TripletexCredentials {
    /// The same consumer and employee token (one key, one session, one rate limit), whatever
    /// company each acts for.
    pub fn same_key(&self, other: &Self) -> bool {
        self.consumer_token.expose() == other.consumer_token.expose()
            && self.employee_token.expose() == other.employee_token.expose()
    }

    /// The Basic auth user: `0` for the token owner's company, or the client company's id.
    pub fn basic_user(&self) -> String {
        self.company_id
            .map_or_else(|| "0".to_owned(), |id| id.to_string())
    }
}

/// One client company an accountant's key may log into (`GET /company/>withLoginAccess`, `Client`):
/// its `customerCompanyId` is the Basic user that acts for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCompany {
    #[serde(default)]
    pub customer_company_id: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub organization_number: Option<String>,
}

/// A client company found by discovery, with the tenant that already looks after it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredCompany {
    pub company_id: i64,
    pub name: Option<String>,
    pub organization_number: Option<String>,
    pub tenant: Option<String>,
}

/// The clients a key reaches, in company id order, each with the configured tenant acting for it
/// (its credentials' `companyId`); a client without a company id cannot be logged into and is left
/// out.
pub fn discovered(clients: &[ClientCompany], companies: &Companies) -> Vec<DiscoveredCompany> {
    let mut found: Vec<DiscoveredCompany> = clients
        .iter()
        .filter_map(|client| {
            let company_id = client.customer_company_id?;
            let tenant = companies
                .0
                .iter()
                .find(|(_, credentials)| credentials.company_id == Some(company_id))
                .map(|(tenant, _)| tenant.to_string());
            Some(DiscoveredCompany {
                company_id,
                name: client.name.clone(),
                organization_number: client.organization_number.clone(),
                tenant,
            })
        })
        .collect();
    found.sort_by_key(|company| company.company_id);
    found.dedup_by_key(|company| company.company_id);
    found
}

/// The Tripletex companies a deployment looks after, by tenant: the content of the credentials
/// secret, `{"credentials"?: {"<name>": {"consumerToken", "employeeToken"}}, "companies": {"<tenant>":
/// {"consumerToken", "employeeToken", "companyId"?} | {"credential": "<name>", "companyId"?}}}`.
#[derive(Debug, Clone, Default)]
pub struct Companies(pub BTreeMap<TenantId, TripletexCredentials>);

#[derive(Debug, thiserror::Error)]
pub enum CompaniesError {
    #[error("the Tripletex credentials are not JSON of the expected shape")]
    Malformed(#[source] crate::error::SecretJsonError),
    #[error("company {0}: empty consumer or employee token")]
    EmptyToken(String),
    #[error("credential {0}: empty consumer or employee token")]
    EmptyCredential(String),
    #[error("company {0}: give either consumerToken and employeeToken, or the credential it uses")]
    EitherTokensOrCredential(String),
    #[error("company {company} names credential {credential:?}, which `credentials` does not hold")]
    UnknownCredential { company: String, credential: String },
    #[error(transparent)]
    InvalidTenant(#[from] InvalidTenant),
}

impl Companies {
    /// `from_json` with its error boxed: the shape a secret source takes a parser in.
    pub fn parse_secret(json: &str) -> Result<Self, BoxError> {
        Ok(Self::from_json(json)?)
    }

    /// The companies the credentials secret lists itself (see `CredentialsSecret`).
    pub fn from_json(json: &str) -> Result<Self, CompaniesError> {
        CredentialsSecret::from_json(json).map(|secret| secret.companies)
    }
}

/// The credentials secret: named credentials (an accountant's key is kept once, whatever the number
/// of client companies it serves; the company registry names them), and the companies the secret
/// lists itself, the way a deployment was configured before the registry (still read).
#[derive(Debug, Clone, Default)]
pub struct CredentialsSecret {
    /// By name, each acting for its own company (no `companyId`).
    pub credentials: BTreeMap<String, TripletexCredentials>,
    pub companies: Companies,
}

impl CredentialsSecret {
    /// `from_json` with its error boxed: the shape a secret source takes a parser in.
    pub fn parse_secret(json: &str) -> Result<Self, BoxError> {
        Ok(Self::from_json(json)?)
    }

    /// Each company either carries its own tokens (`{"consumerToken", "employeeToken",
    /// "companyId"?}`) or names a credential kept once under `credentials` (`{"credential": "firm",
    /// "companyId": 201}`): an accountant's key serves every client company it reaches, and a
    /// company costs the secret about 40 bytes instead of 250. With the registry, `companies` may
    /// be left out altogether.
    pub fn from_json(json: &str) -> Result<Self, CompaniesError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Named {
            consumer_token: Secret,
            employee_token: Secret,
        }
        /// Either tokens of its own or a named credential; serde's own message names a misspelt
        /// field, and `Invalid` says which of the two shapes is incomplete.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Entry {
            consumer_token: Option<Secret>,
            employee_token: Option<Secret>,
            credential: Option<String>,
            #[serde(default)]
            company_id: Option<i64>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            credentials: BTreeMap<String, Named>,
            #[serde(default)]
            companies: BTreeMap<String, Entry>,
        }
        let raw: Raw = serde_json::from_str(json).map_err(|error| {
            CompaniesError::Malformed(crate::error::SecretJsonError::of(&error))
        })?;
        let mut credentials = BTreeMap::new();
        for (name, named) in raw.credentials {
            if named.consumer_token.expose().is_empty() || named.employee_token.expose().is_empty()
            {
                return Err(CompaniesError::EmptyCredential(name));
            }
            credentials.insert(
                name,
                TripletexCredentials {
                    consumer_token: named.consumer_token,
                    employee_token: named.employee_token,
                    company_id: None,
                },
            );
        }
        let mut companies = BTreeMap::new();
        for (tenant, entry) in raw.companies {
            let (consumer_token, employee_token) =
                match (entry.consumer_token, entry.employee_token, entry.credential) {
                    (Some(consumer), Some(employee), None) => (consumer, employee),
                    (None, None, Some(credential)) => {
                        let named = credentials.get(&credential).ok_or_else(|| {
                            CompaniesError::UnknownCredential {
                                company: tenant.clone(),
                                credential: credential.clone(),
                            }
                        })?;
                        (named.consumer_token.clone(), named.employee_token.clone())
                    }
                    _ => return Err(CompaniesError::EitherTokensOrCredential(tenant)),
                };
            let company = TripletexCredentials {
                consumer_token,
                employee_token,
                company_id: entry.company_id,
            };
            if company.consumer_token.expose().is_empty()
                || company.employee_token.expose().is_empty()
            {
                return Err(CompaniesError::EmptyToken(tenant));
            }
            companies.insert(TenantId::parse(&tenant)?, company);
        }
        Ok(Self {
            credentials,
            companies: Companies(companies),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answer_without_an_envelope_keeps_its_status() {
        let error = api_error(502, b"<html>bad gateway</html>");
        assert_eq!(error.status, 502);
        assert_eq!(error.body, ApiErrorBody::default());
    }

    #[test]
    fn reads_a_subscription_with_unknown_fields_and_an_unknown_status() {
        let json = r#"{"id": 1, "version": 0, "url": "https://tripletex.no/v2/event/subscription/1",
            "event": "product.create", "targetUrl": "https://hooks.example.com/t", "fields": "id,version",
            "status": "DISABLED_FOR_A_NEW_REASON", "authHeaderName": "X-Hook", "changes": [], "brandNew": 1}"#;
        let subscription: Subscription = serde_json::from_str(json).unwrap();
        assert_eq!(subscription.id, Some(1));
        assert_eq!(subscription.status, Some(SubscriptionStatus::Unknown));
        assert_eq!(subscription.auth_header_name.as_deref(), Some("X-Hook"));
    }

    #[test]
    fn reads_a_subscription_with_every_field_absent() {
        let subscription: Subscription = serde_json::from_str("{}").unwrap();
        assert_eq!(subscription, Subscription::default());
    }

    #[test]
    fn reads_every_documented_status() {
        for (text, status) in [
            ("ACTIVE", SubscriptionStatus::Active),
            ("DISABLED", SubscriptionStatus::Disabled),
            (
                "DISABLED_TOO_MANY_ERRORS",
                SubscriptionStatus::DisabledTooManyErrors,
            ),
            (
                "DISABLED_RATE_LIMIT_EXCEEDED",
                SubscriptionStatus::DisabledRateLimitExceeded,
            ),
            ("DISABLED_MISUSE", SubscriptionStatus::DisabledMisuse),
        ] {
            let parsed: SubscriptionStatus = serde_json::from_str(&format!("\"{text}\"")).unwrap();
            assert_eq!(parsed, status);
            assert_eq!(parsed.as_str(), text);
        }
    }

    #[test]
    fn a_write_leaves_out_absent_fields_and_writes_secrets_only_into_the_json() {
        let write = SubscriptionWrite {
            id: Some(4),
            version: Some(2),
            status: Some(SubscriptionStatus::Active),
            auth_header_value: Some(Secret::new("s3cret-value")),
            ..SubscriptionWrite::default()
        };
        let json = serde_json::to_value(&write).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": 4, "version": 2, "status": "ACTIVE", "authHeaderValue": "s3cret-value"})
        );
        assert!(!format!("{write:?}").contains("s3cret-value"));
    }

    #[test]
    fn reads_the_error_envelope_and_names_everything_in_its_message() {
        let json = r#"{"status": 422, "code": 18000, "message": "Validering feilet.", "link": "x",
            "developerMessage": null, "validationMessages": [{"field": "arg:consumerToken",
            "message": "The consumer token is invalid or does not exist.", "path": null, "rootId": null}],
            "requestId": "abc"}"#;
        let body: ApiErrorBody = serde_json::from_str(json).unwrap();
        let error = ApiError { status: 422, body };
        assert_eq!(
            error.to_string(),
            "HTTP 422 code 18000: Validering feilet. [arg:consumerToken: The consumer token is invalid or does not exist.] (request abc)"
        );
        let null_messages: ApiErrorBody =
            serde_json::from_str(r#"{"status": 500, "validationMessages": null}"#).unwrap();
        assert!(null_messages.validation_messages.is_empty());
    }

    #[test]
    fn a_409_is_a_revision_conflict_unless_it_names_another_code() {
        let conflict = |code| {
            TripletexError::Api(Box::new(ApiError {
                status: 409,
                body: ApiErrorBody {
                    code,
                    ..ApiErrorBody::default()
                },
            }))
        };
        assert!(conflict(Some(8000)).is_revision_conflict());
        assert!(conflict(None).is_revision_conflict());
        assert!(!conflict(Some(10000)).is_revision_conflict(), "locked");
    }

    #[test]
    fn credentials_use_user_zero_unless_a_client_company_is_named() {
        let mut credentials: TripletexCredentials =
            serde_json::from_str(r#"{"consumerToken": "c", "employeeToken": "e"}"#).unwrap();
        assert_eq!(credentials.basic_user(), "0");
        credentials.company_id = Some(12345);
        assert_eq!(credentials.basic_user(), "12345");
        assert!(!format!("{credentials:?}").contains("\"c\""));
    }

    #[test]
    fn discovery_marks_the_clients_already_looked_after_and_skips_those_without_a_company_id() {
        let companies = Companies::from_json(
            r#"{"companies": {
                "acme": {"consumerToken": "c", "employeeToken": "e", "companyId": 201},
                "own": {"consumerToken": "c", "employeeToken": "e"}}}"#,
        )
        .unwrap();
        let client = |id: Option<i64>, name: &str| ClientCompany {
            customer_company_id: id,
            name: Some(name.into()),
            organization_number: None,
        };
        let clients = [
            client(Some(202), "Beta AS"),
            client(Some(201), "Acme AS"),
            client(None, "no login"),
            client(Some(202), "Beta AS"),
        ];
        let found = discovered(&clients, &companies);
        assert_eq!(
            found
                .iter()
                .map(|c| (c.company_id, c.tenant.as_deref()))
                .collect::<Vec<_>>(),
            [(201, Some("acme")), (202, None)]
        );
        let answer: ListPage<ClientCompany> = serde_json::from_str(
            r#"{"fullResultSize": 1, "from": 0, "count": 1, "values": [
                {"id": 9, "version": 0, "name": "Acme AS", "customerCompanyId": 201,
                 "organizationNumber": "999999999", "accountantOrSimilar": false}]}"#,
        )
        .unwrap();
        assert_eq!(answer.values[0].customer_company_id, Some(201));
    }

    #[test]
    fn companies_may_name_one_accountant_credential_instead_of_repeating_tokens() {
        let companies = Companies::from_json(
            r#"{"credentials": {"firm": {"consumerToken": "c", "employeeToken": "accountant"}},
                "companies": {
                  "acme": {"credential": "firm", "companyId": 201},
                  "beta": {"credential": "firm", "companyId": 202},
                  "own": {"consumerToken": "c2", "employeeToken": "e2"}}}"#,
        )
        .unwrap();
        let acme = &companies.0[&TenantId::parse("acme").unwrap()];
        assert_eq!(acme.employee_token.expose(), "accountant");
        assert_eq!(acme.basic_user(), "201");
        assert_eq!(
            companies.0[&TenantId::parse("beta").unwrap()].basic_user(),
            "202"
        );
        assert_eq!(
            companies.0[&TenantId::parse("own").unwrap()].basic_user(),
            "0"
        );
        let both = Companies::from_json(
            r#"{"companies": {"acme": {"credential": "firm", "consumerToken": "c"}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            both.to_string(),
            "company acme: give either consumerToken and employeeToken, or the credential it uses"
        );
        let unknown = Companies::from_json(
            r#"{"companies": {"acme": {"credential": "nosuch", "companyId": 201}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "company acme names credential \"nosuch\", which `credentials` does not hold"
        );
        // A company entry costs the secret about 40 bytes, whatever the length of the tokens.
        let entry = r#""client-201": {"credential": "firm", "companyId": 201}"#;
        assert!(entry.len() < 60, "{}", entry.len());
    }

    #[test]
    fn a_wrongly_typed_credential_is_refused_without_its_token_in_the_error() {
        let error = CredentialsSecret::from_json(
            r#"{"companies": {"default": {"consumerToken": ["tok-9d41a7c2"], "employeeToken": "e"}}}"#,
        )
        .unwrap_err();
        let said = crate::error::error_chain(&error);
        assert!(!said.contains("tok-9d41a7c2"), "{said}");
        assert!(
            format!("{error:?}").find("tok-9d41a7c2").is_none(),
            "nor in its Debug"
        );
    }
}
