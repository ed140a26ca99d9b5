//! The worker's configuration, read once at cold start.

use aws_adapters::env::{ConfigError, Env};
use domain::dedup::TombstonePolicy;

/// Records of one batch applied at once, by default: a batch of 10 in about the time of one write.
pub const DEFAULT_CONCURRENCY: usize = 10;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub quarantine_queue_url: String,
    pub concurrency: usize,
    /// Types whose tombstones keep their last value (`closeGroup` always).
    pub tombstones: TombstonePolicy,
    /// The payload bucket: claim-checked bodies are read there, values over an item's limit kept.
    pub payload_bucket: Option<String>,
    /// The table that holds the company registry; without it no record is dropped as removed.
    pub registry_table_name: Option<String>,
    /// The sync table, where the worker records the reconciliations' markers it reaches.
    pub sync_table_name: Option<String>,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let concurrency = env.parsed_or("WORKER_CONCURRENCY", DEFAULT_CONCURRENCY)?;
        if concurrency == 0 {
            return Err(ConfigError::Invalid {
                name: "WORKER_CONCURRENCY",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            registry_table_name: env.optional("RESYNC_TABLE_NAME"),
            sync_table_name: env.optional("SYNC_TABLE_NAME"),
            payload_bucket: env.optional("PAYLOAD_BUCKET"),
            quarantine_queue_url: env.required("QUARANTINE_QUEUE_URL")?,
            concurrency,
            tombstones: TombstonePolicy::with(
                env.optional("TOMBSTONE_KEEPS_VALUE_TYPES")
                    .unwrap_or_default()
                    .split(',')
                    .map(|t| t.trim().to_owned()),
            ),
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

    #[test]
    fn reads_worker_config_and_refuses_zero_concurrency() {
        let base = [
            ("TABLE_NAME", "objects"),
            ("QUARANTINE_QUEUE_URL", "http://qq"),
        ];
        let config = Config::from_env(&env(&base)).unwrap();
        assert_eq!(config.concurrency, DEFAULT_CONCURRENCY);
        let zero = env(&[base[0], base[1], ("WORKER_CONCURRENCY", "0")]);
        assert!(
            Config::from_env(&zero)
                .unwrap_err()
                .to_string()
                .contains("WORKER_CONCURRENCY")
        );
    }
}
