//! Turns a scheduled (or hand-made) event into a keeper run over every configured company, and the
//! run into a JSON report, log lines and metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::adapters::tripletex::{DEFAULT_PAGE_SIZE, HttpTripletexApi, RetryPolicy};
use shared::auth::{AuthConfig, TenantId};
use shared::config::{Companies, KeeperConfig};
use shared::keeper::{CompanyReport, KeeperSettings, ReEnablePolicy, run_company};
use shared::ports::ResyncLedger;
use shared::secrets::SecretSource;
use shared::telemetry::{emit_metrics, error_chain};
use shared::tripletex::TripletexCredentials;
use tracing::{info, warn};

const FUNCTION_NAME: &str = "subscription-keeper";
/// Companies handled at once (each has its own Tripletex rate limit).
const COMPANY_CONCURRENCY: usize = 4;

/// The event the keeper is invoked with. The schedule sends `{"trigger": "schedule"}`; a person may
/// ask for a dry run, or for some tenants only. Other fields (e.g. of an EventBridge event) are
/// ignored; a field of the wrong type is refused rather than guessed at.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeeperRequest {
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    /// Give every active subscription of ours the current credentials (after adding a new value
    /// to the receiver's auth secret; see README, rotation).
    #[serde(default)]
    pub resend_auth: bool,
}

/// What the keeper needs besides its secrets.
#[derive(Debug, Clone)]
pub struct KeeperOptions {
    pub receiver_url: String,
    pub api_base_url: String,
    pub events: Vec<String>,
    pub fields: String,
    pub reenable: ReEnablePolicy,
    pub dry_run: bool,
    pub resync_lookback: Duration,
    pub retry: RetryPolicy,
    pub page_size: u32,
}

impl From<&KeeperConfig> for KeeperOptions {
    fn from(config: &KeeperConfig) -> Self {
        Self {
            receiver_url: config.receiver_url.clone(),
            api_base_url: config.api_base_url.clone(),
            events: config.events.clone(),
            fields: config.fields.clone(),
            reenable: config.reenable,
            dry_run: config.dry_run,
            resync_lookback: config.resync_lookback,
            retry: RetryPolicy::default(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub dry_run: bool,
    pub totals: Totals,
    pub companies: Vec<CompanyReport>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub companies: usize,
    pub companies_failed: usize,
    pub seen: usize,
    pub re_enabled: usize,
    pub created: usize,
    pub updated: usize,
    pub left_alone: usize,
    pub failed: usize,
}

impl Totals {
    fn of(companies: &[CompanyReport]) -> Self {
        let mut totals = Self {
            companies: companies.len(),
            ..Self::default()
        };
        for company in companies {
            totals.companies_failed += usize::from(company.error.is_some());
            totals.seen += company.seen;
            totals.re_enabled += company.re_enabled.len();
            totals.created += company.created.len();
            totals.updated += company.updated.len();
            totals.left_alone += company.left_alone.len();
            totals.failed += company.failed.len();
        }
        totals
    }

    fn metrics(&self) -> [(&'static str, u64); 7] {
        let n = |v: usize| v as u64;
        [
            ("SubscriptionsSeen", n(self.seen)),
            ("SubscriptionsReEnabled", n(self.re_enabled)),
            ("SubscriptionsCreated", n(self.created)),
            ("SubscriptionsUpdated", n(self.updated)),
            ("SubscriptionsLeftAlone", n(self.left_alone)),
            ("SubscriptionStepsFailed", n(self.failed)),
            ("CompaniesFailed", n(self.companies_failed)),
        ]
    }
}

pub struct Keeper<L> {
    ledger: L,
    companies: SecretSource<Companies>,
    receiver_auth: SecretSource<AuthConfig>,
    options: KeeperOptions,
    /// One client per tenant across invocations, so its session token is reused; rebuilt when the
    /// tenant's credentials change (rotation).
    clients: tokio::sync::Mutex<HashMap<TenantId, (String, Arc<HttpTripletexApi>)>>,
}

impl<L: ResyncLedger> Keeper<L> {
    pub fn new(
        ledger: L,
        companies: SecretSource<Companies>,
        receiver_auth: SecretSource<AuthConfig>,
        options: KeeperOptions,
    ) -> Self {
        Self {
            ledger,
            companies,
            receiver_auth,
            options,
            clients: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub async fn handle(&self, request: KeeperRequest) -> Result<RunReport, KeeperError> {
        let dry_run = request.dry_run.unwrap_or(self.options.dry_run);
        let companies = self.companies.current().await;
        let auth = self.receiver_auth.current().await;
        let wanted: Option<Vec<TenantId>> = request
            .tenants
            .map(|tenants| {
                tenants
                    .iter()
                    .map(|t| TenantId::parse(t).map_err(|_| KeeperError::UnknownTenant(t.clone())))
                    .collect::<Result<_, _>>()
            })
            .transpose()?;
        if let Some(unknown) = wanted
            .iter()
            .flatten()
            .find(|tenant| !companies.0.contains_key(*tenant))
        {
            return Err(KeeperError::UnknownTenant(unknown.to_string()));
        }
        let selected: Vec<_> = companies
            .0
            .iter()
            .filter(|(tenant, _)| wanted.as_ref().is_none_or(|w| w.contains(tenant)))
            .collect();
        if selected.is_empty() {
            warn!("no Tripletex company is configured: nothing to keep");
        }
        let reports: Vec<CompanyReport> = stream::iter(selected)
            .map(|(tenant, credentials)| {
                self.run_one(tenant, credentials, &auth, dry_run, request.resend_auth)
            })
            .buffered(COMPANY_CONCURRENCY)
            .collect()
            .await;
        let totals = Totals::of(&reports);
        info!(
            dry_run,
            companies = totals.companies,
            companies_failed = totals.companies_failed,
            seen = totals.seen,
            re_enabled = totals.re_enabled,
            created = totals.created,
            updated = totals.updated,
            left_alone = totals.left_alone,
            failed = totals.failed,
            "keeper run done"
        );
        if !dry_run {
            emit_metrics(FUNCTION_NAME, &totals.metrics());
        }
        Ok(RunReport {
            dry_run,
            totals,
            companies: reports,
        })
    }

    async fn run_one(
        &self,
        tenant: &TenantId,
        credentials: &TripletexCredentials,
        auth: &AuthConfig,
        dry_run: bool,
        resend_auth: bool,
    ) -> CompanyReport {
        let failed = |error: String| CompanyReport {
            tenant: tenant.to_string(),
            dry_run,
            error: Some(error),
            ..CompanyReport::default()
        };
        let settings = match KeeperSettings::for_tenant(
            &self.options.receiver_url,
            tenant,
            auth.tenant(tenant),
            &self.options.events,
            &self.options.fields,
        ) {
            Ok(mut settings) => {
                settings.reenable = self.options.reenable;
                settings.resync_lookback = self.options.resync_lookback;
                settings.resend_auth = resend_auth;
                settings
            }
            Err(error) => return failed(error_chain(&error)),
        };
        let api = match self.client(tenant, credentials).await {
            Ok(api) => api,
            Err(error) => return failed(error_chain(&error)),
        };
        run_company(api.as_ref(), &self.ledger, tenant, &settings, dry_run).await
    }

    async fn client(
        &self,
        tenant: &TenantId,
        credentials: &TripletexCredentials,
    ) -> Result<Arc<HttpTripletexApi>, shared::tripletex::TripletexError> {
        let fingerprint = fingerprint(credentials);
        let mut clients = self.clients.lock().await;
        if let Some((known, api)) = clients.get(tenant)
            && *known == fingerprint
        {
            return Ok(Arc::clone(api));
        }
        let api = Arc::new(
            HttpTripletexApi::new(
                &self.options.api_base_url,
                credentials.clone(),
                self.options.retry.clone(),
            )?
            .with_page_size(self.options.page_size),
        );
        clients.insert(tenant.clone(), (fingerprint, Arc::clone(&api)));
        Ok(api)
    }
}

/// Tells credentials apart without keeping them in another form that could leak.
fn fingerprint(credentials: &TripletexCredentials) -> String {
    let mut hash = Sha256::new();
    hash.update(credentials.consumer_token.expose());
    hash.update([0]);
    hash.update(credentials.employee_token.expose());
    hash.update([0]);
    hash.update(credentials.basic_user());
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error("tenant {0:?} is not among the configured companies")]
    UnknownTenant(String),
}

impl From<KeeperError> for lambda_runtime::Diagnostic {
    fn from(error: KeeperError) -> Self {
        let error_type = match error {
            KeeperError::UnknownTenant(_) => "UnknownTenant",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}
