//! The pure core of the Tripletex webhook bundle: the rules as plain functions, the types they work
//! on, and the ports (traits) the adapters implement. Nothing here does I/O: this crate depends on
//! no async runtime, AWS, HTTP-client or Lambda crate, so every rule is tested without a server.

pub mod auth;
pub mod claim;
pub mod dedup;
pub mod envelope;
pub mod error;
pub mod forget;
pub mod ids;
pub mod intake;
pub mod item;
pub mod journal;
pub mod keeper;
pub mod message;
pub mod mirror;
pub mod net;
pub mod ports;
pub mod record;
pub mod registry;
pub mod resync;
pub mod sync;
pub mod tripletex;
