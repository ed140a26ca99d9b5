//! The keeper's configuration, read once at cold start: where its secrets and table are, and its
//! knobs (`KeeperPolicy`), which every company's settings are derived from.

use std::time::Duration;

use aws_adapters::env::{ConfigError, Env, SecretLocation};
use domain::keeper::{DEFAULT_RESYNC_LOOKBACK, KeeperPolicy, ReEnablePolicy, check_receiver_url};

use domain::keeper::schedule::{DEFAULT_COMPANY_CONCURRENCY, Pace};

pub const RECEIVER_AUTH_SECRET_ARN: &str = "RECEIVER_AUTH_SECRET_ARN";
pub const RECEIVER_AUTH_CONFIG: &str = "RECEIVER_AUTH_CONFIG";

#[derive(Debug, Clone)]
pub struct Config {
    pub policy: KeeperPolicy,
    pub api_base_url: String,
    /// Per tenant, the Tripletex company's tokens (`{"companies": {"<tenant>": {...}}}`).
    pub credentials: SecretLocation,
    /// The receiver's own auth secret: the credentials Tripletex must send are the ones it accepts.
    pub receiver_auth: SecretLocation,
    pub secret_ttl: Duration,
    pub resync_table_name: String,
    pub pace: Pace,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let events: Vec<String> = env
            .events("KEEPER_EVENTS")?
            .iter()
            .map(|event| event.as_str().to_owned())
            .collect();
        let receiver_url = env.required("RECEIVER_URL")?;
        check_receiver_url(&receiver_url).map_err(|error| ConfigError::Invalid {
            name: "RECEIVER_URL",
            reason: error.to_string(),
        })?;
        let lookback_hours = env.parsed_or(
            "KEEPER_RESYNC_LOOKBACK_HOURS",
            DEFAULT_RESYNC_LOOKBACK.as_secs() / 3600,
        )?;
        let tripletex = env.tripletex()?;
        Ok(Self {
            policy: KeeperPolicy {
                receiver_url,
                events,
                fields: env
                    .optional("KEEPER_FIELDS")
                    .unwrap_or_else(|| "*".to_owned()),
                reenable: ReEnablePolicy {
                    misuse: env.parsed_or("KEEPER_REENABLE_MISUSE", false)?,
                    rate_limit_exceeded: env.parsed_or("KEEPER_REENABLE_RATE_LIMITED", false)?,
                },
                resync_lookback: Duration::from_secs(3600 * lookback_hours),
                dry_run: env.parsed_or("KEEPER_DRY_RUN", false)?,
            },
            api_base_url: tripletex.api_base_url,
            credentials: tripletex.credentials,
            receiver_auth: SecretLocation::from_env(
                env,
                RECEIVER_AUTH_SECRET_ARN,
                RECEIVER_AUTH_CONFIG,
            )?,
            secret_ttl: Duration::from_secs(env.parsed_or("KEEPER_SECRET_CACHE_TTL_SECONDS", 300)?),
            resync_table_name: env.required("RESYNC_TABLE_NAME")?,
            pace: Pace {
                company_concurrency: env
                    .parsed_or("KEEPER_COMPANY_CONCURRENCY", DEFAULT_COMPANY_CONCURRENCY)?
                    .clamp(1, 64),
                ..Pace::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_adapters::env::FixedEnv;
    use aws_adapters::env::TRIPLETEX_CREDENTIALS;
    use domain::tripletex::PRODUCTION_BASE_URL;

    const REQUIRED: [(&str, &str); 5] = [
        ("KEEPER_EVENTS", "customer.create, customer.update"),
        ("RECEIVER_URL", "https://abc.lambda-url.eu-north-1.on.aws/"),
        (TRIPLETEX_CREDENTIALS, r#"{"companies": {}}"#),
        (RECEIVER_AUTH_CONFIG, r#"{"tenants": {}}"#),
        ("RESYNC_TABLE_NAME", "resync"),
    ];

    fn env_with(changes: &[(&'static str, Option<&'static str>)]) -> FixedEnv {
        let mut pairs: Vec<(&str, &str)> = REQUIRED.to_vec();
        for (name, value) in changes {
            pairs.retain(|(n, _)| n != name);
            if let Some(value) = value {
                pairs.push((name, value));
            }
        }
        Env::from_pairs(&pairs)
    }

    #[test]
    fn reads_the_knobs_into_one_policy_with_defaults() {
        let config = Config::from_env(&env_with(&[])).unwrap();
        assert_eq!(config.policy.events, ["customer.create", "customer.update"]);
        assert_eq!(config.policy.fields, "*");
        assert_eq!(config.policy.resync_lookback, DEFAULT_RESYNC_LOOKBACK);
        assert_eq!(config.policy.reenable, ReEnablePolicy::default());
        assert!(!config.policy.dry_run);
        assert_eq!(config.api_base_url, PRODUCTION_BASE_URL);
    }

    #[test]
    fn keeper_events_is_required_and_must_name_events() {
        let missing = Config::from_env(&env_with(&[("KEEPER_EVENTS", None)])).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "environment variable KEEPER_EVENTS is not set"
        );
        let bad = Config::from_env(&env_with(&[("KEEPER_EVENTS", Some("customer"))])).unwrap_err();
        assert!(bad.to_string().contains("KEEPER_EVENTS"), "{bad}");
        let empty = Config::from_env(&env_with(&[("KEEPER_EVENTS", Some(" , "))])).unwrap_err();
        assert!(empty.to_string().contains("lists no event"), "{empty}");
    }

    #[test]
    fn the_receiver_url_must_be_https_except_on_loopback() {
        let insecure = Config::from_env(&env_with(&[(
            "RECEIVER_URL",
            Some("http://abc.lambda-url.eu-north-1.on.aws/"),
        )]))
        .unwrap_err();
        assert!(
            insecure.to_string().contains("RECEIVER_URL") && insecure.to_string().contains("https"),
            "{insecure}"
        );
        let local = env_with(&[(
            "RECEIVER_URL",
            Some("http://127.0.0.1:9000/lambda-url/webhook-receiver"),
        )]);
        assert!(Config::from_env(&local).is_ok());
    }
}
