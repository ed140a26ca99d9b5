//! Logging set-up and helpers shared by the functions.

use std::error::Error;
use std::fmt::Write as _;

/// Installs the runtime's subscriber, which follows the function's log level and format settings
/// (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT=JSON`, or `RUST_LOG` locally).
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// An error and all its causes on one line, for a log field.
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// CloudWatch namespace of the bundle's metrics.
pub const METRICS_NAMESPACE: &str = "TripletexWebhooks";

/// One CloudWatch Embedded Metric Format line: counts under `namespace`, dimensioned by function.
/// CloudWatch Logs turns the line into metrics; no API call, no extra latency.
pub fn emf_line(function: &str, metrics: &[(&str, u64)], timestamp_ms: i64) -> String {
    let definitions: Vec<_> = metrics
        .iter()
        .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": definitions,
            }],
        },
        "FunctionName": function,
    });
    for (name, value) in metrics {
        line[*name] = (*value).into();
    }
    line.to_string()
}

/// Prints an EMF line on stdout, where the Lambda log agent picks it up beside the JSON logs.
pub fn emit_metrics(function: &str, metrics: &[(&str, u64)]) {
    println!(
        "{}",
        emf_line(function, metrics, jiff::Timestamp::now().as_millisecond())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_lists_every_cause() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&error), "outer: inner");
    }
}
