//! The companies a function works for, read from the company registry (kept on a TTL, as secrets
//! are) together with the credentials secret: what the sync syncs, and what the receiver refuses.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tracing::warn;

use domain::error::error_chain;
use domain::ids::TenantId;
use domain::ports::{CompanyRegistry, RegistryError};
use domain::registry::{self, CompanyState, RegisteredCompany};
use domain::tripletex::{Companies, CredentialsSecret};

use crate::secrets::{Derive, SecretSource};

/// The registry, read at most once a TTL. A re-read that fails keeps the last good answer (an
/// outage of DynamoDB must not drop every company), and is tried again after another TTL.
pub struct CachedRegistry<R> {
    registry: R,
    ttl: Duration,
    cached: RwLock<(Arc<Vec<RegisteredCompany>>, Instant)>,
    refreshing: tokio::sync::Mutex<()>,
}

impl<R: CompanyRegistry> CachedRegistry<R> {
    /// Reads the registry now: a function that cannot read it at start-up fails loudly.
    pub async fn load(registry: R, ttl: Duration) -> Result<Self, RegistryError> {
        let registered = registry.registered().await?;
        Ok(Self {
            registry,
            ttl,
            cached: RwLock::new((Arc::new(registered), Instant::now())),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    pub async fn registered(&self) -> Arc<Vec<RegisteredCompany>> {
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let _one_refresh_at_a_time = self.refreshing.lock().await;
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let read = self.registry.registered().await;
        let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        match read {
            Ok(registered) => cached.0 = Arc::new(registered),
            Err(error) => warn!(
                error = %error_chain(&error),
                "the company registry could not be re-read; keeping the last good answer"
            ),
        }
        cached.1 = Instant::now();
        Arc::clone(&cached.0)
    }

    /// The tenant's state, if the registry has it.
    pub async fn state_of(&self, tenant: &TenantId) -> Option<CompanyState> {
        self.registered()
            .await
            .iter()
            .find(|company| &company.tenant == tenant)
            .map(|company| company.state)
    }

    fn fresh(&self) -> Option<Arc<Vec<RegisteredCompany>>> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        (cached.1.elapsed() < self.ttl).then(|| Arc::clone(&cached.0))
    }
}

/// The companies looked after: the credentials secret's own, and the registry's onboarding and
/// active ones with their named credentials (`registry::directory`).
pub struct LookedAfter<R> {
    pub credentials: SecretSource<CredentialsSecret>,
    pub registry: CachedRegistry<R>,
}

impl<R: CompanyRegistry + 'static> LookedAfter<R> {
    pub async fn companies(&self) -> Companies {
        let secret = self.credentials.current().await;
        let registered = self.registry.registered().await;
        let directory = registry::directory(&secret.companies, &secret.credentials, &registered);
        for problem in &directory.problems {
            warn!(problem, "a registered company cannot be handled");
        }
        directory.looked_after
    }

    /// As a source of `Companies`, for a handler that reads them as it reads a secret.
    pub fn into_source(self) -> SecretSource<Companies> {
        SecretSource::Derived(Box::new(self))
    }
}

impl<R: CompanyRegistry + 'static> Derive<Companies> for LookedAfter<R> {
    fn current(&self) -> Pin<Box<dyn Future<Output = Arc<Companies>> + Send + '_>> {
        Box::pin(async move { Arc::new(self.companies().await) })
    }
}

/// What the receiver asks before it queues a webhook: the tenant's state in the registry.
pub trait TenantStates: Send + Sync {
    fn state_of<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> Pin<Box<dyn Future<Output = Option<CompanyState>> + Send + 'a>>;
}

impl<R: CompanyRegistry> TenantStates for CachedRegistry<R> {
    fn state_of<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> Pin<Box<dyn Future<Output = Option<CompanyState>> + Send + 'a>> {
        Box::pin(CachedRegistry::state_of(self, tenant))
    }
}
