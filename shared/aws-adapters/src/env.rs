//! Reading a function's configuration from the environment, once at cold start: a missing or
//! invalid variable is one clear error that names it. Each function's own `config.rs` says which
//! variables it reads.

use std::str::FromStr;

use domain::envelope::EventName;

use domain::ids::Secret;

use crate::secrets::SecretError;

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

/// A fixed set of variables, for tests and tools.
pub type FixedEnv = Env<Box<dyn Fn(&str) -> Option<String>>>;

impl FixedEnv {
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Env(Box::new(move |name| map.get(name).cloned()))
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

    /// A required, comma-separated list of `object.verb` event names, at least one.
    pub fn events(&self, name: &'static str) -> Result<Vec<EventName>, ConfigError> {
        let events = self
            .required(name)?
            .split(',')
            .map(str::trim)
            .filter(|event| !event.is_empty())
            .map(|event| {
                EventName::parse(event).map_err(|_| ConfigError::Invalid {
                    name,
                    reason: format!("{event:?} is not an object.verb event name"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if events.is_empty() {
            return Err(ConfigError::Invalid {
                name,
                reason: "lists no event".into(),
            });
        }
        Ok(events)
    }
}

/// The variable naming the Tripletex credentials secret when deployed.
pub const TRIPLETEX_CREDENTIALS_SECRET_ARN: &str = "TRIPLETEX_CREDENTIALS_SECRET_ARN";
/// The variable holding the Tripletex credentials themselves, in a local run.
pub const TRIPLETEX_CREDENTIALS: &str = "TRIPLETEX_CREDENTIALS";

/// Where a function that calls Tripletex reaches it: the API (production unless
/// `TRIPLETEX_API_BASE_URL` says otherwise) and the credentials secret.
#[derive(Debug, Clone)]
pub struct TripletexAccess {
    pub api_base_url: String,
    pub credentials: SecretLocation,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Tripletex's API must be https (its session tokens go with every call), or plain http to
    /// this machine (the local stack's simulator).
    pub fn tripletex(&self) -> Result<TripletexAccess, ConfigError> {
        let api_base_url = self
            .optional("TRIPLETEX_API_BASE_URL")
            .unwrap_or_else(|| domain::tripletex::PRODUCTION_BASE_URL.to_owned());
        domain::net::tls_or_loopback(&api_base_url).map_err(|refusal| ConfigError::Invalid {
            name: "TRIPLETEX_API_BASE_URL",
            reason: refusal.to_string(),
        })?;
        Ok(TripletexAccess {
            api_base_url,
            credentials: SecretLocation::from_env(
                self,
                TRIPLETEX_CREDENTIALS_SECRET_ARN,
                TRIPLETEX_CREDENTIALS,
            )?,
        })
    }
}

/// Where a secret is read from: Secrets Manager by ARN when deployed, or a value given directly in
/// the environment for local runs. It remembers the variable it came from, for error messages.
#[derive(Debug, Clone)]
pub enum SecretLocation {
    SecretsManager {
        secret_id: String,
    },
    Inline {
        variable: &'static str,
        value: Secret,
    },
}

impl SecretLocation {
    /// `arn_variable` when set, else `inline_variable`; one of them must be.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        arn_variable: &'static str,
        inline_variable: &'static str,
    ) -> Result<Self, ConfigError> {
        match (env.optional(arn_variable), env.optional(inline_variable)) {
            (Some(secret_id), _) => Ok(Self::SecretsManager { secret_id }),
            (None, Some(value)) => Ok(Self::Inline {
                variable: inline_variable,
                value: Secret::new(value),
            }),
            (None, None) => Err(ConfigError::NeitherSet(arn_variable, inline_variable)),
        }
    }

    /// Resolves the location into a source, reading (and checking) the secret once now.
    #[cfg(feature = "secrets-manager")]
    pub async fn load<T: Send + Sync>(
        &self,
        client: &aws_sdk_secretsmanager::Client,
        parse: crate::secrets::SecretParser<T>,
        ttl: std::time::Duration,
    ) -> Result<crate::secrets::SecretSource<T>, ConfigError> {
        use crate::secrets::{RefreshingSecret, SecretSource};
        use crate::secrets_manager::SecretsManagerSecret;
        match self {
            Self::Inline { variable, value } => parse(value.expose())
                .map(|parsed| SecretSource::Fixed(std::sync::Arc::new(parsed)))
                .map_err(|error| ConfigError::Invalid {
                    name: variable,
                    reason: domain::error::error_chain(error.as_ref()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> FixedEnv {
        Env::from_pairs(pairs)
    }

    #[test]
    fn tripletex_is_reached_over_tls_or_on_this_machine_only() {
        let with = |url: &str| {
            env(&[
                (TRIPLETEX_CREDENTIALS, "{}"),
                ("TRIPLETEX_API_BASE_URL", url),
            ])
            .tripletex()
        };
        assert!(with("https://api-test.tripletex.tech/v2").is_ok());
        assert!(
            with("http://127.0.0.1:8700/v2").is_ok(),
            "the local simulator"
        );
        let refused = with("http://tripletex.no/v2").unwrap_err().to_string();
        assert!(
            refused.starts_with(
                "environment variable TRIPLETEX_API_BASE_URL is invalid: it is plain http"
            ),
            "{refused}"
        );
        let default = env(&[(TRIPLETEX_CREDENTIALS, "{}")]).tripletex().unwrap();
        assert_eq!(default.api_base_url, domain::tripletex::PRODUCTION_BASE_URL);
    }

    #[test]
    fn names_the_missing_variable() {
        assert_eq!(
            env(&[]).required("QUEUE_URL").unwrap_err().to_string(),
            "environment variable QUEUE_URL is not set"
        );
    }

    #[test]
    fn names_an_invalid_number_and_defaults_an_absent_one() {
        let env = env(&[("MAX_BODY_BYTES", "lots")]);
        let error = env.parsed_or("MAX_BODY_BYTES", 1_u64).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("environment variable MAX_BODY_BYTES is invalid"),
            "{error}"
        );
        assert_eq!(env.parsed_or("OTHER", 7_u64).unwrap(), 7);
    }

    #[test]
    fn a_secret_location_prefers_the_arn_and_needs_one_of_the_two() {
        let both = env(&[("SECRET_ARN", "arn:x"), ("SECRET", "inline")]);
        assert!(matches!(
            SecretLocation::from_env(&both, "SECRET_ARN", "SECRET").unwrap(),
            SecretLocation::SecretsManager { ref secret_id } if secret_id == "arn:x"
        ));
        let inline = env(&[("SECRET", "very-secret-json")]);
        let location = SecretLocation::from_env(&inline, "SECRET_ARN", "SECRET").unwrap();
        assert!(matches!(
            location,
            SecretLocation::Inline {
                variable: "SECRET",
                ..
            }
        ));
        assert!(!format!("{location:?}").contains("very-secret-json"));
        assert_eq!(
            SecretLocation::from_env(&env(&[]), "SECRET_ARN", "SECRET")
                .unwrap_err()
                .to_string(),
            "set SECRET_ARN (deployed) or SECRET (local runs)"
        );
    }
}
