//! `replay`: sends a window of the change bus's archived events to its consumers again, and follows
//! the replay to its end.

use std::time::Duration;

use aws_sdk_eventbridge::types::ReplayState;
use jiff::Timestamp;
use serde::Serialize;

use crate::context::{
    Answer, CliError, Context, TIME_FORMS, known_company, known_object_type, moment, to_the_second,
};
use crate::ops::replay::{self, Narrowing};

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The window's start: 2026-12-06T10:00:00Z, or 2026-12-06T10:00 in this machine's time zone.
    #[arg(long)]
    from: String,
    /// The window's end (default: now).
    #[arg(long)]
    to: Option<String>,
    /// Only this company's changes.
    #[arg(long)]
    company: Option<String>,
    /// Only this type's changes.
    #[arg(long = "type")]
    object_type: Option<String>,
    /// Starts the replay and returns at once, without following it.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "this deployment keeps no archive of its change events: deploy with EnableChangeEvents=true and \
         ChangeEventArchiveDays above 0, then replay what came after"
    )]
    NoArchive,
    #[error("{0:?} is not a time: {TIME_FORMS}")]
    Time(String),
    #[error("the window ends before it starts ({from} to {to})")]
    Backwards { from: Timestamp, to: Timestamp },
    #[error(
        "the bus has no consumer's rule to replay to: a replay narrowed to a company or a type goes \
         to copies of the consumers' rules"
    )]
    NoConsumers,
}

impl From<ReplayError> for CliError {
    fn from(error: ReplayError) -> Self {
        CliError::Command(Box::new(error))
    }
}

/// What the replay did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    pub replay: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// The consumers' rules it went to (all of the bus's when not narrowed).
    pub rules: Vec<String>,
    pub narrowed: bool,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub async fn run(ctx: &Context, args: &ReplayArgs) -> Result<Answer, CliError> {
    let (Some(archive), Some(bus)) = (
        ctx.deployment.change_archive.as_deref(),
        ctx.deployment.change_bus.as_deref(),
    ) else {
        return Err(ReplayError::NoArchive.into());
    };
    let narrowing = Narrowing {
        tenant: match &args.company {
            Some(company) => Some(known_company(ctx, company).await?.to_string()),
            None => None,
        },
        object_type: match &args.object_type {
            Some(object_type) => {
                known_object_type(object_type)?;
                Some(object_type.clone())
            }
            None => None,
        },
    };
    let from = moment(&args.from).ok_or_else(|| ReplayError::Time(args.from.clone()))?;
    let to = match &args.to {
        Some(to) => moment(to).ok_or_else(|| ReplayError::Time(to.clone()))?,
        None => to_the_second(Timestamp::now()),
    };
    if to <= from {
        return Err(ReplayError::Backwards { from, to }.into());
    }
    let events = aws_sdk_eventbridge::Client::new(&ctx.sdk);
    let name = format!(
        "{}{}",
        replay::TEMPORARY_RULE_PREFIX,
        Timestamp::now().as_millisecond()
    );
    let rules = replay::consumer_rules(&events, bus).await?;
    let rule_names: Vec<String> = rules.iter().map(|rule| rule.name.clone()).collect();
    let narrowed_rules = if narrowing.is_whole() {
        None
    } else if rules.is_empty() {
        return Err(ReplayError::NoConsumers.into());
    } else {
        Some(replay::put_narrowed_rules(&events, bus, &name, &rules, &narrowing).await?)
    };
    let narrowed = narrowed_rules.is_some();
    let outcome = async {
        replay::start(&events, &name, archive, bus, (from, to), narrowed_rules).await?;
        if args.no_wait {
            return Ok((ReplayState::Starting, None));
        }
        follow(&events, &name, (from, to)).await
    }
    .await;
    if narrowed && !args.no_wait {
        replay::delete_narrowed_rules(&events, bus, &name, rules.len()).await?;
    }
    let (state, reason) = outcome?;
    let failed = matches!(state, ReplayState::Failed | ReplayState::Cancelled);
    let replayed = Replayed {
        replay: name,
        from,
        to,
        rules: rule_names,
        narrowed,
        state: state.as_str().to_owned(),
        reason,
    };
    ctx.answer(&replayed, render, failed)
}

/// Waits for the replay's end, saying how far through its window it is.
async fn follow(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
    (from, to): (Timestamp, Timestamp),
) -> Result<(ReplayState, Option<String>), CliError> {
    let span = to.duration_since(from).as_secs_f64().max(1.0);
    loop {
        let (state, reason, last) = replay::state(events, name).await?;
        match state {
            ReplayState::Completed | ReplayState::Failed | ReplayState::Cancelled => {
                return Ok((state, reason));
            }
            _ => {
                let through = last.map_or(0.0, |at| at.duration_since(from).as_secs_f64() / span);
                eprintln!(
                    "replay {name}: {}, {:.0} % of the window sent",
                    state.as_str(),
                    (through * 100.0).clamp(0.0, 100.0)
                );
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

pub fn render(replayed: &Replayed) -> String {
    let to_whom = if replayed.narrowed {
        format!(
            "narrowed copies of {} (deleted again)",
            replayed.rules.join(", ")
        )
    } else if replayed.rules.is_empty() {
        "the bus (it has no consumer's rule yet)".to_owned()
    } else {
        format!("the bus's rules: {}", replayed.rules.join(", "))
    };
    let mut out = format!(
        "replay {}: the change events from {} to {}, to {to_whom}: {}\n",
        replayed.replay,
        replayed.from,
        replayed.to,
        replayed.state.to_lowercase()
    );
    if let Some(reason) = &replayed.reason {
        out.push_str(&format!("why: {reason}\n"));
    }
    out
}
