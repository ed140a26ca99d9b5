//! One module per command, each with its arguments, its call and its rendering; this one finds the
//! deployment, dispatches, and gives every command `--json` and its exit status.

pub mod companies;
pub mod completions;
pub mod dlq;
pub mod forget;
pub mod keeper;
pub mod mirror;
pub mod quarantine;
pub mod resync;
pub mod send;
pub mod show;
pub mod status;

use aws_adapters::blobs::S3BlobStore;
use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use serde::Serialize;

use std::path::PathBuf;

use crate::aws::{self, AwsError};
use crate::deployment::{Deployment, DeploymentError, samconfig_stack_name};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tripletex-webhooks",
    version,
    about = "See and tend a Tripletex webhook bundle: \
status, stored objects, dead letters, quarantine, resyncs and a test webhook."
)]
pub struct Cli {
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

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Queues, each company's subscriptions (the keeper's dry run), last sync run per object type
    /// and resync requests; exits 1 when something needs a person.
    Status(status::StatusArgs),
    /// One stored object: version, deleted, source, when it was received and updated, its value.
    Show(show::ShowArgs),
    /// Webhooks that failed every delivery, with their attributes.
    Dlq(dlq::DlqArgs),
    /// Authenticated bodies that were not envelopes, with the reason for each.
    Quarantine(quarantine::QuarantineArgs),
    /// Starts a sync run for a company and follows it to its end (or returns at once, --no-wait),
    /// then prints its counts per object type; exits 1 when the run failed.
    Resync(resync::ResyncArgs),
    /// Posts a webhook to the receiver as Tripletex would (the company's credentials, the object as
    /// Tripletex has it now) and waits until the worker has stored it: the whole loop, end to end.
    /// A delete is only sent for an object the copy holds and Tripletex no longer has.
    Send(send::SendArgs),
    /// Erases one object's value on request (a GDPR erasure) from the table, the payload bucket,
    /// the quarantine and the dead letters, and keeps it erased: only a newer version than the one
    /// it had is stored again. Prints what it erased.
    Forget(forget::ForgetArgs),
    /// The subscription keeper, now.
    Keeper(keeper::KeeperArgs),
    /// The Postgres mirror: rebuild it from the table, see how far behind it is, check it row by row.
    Mirror(mirror::MirrorArgs),
    /// The companies this deployment looks after: discover, add, list, remove.
    Companies(companies::CompaniesArgs),
    /// Prints a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Prints the man page (roff), or writes one per command into a directory.
    Man(completions::ManArgs),
}

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
    #[error(transparent)]
    SendRefused(#[from] crate::commands::send::SendRefused),
    #[error("could not reach the receiver")]
    Receiver(#[source] reqwest::Error),
    #[error(transparent)]
    Companies(#[from] crate::commands::companies::CompaniesError),
    #[error(transparent)]
    Mirror(#[from] crate::commands::mirror::MirrorError),
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
    pub async fn find(cli: &Cli) -> Result<Self, CliError> {
        let (deployment, sdk) = if let Some(path) = &cli.local {
            let deployment = Deployment::from_local_summary(path)?;
            let sdk = aws::sdk_config(deployment.endpoint.as_deref()).await;
            (deployment, sdk)
        } else {
            let stack = match &cli.stack {
                Some(stack) => stack.clone(),
                None => samconfig_stack_name(&cli.samconfig)?,
            };
            let sdk = aws::sdk_config(None).await;
            (aws::stack_outputs(&sdk, &stack).await?, sdk)
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

pub async fn run(cli: &Cli) -> Result<Answer, CliError> {
    // These two need no deployment.
    match &cli.command {
        Command::Completions(args) => return completions::completions(args),
        Command::Man(args) => return completions::man(args),
        _ => {}
    }
    let ctx = Context::find(cli).await?;
    match &cli.command {
        Command::Status(args) => status::run(&ctx, args).await,
        Command::Show(args) => show::run(&ctx, args).await,
        Command::Dlq(args) => dlq::run(&ctx, args).await,
        Command::Quarantine(args) => quarantine::run(&ctx, args).await,
        Command::Resync(args) => resync::run(&ctx, args).await,
        Command::Send(args) => send::run(&ctx, args).await,
        Command::Forget(args) => forget::run(&ctx, args).await,
        Command::Keeper(args) => keeper::run(&ctx, args).await,
        Command::Mirror(args) => mirror::run(&ctx, args).await,
        Command::Companies(args) => companies::run(&ctx, args).await,
        Command::Completions(_) | Command::Man(_) => unreachable_without_deployment(),
    }
}

/// The commands answered above never reach the dispatch that needs a deployment.
fn unreachable_without_deployment() -> Result<Answer, CliError> {
    Err(CliError::Usage("this command needs no deployment"))
}

/// The copy's key of one object, from the command line's words.
pub fn object_key(company: &str, object_type: &str, id: i64) -> Result<ObjectKey, CliError> {
    Ok(ObjectKey {
        tenant: TenantId::parse(company)
            .map_err(|error| CliError::NotATenant(company.to_owned(), error))?,
        object_type: object_type.to_owned(),
        object_id: id,
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
        aws::secret_text(&ctx.sdk, secret, "the Tripletex credentials secret").await?;
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
    let registered = companies::registered(dynamodb, &ctx.deployment).await?;
    let companies = crate::tripletex::companies_of(&credentials, &registered)?;
    Ok(
        crate::tripletex::object_now(base_url, &companies, company, object_type, id, fields)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn local_alone_takes_the_summary_scripts_run_writes_and_never_the_subcommand() {
        let cli = Cli::try_parse_from(["tripletex-webhooks", "--local", "status"]).unwrap();
        assert_eq!(cli.local, Some(PathBuf::from(".local/stack.json")));
        assert!(matches!(cli.command, Command::Status(_)));
        let cli = Cli::try_parse_from([
            "tripletex-webhooks",
            "--local=x.json",
            "show",
            "a",
            "customer",
            "7",
        ])
        .unwrap();
        assert_eq!(cli.local, Some(PathBuf::from("x.json")));
        assert!(matches!(cli.command, Command::Show(_)));
        let cli = Cli::try_parse_from(["tripletex-webhooks", "status", "--json"]).unwrap();
        assert!(cli.json && cli.local.is_none());
        assert!(
            Cli::try_parse_from(["tripletex-webhooks", "--stack", "s", "--local", "status"])
                .is_err()
        );
    }
}
