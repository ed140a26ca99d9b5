//! Each command: find the deployment, read what it asks, and say it as a table or as JSON.

use serde::Serialize;

use crate::args::{Cli, Command, DlqAction};
use crate::aws::{self, AwsError};
use crate::deployment::{Deployment, DeploymentError, samconfig_stack_name};
use crate::render;
use crate::status::{Status, needs_a_person};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("could not find the deployment")]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("could not write JSON")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// What a command says, and how it exits: 0 all is well, 1 the answer needs a person (something
/// dead-lettered, quarantined or failed; an object not in the copy). Errors exit 2 (`main`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub needs_a_person: bool,
}

fn answer<T: Serialize>(
    cli: &Cli,
    data: &T,
    table: impl FnOnce(&T) -> String,
    needs_a_person: bool,
) -> Result<Answer, CliError> {
    let text = if cli.json {
        format!("{}\n", serde_json::to_string_pretty(data)?)
    } else {
        table(data)
    };
    Ok(Answer {
        text,
        needs_a_person,
    })
}

pub async fn deployment(cli: &Cli) -> Result<(Deployment, aws_config::SdkConfig), CliError> {
    if let Some(path) = &cli.local {
        let deployment = Deployment::from_local_summary(path)?;
        let sdk = aws::sdk_config(deployment.endpoint.as_deref()).await;
        return Ok((deployment, sdk));
    }
    let stack = match &cli.stack {
        Some(stack) => stack.clone(),
        None => samconfig_stack_name(&cli.samconfig)?,
    };
    let sdk = aws::sdk_config(None).await;
    let deployment = aws::stack_outputs(&sdk, &stack).await?;
    Ok((deployment, sdk))
}

pub async fn run(cli: &Cli) -> Result<Answer, CliError> {
    let (deployment, sdk) = deployment(cli).await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    match &cli.command {
        Command::Status => {
            let queues = aws::queues(&sqs, &deployment).await?;
            let companies = aws::companies(&dynamodb, &deployment).await?;
            let attention = needs_a_person(&queues, &companies);
            let status = Status {
                deployment: deployment.name.clone(),
                queues,
                companies,
                attention,
            };
            let needs = !status.attention.is_empty();
            answer(cli, &status, render::status, needs)
        }
        Command::Show {
            company,
            object_type,
            id,
        } => {
            let key = format!("{company}#{object_type}#{id}");
            match aws::stored_object(&dynamodb, &deployment.objects_table, &key).await? {
                Some(object) => answer(cli, &object, render::stored, false),
                None => answer(
                    cli,
                    &serde_json::json!({"key": key, "stored": false}),
                    |_| format!("{key}: not in the copy\n"),
                    true,
                ),
            }
        }
        Command::Dlq { action, sync, max } => {
            let (name, url) = if *sync {
                ("sync DLQ", &deployment.sync_dead_letters)
            } else {
                ("webhook DLQ", &deployment.webhook_dead_letters)
            };
            match action {
                None => {
                    let messages = aws::list_messages(&sqs, url, *max).await?;
                    let needs = !messages.is_empty();
                    answer(cli, &messages, |m| render::messages(name, m), needs)
                }
                Some(DlqAction::Redrive) if *sync => Err(CliError::Invalid(
                    "sync tasks are redriven with SQS's own redrive (StartMessageMoveTask), \
                     which keeps their FIFO group: see README, Alarms"
                        .to_owned(),
                )),
                Some(DlqAction::Redrive) => {
                    let moved = aws::redrive(
                        &sqs,
                        &deployment.webhook_dead_letters,
                        &deployment.webhook_queue,
                    )
                    .await?;
                    answer(
                        cli,
                        &serde_json::json!({"redriven": moved}),
                        |_| format!("{moved} dead letters sent back to the webhook queue\n"),
                        false,
                    )
                }
            }
        }
        Command::Quarantine { max } => {
            let messages = aws::list_messages(&sqs, &deployment.quarantine, *max).await?;
            let needs = !messages.is_empty();
            answer(cli, &messages, |m| render::messages("quarantine", m), needs)
        }
    }
}
