//! The companies a function works for, read from the company registry (kept on a TTL, as secrets
//! are) together with the credentials secret: what the sync syncs, and what the receiver refuses.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::warn;

use domain::error::error_chain;
use domain::ids::TenantId;
use domain::ports::{CompanyRegistry, RegistryError, TenantStates};
use domain::registry::{self, CompanyState, RegisteredCompany};
use domain::tripletex::{Companies, CredentialsSecret};

use crate::refreshing::Refreshing;
use crate::secrets::SecretSource;

/// The registry, read at most once a TTL. A re-read that fails keeps the last good answer (an
/// outage of DynamoDB must not drop every company), and is tried again after another TTL.
pub struct CachedRegistry<R> {
    registry: R,
    registered: Refreshing<Vec<RegisteredCompany>>,
}

impl<R: CompanyRegistry> CachedRegistry<R> {
    /// Reads the registry now: a function that cannot read it at start-up fails loudly.
    pub async fn load(registry: R, ttl: Duration) -> Result<Self, RegistryError> {
        let registered = in_tenant_order(registry.registered().await?);
        Ok(Self {
            registry,
            registered: Refreshing::new(registered, ttl),
        })
    }

    pub async fn registered(&self) -> Arc<Vec<RegisteredCompany>> {
        self.registered
            .current(
                || async { self.registry.registered().await.map(in_tenant_order) },
                |error| {
                    warn!(
                        error = %error_chain(&error),
                        "the company registry could not be re-read; keeping the last good answer"
                    )
                },
            )
            .await
    }

    /// The tenant's state, if the registry has it: asked per webhook and per record, so a binary
    /// search of the registry as read (kept in tenant order).
    pub async fn state_of(&self, tenant: &TenantId) -> Option<CompanyState> {
        let registered = self.registered().await;
        registered
            .binary_search_by(|company| company.tenant.cmp(tenant))
            .ok()
            .and_then(|at| registered.get(at))
            .map(|company| company.state)
    }
}

fn in_tenant_order(mut registered: Vec<RegisteredCompany>) -> Vec<RegisteredCompany> {
    registered.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    registered
}

/// The companies looked after: the credentials secret's own, and the registry's onboarding and
/// active ones with their named credentials (`registry::directory`).
pub struct LookedAfter<R> {
    credentials: SecretSource<CredentialsSecret>,
    registry: CachedRegistry<R>,
    /// The companies made from the secret and the registry as last read: made again only when
    /// either was read anew, not on every task.
    made: Mutex<Option<Made>>,
}

struct Made {
    secret: Arc<CredentialsSecret>,
    registered: Arc<Vec<RegisteredCompany>>,
    companies: Arc<Companies>,
}

impl<R: CompanyRegistry + 'static> LookedAfter<R> {
    pub fn new(credentials: SecretSource<CredentialsSecret>, registry: CachedRegistry<R>) -> Self {
        Self {
            credentials,
            registry,
            made: Mutex::new(None),
        }
    }

    pub async fn companies(&self) -> Arc<Companies> {
        let secret = self.credentials.current().await;
        let registered = self.registry.registered().await;
        let mut made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(made) = made.as_ref()
            && Arc::ptr_eq(&made.secret, &secret)
            && Arc::ptr_eq(&made.registered, &registered)
        {
            return made.companies.clone();
        }
        let directory = registry::directory(&secret.companies, &secret.credentials, &registered);
        for problem in &directory.problems {
            warn!(problem, "a registered company cannot be handled");
        }
        let companies = Arc::new(directory.looked_after);
        *made = Some(Made {
            secret,
            registered,
            companies: companies.clone(),
        });
        companies
    }
}

/// Where a function finds the companies it works for: given once (a test, a bench, a local run
/// without a registry), or looked after from the credentials secret and the registry.
pub enum CompanySource {
    Fixed(Arc<Companies>),
    LookedAfter(Box<dyn MakeCompanies>),
}

impl CompanySource {
    pub fn looked_after<R: CompanyRegistry + 'static>(looked_after: LookedAfter<R>) -> Self {
        Self::LookedAfter(Box::new(looked_after))
    }

    pub async fn current(&self) -> Arc<Companies> {
        match self {
            Self::Fixed(companies) => Arc::clone(companies),
            Self::LookedAfter(looked_after) => looked_after.make().await,
        }
    }
}

/// `LookedAfter` without its registry's type, so that a handler holding a `CompanySource` need
/// not name it.
pub trait MakeCompanies: Send + Sync {
    fn make(&self) -> Pin<Box<dyn Future<Output = Arc<Companies>> + Send + '_>>;
}

impl<R: CompanyRegistry + 'static> MakeCompanies for LookedAfter<R> {
    fn make(&self) -> Pin<Box<dyn Future<Output = Arc<Companies>> + Send + '_>> {
        Box::pin(self.companies())
    }
}

impl<R: CompanyRegistry> TenantStates for CachedRegistry<R> {
    fn state_of<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> Pin<Box<dyn Future<Output = Option<CompanyState>> + Send + 'a>> {
        Box::pin(CachedRegistry::state_of(self, tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::InMemoryResyncLedger;

    fn added(tenant: &str, company_id: i64) -> RegisteredCompany {
        RegisteredCompany::added(
            TenantId::parse(tenant).unwrap(),
            company_id,
            "firm",
            jiff::Timestamp::UNIX_EPOCH,
        )
    }

    #[tokio::test]
    async fn the_companies_are_the_secret_s_and_the_registry_s_made_once_per_read() {
        let ledger = InMemoryResyncLedger::new();
        for (tenant, id) in [("301", 301), ("105", 105)] {
            ledger.add(&added(tenant, id)).await.unwrap();
        }
        let secret = CredentialsSecret::from_json(
            r#"{"credentials": {"firm": {"consumerToken": "c", "employeeToken": "accountant"}},
                "companies": {"own": {"consumerToken": "c", "employeeToken": "e"}}}"#,
        )
        .unwrap();
        let registry = CachedRegistry::load(ledger.clone(), Duration::from_secs(60))
            .await
            .unwrap();
        let looked_after = LookedAfter::new(SecretSource::Fixed(Arc::new(secret)), registry);

        let first = looked_after.companies().await;
        let tenants: Vec<String> = first.0.keys().map(ToString::to_string).collect();
        assert_eq!(tenants, ["105", "301", "own"]);
        assert!(Arc::ptr_eq(&first, &looked_after.companies().await));
        assert_eq!(
            looked_after
                .registry
                .state_of(&TenantId::parse("301").unwrap())
                .await,
            Some(CompanyState::Onboarding)
        );
        assert_eq!(
            looked_after
                .registry
                .state_of(&TenantId::parse("302").unwrap())
                .await,
            None
        );
    }
}
