//! The mirror's configuration, read once at cold start.

use aws_adapters::env::{ConfigError, Env, SecretLocation};

/// The database's secret: by ARN when deployed, the URL inline in local runs. (The process
/// environment reads an empty variable as unset, so the template's empty parameter is no ARN.)
pub const DATABASE_SECRET_ARN: &str = "MIRROR_DATABASE_SECRET_ARN";
pub const DATABASE_URL: &str = "MIRROR_DATABASE_URL";

#[derive(Debug, Clone)]
pub struct Config {
    pub database: SecretLocation,
    /// Where values over an item's limit are read.
    pub payload_bucket: Option<String>,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            database: SecretLocation::from_env(env, DATABASE_SECRET_ARN, DATABASE_URL)?,
            payload_bucket: env.optional("PAYLOAD_BUCKET"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_named_by_secret_or_inline_and_neither_is_an_error() {
        let env = Env::from_pairs(&[(
            DATABASE_URL,
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
        )]);
        let config = Config::from_env(&env).unwrap();
        assert!(matches!(config.database, SecretLocation::Inline { .. }));
        let error = Config::from_env(&Env::from_pairs(&[])).unwrap_err();
        assert!(error.to_string().contains(DATABASE_SECRET_ARN), "{error}");
    }
}
