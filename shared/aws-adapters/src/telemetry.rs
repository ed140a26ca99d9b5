//! Logging set-up and CloudWatch metrics (Embedded Metric Format) shared by the functions.

use std::str::FromStr as _;

use lambda_runtime::tracing::subscriber as tracing_subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The most a log line may show. At TRACE, the Lambda runtime logs every raw event it receives
/// (headers, query string and body: a webhook's credentials), and the SDK and HTTP stack log whole
/// requests and answers (a secret read from Secrets Manager, Tripletex session tokens). No level a
/// person can set (`AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG`) lifts this cap, and none of our own code logs
/// at TRACE.
pub const MAX_LOG_LEVEL: LevelFilter = LevelFilter::DEBUG;

/// Installs the subscriber, which follows the function's log level and format settings
/// (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT=JSON`, or `RUST_LOG` locally), as the runtime's
/// default one does, but never logs below `MAX_LOG_LEVEL`.
pub fn init() {
    init_with_writer(std::io::stdout);
}

pub fn init_with_writer<W>(writer: W)
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|text| LevelFilter::from_str(&text).ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry()
        .with(MAX_LOG_LEVEL)
        .with(filter);
    if json {
        registry.with(layer.json()).init();
    } else {
        registry.with(layer).init();
    }
}

/// CloudWatch namespace of the bundle's metrics.
pub const METRICS_NAMESPACE: &str = "TripletexWebhooks";

/// One CloudWatch Embedded Metric Format line: counts under `namespace`, dimensioned by function.
/// CloudWatch Logs turns the line into metrics; no API call, no extra latency.
pub fn emf_line(function: &str, metrics: &[(&str, u64)], timestamp_ms: i64) -> String {
    emf(function, None, metrics, timestamp_ms)
}

/// Metrics of one object type: aggregated per function and per function and type.
pub fn emf_line_for_type(
    function: &str,
    object_type: &str,
    metrics: &[(&str, u64)],
    timestamp_ms: i64,
) -> String {
    emf(function, Some(object_type), metrics, timestamp_ms)
}

fn emf(
    function: &str,
    object_type: Option<&str>,
    metrics: &[(&str, u64)],
    timestamp_ms: i64,
) -> String {
    counts_line(function, object_type, metrics, timestamp_ms).to_string()
}

/// An EMF line of counts, as a value more can be added to.
fn counts_line(
    function: &str,
    object_type: Option<&str>,
    metrics: &[(&str, u64)],
    timestamp_ms: i64,
) -> serde_json::Value {
    let definitions: Vec<_> = metrics
        .iter()
        .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut line = envelope(function, object_type, definitions, timestamp_ms);
    for (name, value) in metrics {
        line[*name] = (*value).into();
    }
    line
}

/// An EMF line's directive and dimensions, for these metric definitions; the values go beside.
fn envelope(
    function: &str,
    object_type: Option<&str>,
    definitions: Vec<serde_json::Value>,
    timestamp_ms: i64,
) -> serde_json::Value {
    let dimensions = match object_type {
        None => serde_json::json!([["FunctionName"]]),
        Some(_) => serde_json::json!([["FunctionName"], ["FunctionName", "ObjectType"]]),
    };
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        },
        "FunctionName": function,
    });
    if let Some(object_type) = object_type {
        line["ObjectType"] = object_type.into();
    }
    line
}

/// The function's name as deployed: Lambda sets `AWS_LAMBDA_FUNCTION_NAME`, which carries the
/// stack's name, so two stacks in one account never share a metric or an alarm. Outside Lambda
/// (tests), the name given.
fn deployed_name(local: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| local.to_owned())
}

/// Prints an EMF line on stdout, where the Lambda log agent picks it up beside the JSON logs.
pub fn emit_type_metrics(function: &str, object_type: &str, metrics: &[(&str, u64)]) {
    println!(
        "{}",
        emf_line_for_type(
            &deployed_name(function),
            object_type,
            metrics,
            jiff::Timestamp::now().as_millisecond()
        )
    );
}

/// Prints an EMF line on stdout, where the Lambda log agent picks it up beside the JSON logs.
pub fn emit_metrics(function: &str, metrics: &[(&str, u64)]) {
    println!(
        "{}",
        emf_line(
            &deployed_name(function),
            metrics,
            jiff::Timestamp::now().as_millisecond()
        )
    );
}

/// The receipt journal on the function's log: one JSON line an entry, beside the log's own lines
/// (whatever their format), where Logs Insights finds its fields and `log` reads it locally.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogJournal;

impl domain::ports::Journal for LogJournal {
    fn write(&self, entry: &domain::journal::Entry) {
        // An entry is plain data; should it ever fail to serialise, the log says so rather than
        // losing the line silently.
        match serde_json::to_string(entry) {
            Ok(line) => println!("{line}"),
            Err(error) => tracing::error!(%error, "a journal line could not be written"),
        }
    }
}

/// The most values EMF takes in one metric's array.
const EMF_MAX_VALUES: usize = 100;

/// EMF lines carrying many values of one metric (a distribution: CloudWatch keeps each value, so
/// percentiles such as p99 can be alarmed on), at most 100 values a line.
pub fn emf_value_lines(
    function: &str,
    name: &str,
    unit: &str,
    values: &[u64],
    timestamp_ms: i64,
) -> Vec<String> {
    values
        .chunks(EMF_MAX_VALUES)
        .map(|chunk| {
            let definition = serde_json::json!({"Name": name, "Unit": unit});
            let mut line = envelope(function, None, vec![definition], timestamp_ms);
            line[name] = chunk.into();
            line.to_string()
        })
        .collect()
}

/// A batch's figures in as few EMF lines as carry them: one line with the counts that are not zero
/// (a zero is no datapoint: the alarms on these counts treat a missing one as not breaching, and
/// a sum is the same) and the first hundred values of the distribution; more values go on lines of
/// their own. No line when there is nothing to count. Each line is billed as it is ingested, and a
/// trickle's batches are of one or two records, so the worker writes one line a batch, not three.
pub fn emf_batch_lines(
    function: &str,
    counts: &[(&str, u64)],
    (name, unit, values): (&str, &str, &[u64]),
    timestamp_ms: i64,
) -> Vec<String> {
    let counted: Vec<(&str, u64)> = counts
        .iter()
        .copied()
        .filter(|(_, value)| *value > 0)
        .collect();
    let (first, rest) = values.split_at(values.len().min(EMF_MAX_VALUES));
    let mut lines = Vec::new();
    if !counted.is_empty() || !first.is_empty() {
        let mut line = counts_line(function, None, &counted, timestamp_ms);
        if !first.is_empty() {
            if let Some(definitions) =
                line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array_mut()
            {
                definitions.push(serde_json::json!({"Name": name, "Unit": unit}));
            }
            line[name] = first.into();
        }
        lines.push(line.to_string());
    }
    lines.extend(emf_value_lines(function, name, unit, rest, timestamp_ms));
    lines
}

/// Prints a batch's counts and distribution (`emf_batch_lines`).
pub fn emit_batch(function: &str, counts: &[(&str, u64)], values: (&str, &str, &[u64])) {
    let now = jiff::Timestamp::now().as_millisecond();
    for line in emf_batch_lines(&deployed_name(function), counts, values, now) {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_a_distribution_go_in_arrays_of_at_most_a_hundred() {
        let values: Vec<u64> = (0..150).collect();
        let lines = emf_value_lines("webhook-worker", "FreshnessMs", "Milliseconds", &values, 1);
        assert_eq!(lines.len(), 2);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["FreshnessMs"].as_array().unwrap().len(), 100);
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
            serde_json::json!({"Name": "FreshnessMs", "Unit": "Milliseconds"})
        );
        assert!(emf_value_lines("w", "FreshnessMs", "Milliseconds", &[], 1).is_empty());
    }

    #[test]
    fn a_batch_is_one_line_of_its_counts_that_are_not_zero_and_its_values() {
        let counts = [("Accepted", 2), ("Duplicate", 0), ("Stale", 1)];
        let lines = emf_batch_lines(
            "webhook-worker",
            &counts,
            ("FreshnessMs", "Milliseconds", &[120, 340]),
            1,
        );
        assert_eq!(lines.len(), 1);
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        let names: Vec<_> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|definition| definition["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Accepted", "Stale", "FreshnessMs"]);
        assert_eq!(
            (line["Accepted"].as_u64(), line["Stale"].as_u64()),
            (Some(2), Some(1))
        );
        assert!(line.get("Duplicate").is_none(), "a zero is no datapoint");
        assert_eq!(line["FreshnessMs"], serde_json::json!([120, 340]));
        let many: Vec<u64> = (0..150).collect();
        let split = emf_batch_lines("w", &counts, ("FreshnessMs", "Milliseconds", &many), 1);
        assert_eq!(
            split.len(),
            2,
            "a hundred values with the counts, the rest apart"
        );
        assert!(
            emf_batch_lines(
                "w",
                &[("Accepted", 0)],
                ("FreshnessMs", "Milliseconds", &[]),
                1
            )
            .is_empty(),
            "nothing to count, no line"
        );
    }

    #[test]
    fn a_type_line_is_counted_per_function_and_per_type() {
        let line = emf_line_for_type("object-sync", "customer", &[("Fetched", 2)], 1);
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            json["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["FunctionName"], ["FunctionName", "ObjectType"]])
        );
        assert_eq!(
            (&json["ObjectType"], &json["Fetched"]),
            (&"customer".into(), &2.into())
        );
    }

    #[test]
    fn emf_line_declares_each_metric_and_carries_its_value() {
        let line = emf_line(
            "webhook-worker",
            &[("Accepted", 3), ("Stale", 0)],
            1_700_000_000_000,
        );
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        let directive = &json["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "TripletexWebhooks");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["FunctionName"]])
        );
        assert_eq!(
            directive["Metrics"][0],
            serde_json::json!({"Name": "Accepted", "Unit": "Count"})
        );
        assert_eq!(json["FunctionName"], "webhook-worker");
        assert_eq!(json["Accepted"], 3);
        assert_eq!(json["Stale"], 0);
    }
}
