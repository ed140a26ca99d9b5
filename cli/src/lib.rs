//! `tripletex-webhooks`, the operator's command line: what a deployment holds and what needs a
//! person, against a deployed stack (its CloudFormation outputs) or the local stack of
//! `scripts/run` alike.

pub mod commands;
pub mod context;
pub mod deployment;
pub mod ops;
pub mod render;
pub mod tripletex;
