//! Secrets read once at cold start and re-read on a TTL, so that a rotated value is picked up
//! without a redeploy and a secret is never fetched on every call.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::adapters::secrets_manager::{SecretError, SecretsManagerSecret};
use crate::ports::BoxError;
use crate::telemetry::error_chain;

/// Turns a secret's string into the value the function uses.
pub type SecretParser<T> = fn(&str) -> Result<T, BoxError>;

/// Where a function's secret configuration comes from.
pub enum SecretSource<T> {
    /// Given once, e.g. from the environment in a local run.
    Fixed(Arc<T>),
    /// Read from Secrets Manager and refreshed on a TTL.
    Refreshing(RefreshingSecret<T>),
}

impl<T: Send + Sync> SecretSource<T> {
    pub async fn current(&self) -> Arc<T> {
        match self {
            Self::Fixed(value) => Arc::clone(value),
            Self::Refreshing(secret) => secret.current().await,
        }
    }
}

pub struct RefreshingSecret<T> {
    secret: SecretsManagerSecret,
    parse: SecretParser<T>,
    ttl: Duration,
    cached: RwLock<Cached<T>>,
    refreshing: tokio::sync::Mutex<()>,
}

struct Cached<T> {
    value: Arc<T>,
    read_at: Instant,
}

impl<T: Send + Sync> RefreshingSecret<T> {
    /// Reads the secret now: a function that cannot read its secret at start-up fails loudly.
    pub async fn load(
        secret: SecretsManagerSecret,
        parse: SecretParser<T>,
        ttl: Duration,
    ) -> Result<Self, SecretError> {
        let value = fetch(&secret, parse).await?;
        Ok(Self {
            secret,
            parse,
            ttl,
            cached: RwLock::new(Cached {
                value: Arc::new(value),
                read_at: Instant::now(),
            }),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The cached value, re-read first when older than the TTL. When the re-read fails the last good
    /// value stays in use (and is tried again after another TTL): an outage of Secrets Manager must
    /// not turn into refusing every webhook.
    pub async fn current(&self) -> Arc<T> {
        if let Some(value) = self.fresh() {
            return value;
        }
        let _one_refresh_at_a_time = self.refreshing.lock().await;
        if let Some(value) = self.fresh() {
            return value;
        }
        let refreshed = fetch(&self.secret, self.parse).await;
        let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        match refreshed {
            Ok(value) => {
                info!(secret_id = self.secret.secret_id(), "secret re-read");
                cached.value = Arc::new(value);
            }
            Err(error) => warn!(
                secret_id = self.secret.secret_id(),
                error = %error_chain(&error),
                "secret could not be re-read; keeping the last good value"
            ),
        }
        cached.read_at = Instant::now();
        Arc::clone(&cached.value)
    }

    fn fresh(&self) -> Option<Arc<T>> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        (cached.read_at.elapsed() < self.ttl).then(|| Arc::clone(&cached.value))
    }
}

async fn fetch<T>(secret: &SecretsManagerSecret, parse: SecretParser<T>) -> Result<T, SecretError> {
    let text = secret.read().await?;
    parse(&text).map_err(|source| SecretError::Invalid {
        secret_id: secret.secret_id().to_owned(),
        source,
    })
}
