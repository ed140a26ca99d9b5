//! `companies add | list | remove`: the company registry as an operator works it. Adding writes the
//! company (`onboarding`), runs the keeper for it (our subscriptions, its backfill requested), asks
//! the sync to start that backfill and follows it per type; removing marks it `offboarding` (its
//! webhooks are refused from then on), runs the keeper (our subscriptions deleted, the company
//! `removed`) and, with `--purge`, erases its copy.

mod add;
mod list;
mod remove;

use std::time::Duration;

use aws_adapters::resync_ledger::DynamoResyncLedger;
use clap::Subcommand;

use crate::context::{Answer, CliError, Context, tripletex_access};
use crate::deployment::Deployment;
use crate::render::table;
pub use add::Added;
use add::{Add, add, render_added};
pub use list::Listed;
use list::{list, render_listed};
pub use remove::Removed;
use remove::{remove, render_removed};

#[derive(Debug, clap::Args)]
pub struct CompaniesArgs {
    #[command(subcommand)]
    action: CompaniesAction,
}

#[derive(Debug, Subcommand)]
pub enum CompaniesAction {
    /// Lists the client companies an accountant's key may log into (`/company/>withLoginAccess`),
    /// each with the tenant that already looks after it, if any.
    Discover {
        /// The named credential of the Tripletex credentials secret to ask with (an accountant's
        /// key).
        #[arg(long, conflicts_with = "using", required_unless_present = "using")]
        credential: Option<String>,
        /// Or the company of the credentials secret whose tokens to ask with (the key's own
        /// company is asked for, whatever `companyId` the entry acts for).
        #[arg(long)]
        using: Option<String>,
    },
    /// Adds client companies: registers each (onboarding), runs the keeper for them (our
    /// subscriptions, their backfill requested), starts their backfill and follows it per type.
    Add {
        /// Tripletex company ids; each becomes the tenant of the same name unless --tenant says.
        #[arg(required_unless_present = "all_discovered")]
        company_ids: Vec<i64>,
        /// Every client company the credential reaches that is not added yet.
        #[arg(long)]
        all_discovered: bool,
        /// The named credential of the Tripletex credentials secret that acts for them.
        #[arg(long)]
        credential: String,
        /// The tenant (receiver path /t/<tenant>) of the one company added.
        #[arg(long)]
        tenant: Option<String>,
        /// Register and return: the keeper's next scheduled run subscribes them.
        #[arg(long)]
        no_wait: bool,
        /// How long to follow the backfill.
        #[arg(long, default_value_t = 1800)]
        timeout_seconds: u64,
    },
    /// The companies: state, our subscriptions, the last keeper and sync runs, objects per type.
    List,
    /// Removes a company: its webhooks are refused from now, the keeper deletes our subscriptions
    /// in it (others' stay), and its syncs stop; --purge also erases its copy.
    Remove {
        tenant: String,
        /// Delete every item of the company's copy, tombstones included (counted).
        #[arg(long)]
        purge: bool,
    },
}

pub async fn run(ctx: &Context, args: &CompaniesArgs) -> Result<Answer, CliError> {
    let (deployment, dynamodb) = (&ctx.deployment, ctx.dynamodb());
    match &args.action {
        CompaniesAction::Discover { credential, using } => {
            let (base_url, credentials) = tripletex_access(ctx).await?;
            let registered = crate::ops::companies::registered(dynamodb, deployment).await?;
            let asking = match (credential, using) {
                (Some(credential), _) => crate::tripletex::Asking::Credential(credential),
                (None, Some(using)) => crate::tripletex::Asking::Company(using),
                (None, None) => return Err(CliError::Usage("name --credential or --using")),
            };
            let found =
                crate::tripletex::discover(base_url, &credentials, &registered, asking).await?;
            ctx.answer(&found, render_discovered, false)
        }
        CompaniesAction::Add {
            company_ids,
            all_discovered,
            credential,
            tenant,
            no_wait,
            timeout_seconds,
        } => {
            let (base_url, secret_json) = tripletex_access(ctx).await?;
            let added = add(
                ctx,
                TripletexAccess {
                    base_url,
                    secret_json: &secret_json,
                },
                Add {
                    company_ids,
                    all_discovered: *all_discovered,
                    credential,
                    tenant: tenant.as_deref(),
                    wait: !no_wait,
                    timeout: Duration::from_secs(*timeout_seconds),
                    quiet: ctx.json,
                },
            )
            .await?;
            let failed = added.iter().any(|a| a.failed);
            ctx.answer(&added, |a| render_added(a), failed)
        }
        CompaniesAction::List => {
            let (_, secret_json) = tripletex_access(ctx).await?;
            let listed = list(deployment, dynamodb, &secret_json).await?;
            ctx.answer(&listed, |l| render_listed(l), false)
        }
        CompaniesAction::Remove { tenant, purge } => {
            let removed = remove(ctx, tenant, *purge, ctx.json).await?;
            let failed = removed.failed;
            ctx.answer(&removed, render_removed, failed)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompaniesError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Aws(#[from] crate::ops::AwsError),
    #[error(transparent)]
    Tripletex(#[from] crate::tripletex::TripletexError),
}

impl From<CompaniesError> for CliError {
    fn from(error: CompaniesError) -> Self {
        Self::Command(Box::new(error))
    }
}

/// Where the deployment's Tripletex is, and the text of its credentials secret.
pub struct TripletexAccess<'a> {
    pub base_url: &'a str,
    pub secret_json: &'a str,
}

fn registry_of(dynamodb: &aws_sdk_dynamodb::Client, deployment: &Deployment) -> DynamoResyncLedger {
    DynamoResyncLedger::new(dynamodb.clone(), &deployment.resync_table)
}

fn invalid(text: impl Into<String>) -> CompaniesError {
    CompaniesError::Invalid(text.into())
}

fn registry_failed(error: domain::ports::RegistryError) -> CompaniesError {
    invalid(domain::error::error_chain(&error))
}

/// The client companies a key reaches, and which are looked after already.
pub fn render_discovered(companies: &Vec<domain::tripletex::DiscoveredCompany>) -> String {
    let mut rows = table(&["company id", "name", "organization number", "tenant"]);
    for company in companies {
        rows.add_row(vec![
            company.company_id.to_string(),
            company.name.clone().unwrap_or_default(),
            company.organization_number.clone().unwrap_or_default(),
            company
                .tenant
                .clone()
                .unwrap_or_else(|| "not added".to_owned()),
        ]);
    }
    let added = companies.iter().filter(|c| c.tenant.is_some()).count();
    format!(
        "{rows}\n{} client companies, {added} of them added\n",
        companies.len()
    )
}
