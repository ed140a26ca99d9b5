//! `tripletex-webhooks`, the operator's command line: what a deployment holds and what needs a
//! person, against a deployed stack (its CloudFormation outputs) or the local stack of
//! `scripts/run` alike.

pub mod aws;
pub mod commands;
pub mod deployment;
pub mod render;
pub mod tripletex;
