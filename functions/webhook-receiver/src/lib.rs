//! The webhook receiver: HTTP in, a queued message and a status code out.

pub mod config;
pub mod front_door;
pub mod handler;
