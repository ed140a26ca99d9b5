//! `log`: what Tripletex sent and what became of each call, from the receipt journal
//! (`domain::journal`): one line per request with its outcome at each hop.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use domain::journal::{self, Filter, Trail};
use jiff::{SignedDuration, Timestamp};

use crate::context::{
    Answer, CliError, Context, TIME_FORMS, known_company, known_object_type, moment, to_the_second,
};
use crate::ops;
use crate::render::table;

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// The company (tenant), e.g. 301.
    #[arg(long)]
    company: Option<String>,
    /// The object type, e.g. customer.
    #[arg(long = "type")]
    object_type: Option<String>,
    /// The object's id.
    #[arg(long)]
    id: Option<i64>,
    /// The event, e.g. customer.update.
    #[arg(long)]
    event: Option<String>,
    /// An outcome at any hop: queued, unauthorized, accepted, stale, quarantined, ...
    #[arg(long)]
    outcome: Option<String>,
    /// One request id (as `show` names it; `sync:<run>` for what a sync run queued).
    #[arg(long)]
    request: Option<String>,
    /// How far back: 90s, 10m, 2h, 1d.
    #[arg(long, default_value = "1h", conflicts_with = "from")]
    since: String,
    /// The window's start, e.g. 2026-12-06T10:00:00Z or 2026-12-06T10:00 (this machine's time zone).
    #[arg(long)]
    from: Option<String>,
    /// The window's end (default: now).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Keeps reading, and prints each request again as it moves on, until Ctrl-C.
    #[arg(long, conflicts_with = "to")]
    follow: bool,
}

/// What `log` found.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Logged {
    pub from: Timestamp,
    pub to: Timestamp,
    pub trails: Vec<Trail>,
    /// The journal had more lines in the window than one read gives: narrow it.
    pub truncated: bool,
}

pub async fn run(ctx: &Context, args: &LogArgs) -> Result<Answer, CliError> {
    let filter = filter(ctx, args).await?;
    if args.follow {
        return follow(ctx, &filter).await;
    }
    let (from, to) = (
        filter.from.unwrap_or(Timestamp::UNIX_EPOCH),
        filter.to.unwrap_or_else(Timestamp::now),
    );
    let read = ops::journal::read(ctx, &filter, from, to).await?;
    let logged = Logged {
        from,
        to,
        trails: journal::select(&filter, read.entries),
        truncated: read.truncated,
    };
    let needs = logged.trails.iter().any(Trail::needs_a_person);
    ctx.answer(&logged, render, needs)
}

/// The command line's words as the journal's filter; a mistyped company, type or outcome is an
/// error that says what exists.
async fn filter(ctx: &Context, args: &LogArgs) -> Result<Filter, CliError> {
    let tenant = match &args.company {
        Some(company) => Some(known_company(ctx, company).await?.to_string()),
        None => None,
    };
    if let Some(object_type) = &args.object_type {
        known_object_type(object_type)?;
    }
    if let Some(outcome) = &args.outcome
        && !journal::outcome_names().contains(&outcome.as_str())
    {
        return Err(LogError::UnknownOutcome {
            name: outcome.clone(),
            known: journal::outcome_names().join(", "),
        }
        .into());
    }
    let (from, to) = window(args, Timestamp::now())?;
    Ok(Filter {
        tenant,
        object_type: args.object_type.clone(),
        id: args.id,
        event: args.event.clone(),
        outcome: args.outcome.clone(),
        request: args.request.clone(),
        from: Some(from),
        to,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("no outcome '{name}'; outcomes: {known}")]
    UnknownOutcome { name: String, known: String },
    #[error("--since {0:?} is not a length of time: write 90s, 10m, 2h or 1d")]
    Since(String),
    #[error("{0:?} is not a time: {TIME_FORMS}")]
    Time(String),
}

impl From<LogError> for CliError {
    fn from(error: LogError) -> Self {
        CliError::Command(Box::new(error))
    }
}

/// The window asked for: `--from` (and `--to`, else open) or the last `--since`.
fn window(args: &LogArgs, now: Timestamp) -> Result<(Timestamp, Option<Timestamp>), LogError> {
    match &args.from {
        Some(from) => Ok((time(from)?, args.to.as_deref().map(time).transpose()?)),
        None => {
            let since = args
                .since
                .parse::<SignedDuration>()
                .ok()
                .filter(|since| since.is_positive())
                .ok_or_else(|| LogError::Since(args.since.clone()))?;
            Ok((now.checked_sub(since).unwrap_or(Timestamp::MIN), None))
        }
    }
}

fn time(text: &str) -> Result<Timestamp, LogError> {
    moment(text).ok_or_else(|| LogError::Time(text.to_owned()))
}

/// Reads what the journal gained every few seconds and prints each trail that is new or moved on.
/// Each read asks only for the last minutes (lines reach the log a little late), never the whole
/// window again: deployed, a Logs Insights query is billed by what it scans.
async fn follow(ctx: &Context, filter: &Filter) -> Result<Answer, CliError> {
    const LATE: SignedDuration = SignedDuration::from_mins(5);
    let every = if ctx.deployment.function_log.is_some() {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    let from = filter.from.unwrap_or_else(Timestamp::now);
    let mut entries = Vec::new();
    let mut kept: HashSet<String> = HashSet::new();
    let mut shown: HashMap<String, usize> = HashMap::new();
    let mut read_until = from;
    let mut header = true;
    loop {
        let now = Timestamp::now();
        let since = read_until.checked_sub(LATE).unwrap_or(from).max(from);
        for entry in ops::journal::read(ctx, filter, since, now).await?.entries {
            if kept.insert(serde_json::to_string(&entry)?) {
                entries.push(entry);
            }
        }
        read_until = now;
        for trail in journal::select(filter, entries.iter().cloned()) {
            let key = format!("{}|{}", trail.request, trail_object(&trail));
            if shown.get(&key) == Some(&trail.entries.len()) {
                continue;
            }
            shown.insert(key, trail.entries.len());
            if ctx.json {
                println!("{}", serde_json::to_string(&trail)?);
            } else {
                if header {
                    println!("{}", COLUMNS.join("  "));
                    header = false;
                }
                println!("{}", row(&trail).join("  "));
            }
        }
        tokio::time::sleep(every).await;
    }
}

const COLUMNS: [&str; 7] = [
    "time", "company", "object", "event", "receiver", "worker", "request",
];

pub fn render(logged: &Logged) -> String {
    if logged.trails.is_empty() {
        return format!(
            "nothing in the journal from {} to {} that matches\n",
            to_the_second(logged.from),
            to_the_second(logged.to)
        );
    }
    let mut rows = table(&COLUMNS);
    for trail in &logged.trails {
        rows.add_row(row(trail));
    }
    let attention = logged.trails.iter().filter(|t| t.needs_a_person()).count();
    let count = logged.trails.len();
    let mut out = format!(
        "{rows}\n{count} request{}",
        if count == 1 { "" } else { "s" }
    );
    if attention > 0 {
        out.push_str(&format!(
            ", {attention} {} a person (unauthorized, quarantined, the queue down, or failed)",
            if attention == 1 { "needs" } else { "need" }
        ));
    }
    out.push('\n');
    if logged.truncated {
        out.push_str(&format!(
            "more lines than one read gives ({}): narrow the window or the filter\n",
            ops::journal::INSIGHTS_LIMIT
        ));
    }
    out
}

/// One request: when, about what, and what each hop made of it.
fn row(trail: &Trail) -> Vec<String> {
    let received = trail.received();
    let settled = trail.settled();
    let queued = trail.queued();
    let receiver = match (received, queued) {
        (Some(received), _) => {
            let mut said = format!("{} {}", received.status, received.outcome.name());
            if let Some(reason) = &received.reason {
                said.push_str(&format!(": {reason}"));
            }
            said
        }
        (None, Some(queued)) => format!(
            "sync {}{}",
            queued.outcome.name(),
            if queued.drift { " (drift)" } else { "" }
        ),
        (None, None) => "-".to_owned(),
    };
    let worker = settled.map_or_else(
        || match received.map(|r| r.outcome) {
            Some(journal::Receipt::Queued) | None => "not yet".to_owned(),
            Some(_) => "-".to_owned(),
        },
        |settled| {
            let version = settled
                .version
                .map_or_else(String::new, |v| format!(" v{v}"));
            let mut said = if settled.outcome.stored() {
                format!("stored{version}")
            } else {
                format!("{}{version}", settled.outcome.name())
            };
            if let Some(reason) = &settled.reason {
                said.push_str(&format!(": {reason}"));
            }
            said
        },
    );
    vec![
        trail
            .started()
            .map_or_else(|| "-".to_owned(), |at| at.to_string()),
        trail.tenant().unwrap_or("-").to_owned(),
        trail_object(trail),
        trail.event().unwrap_or("-").to_owned(),
        receiver,
        worker,
        trail.request.clone(),
    ]
}

/// `customer 7`, from whichever line names it.
fn trail_object(trail: &Trail) -> String {
    match trail.object() {
        (Some(object_type), Some(id)) => format!("{object_type} {id}"),
        (Some(object_type), None) => object_type.to_owned(),
        (None, Some(id)) => id.to_string(),
        (None, None) => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        log: LogArgs,
    }

    fn args(words: &[&str]) -> LogArgs {
        Line::try_parse_from(std::iter::once("log").chain(words.iter().copied()))
            .unwrap()
            .log
    }

    #[test]
    fn the_window_is_the_last_since_or_from_and_to_and_a_mistake_says_how_to_write_it() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        assert_eq!(
            window(&args(&["--since", "2h"]), now).unwrap(),
            ("2026-12-06T10:00:00Z".parse().unwrap(), None)
        );
        assert_eq!(
            window(
                &args(&[
                    "--from",
                    "2026-12-06T10:00:00Z",
                    "--to",
                    "2026-12-06T10:05:00Z"
                ]),
                now
            )
            .unwrap(),
            (
                "2026-12-06T10:00:00Z".parse().unwrap(),
                Some("2026-12-06T10:05:00Z".parse().unwrap())
            )
        );
        let wrong = window(&args(&["--since", "two hours"]), now).unwrap_err();
        assert!(
            wrong.to_string().contains("write 90s, 10m, 2h or 1d"),
            "{wrong}"
        );
        let wrong = window(&args(&["--from", "yesterday"]), now).unwrap_err();
        assert!(
            wrong.to_string().contains("2026-12-06T10:00:00Z"),
            "{wrong}"
        );
    }

    #[test]
    fn a_row_says_what_each_hop_made_of_the_request() {
        let line = |json: &str| journal::read_line(json).unwrap();
        let trail = &journal::trails([
            line(
                r#"{"journal":"received","at":"2026-12-06T10:00:00Z","request":"r1","tenant":"301","event":"customer.update","id":7,"bytes":90,"status":200,"outcome":"queued"}"#,
            ),
            line(
                r#"{"journal":"settled","at":"2026-12-06T10:00:01Z","request":"r1","message":"m1","tenant":"301","type":"customer","id":7,"event":"customer.update","version":4,"source":"webhook","outcome":"accepted"}"#,
            ),
        ])[0];
        assert_eq!(
            row(trail)[1..],
            [
                "301",
                "customer 7",
                "customer.update",
                "200 queued",
                "stored v4",
                "r1"
            ]
        );
        let refused = &journal::trails([line(
            r#"{"journal":"received","at":"2026-12-06T10:00:00Z","request":"r2","bytes":90,"status":401,"outcome":"unauthorized","reason":"header: credential mismatch"}"#,
        )])[0];
        assert_eq!(
            row(refused)[4..6],
            ["401 unauthorized: header: credential mismatch", "-"]
        );
    }
}
