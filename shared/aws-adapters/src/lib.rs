//! The AWS side of the bundle: the SQS, DynamoDB and Secrets Manager adapters of the domain's ports,
//! the SDK set-up they share, typed reading of the environment, and Lambda logging and metrics.
//! Each service is a feature, so a function compiles only the SDK crates it wires.

pub mod companies;
pub mod env;
pub mod refreshing;
pub mod sdk;
pub mod secrets;
pub mod telemetry;

#[cfg(feature = "s3")]
pub mod blobs;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "dynamodb")]
pub mod registry;
#[cfg(feature = "dynamodb")]
pub mod resync_ledger;
#[cfg(feature = "secrets-manager")]
pub mod secrets_manager;
#[cfg(feature = "sqs")]
pub mod sqs;
#[cfg(feature = "dynamodb")]
pub mod sync_records;
