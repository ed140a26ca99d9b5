//! The library behind the Tripletex webhook functions: the domain rules as pure functions, the ports
//! they need, and the AWS adapters behind those ports.

pub mod adapters;
pub mod auth;
pub mod config;
pub mod dedup;
pub mod intake;
pub mod keeper;
pub mod message;
pub mod model;
pub mod ports;
pub mod record;
pub mod secrets;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tripletex;
