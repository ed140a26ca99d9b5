//! Where a deployment's resources are: the CloudFormation stack's outputs, or the summary of the
//! local stack that `scripts/run` writes (`.local/stack.json`). Both become one `Deployment`, so
//! every command works the same against either.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The resources the commands read, by what they are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The stack's name, or `local`.
    pub name: String,
    /// The local stack's AWS endpoint (moto); none for a deployed stack.
    pub endpoint: Option<String>,
    pub webhook_queue: String,
    pub webhook_dead_letters: String,
    /// What the sync fetched, for the worker (a mapping of its own beside the webhooks').
    pub sync_objects_queue: String,
    pub quarantine: String,
    pub sync_queue: String,
    pub sync_dead_letters: String,
    pub objects_table: String,
    pub sync_table: String,
    pub resync_table: String,
    pub keeper_function: String,
    pub sync_function: String,
    /// The secret with each company's Tripletex tokens, and Tripletex's API (for `show --tripletex`).
    pub tripletex_credentials_secret: Option<String>,
    pub tripletex_api_base_url: Option<String>,
    /// The receiver's URL (what Tripletex is given) and its auth secret, for `send`; the `fields`
    /// filter the subscriptions and the sync use.
    pub receiver_url: Option<String>,
    pub receiver_auth_secret: Option<String>,
    pub object_fields: Option<String>,
    /// The payload bucket: claim-checked bodies and values over an item's limit (none on a stack
    /// deployed before it had one).
    pub payload_bucket: Option<String>,
    /// The secret naming the Postgres mirror's database, when the mirror is on.
    pub mirror_database_secret: Option<String>,
    /// The mirror function's name (its IteratorAge is the mirror's lag).
    pub mirror_function: Option<String>,
    /// Where the local functions answer Lambda's Invoke API (`cargo lambda watch`); none for a
    /// deployed stack, whose functions the SDK's Lambda endpoint reaches.
    pub lambda_endpoint: Option<String>,
    /// The receiver's and the worker's function names: their log groups hold the journal.
    pub receiver_function: Option<String>,
    pub worker_function: Option<String>,
    /// The local functions' output (their journal lines among it); none for a deployed stack,
    /// whose journal is in CloudWatch Logs.
    pub function_log: Option<PathBuf>,
    /// The change events' bus and its archive, when the stack publishes and keeps them.
    pub change_bus: Option<String>,
    pub change_archive: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("could not read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not the summary scripts/run writes", path.display())]
    NotASummary {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the deployment has no {0}: is it a stack of this bundle, and of this version?")]
    Missing(&'static str),
    #[error(
        "no local stack found: looked for {} in {}; start one with scripts/run in the checkout (or name \
         its summary with --local=FILE or {LOCAL_STACK_ENV})",
        wanted.display(),
        looked.iter().map(|dir| dir.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoLocalStack {
        wanted: PathBuf,
        looked: Vec<PathBuf>,
    },
    #[error("no stack name given, and {} names none (stack_name = \"...\")", path.display())]
    NoStackName { path: PathBuf },
    #[error("CloudFormation could not describe stack {stack}")]
    Describe {
        stack: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Names the local stack's summary when `--local` is given without a file.
pub const LOCAL_STACK_ENV: &str = "TRIPLETEX_WEBHOOKS_STACK";

/// The local stack's summary: `LOCAL_STACK_ENV` when set, a path that exists as given, or a
/// relative one (`.local/stack.json`) found in the working directory or the nearest directory above
/// it that has it, so that `--local` works from anywhere in the checkout.
pub fn find_local_summary(
    given: &Path,
    from: &Path,
    env: Option<PathBuf>,
) -> Result<PathBuf, DeploymentError> {
    if let Some(named) = env {
        return Ok(named);
    }
    if given.is_absolute() {
        return Ok(given.to_owned());
    }
    let looked: Vec<PathBuf> = from.ancestors().map(Path::to_owned).collect();
    looked
        .iter()
        .map(|dir| dir.join(given))
        .find(|candidate| candidate.is_file())
        .ok_or(DeploymentError::NoLocalStack {
            wanted: given.to_owned(),
            looked,
        })
}

/// The outputs that name the functions a command invokes, and their local names (the package
/// names `cargo lambda watch` serves).
const FUNCTIONS: [(&str, &str); 2] = [
    ("KeeperFunctionName", "subscription-keeper"),
    ("ObjectSyncFunctionName", "object-sync"),
];

/// The output naming the Tripletex credentials secret, and the parameter (read like an output)
/// naming Tripletex's API.
pub const CREDENTIALS_SECRET: &str = "TripletexCredentialsSecretArn";
pub const API_BASE_URL: &str = "TripletexApiBaseUrl";
/// The parameter (read like an output) with the subscriptions' `fields` filter.
pub const FIELDS: &str = "KeeperFields";
const PAYLOAD_BUCKET: &str = "PayloadBucketName";
/// The parameter (read like an output) naming the mirror's database secret.
const MIRROR_DATABASE_SECRET: &str = "MirrorDatabaseSecretName";
const MIRROR_FUNCTION: &str = "PostgresMirrorFunctionName";
const RECEIVER_URL: &str = "ReceiverUrl";
const RECEIVER_FUNCTION: &str = "ReceiverFunctionName";
const WORKER_FUNCTION: &str = "WorkerFunctionName";
const CHANGE_BUS: &str = "ChangeEventBusArn";
const CHANGE_ARCHIVE: &str = "ChangeEventArchiveArn";
const RECEIVER_AUTH_SECRET: &str = "ReceiverAuthSecretArn";

/// The stack outputs each resource is read from (infra/template.yaml, Outputs), and the local
/// stack's logical id and field for the same resource.
const RESOURCES: [(&str, &str, &str); 9] = [
    ("WebhookQueueUrl", "WebhookQueue", "url"),
    ("WebhookDeadLetterQueueUrl", "WebhookDeadLetterQueue", "url"),
    ("QuarantineQueueUrl", "QuarantineQueue", "url"),
    ("SyncQueueUrl", "SyncQueue", "url"),
    ("SyncDeadLetterQueueUrl", "SyncDeadLetterQueue", "url"),
    ("ObjectsTableName", "ObjectsTable", "name"),
    ("SyncTableName", "SyncTable", "name"),
    ("ResyncTableName", "ResyncTable", "name"),
    ("SyncObjectsQueueUrl", "SyncObjectsQueue", "url"),
];

impl Deployment {
    /// From a stack's outputs (name → value).
    pub fn from_outputs(
        name: &str,
        endpoint: Option<String>,
        lambda_endpoint: Option<String>,
        outputs: &HashMap<String, String>,
    ) -> Result<Self, DeploymentError> {
        let get = |output: &'static str| {
            outputs
                .get(output)
                .cloned()
                .ok_or(DeploymentError::Missing(output))
        };
        Ok(Self {
            name: name.to_owned(),
            endpoint,
            webhook_queue: get(RESOURCES[0].0)?,
            webhook_dead_letters: get(RESOURCES[1].0)?,
            quarantine: get(RESOURCES[2].0)?,
            sync_queue: get(RESOURCES[3].0)?,
            sync_dead_letters: get(RESOURCES[4].0)?,
            objects_table: get(RESOURCES[5].0)?,
            sync_table: get(RESOURCES[6].0)?,
            resync_table: get(RESOURCES[7].0)?,
            sync_objects_queue: get(RESOURCES[8].0)?,
            keeper_function: get(FUNCTIONS[0].0)?,
            sync_function: get(FUNCTIONS[1].0)?,
            tripletex_credentials_secret: outputs.get(CREDENTIALS_SECRET).cloned(),
            tripletex_api_base_url: outputs.get(API_BASE_URL).cloned(),
            receiver_url: outputs.get(RECEIVER_URL).cloned(),
            receiver_auth_secret: outputs.get(RECEIVER_AUTH_SECRET).cloned(),
            object_fields: outputs.get(FIELDS).cloned(),
            payload_bucket: outputs.get(PAYLOAD_BUCKET).cloned(),
            mirror_database_secret: outputs
                .get(MIRROR_DATABASE_SECRET)
                .filter(|name| !name.is_empty())
                .cloned(),
            mirror_function: outputs.get(MIRROR_FUNCTION).cloned(),
            lambda_endpoint,
            receiver_function: outputs.get(RECEIVER_FUNCTION).cloned(),
            worker_function: outputs.get(WORKER_FUNCTION).cloned(),
            function_log: None,
            change_bus: outputs.get(CHANGE_BUS).cloned(),
            change_archive: outputs.get(CHANGE_ARCHIVE).cloned(),
        })
    }

    /// From the local stack's summary, read as if it were the stack's outputs.
    pub fn from_local_summary(path: &Path) -> Result<Self, DeploymentError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Read {
            path: path.to_owned(),
            source,
        })?;
        let summary: Value =
            serde_json::from_str(&text).map_err(|source| DeploymentError::NotASummary {
                path: path.to_owned(),
                source,
            })?;
        let mut outputs: HashMap<String, String> = RESOURCES
            .iter()
            .filter_map(|(output, logical, field)| {
                let value = summary["resources"][logical][field].as_str()?;
                Some(((*output).to_owned(), value.to_owned()))
            })
            .collect();
        for (output, function) in [
            (MIRROR_FUNCTION, "postgres-mirror"),
            (RECEIVER_FUNCTION, "webhook-receiver"),
            (WORKER_FUNCTION, "webhook-worker"),
        ] {
            if summary["functions"].get(function).is_some() {
                outputs.insert(output.to_owned(), function.to_owned());
            }
        }
        for (output, function) in FUNCTIONS {
            if summary["functions"].get(function).is_some() {
                outputs.insert(output.to_owned(), function.to_owned());
            }
        }
        let found = [
            (
                CREDENTIALS_SECRET,
                &summary["resources"]["TripletexCredentialsSecret"]["arn"],
            ),
            (
                RECEIVER_AUTH_SECRET,
                &summary["resources"]["ReceiverAuthSecret"]["arn"],
            ),
            (
                API_BASE_URL,
                &summary["functions"]["subscription-keeper"]["TRIPLETEX_API_BASE_URL"],
            ),
            (
                RECEIVER_URL,
                &summary["functions"]["subscription-keeper"]["RECEIVER_URL"],
            ),
            (FIELDS, &summary["functions"]["object-sync"]["SYNC_FIELDS"]),
            (
                PAYLOAD_BUCKET,
                &summary["resources"]["PayloadBucket"]["name"],
            ),
            (CHANGE_BUS, &summary["resources"]["ChangeEventBus"]["arn"]),
            (
                CHANGE_ARCHIVE,
                &summary["resources"]["ChangeEventArchive"]["arn"],
            ),
            (
                MIRROR_DATABASE_SECRET,
                &summary["functions"]["postgres-mirror"]["MIRROR_DATABASE_SECRET_ARN"],
            ),
        ];
        for (output, value) in found {
            if let Some(value) = value.as_str() {
                outputs.insert(output.to_owned(), value.to_owned());
            }
        }
        let text = |name: &str| summary[name].as_str().map(str::to_owned);
        let mut deployment =
            Self::from_outputs("local", text("endpoint"), text("lambdaEndpoint"), &outputs)?;
        deployment.function_log = text("functionLog").map(PathBuf::from);
        Ok(deployment)
    }
}

/// The stack name `sam deploy` uses: `stack_name` in samconfig.toml.
pub fn samconfig_stack_name(path: &Path) -> Result<String, DeploymentError> {
    let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("stack_name"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .find(|name| !name.is_empty())
        .ok_or_else(|| DeploymentError::NoStackName {
            path: path.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_stack_is_found_from_anywhere_in_the_checkout_and_its_absence_says_where_it_looked()
    {
        let root = std::env::temp_dir().join(format!("find-local-{}", std::process::id()));
        let deep = root.join("cli/src/commands");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(root.join(".local")).unwrap();
        let given = Path::new(".local/stack.json");
        let missing = find_local_summary(given, &deep, None)
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("no local stack found: looked for .local/stack.json in ")
                && missing.contains(&deep.display().to_string())
                && missing.contains("start one with scripts/run"),
            "{missing}"
        );
        std::fs::write(root.join(".local/stack.json"), "{}").unwrap();
        assert_eq!(
            find_local_summary(given, &deep, None).unwrap(),
            root.join(".local/stack.json")
        );
        let named = PathBuf::from("/elsewhere/stack.json");
        assert_eq!(
            find_local_summary(given, &deep, Some(named.clone())).unwrap(),
            named,
            "the environment names it"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn summary_file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "cli-summary-{}-{}.json",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_local_summary_reads_as_the_stacks_outputs() {
        let mut resources = serde_json::Map::new();
        for (_, logical, field) in RESOURCES {
            resources.insert(
                logical.to_owned(),
                serde_json::json!({ field: format!("{logical}-{field}") }),
            );
        }
        let text = serde_json::json!({"endpoint": "http://127.0.0.1:5000",
            "lambdaEndpoint": "http://127.0.0.1:9000", "resources": resources,
            "functions": {"subscription-keeper": {}, "object-sync": {}}})
        .to_string();
        let deployment = Deployment::from_local_summary(&summary_file(&text)).unwrap();
        assert_eq!(deployment.name, "local");
        assert_eq!(
            deployment.endpoint.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            deployment.webhook_dead_letters,
            "WebhookDeadLetterQueue-url"
        );
        assert_eq!(deployment.resync_table, "ResyncTable-name");
        assert_eq!(deployment.sync_function, "object-sync");
        assert_eq!(
            deployment.lambda_endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn a_summary_without_a_resource_names_the_output_it_lacks() {
        let text = r#"{"resources": {"WebhookQueue": {"url": "u"}}}"#;
        let error = Deployment::from_local_summary(&summary_file(text)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the deployment has no WebhookDeadLetterQueueUrl: is it a stack of this bundle, and of this version?"
        );
    }

    #[test]
    fn the_stack_name_comes_from_samconfig() {
        let path = summary_file(
            "version = 0.1\n[default.global.parameters]\nstack_name = \"tripletex-webhooks\"\n",
        );
        assert_eq!(samconfig_stack_name(&path).unwrap(), "tripletex-webhooks");
        let none = summary_file("version = 0.1\n");
        assert!(matches!(
            samconfig_stack_name(&none),
            Err(DeploymentError::NoStackName { .. })
        ));
    }
}
