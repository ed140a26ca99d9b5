//! What every command is given and gives back: the `Context` (the deployment found, the SDK's
//! configuration and clients for it, and how to answer), the `Answer`, the `CliError`, and the
//! helpers that read a command line's words into the deployment's terms.

use aws_adapters::blobs::S3BlobStore;
use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use serde::Serialize;
use std::path::PathBuf;

use crate::deployment::{Deployment, DeploymentError, samconfig_stack_name};
use crate::ops::{self, AwsError};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("could not find the deployment")]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("could not write JSON")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Tripletex(#[from] crate::tripletex::TripletexError),
    #[error("{0}")]
    Usage(&'static str),
    #[error("could not write {0}")]
    Write(std::path::PathBuf, #[source] std::io::Error),
    #[error("{0:?} is not a company's tenant")]
    NotATenant(String, #[source] domain::ids::InvalidTenant),
    #[error("the local stack is not running (nothing answers at {0}): start it with scripts/run")]
    LocalStackDown(String),
    #[error("no company '{name}'; companies: {known}")]
    UnknownCompany { name: String, known: String },
    #[error("no object type '{name}'; types: {known}")]
    UnknownObjectType { name: String, known: String },
    #[error(
        "sync tasks are redriven with SQS's own redrive (StartMessageMoveTask), which keeps their FIFO group: see the book, Alarms"
    )]
    SyncRedrive,
    #[error("no message {0} in the quarantine (`quarantine` lists them)")]
    NotInQuarantine(String),
    #[error("the sync started no run: {0:?}")]
    NoRunStarted(domain::sync::StartReport),
    #[error("run {0} has no record")]
    NoRunRecord(String),
    #[error("{0:?} is not an event")]
    NotAnEvent(String, #[source] domain::envelope::EnvelopeError),
    #[error("the deployment names no receiver URL or receiver auth secret")]
    NoReceiver,
    #[error("the receiver auth secret is not valid")]
    ReceiverAuth(#[source] domain::auth::AuthConfigError),
    #[error("the company's webhook settings could not be made")]
    Settings(#[source] domain::keeper::SettingsError),
    #[error("could not reach the receiver")]
    Receiver(#[source] reqwest::Error),
    /// A command's own error (each command says `From` it in its own module).
    #[error(transparent)]
    Command(domain::error::BoxError),
}

/// Which deployment a command talks to, and how it answers: the command line's global options.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The deployed stack (default: stack_name in infra/samconfig.toml).
    #[arg(long, global = true, conflicts_with = "local")]
    pub stack: Option<String>,

    /// The local stack of `scripts/run`, from the summary it writes (`--local=FILE` for another).
    #[arg(
        long,
        global = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ".local/stack.json"
    )]
    pub local: Option<PathBuf>,

    /// Where samconfig.toml is, for the default stack name.
    #[arg(
        long,
        global = true,
        default_value = "infra/samconfig.toml",
        hide = true
    )]
    pub samconfig: PathBuf,

    /// JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What a command says, and how it exits: 0 all is well, 1 the answer needs a person (something
/// dead-lettered, quarantined or failed; an object not in the copy). Errors exit 2 (`main`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub needs_a_person: bool,
}

/// What every command that talks to a deployment is given: the deployment found, the SDK's
/// configuration for it, and how to answer.
pub struct Context {
    pub json: bool,
    pub deployment: Deployment,
    pub sdk: aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Context {
    /// The deployment the command line names: the local stack's summary, or a stack's outputs.
    pub async fn find(cli: &Target) -> Result<Self, CliError> {
        let (deployment, sdk) = if let Some(path) = &cli.local {
            let from = std::env::current_dir().unwrap_or_default();
            let env = std::env::var_os(crate::deployment::LOCAL_STACK_ENV).map(PathBuf::from);
            let path = crate::deployment::find_local_summary(path, &from, env)?;
            let deployment = Deployment::from_local_summary(&path)?;
            if let Some(endpoint) = deployment.endpoint.as_deref() {
                local_stack_answers(endpoint)?;
            }
            let sdk = ops::sdk_config(deployment.endpoint.as_deref()).await;
            (deployment, sdk)
        } else {
            let stack = match &cli.stack {
                Some(stack) => stack.clone(),
                None => samconfig_stack_name(&cli.samconfig)?,
            };
            let sdk = ops::sdk_config(None).await;
            (ops::stack_outputs(&sdk, &stack).await?, sdk)
        };
        // The clients once: a command that polls (resync, send, companies add) reuses them.
        Ok(Self {
            json: cli.json,
            sqs: aws_sdk_sqs::Client::new(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            deployment,
            sdk,
        })
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }

    /// The deployment's payload bucket, if it has one.
    pub fn payloads(&self) -> Option<S3BlobStore> {
        self.deployment
            .payload_bucket
            .as_ref()
            .map(|bucket| S3BlobStore::new(&self.sdk, bucket))
    }

    /// The data as a table for a person, or as JSON under `--json`.
    pub fn answer<T: Serialize>(
        &self,
        data: &T,
        table: impl FnOnce(&T) -> String,
        needs_a_person: bool,
    ) -> Result<Answer, CliError> {
        let text = if self.json {
            format!("{}\n", serde_json::to_string_pretty(data)?)
        } else {
            table(data)
        };
        Ok(Answer {
            text,
            needs_a_person,
        })
    }
}

/// Whether the local stack's AWS stand-in answers at all: after a Ctrl-C of `scripts/run` the SDK
/// would only say its connection was refused.
fn local_stack_answers(endpoint: &str) -> Result<(), CliError> {
    use std::net::ToSocketAddrs as _;
    let down = || CliError::LocalStackDown(endpoint.to_owned());
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let addresses: Vec<std::net::SocketAddr> =
        authority.to_socket_addrs().map_err(|_| down())?.collect();
    let timeout = std::time::Duration::from_secs(2);
    if addresses
        .iter()
        .any(|address| std::net::TcpStream::connect_timeout(address, timeout).is_ok())
    {
        Ok(())
    } else {
        Err(down())
    }
}

/// The copy's key of one object, from the command line's words: a company the deployment knows
/// and an object type Tripletex has, or an error that says which exist.
pub async fn object_key(
    ctx: &Context,
    company: &str,
    object_type: &str,
    id: i64,
) -> Result<ObjectKey, CliError> {
    known_object_type(object_type)?;
    Ok(ObjectKey {
        tenant: known_company(ctx, company).await?,
        object_type: object_type.to_owned(),
        object_id: id,
    })
}

/// An object type Tripletex has (`domain::sync::object_types`); a mistyped one is an error that
/// lists them.
pub fn known_object_type(object_type: &str) -> Result<(), CliError> {
    if domain::sync::is_object_type(object_type) {
        return Ok(());
    }
    Err(CliError::UnknownObjectType {
        name: object_type.to_owned(),
        known: domain::sync::object_types().join(", "),
    })
}

/// The companies the deployment knows: the credentials secret's own and every registered one
/// (removed ones too: a removed company's copy stands until it is purged).
pub async fn known_companies(
    ctx: &Context,
) -> Result<std::collections::BTreeSet<TenantId>, CliError> {
    let registered = ops::companies::registered(ctx.dynamodb(), &ctx.deployment).await?;
    let mut known: std::collections::BTreeSet<TenantId> = registered
        .into_iter()
        .map(|company| company.tenant)
        .collect();
    if let Some(secret) = ctx.deployment.tripletex_credentials_secret.as_deref() {
        let text = ops::secret_text(&ctx.sdk, secret, "the Tripletex credentials secret").await?;
        let secret = domain::tripletex::CredentialsSecret::from_json(&text)
            .map_err(crate::tripletex::TripletexError::Credentials)?;
        known.extend(secret.companies.0.into_keys());
    }
    Ok(known)
}

/// A company the deployment knows, or an error that lists the ones it does.
pub async fn known_company(ctx: &Context, company: &str) -> Result<TenantId, CliError> {
    let tenant = TenantId::parse(company)
        .map_err(|error| CliError::NotATenant(company.to_owned(), error))?;
    let known = known_companies(ctx).await?;
    if known.contains(&tenant) {
        return Ok(tenant);
    }
    let names: Vec<String> = known.iter().map(ToString::to_string).collect();
    Err(CliError::UnknownCompany {
        name: company.to_owned(),
        known: if names.is_empty() {
            "none yet (`companies add`)".to_owned()
        } else {
            names.join(", ")
        },
    })
}

/// Where the deployment's Tripletex is, and its credentials secret's text.
pub async fn tripletex_access(ctx: &Context) -> Result<(&str, String), CliError> {
    use crate::tripletex::TripletexError;
    let deployment = &ctx.deployment;
    let secret =
        deployment
            .tripletex_credentials_secret
            .as_deref()
            .ok_or(TripletexError::NotConfigured(
                "Tripletex credentials secret",
            ))?;
    let base_url = deployment
        .tripletex_api_base_url
        .as_deref()
        .ok_or(TripletexError::NotConfigured("Tripletex API base URL"))?;
    let credentials =
        ops::secret_text(&ctx.sdk, secret, "the Tripletex credentials secret").await?;
    Ok((base_url, credentials))
}

pub async fn tripletex_now(
    ctx: &Context,
    company: &str,
    object_type: &str,
    id: i64,
    fields: &str,
) -> Result<Option<crate::tripletex::InTripletex>, CliError> {
    let (base_url, credentials) = tripletex_access(ctx).await?;
    let dynamodb = ctx.dynamodb();
    let registered = ops::companies::registered(dynamodb, &ctx.deployment).await?;
    let companies = crate::tripletex::companies_of(&credentials, &registered)?;
    Ok(
        crate::tripletex::object_now(base_url, &companies, company, object_type, id, fields)
            .await?,
    )
}

/// How a time is written on the command line, for an error that says so.
pub const TIME_FORMS: &str =
    "write 2026-12-06T10:00:00Z, or 2026-12-06T10:00 in this machine's time zone";

/// A time from the command line: RFC 3339, or a date and time in this machine's time zone.
pub fn moment(text: &str) -> Option<jiff::Timestamp> {
    text.parse::<jiff::Timestamp>().ok().or_else(|| {
        let civil = text.parse::<jiff::civil::DateTime>().ok()?;
        civil
            .to_zoned(jiff::tz::TimeZone::system())
            .ok()
            .map(|zoned| zoned.timestamp())
    })
}

/// A time as a person reads it back: to the second.
pub fn to_the_second(at: jiff::Timestamp) -> jiff::Timestamp {
    at.round(jiff::Unit::Second).unwrap_or(at)
}
