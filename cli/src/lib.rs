//! `tripletex-webhooks`, the operator's command line: what a deployment holds and what needs a
//! person, against a deployed stack (its CloudFormation outputs) or the local stack of
//! `scripts/run` alike.

pub mod args;
pub mod aws;
pub mod commands;
pub mod companies;
pub mod deployment;
pub mod forget;
pub mod mirror;
pub mod render;
pub mod replay;
pub mod send;
pub mod show;
pub mod status;
pub mod tripletex;
