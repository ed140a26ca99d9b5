//! The deployment's functions invoked with a request of their contract.

use aws_config::SdkConfig;
use domain::keeper::{KeeperRequest, RunReport};
use domain::sync::{StartReport, StartRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AwsError, call, sdk_call};
use crate::deployment::Deployment;

/// Invokes a function and reads its answer as JSON; a function error is an error with its message.
/// Invokes one of the deployment's functions with a request of its contract and reads its answer
/// as the contract's report.
pub async fn invoke<Request: Serialize, Report: DeserializeOwned>(
    sdk: &SdkConfig,
    deployment: &Deployment,
    function: &str,
    request: &Request,
) -> Result<Report, AwsError> {
    let mut config = aws_sdk_lambda::config::Builder::from(sdk);
    if let Some(endpoint) = &deployment.lambda_endpoint {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_lambda::Client::from_conf(config.build());
    let payload =
        serde_json::to_vec(request).map_err(call(format!("writing {function}'s request")))?;
    let output = client
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .map_err(sdk_call(format!("invoking {function}")))?;
    let answer = output.payload().map_or(&b"null"[..], |blob| blob.as_ref());
    if let Some(kind) = output.function_error() {
        let failure: serde_json::Value = serde_json::from_slice(answer).unwrap_or_default();
        return Err(AwsError::FunctionFailed {
            function: function.to_owned(),
            kind: kind.to_owned(),
            message: failure["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    serde_json::from_slice(answer).map_err(call(format!("reading {function}'s answer")))
}

/// The keeper, with its request; its report.
pub async fn invoke_keeper(
    sdk: &SdkConfig,
    deployment: &Deployment,
    request: &KeeperRequest,
) -> Result<RunReport, AwsError> {
    invoke(sdk, deployment, &deployment.keeper_function, request).await
}

/// The sync, asked to start runs; the runs it started.
pub async fn invoke_sync(
    sdk: &SdkConfig,
    deployment: &Deployment,
    request: &StartRequest,
) -> Result<StartReport, AwsError> {
    invoke(sdk, deployment, &deployment.sync_function, request).await
}
