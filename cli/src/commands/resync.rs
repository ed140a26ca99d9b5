//! `resync`: starts a sync run for a company and follows it to its end, a line of progress per type.

use domain::sync::{RunMode, StartMode, StartRequest};

use crate::context::{Answer, CliError, Context, known_company, known_object_type};
use crate::ops::sync_runs::{RunProgress, run_progress};
use crate::ops::{self};
use crate::render::table;

#[derive(Debug, clap::Args)]
pub struct ResyncArgs {
    #[arg(long)]
    company: String,
    /// An object type to sync (repeat for more; default: every subscribed type).
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    #[arg(long, value_enum, default_value_t = SyncMode::Reconcile)]
    mode: SyncMode,
    #[arg(long)]
    no_wait: bool,
    /// How long to follow the run before giving up on waiting (it goes on).
    #[arg(long, default_value_t = 3600)]
    timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// Compare with Tripletex and correct what differs (the nightly run).
    Reconcile,
    /// Fill the copy of a type (what a new subscription gets).
    Backfill,
}

impl From<SyncMode> for RunMode {
    fn from(mode: SyncMode) -> Self {
        match mode {
            SyncMode::Reconcile => Self::Reconcile,
            SyncMode::Backfill => Self::Backfill,
        }
    }
}

pub async fn run(ctx: &Context, args: &ResyncArgs) -> Result<Answer, CliError> {
    known_company(ctx, &args.company).await?;
    for object_type in &args.types {
        known_object_type(object_type)?;
    }
    let request = StartRequest {
        mode: StartMode::Run(args.mode.into()),
        companies: Some(vec![args.company.clone()]),
        types: (!args.types.is_empty()).then(|| args.types.clone()),
    };
    let runs = start_and_follow(
        ctx,
        &request,
        !args.no_wait,
        std::time::Duration::from_secs(args.timeout_seconds),
    )
    .await?;
    let failed = runs.iter().any(RunProgress::failed);
    ctx.answer(&runs, |r| render(r), failed)
}

/// How often a followed run's record is read.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the runs, then reads each run's record until it is no longer running, with a line of
/// progress per type (on a terminal; none under --json or in a pipe).
pub async fn start_and_follow(
    ctx: &Context,
    request: &StartRequest,
    wait: bool,
    timeout: std::time::Duration,
) -> Result<Vec<RunProgress>, CliError> {
    let report = ops::invoke::invoke_sync(&ctx.sdk, &ctx.deployment, request).await?;
    if report.runs.is_empty() {
        return Err(CliError::NoRunStarted(report));
    }
    let progress = indicatif::MultiProgress::new();
    if ctx.json {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = indicatif::ProgressStyle::with_template("{spinner} {prefix:<24} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let mut bars: std::collections::BTreeMap<String, indicatif::ProgressBar> = Default::default();
    let deadline = std::time::Instant::now() + timeout;
    let mut finished = Vec::new();
    for started in &report.runs {
        loop {
            let Some(run) = run_progress(
                ctx.dynamodb(),
                &ctx.deployment,
                &started.tenant,
                &started.run_id,
            )
            .await?
            else {
                return Err(CliError::NoRunRecord(started.run_id.clone()));
            };
            for t in &run.types {
                let bar = bars
                    .entry(format!("{}/{}", run.tenant, t.object_type))
                    .or_insert_with(|| {
                        let bar = progress.add(indicatif::ProgressBar::new_spinner());
                        bar.set_style(style.clone());
                        bar.set_prefix(format!("{} {}", run.tenant, t.object_type));
                        bar
                    });
                bar.set_message(format!(
                    "listed {}, fetched {}, tombstoned {}",
                    t.listed, t.fetched, t.tombstoned
                ));
                bar.tick();
            }
            if !wait || !run.running() || std::time::Instant::now() > deadline {
                finished.push(run);
                break;
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    }
    for bar in bars.values() {
        bar.finish();
    }
    Ok(finished)
}

/// Whether the run found every listed object stored: complete means stored, not queued.
fn copy_state(t: &crate::ops::sync_runs::TypeStatus) -> String {
    match (t.state.as_str(), t.not_stored) {
        ("done", 0) => "complete".to_owned(),
        ("done", missing) => format!("{missing} not stored yet"),
        _ => "-".to_owned(),
    }
}

pub fn render(runs: &[RunProgress]) -> String {
    let mut rows = table(&[
        "company",
        "run",
        "type",
        "state",
        "listed",
        "fetched",
        "tombstoned",
        "drift",
        "copy",
    ]);
    for run in runs {
        for t in &run.types {
            rows.add_row(vec![
                run.tenant.clone(),
                run.run_id.clone(),
                t.object_type.clone(),
                t.failure
                    .as_ref()
                    .map_or_else(|| t.state.clone(), |why| format!("failed: {why}")),
                t.listed.to_string(),
                t.fetched.to_string(),
                t.tombstoned.to_string(),
                t.drift_corrected.to_string(),
                copy_state(t),
            ]);
        }
    }
    format!("{rows}\n")
}
