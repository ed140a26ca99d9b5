//! The object sync: fills the copy when a subscription is made, reconciles it every night and
//! resyncs what a disabled subscription missed, as chains of bounded tasks on a FIFO queue.

pub mod config;
pub mod handler;
mod start;
pub mod step;
