//! The sync's configuration, read once at cold start: where its queues, tables and secret are, the
//! events the keeper subscribes to (which say the types to sync and the event a synced object is
//! queued as) and the `fields` it subscribes with, and the bounds of one step.

use std::time::Duration;

use aws_adapters::env::{ConfigError, Env, SecretLocation};
use domain::envelope::EventName;
use domain::keeper::desired_fields;

/// The longest a recheck may wait for webhooks: well inside the function's shortest timeout
/// (`SyncTimeoutSeconds` is at least 120 in the template).
pub const MAX_DRIFT_GRACE: Duration = Duration::from_secs(90);

/// How much one step does: every bound keeps a step far inside the function's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLimits {
    /// Objects per list page (Tripletex's maximum is 1,000).
    pub page_size: u32,
    /// Ids per fetch call (they travel in the query string).
    pub fetch_batch: usize,
    /// Stored objects checked against the listing per step. Each step reads the type's listed ids
    /// again (8 bytes each), so a larger stretch means fewer re-reads; 20,000 stored versions are
    /// about 1 MB of index to read.
    pub verify_batch: usize,
    /// Deletion candidates confirmed by id per step.
    pub lookups_per_step: usize,
    /// Deliveries of a step that Tripletex keeps failing before its type is given up as failed.
    pub attempts: u32,
    /// How long a reconciliation's findings wait for their webhooks before the recheck counts the
    /// ones still behind as drift (the run's end; the recheck waits the rest, if any).
    pub drift_grace: Duration,
    /// How long the check of the copy waits for the worker to store what the listing queued
    /// before it counts the objects still missing as not stored (and queues them again).
    pub store_wait: Duration,
    /// How often a recheck looks whether the worker has reached its marker.
    pub marker_poll: Duration,
}

impl Default for StepLimits {
    fn default() -> Self {
        Self {
            page_size: 1000,
            fetch_batch: 100,
            verify_batch: 20_000,
            lookups_per_step: 100,
            attempts: 3,
            drift_grace: Duration::from_secs(60),
            store_wait: Duration::from_secs(30),
            marker_poll: Duration::from_secs(10),
        }
    }
}

/// What every company's sync shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// The subscribed events: their types are what a run lists.
    pub events: Vec<EventName>,
    /// The subscriptions' `fields` (with `id,version`): a synced object has a webhook's shape.
    pub fields: String,
    pub limits: StepLimits,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: SyncSettings,
    pub api_base_url: String,
    pub credentials: SecretLocation,
    pub secret_ttl: Duration,
    /// How long the company registry is trusted: a company added or removed is seen within it.
    pub registry_ttl: Duration,
    /// Where the sync queues what it fetched and tombstoned, for the worker.
    pub sync_objects_queue_url: String,
    /// The webhook queue, where a reconciliation's recheck puts its marker (`sync::marker`).
    pub webhook_queue_url: Option<String>,
    /// The payload bucket, for fetched objects over what SQS takes.
    pub payload_bucket: Option<String>,
    pub sync_queue_url: String,
    pub objects_table_name: String,
    pub sync_table_name: String,
    pub resync_table_name: String,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let events = env.events("SYNC_EVENTS")?;
        let defaults = StepLimits::default();
        let limits = StepLimits {
            page_size: env.parsed_or("SYNC_PAGE_SIZE", defaults.page_size)?,
            fetch_batch: env.parsed_or("SYNC_FETCH_BATCH", defaults.fetch_batch)?,
            verify_batch: env.parsed_or("SYNC_VERIFY_BATCH", defaults.verify_batch)?,
            lookups_per_step: env.parsed_or("SYNC_LOOKUPS_PER_STEP", defaults.lookups_per_step)?,
            attempts: env.parsed_or("SYNC_TASK_ATTEMPTS", defaults.attempts)?,
            drift_grace: Duration::from_secs(
                env.parsed_or("SYNC_DRIFT_GRACE_SECONDS", defaults.drift_grace.as_secs())?,
            ),
            store_wait: defaults.store_wait,
            marker_poll: defaults.marker_poll,
        };
        if !(1..=1000).contains(&limits.page_size)
            || limits.fetch_batch == 0
            || limits.verify_batch == 0
        {
            return Err(ConfigError::Invalid {
                name: "SYNC_PAGE_SIZE",
                reason: "page size must be 1-1000, batches at least 1".into(),
            });
        }
        if limits.drift_grace > MAX_DRIFT_GRACE {
            return Err(ConfigError::Invalid {
                name: "SYNC_DRIFT_GRACE_SECONDS",
                reason: format!(
                    "at most {} seconds: the recheck waits it out inside one invocation",
                    MAX_DRIFT_GRACE.as_secs()
                ),
            });
        }
        let tripletex = env.tripletex()?;
        Ok(Self {
            settings: SyncSettings {
                events,
                fields: desired_fields(&env.optional("SYNC_FIELDS").unwrap_or_else(|| "*".into())),
                limits,
            },
            api_base_url: tripletex.api_base_url,
            credentials: tripletex.credentials,
            secret_ttl: Duration::from_secs(env.parsed_or("SYNC_SECRET_CACHE_TTL_SECONDS", 300)?),
            registry_ttl: Duration::from_secs(
                env.parsed_or("SYNC_REGISTRY_CACHE_TTL_SECONDS", 10)?,
            ),
            sync_objects_queue_url: env.required("SYNC_OBJECTS_QUEUE_URL")?,
            webhook_queue_url: env.optional("WEBHOOK_QUEUE_URL"),
            payload_bucket: env.optional("PAYLOAD_BUCKET"),
            sync_queue_url: env.required("SYNC_QUEUE_URL")?,
            objects_table_name: env.required("OBJECTS_TABLE_NAME")?,
            sync_table_name: env.required("SYNC_TABLE_NAME")?,
            resync_table_name: env.required("RESYNC_TABLE_NAME")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_adapters::env::FixedEnv;
    use aws_adapters::env::TRIPLETEX_CREDENTIALS;
    use domain::tripletex::PRODUCTION_BASE_URL;

    const REQUIRED: [(&str, &str); 7] = [
        (
            "SYNC_EVENTS",
            "customer.create, customer.update, voucher.delete",
        ),
        (TRIPLETEX_CREDENTIALS, r#"{"companies": {}}"#),
        ("SYNC_OBJECTS_QUEUE_URL", "http://127.0.0.1:1/q"),
        ("SYNC_QUEUE_URL", "http://127.0.0.1:1/s.fifo"),
        ("OBJECTS_TABLE_NAME", "objects"),
        ("SYNC_TABLE_NAME", "sync"),
        ("RESYNC_TABLE_NAME", "resync"),
    ];

    fn env_with(changes: &[(&'static str, &'static str)]) -> FixedEnv {
        let mut pairs: Vec<(&str, &str)> = REQUIRED.to_vec();
        for (name, value) in changes {
            pairs.retain(|(n, _)| n != name);
            pairs.push((name, value));
        }
        Env::from_pairs(&pairs)
    }

    #[test]
    fn reads_events_fields_and_step_bounds_with_defaults() {
        let config = Config::from_env(&env_with(&[("SYNC_FIELDS", "name,number")])).unwrap();
        assert_eq!(config.settings.events.len(), 3);
        assert_eq!(config.settings.fields, "id,version,name,number");
        assert_eq!(config.settings.limits, StepLimits::default());
        assert_eq!(config.api_base_url, PRODUCTION_BASE_URL);
    }

    #[test]
    fn refuses_what_it_cannot_run_with() {
        let bad_event = Config::from_env(&env_with(&[("SYNC_EVENTS", "customer")])).unwrap_err();
        assert!(bad_event.to_string().contains("SYNC_EVENTS"), "{bad_event}");
        let page = Config::from_env(&env_with(&[("SYNC_PAGE_SIZE", "5000")])).unwrap_err();
        assert!(page.to_string().contains("SYNC_PAGE_SIZE"), "{page}");
    }
}
