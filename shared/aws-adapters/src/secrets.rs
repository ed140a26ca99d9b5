//! Secrets read once at cold start and re-read on a TTL, so that a rotated value is picked up
//! without a redeploy and a secret is never fetched on every call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use domain::error::{BoxError, error_chain};

use crate::refreshing::Refreshing;

/// The metric a re-read secret that no longer parses counts (the alarm `SecretInvalidAlarm`).
pub const SECRET_INVALID: &str = "SecretInvalid";
/// The function name the metric is counted under where the runtime gives none (a local run).
const SECRET_METRICS_SOURCE: &str = "secrets";

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

/// Where a refreshing secret's string is read from: Secrets Manager when deployed, a fake in tests.
pub trait SecretStore: Send + Sync + 'static {
    /// The secret's name in logs and errors (an ARN or name, never the value).
    fn secret_id(&self) -> &str;

    fn read(&self) -> impl Future<Output = Result<String, SecretError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("could not read secret {secret_id}")]
    Unavailable {
        secret_id: String,
        #[source]
        source: BoxError,
    },
    #[error("secret {secret_id} holds no string value")]
    NoString { secret_id: String },
    #[error("secret {secret_id} is not valid")]
    Invalid {
        secret_id: String,
        #[source]
        source: BoxError,
    },
}

/// `SecretStore` made object-safe, so that `RefreshingSecret` (and every handler holding one) need
/// not name the store's type. One boxed future per re-read, at most once a TTL.
trait ReadSecret: Send + Sync {
    fn secret_id(&self) -> &str;
    fn read_boxed(&self) -> Pin<Box<dyn Future<Output = Result<String, SecretError>> + Send + '_>>;
}

impl<S: SecretStore> ReadSecret for S {
    fn secret_id(&self) -> &str {
        SecretStore::secret_id(self)
    }

    fn read_boxed(&self) -> Pin<Box<dyn Future<Output = Result<String, SecretError>> + Send + '_>> {
        Box::pin(self.read())
    }
}

pub struct RefreshingSecret<T> {
    store: Box<dyn ReadSecret>,
    parse: SecretParser<T>,
    value: Refreshing<T>,
}

impl<T: Send + Sync> RefreshingSecret<T> {
    /// Reads the secret now: a function that cannot read its secret at start-up fails loudly.
    pub async fn load(
        store: impl SecretStore,
        parse: SecretParser<T>,
        ttl: Duration,
    ) -> Result<Self, SecretError> {
        let value = fetch(&store, parse).await?;
        Ok(Self {
            store: Box::new(store),
            parse,
            value: Refreshing::new(value, ttl),
        })
    }

    /// The cached value, re-read first when older than the TTL. When the re-read fails the last good
    /// value stays in use (and is tried again after another TTL): an outage of Secrets Manager must
    /// not turn into refusing every webhook.
    pub async fn current(&self) -> Arc<T> {
        let secret_id = self.store.secret_id();
        self.value
            .current(
                || async {
                    let value = fetch(self.store.as_ref(), self.parse).await;
                    if value.is_ok() {
                        info!(secret_id, "secret re-read");
                    }
                    value
                },
                |error| {
                    // A secret that no longer parses is a change someone made (a revocation with a
                    // typo would not revoke): it counts, and alarms, where an outage only warns.
                    if matches!(
                        error,
                        SecretError::Invalid { .. } | SecretError::NoString { .. }
                    ) {
                        crate::telemetry::emit_metrics(
                            SECRET_METRICS_SOURCE,
                            &[(SECRET_INVALID, 1)],
                        );
                    }
                    warn!(
                        secret_id,
                        error = %error_chain(&error),
                        "secret could not be re-read; keeping the last good value"
                    )
                },
            )
            .await
    }
}

async fn fetch<T>(store: &dyn ReadSecret, parse: SecretParser<T>) -> Result<T, SecretError> {
    let text = store.read_boxed().await?;
    parse(&text).map_err(|source| SecretError::Invalid {
        secret_id: store.secret_id().to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Answers each read with the next scripted result.
    struct ScriptedStore(Mutex<VecDeque<Result<String, SecretError>>>);

    impl ScriptedStore {
        fn new(answers: impl IntoIterator<Item = Result<String, SecretError>>) -> Self {
            Self(Mutex::new(answers.into_iter().collect()))
        }
    }

    impl SecretStore for ScriptedStore {
        fn secret_id(&self) -> &str {
            "scripted"
        }

        async fn read(&self) -> Result<String, SecretError> {
            self.0
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Err(SecretError::NoString {
                    secret_id: "scripted".into(),
                }))
        }
    }

    fn outage() -> SecretError {
        SecretError::Unavailable {
            secret_id: "scripted".into(),
            source: "connection refused".into(),
        }
    }

    fn parse_number(text: &str) -> Result<u32, BoxError> {
        Ok(text.trim().parse()?)
    }

    #[tokio::test]
    async fn a_start_without_the_secret_fails_loudly() {
        let store = ScriptedStore::new([Err(outage())]);
        let result = RefreshingSecret::load(store, parse_number, Duration::ZERO).await;
        assert!(matches!(result, Err(SecretError::Unavailable { .. })));
    }

    #[tokio::test]
    async fn an_invalid_secret_at_start_is_refused_with_its_cause() {
        let store = ScriptedStore::new([Ok("not a number".to_owned())]);
        let error = RefreshingSecret::load(store, parse_number, Duration::ZERO)
            .await
            .err()
            .unwrap();
        assert!(matches!(error, SecretError::Invalid { .. }));
        assert!(
            error_chain(&error).contains("invalid digit"),
            "{}",
            error_chain(&error)
        );
    }

    #[tokio::test]
    async fn a_rotated_value_is_picked_up_after_the_ttl() {
        let store = ScriptedStore::new([Ok("1".to_owned()), Ok("2".to_owned())]);
        let secret = RefreshingSecret::load(store, parse_number, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(*secret.current().await, 2);
    }

    #[tokio::test]
    async fn the_cached_value_is_used_within_the_ttl() {
        let store = ScriptedStore::new([Ok("1".to_owned()), Ok("2".to_owned())]);
        let secret = RefreshingSecret::load(store, parse_number, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(*secret.current().await, 1);
        assert_eq!(*secret.current().await, 1);
    }

    #[tokio::test]
    async fn the_last_good_value_stays_when_a_re_read_fails_or_is_invalid() {
        let store = ScriptedStore::new([
            Ok("1".to_owned()),
            Err(outage()),
            Ok("garbage".to_owned()),
            Ok("3".to_owned()),
        ]);
        let secret = RefreshingSecret::load(store, parse_number, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(*secret.current().await, 1, "outage: the last good value");
        assert_eq!(*secret.current().await, 1, "invalid: the last good value");
        assert_eq!(*secret.current().await, 3, "recovered");
    }
}
