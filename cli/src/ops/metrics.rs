//! CloudWatch's figures of the deployment: the queues' oldest-message ages, any metric's latest maximum.

use super::AwsError;

/// The value of a metric's latest datapoint, whatever order the datapoints came in.
pub fn latest_value(timestamps: &[i64], values: &[f64]) -> Option<f64> {
    timestamps
        .iter()
        .zip(values)
        .max_by_key(|(at, _)| **at)
        .map(|(_, value)| *value)
}

/// How far back the age metric is read: SQS publishes it every minute, a few minutes late.
const AGE_LOOKBACK_SECONDS: i64 = 15 * 60;

/// Each queue's `ApproximateAgeOfOldestMessage` (AWS/SQS, by queue name: the last part of its URL),
/// its latest minute; none for a queue with no datapoint in the last quarter hour.
pub async fn oldest_message_ages(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    queue_urls: &[&str],
    now: jiff::Timestamp,
) -> Result<Vec<Option<u64>>, AwsError> {
    let names: Vec<&str> = queue_urls
        .iter()
        .map(|url| url.rsplit('/').next().unwrap_or(url))
        .collect();
    latest_maxima(
        cloudwatch,
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName"),
        &names,
        now,
    )
    .await
    .map_err(super::sdk_call("reading the queues' ages from CloudWatch"))
}

/// The latest one-minute maximum of a metric (namespace, name, dimension) for each dimension value,
/// over the last few minutes; none where CloudWatch has no datapoint.
pub async fn latest_maxima(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    (namespace, metric_name, dimension): (&str, &str, &str),
    values: &[&str],
    now: jiff::Timestamp,
) -> Result<
    Vec<Option<u64>>,
    aws_sdk_cloudwatch::error::SdkError<
        aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError,
    >,
> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};

    let mut request = cloudwatch
        .get_metric_data()
        .start_time(DateTime::from_secs(now.as_second() - AGE_LOOKBACK_SECONDS))
        .end_time(DateTime::from_secs(now.as_second()))
        .scan_by(ScanBy::TimestampDescending);
    for (index, value) in values.iter().enumerate() {
        let metric = Metric::builder()
            .namespace(namespace)
            .metric_name(metric_name)
            .dimensions(Dimension::builder().name(dimension).value(*value).build())
            .build();
        request = request.metric_data_queries(
            MetricDataQuery::builder()
                .id(format!("q{index}"))
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric)
                        .period(60)
                        .stat("Maximum")
                        .build(),
                )
                .return_data(true)
                .build(),
        );
    }
    let output = request.send().await?;
    Ok((0..values.len())
        .map(|index| {
            let id = format!("q{index}");
            let result = output
                .metric_data_results()
                .iter()
                .find(|r| r.id() == Some(id.as_str()))?;
            let timestamps: Vec<i64> = result.timestamps().iter().map(|t| t.secs()).collect();
            let age = latest_value(&timestamps, result.values())?;
            Some(age.max(0.0).round() as u64)
        })
        .collect())
}
