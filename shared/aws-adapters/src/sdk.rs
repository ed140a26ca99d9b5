//! One SDK configuration per cold start, with timeouts that fit a function answering Tripletex.
//!
//! Endpoints come from the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, so
//! the same code talks to AWS or to a local emulator without a switch.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;

/// How long one attempt of an AWS call may take before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an AWS call may take in all, retries included: short enough for the caller to get a 503
/// (and retry later) well before its own timeout.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn load_sdk_config() -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}
