//! The receipt journal read back (`domain::journal`): from the functions' log groups with Logs
//! Insights when deployed, from the local functions' output on the local stack.

use std::path::Path;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::QueryStatus;
use domain::journal::{self, Entry, Filter};
use jiff::Timestamp;

use super::{AwsError, sdk_call};
use crate::context::Context;

/// The most lines one Logs Insights query gives back.
pub const INSIGHTS_LIMIT: usize = 10_000;
/// How long a query may run before `log` says so rather than wait on.
const QUERY_PATIENCE: Duration = Duration::from_secs(120);

/// The journal's lines in a window, and whether there were more than one read may give.
#[derive(Debug, Default)]
pub struct Read {
    pub entries: Vec<Entry>,
    pub truncated: bool,
}

/// The journal's lines the filter may want (the rest of the filter is applied to whole trails,
/// `journal::select`), between `from` and `to`.
pub async fn read(
    ctx: &Context,
    filter: &Filter,
    from: Timestamp,
    to: Timestamp,
) -> Result<Read, AwsError> {
    match &ctx.deployment.function_log {
        Some(path) => read_local(path, from, to),
        None => read_deployed(ctx, filter, from, to).await,
    }
}

/// The local functions' output, read whole: moto's Logs Insights parses no filter, and the local
/// functions write to a file (`cargo lambda watch`), not to CloudWatch Logs.
fn read_local(path: &Path, from: Timestamp, to: Timestamp) -> Result<Read, AwsError> {
    let text = std::fs::read_to_string(path).map_err(super::call(format!(
        "reading the local functions' log {}",
        path.display()
    )))?;
    let entries = text
        .lines()
        .filter_map(journal::read_line)
        .filter(|entry| entry.at() >= from && entry.at() < to)
        .collect();
    Ok(Read {
        entries,
        truncated: false,
    })
}

/// The log groups of the functions that write the journal.
pub fn log_groups(ctx: &Context) -> Vec<String> {
    let deployment = &ctx.deployment;
    [
        deployment.receiver_function.as_deref(),
        deployment.worker_function.as_deref(),
        Some(deployment.sync_function.as_str()),
    ]
    .into_iter()
    .flatten()
    .map(|function| format!("/aws/lambda/{function}"))
    .collect()
}

async fn read_deployed(
    ctx: &Context,
    filter: &Filter,
    from: Timestamp,
    to: Timestamp,
) -> Result<Read, AwsError> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&ctx.sdk);
    let started = logs
        .start_query()
        .set_log_group_names(Some(log_groups(ctx)))
        .start_time(from.as_second())
        // Whole seconds, the end included: the last second's lines are in.
        .end_time(to.as_second() + 1)
        .query_string(insights_query(filter))
        .limit(INSIGHTS_LIMIT as i32)
        .send()
        .await
        .map_err(sdk_call("starting a Logs Insights query of the journal"))?;
    let query_id = started.query_id.unwrap_or_default();
    let deadline = tokio::time::Instant::now() + QUERY_PATIENCE;
    loop {
        let results = logs
            .get_query_results()
            .query_id(&query_id)
            .send()
            .await
            .map_err(sdk_call("reading the journal's Logs Insights query"))?;
        match results.status {
            Some(QueryStatus::Complete) => {
                let rows = results.results.unwrap_or_default();
                let truncated = rows.len() >= INSIGHTS_LIMIT;
                let entries = rows
                    .iter()
                    .filter_map(|row| {
                        row.iter()
                            .find(|field| field.field.as_deref() == Some("@message"))
                            .and_then(|field| field.value.as_deref())
                            .and_then(journal::read_line)
                    })
                    .collect();
                return Ok(Read { entries, truncated });
            }
            Some(QueryStatus::Failed | QueryStatus::Cancelled | QueryStatus::Timeout) => {
                return Err(AwsError::Call {
                    what: "the journal's Logs Insights query".to_owned(),
                    source: format!(
                        "it ended {}",
                        results
                            .status
                            .as_ref()
                            .map_or("-", |status| status.as_str())
                    )
                    .into(),
                });
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(AwsError::Call {
                    what: "the journal's Logs Insights query".to_owned(),
                    source: format!(
                        "it ran over {} s; ask for a shorter window (--since, --from/--to)",
                        QUERY_PATIENCE.as_secs()
                    )
                    .into(),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The Logs Insights query of the journal's lines that may belong to the filter's trails: the
/// object and the request narrow it; the outcome does not (a trail's other lines are wanted too).
pub fn insights_query(filter: &Filter) -> String {
    let mut lines = vec![
        "fields @timestamp, @message".to_owned(),
        format!("| filter ispresent({})", journal::MARK),
    ];
    if let Some(tenant) = &filter.tenant {
        lines.push(format!("| filter tenant = {}", quoted(tenant)));
    }
    if let Some(object_type) = &filter.object_type {
        lines.push(format!(
            "| filter type = {} or event like {}",
            quoted(object_type),
            quoted(&format!("{object_type}."))
        ));
    }
    if let Some(id) = filter.id {
        lines.push(format!("| filter id = {id}"));
    }
    if let Some(event) = &filter.event {
        lines.push(format!("| filter event = {}", quoted(event)));
    }
    if let Some(request) = &filter.request {
        let run = request.strip_prefix("sync:").unwrap_or(request);
        let message = request.strip_prefix("message:").unwrap_or(request);
        lines.push(format!(
            "| filter request = {} or run = {} or message = {}",
            quoted(request),
            quoted(run),
            quoted(message)
        ));
    }
    lines.push("| sort @timestamp asc".to_owned());
    lines.push(format!("| limit {INSIGHTS_LIMIT}"));
    lines.join("\n")
}

/// A string literal of the query language.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_narrows_by_object_and_request_and_quotes_what_it_is_given() {
        let filter = Filter {
            tenant: Some("301".into()),
            object_type: Some("customer".into()),
            id: Some(7),
            request: Some("sync:20261206T1000Z-nightly".into()),
            outcome: Some("stale".into()),
            ..Filter::default()
        };
        let query = insights_query(&filter);
        assert_eq!(
            query,
            "fields @timestamp, @message\n\
             | filter ispresent(journal)\n\
             | filter tenant = \"301\"\n\
             | filter type = \"customer\" or event like \"customer.\"\n\
             | filter id = 7\n\
             | filter request = \"sync:20261206T1000Z-nightly\" or run = \"20261206T1000Z-nightly\" or message = \"sync:20261206T1000Z-nightly\"\n\
             | sort @timestamp asc\n\
             | limit 10000"
        );
        assert!(!query.contains("stale"), "a trail's other lines are wanted");
        let odd = Filter {
            tenant: Some(r#"a"b\c"#.into()),
            ..Filter::default()
        };
        assert!(insights_query(&odd).contains(r#"| filter tenant = "a\"b\\c""#));
    }
}
