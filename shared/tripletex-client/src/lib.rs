//! Tripletex API v2 over HTTP. `transport` is what every call goes through (session tokens, Basic
//! auth, retries, rate limits, the error envelope); the endpoints sit beside it, one module each, and
//! `pool` hands out one client per company so that sessions are reused across invocations.
//! Endpoints: `subscriptions` (the keeper's), `objects` (the sync's), `events`, `companies` (an
//! accountant's clients, for the CLI).

pub mod companies;
pub mod events;
pub mod objects;
pub mod pool;
pub mod subscriptions;
pub mod transport;

pub use pool::HttpTripletexCompanies;
pub use transport::{DEFAULT_PAGE_SIZE, HttpTripletexApi, RetryPolicy};
