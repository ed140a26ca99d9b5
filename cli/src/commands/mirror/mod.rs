//! `mirror rebuild | status | check`: the Postgres mirror from the operator's side.

use crate::context::{Answer, CliError, Context, known_company, known_object_type};
use clap::Subcommand;

use std::collections::BTreeMap;

use aws_adapters::dynamodb::{DynamoObjectStore, mirror_row, stored_item};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::mirror::MirrorRow;
use domain::ports::{BlobStore, Mirror};
use postgres_adapter::{DatabaseSettings, PgMirror};
use serde::Serialize;

use crate::deployment::Deployment;
use crate::ops::tables::Item;
use crate::ops::{self, AwsError};

mod check;
mod rebuild;
mod status;

pub use check::{Checked, Difference, check, render_checked};
pub use rebuild::{Pages, Rebuilt, mirror_pages, rebuild, render_rebuilt, scan};
pub use status::{MirrorStatus, TypeRows, render_status, status};

#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    #[command(subcommand)]
    action: MirrorAction,
    /// The database, instead of the one the deployment's secret names (e.g. through a tunnel).
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MirrorAction {
    /// Writes every item of the table (or of one company, one type) into the mirror with the
    /// mirror's own rule, by a parallel scan: idempotent, and safe while the stream runs (neither
    /// can move a row back).
    Rebuild {
        #[arg(long)]
        company: Option<String>,
        #[arg(long = "type", value_name = "TYPE")]
        object_type: Option<String>,
        /// Scan segments read at once.
        #[arg(long, default_value_t = 4)]
        segments: i32,
    },
    /// The stream's lag (IteratorAge) and the rows per company and type beside the table's items.
    Status,
    /// Every object's (tenant, type, id, version, deleted) in the table against the mirror; the
    /// differences listed, exit 1 if any.
    Check,
}

pub async fn run(ctx: &Context, args: &MirrorArgs) -> Result<Answer, CliError> {
    let deployment = &ctx.deployment;
    let dynamodb = ctx.dynamodb();
    if let MirrorAction::Rebuild {
        company,
        object_type,
        ..
    } = &args.action
    {
        if let Some(company) = company {
            known_company(ctx, company).await?;
        }
        if let Some(object_type) = object_type {
            known_object_type(object_type)?;
        }
    }
    let mirror = connect(&ctx.sdk, deployment, args.database_url.as_deref()).await?;
    match &args.action {
        MirrorAction::Rebuild {
            company,
            object_type,
            segments,
        } => {
            let rebuilt = rebuild(
                dynamodb,
                &ctx.payloads(),
                &mirror,
                &deployment.objects_table,
                (company.as_deref(), object_type.as_deref()),
                *segments,
            )
            .await?;
            ctx.answer(&rebuilt, render_rebuilt, false)
        }
        MirrorAction::Status => {
            let status = status(&ctx.sdk, deployment, dynamodb, &mirror).await?;
            ctx.answer(&status, render_status, false)
        }
        MirrorAction::Check => {
            let checked = check(dynamodb, &deployment.objects_table, &mirror).await?;
            let differ = !checked.differences.is_empty();
            ctx.answer(&checked, render_checked, differ)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(
        "the deployment has no Postgres mirror (EnablePostgresMirror), and no --database-url was given"
    )]
    NoMirror,
    #[error("the mirror's database secret is not usable")]
    Settings(#[source] postgres_adapter::ConnectError),
    #[error(transparent)]
    Database(#[from] domain::ports::MirrorError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl From<MirrorError> for CliError {
    fn from(error: MirrorError) -> Self {
        Self::Command(Box::new(error))
    }
}

/// The mirror's database: `--database-url`, or the secret the deployment names.
pub async fn connect(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    database_url: Option<&str>,
) -> Result<PgMirror, MirrorError> {
    let text = match (database_url, &deployment.mirror_database_secret) {
        (Some(url), _) => url.to_owned(),
        (None, Some(secret)) => {
            ops::secret_text(sdk, secret, "the mirror's database secret").await?
        }
        (None, None) => return Err(MirrorError::NoMirror),
    };
    let settings = DatabaseSettings::parse_secret(&text).map_err(MirrorError::Settings)?;
    Ok(PgMirror::connect(settings).await?)
}
