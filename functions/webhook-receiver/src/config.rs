//! The receiver's configuration, read once at cold start.

use std::time::Duration;

use aws_adapters::env::{ConfigError, Env, SecretLocation};
use domain::intake::{DEFAULT_MAX_BODY_BYTES, ReceiverLimits};

/// The receiver's auth secret (see docs/src/concepts/webhook-receiver.md, "Authentication"): by ARN when deployed, inline in local runs.
pub const RECEIVER_AUTH_SECRET_ARN: &str = "RECEIVER_AUTH_SECRET_ARN";
pub const RECEIVER_AUTH_CONFIG: &str = "RECEIVER_AUTH_CONFIG";

#[derive(Debug, Clone)]
pub struct Config {
    pub queue_url: String,
    pub quarantine_queue_url: String,
    pub auth: SecretLocation,
    pub auth_cache_ttl: Duration,
    pub limits: ReceiverLimits,
    /// The payload bucket, for bodies over what SQS takes; without it such a body is answered 503.
    pub payload_bucket: Option<String>,
    /// The table that holds the company registry; without it no tenant is refused as removed.
    pub registry_table_name: Option<String>,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            queue_url: env.required("QUEUE_URL")?,
            registry_table_name: env.optional("RESYNC_TABLE_NAME"),
            payload_bucket: env.optional("PAYLOAD_BUCKET"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_adapters::env::FixedEnv;

    fn env(pairs: &[(&str, &str)]) -> FixedEnv {
        Env::from_pairs(pairs)
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
        let config = Config::from_env(&env).unwrap();
        assert_eq!(config.queue_url, "http://q");
        assert_eq!(config.auth_cache_ttl, Duration::from_secs(300));
        assert_eq!(config.limits.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert!(
            matches!(config.auth, SecretLocation::SecretsManager { ref secret_id } if secret_id == "arn:aws:secretsmanager:x")
        );
    }

    #[test]
    fn names_the_missing_variable() {
        let error = Config::from_env(&env(&[QUEUES[0]])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable QUARANTINE_QUEUE_URL is not set"
        );
        let error = Config::from_env(&env(&QUEUES)).unwrap_err();
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
        let error = Config::from_env(&env).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("environment variable MAX_BODY_BYTES is invalid"),
            "{error}"
        );
    }

    #[test]
    fn inline_secret_is_not_shown_in_debug_output() {
        let env = env(&[
            QUEUES[0],
            QUEUES[1],
            (RECEIVER_AUTH_CONFIG, "very-secret-json"),
        ]);
        let config = Config::from_env(&env).unwrap();
        assert!(!format!("{config:?}").contains("very-secret-json"));
    }
}
