//! Typed configuration, read once at cold start from the environment. A missing or invalid variable
//! is one clear error that names it.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::secrets_manager::{SecretError, SecretsManagerSecret};
use crate::auth::{AuthConfig, Secret, TenantId};
use crate::intake::{DEFAULT_MAX_BODY_BYTES, ReceiverLimits};
use crate::keeper::{DEFAULT_RESYNC_LOOKBACK, ReEnablePolicy};
use crate::model::EventName;
use crate::secrets::{RefreshingSecret, SecretParser, SecretSource};
use crate::tripletex::{PRODUCTION_BASE_URL, TripletexCredentials};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("set {0} (deployed) or {1} (local runs)")]
    NeitherSet(&'static str, &'static str),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Reads variables through a lookup function, so tests need not touch the process environment.
pub struct Env<F>(F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn from_lookup(lookup: F) -> Self {
        Env(lookup)
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parsed_or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse()
                .map_err(|error: T::Err| ConfigError::Invalid {
                    name,
                    reason: error.to_string(),
                }),
        }
    }
}

/// Where a secret is read from: Secrets Manager by ARN when deployed, or a value given directly in
/// the environment for local runs.
#[derive(Debug, Clone)]
pub enum SecretLocation {
    SecretsManager { secret_id: String },
    Inline(Secret),
}

impl SecretLocation {
    fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        arn_variable: &'static str,
        inline_variable: &'static str,
    ) -> Result<Self, ConfigError> {
        match (env.optional(arn_variable), env.optional(inline_variable)) {
            (Some(secret_id), _) => Ok(Self::SecretsManager { secret_id }),
            (None, Some(value)) => Ok(Self::Inline(Secret::new(value))),
            (None, None) => Err(ConfigError::NeitherSet(arn_variable, inline_variable)),
        }
    }

    /// Resolves the location into a source, reading (and checking) the secret once now.
    pub async fn load<T: Send + Sync>(
        &self,
        client: &aws_sdk_secretsmanager::Client,
        parse: SecretParser<T>,
        ttl: Duration,
        inline_variable: &'static str,
    ) -> Result<SecretSource<T>, ConfigError> {
        match self {
            Self::Inline(value) => parse(value.expose())
                .map(|parsed| SecretSource::Fixed(Arc::new(parsed)))
                .map_err(|error| ConfigError::Invalid {
                    name: inline_variable,
                    reason: error.to_string(),
                }),
            Self::SecretsManager { secret_id } => {
                let secret = SecretsManagerSecret::new(client.clone(), secret_id);
                Ok(SecretSource::Refreshing(
                    RefreshingSecret::load(secret, parse, ttl).await?,
                ))
            }
        }
    }
}

pub const RECEIVER_AUTH_SECRET_ARN: &str = "RECEIVER_AUTH_SECRET_ARN";
pub const RECEIVER_AUTH_CONFIG: &str = "RECEIVER_AUTH_CONFIG";

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub queue_url: String,
    pub quarantine_queue_url: String,
    pub auth: SecretLocation,
    pub auth_cache_ttl: Duration,
    pub limits: ReceiverLimits,
}

impl ReceiverConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            queue_url: env.required("QUEUE_URL")?,
            quarantine_queue_url: env.required("QUARANTINE_QUEUE_URL")?,
            auth: SecretLocation::from_env(env, RECEIVER_AUTH_SECRET_ARN, RECEIVER_AUTH_CONFIG)?,
            auth_cache_ttl: Duration::from_secs(
                env.parsed_or("RECEIVER_AUTH_CACHE_TTL_SECONDS", 300)?,
            ),
            limits: ReceiverLimits {
                max_body_bytes: env.parsed_or("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?,
            },
        })
    }
}

/// Records of one batch applied at once, by default: a batch of 10 in about the time of one write.
pub const DEFAULT_WORKER_CONCURRENCY: usize = 10;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub table_name: String,
    pub quarantine_queue_url: String,
    pub concurrency: usize,
}

impl WorkerConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let concurrency = env.parsed_or("WORKER_CONCURRENCY", DEFAULT_WORKER_CONCURRENCY)?;
        if concurrency == 0 {
            return Err(ConfigError::Invalid {
                name: "WORKER_CONCURRENCY",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            quarantine_queue_url: env.required("QUARANTINE_QUEUE_URL")?,
            concurrency,
        })
    }
}

pub const TRIPLETEX_CREDENTIALS_SECRET_ARN: &str = "TRIPLETEX_CREDENTIALS_SECRET_ARN";
pub const TRIPLETEX_CREDENTIALS: &str = "TRIPLETEX_CREDENTIALS";

#[derive(Debug, Clone)]
pub struct KeeperConfig {
    /// This deployment's receiver URL: what makes a subscription ours, and where new ones point.
    pub receiver_url: String,
    pub api_base_url: String,
    /// Per tenant, the Tripletex company's tokens (`{"companies": {"<tenant>": {...}}}`).
    pub credentials: SecretLocation,
    /// The receiver's own auth secret: the credentials Tripletex must send are the ones it accepts.
    pub receiver_auth: SecretLocation,
    pub secret_ttl: Duration,
    pub events: Vec<String>,
    pub fields: String,
    pub reenable: ReEnablePolicy,
    pub dry_run: bool,
    pub resync_table_name: String,
    pub resync_lookback: Duration,
}

impl KeeperConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let events: Vec<String> = env
            .required("KEEPER_EVENTS")?
            .split(',')
            .map(str::trim)
            .filter(|event| !event.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = events.iter().find(|e| EventName::parse(e).is_err()) {
            return Err(ConfigError::Invalid {
                name: "KEEPER_EVENTS",
                reason: format!("{bad:?} is not an object.verb event name"),
            });
        }
        if events.is_empty() {
            return Err(ConfigError::Invalid {
                name: "KEEPER_EVENTS",
                reason: "lists no event".into(),
            });
        }
        Ok(Self {
            receiver_url: env.required("RECEIVER_URL")?,
            api_base_url: env
                .optional("TRIPLETEX_API_BASE_URL")
                .unwrap_or_else(|| PRODUCTION_BASE_URL.to_owned()),
            credentials: SecretLocation::from_env(
                env,
                TRIPLETEX_CREDENTIALS_SECRET_ARN,
                TRIPLETEX_CREDENTIALS,
            )?,
            receiver_auth: SecretLocation::from_env(
                env,
                RECEIVER_AUTH_SECRET_ARN,
                RECEIVER_AUTH_CONFIG,
            )?,
            secret_ttl: Duration::from_secs(env.parsed_or("KEEPER_SECRET_CACHE_TTL_SECONDS", 300)?),
            events,
            fields: env
                .optional("KEEPER_FIELDS")
                .unwrap_or_else(|| "*".to_owned()),
            reenable: ReEnablePolicy {
                misuse: env.parsed_or("KEEPER_REENABLE_MISUSE", false)?,
                rate_limit_exceeded: env.parsed_or("KEEPER_REENABLE_RATE_LIMITED", false)?,
            },
            dry_run: env.parsed_or("KEEPER_DRY_RUN", false)?,
            resync_table_name: env.required("RESYNC_TABLE_NAME")?,
            resync_lookback: Duration::from_secs(
                3600 * env.parsed_or(
                    "KEEPER_RESYNC_LOOKBACK_HOURS",
                    DEFAULT_RESYNC_LOOKBACK.as_secs() / 3600,
                )?,
            ),
        })
    }
}

/// The Tripletex companies the keeper looks after, by tenant.
#[derive(Debug, Clone, Default)]
pub struct Companies(pub BTreeMap<TenantId, TripletexCredentials>);

/// The parser for the Tripletex credentials secret: `{"companies": {"<tenant>": {"consumerToken",
/// "employeeToken", "companyId"?}}}`.
pub fn parse_companies(json: &str) -> Result<Companies, crate::ports::BoxError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        companies: BTreeMap<String, TripletexCredentials>,
    }
    let raw: Raw = serde_json::from_str(json)?;
    let mut companies = BTreeMap::new();
    for (tenant, credentials) in raw.companies {
        if credentials.consumer_token.expose().is_empty()
            || credentials.employee_token.expose().is_empty()
        {
            return Err(format!("company {tenant}: empty consumer or employee token").into());
        }
        companies.insert(TenantId::parse(&tenant)?, credentials);
    }
    Ok(Companies(companies))
}

/// The parser for the receiver's auth secret.
pub fn parse_auth_config(json: &str) -> Result<AuthConfig, crate::ports::BoxError> {
    Ok(AuthConfig::from_json(json)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String> + use<>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_lookup(move |name: &str| map.get(name).cloned())
    }

    const QUEUES: [(&str, &str); 2] = [
        ("QUEUE_URL", "http://q"),
        ("QUARANTINE_QUEUE_URL", "http://qq"),
    ];

    #[test]
    fn reads_receiver_config_with_defaults() {
        let env = env(&[
            QUEUES[0],
            QUEUES[1],
            (RECEIVER_AUTH_SECRET_ARN, "arn:aws:secretsmanager:x"),
        ]);
        let config = ReceiverConfig::from_env(&env).unwrap();
        assert_eq!(config.queue_url, "http://q");
        assert_eq!(config.auth_cache_ttl, Duration::from_secs(300));
        assert_eq!(config.limits.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert!(
            matches!(config.auth, SecretLocation::SecretsManager { ref secret_id } if secret_id == "arn:aws:secretsmanager:x")
        );
    }

    #[test]
    fn names_the_missing_variable() {
        let error = ReceiverConfig::from_env(&env(&[QUEUES[0]])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable QUARANTINE_QUEUE_URL is not set"
        );
        let error = ReceiverConfig::from_env(&env(&QUEUES)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "set RECEIVER_AUTH_SECRET_ARN (deployed) or RECEIVER_AUTH_CONFIG (local runs)"
        );
    }

    #[test]
    fn names_an_invalid_number() {
        let env = env(&[
            QUEUES[0],
            QUEUES[1],
            (RECEIVER_AUTH_CONFIG, "{}"),
            ("MAX_BODY_BYTES", "lots"),
        ]);
        let error = ReceiverConfig::from_env(&env).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("environment variable MAX_BODY_BYTES is invalid"),
            "{error}"
        );
    }

    #[test]
    fn reads_worker_config_and_refuses_zero_concurrency() {
        let base = [
            ("TABLE_NAME", "objects"),
            ("QUARANTINE_QUEUE_URL", "http://qq"),
        ];
        let config = WorkerConfig::from_env(&env(&base)).unwrap();
        assert_eq!(config.concurrency, DEFAULT_WORKER_CONCURRENCY);
        let zero = env(&[base[0], base[1], ("WORKER_CONCURRENCY", "0")]);
        assert!(
            WorkerConfig::from_env(&zero)
                .unwrap_err()
                .to_string()
                .contains("WORKER_CONCURRENCY")
        );
    }

    #[test]
    fn inline_secret_is_not_shown_in_debug_output() {
        let env = env(&[
            QUEUES[0],
            QUEUES[1],
            (RECEIVER_AUTH_CONFIG, "very-secret-json"),
        ]);
        let config = ReceiverConfig::from_env(&env).unwrap();
        assert!(!format!("{config:?}").contains("very-secret-json"));
    }
}
