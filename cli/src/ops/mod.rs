//! What the commands share (cargo's `ops`): the deployment's queues, tables, metrics and functions,
//! read (and, for a redrive or a move, written) for any command. A command imports these, the
//! context and its own rendering, never another command.

pub mod companies;
pub mod invoke;
pub mod journal;
pub mod metrics;
pub mod queues;
pub mod replay;
pub mod sync_runs;
pub mod tables;

use std::collections::HashMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use domain::error::BoxError;

use crate::deployment::{Deployment, DeploymentError};

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{function} failed ({kind}): {message}")]
    FunctionFailed {
        function: String,
        kind: String,
        message: String,
    },
    #[error("{what} failed")]
    Call {
        what: String,
        #[source]
        source: BoxError,
    },
}

pub(crate) fn call<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> AwsError {
    let what = what.into();
    move |source| AwsError::Call {
        what,
        source: Box::new(source),
    }
}

/// An AWS call that failed, said in plain words: what it was doing, and what the service (its
/// error's code and message) or the connection said, never the SDK's wording ("service error",
/// "unhandled error") nor a Debug rendering of its error.
pub(crate) fn sdk_call<E, R>(what: impl Into<String>) -> impl FnOnce(SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let what = what.into();
    move |error| AwsError::Call {
        what,
        source: aws_adapters::sdk::words(&error).into(),
    }
}

/// The access key the local IAM knows as the operator (tools/localstack/local_stack.py, OPERATOR_KEY).
const LOCAL_OPERATOR_KEY: &str = "local-operator";

/// The standard SDK configuration (profile, region, `AWS_ENDPOINT_URL`). For the local stack: its
/// moto endpoint, region and throwaway credentials, unless the environment names others. Their key
/// is the operator's: the local stack holds the command line to the template's `OperatorPolicy`.
pub async fn sdk_config(local_endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = local_endpoint {
        let set = |name: &str| std::env::var_os(name).is_some();
        if !set("AWS_ENDPOINT_URL") {
            loader = loader.endpoint_url(endpoint);
        }
        if !set("AWS_REGION") && !set("AWS_DEFAULT_REGION") && !set("AWS_PROFILE") {
            loader = loader.region(Region::new("eu-north-1"));
        }
        if !set("AWS_ACCESS_KEY_ID") && !set("AWS_PROFILE") {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                LOCAL_OPERATOR_KEY,
                "local",
                None,
                None,
                "local-stack",
            ));
        }
    }
    loader.load().await
}

/// A deployed stack's outputs.
pub async fn stack_outputs(sdk: &SdkConfig, stack: &str) -> Result<Deployment, DeploymentError> {
    let client = aws_sdk_cloudformation::Client::new(sdk);
    let described = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|source| DeploymentError::Describe {
            stack: stack.to_owned(),
            source: Box::new(source),
        })?;
    let mut outputs: HashMap<String, String> = described
        .stacks()
        .iter()
        .flat_map(|s| s.outputs())
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect();
    // Tripletex's API and the fields filter are parameters of the stack, not outputs.
    let parameters = described.stacks().iter().flat_map(|s| s.parameters());
    for parameter in parameters {
        if let (Some(key), Some(value)) = (parameter.parameter_key(), parameter.parameter_value())
            && [crate::deployment::API_BASE_URL, crate::deployment::FIELDS].contains(&key)
        {
            outputs.insert(key.to_owned(), value.to_owned());
        }
    }
    Deployment::from_outputs(stack, None, None, &outputs)
}

/// A secret's text; `what` names it in an error (`the Tripletex credentials secret`).
pub async fn secret_text(sdk: &SdkConfig, secret: &str, what: &str) -> Result<String, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let value = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(sdk_call(format!("reading {what}")))?;
    Ok(value.secret_string().unwrap_or_default().to_owned())
}
