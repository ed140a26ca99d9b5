//! The subscription keeper: a scheduled (or hand-made) event in, every configured company's
//! subscriptions kept in place, and a report out.

pub mod config;
pub mod handler;
pub mod run;
