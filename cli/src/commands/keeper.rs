//! `keeper run`: the subscription keeper, now, and its report per company.

use clap::Subcommand;

use domain::keeper::{KeeperRequest, RunReport};

use crate::context::{Answer, CliError, Context};
use crate::ops;
use crate::render::table;

#[derive(Debug, clap::Args)]
pub struct KeeperArgs {
    #[command(subcommand)]
    action: KeeperAction,
}

#[derive(Debug, Subcommand)]
pub enum KeeperAction {
    /// Runs the keeper and prints its report per company; exits 1 when a company or a step failed.
    Run {
        /// Say what it would do, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Give every active subscription of ours the current credentials (after a secret rotation).
        #[arg(long)]
        resend_auth: bool,
        /// Only this company (repeat for more).
        #[arg(long = "company", value_name = "COMPANY")]
        companies: Vec<String>,
    },
}

pub async fn run(ctx: &Context, args: &KeeperArgs) -> Result<Answer, CliError> {
    let KeeperAction::Run {
        dry_run,
        resend_auth,
        companies,
    } = &args.action;
    let request = KeeperRequest {
        dry_run: Some(*dry_run),
        resend_auth: *resend_auth,
        tenants: (!companies.is_empty()).then(|| companies.clone()),
        ..KeeperRequest::manual()
    };
    let report = ops::invoke::invoke_keeper(&ctx.sdk, &ctx.deployment, &request).await?;
    let failed = report.failed();
    ctx.answer(&report, render, failed)
}

/// The keeper's report: one row per company, then each failure.
pub fn render(report: &RunReport) -> String {
    let mut rows = table(&[
        "company",
        "seen",
        "re-enabled",
        "created",
        "updated",
        "left alone",
        "failed",
    ]);
    let mut failures = Vec::new();
    for company in &report.companies {
        rows.add_row(vec![
            company.tenant.clone(),
            company.seen.to_string(),
            company.re_enabled.len().to_string(),
            company.created.len().to_string(),
            company.updated.len().to_string(),
            company.left_alone.len().to_string(),
            company.failed.len().to_string(),
        ]);
        if let Some(error) = &company.error {
            failures.push(format!("{}: {error}", company.tenant));
        }
        for failed in &company.failed {
            failures.push(format!(
                "{} {} ({}): {}",
                company.tenant, failed.event, failed.action, failed.error
            ));
        }
    }
    let dry = if report.dry_run {
        " (dry run: nothing was changed)"
    } else {
        ""
    };
    let mut out = format!("keeper run{dry}\n{rows}\n");
    for failure in failures {
        out.push_str(&format!("  failed: {failure}\n"));
    }
    out
}
