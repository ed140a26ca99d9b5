//! `dlq`: the webhooks (or sync tasks) that failed every delivery, and the webhooks' redrive.

use clap::Subcommand;

use crate::context::{Answer, CliError, Context};
use crate::ops;
use crate::render;

#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    action: Option<DlqAction>,
    /// The sync's dead-letter queue instead of the webhooks'.
    #[arg(long)]
    sync: bool,
    /// At most this many messages.
    #[arg(long, default_value_t = 50)]
    max: usize,
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Moves the webhook dead letters back to the webhook queue (the worker's dedup makes a replay
    /// safe).
    Redrive,
}

/// What a redrive moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Redriven {
    pub redriven: usize,
}

pub async fn run(ctx: &Context, args: &DlqArgs) -> Result<Answer, CliError> {
    let deployment = &ctx.deployment;
    let sqs = ctx.sqs();
    let (name, url) = if args.sync {
        ("sync DLQ", &deployment.sync_dead_letters)
    } else {
        ("webhook DLQ", &deployment.webhook_dead_letters)
    };
    match args.action {
        None => {
            let mut messages = ops::queues::list_messages(sqs, url, args.max).await?;
            ops::queues::resolve_claims(&ctx.payloads(), &mut messages).await;
            let needs = !messages.is_empty();
            ctx.answer(&messages, |m| render::messages(name, m), needs)
        }
        Some(DlqAction::Redrive) if args.sync => Err(CliError::SyncRedrive),
        Some(DlqAction::Redrive) => {
            let redriven = ops::queues::redrive(
                sqs,
                &deployment.webhook_dead_letters,
                &deployment.webhook_queue,
            )
            .await?;
            let moved = Redriven { redriven };
            ctx.answer(
                &moved,
                |moved| {
                    format!(
                        "{} dead letters sent back to the webhook queue\n",
                        moved.redriven
                    )
                },
                false,
            )
        }
    }
}
