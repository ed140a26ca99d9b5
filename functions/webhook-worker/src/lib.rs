//! The webhook worker: a batch of queued webhooks in, one conditional write per record, and the
//! records to retry out.

pub mod config;
pub mod handler;
