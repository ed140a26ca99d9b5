//! The one real implementation of each port, and the AWS client set-up they share.

pub mod aws;
pub mod dynamodb;
pub mod resync_ledger;
pub mod secrets_manager;
pub mod sqs;
pub mod tripletex;
