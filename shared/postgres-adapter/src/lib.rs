//! The Postgres side of the mirror port (`domain::ports::Mirror`): where the database is and how it is
//! reached (`connect`: TLS verified by default, plaintext only to a loopback address), the schema the
//! mirror owns (`migrations`: versioned, applied once under an advisory lock), and the batch upsert
//! with its history (`mirror`).

pub mod connect;
pub mod migrations;
pub mod mirror;

pub use connect::{ConnectError, DatabaseSettings};
pub use mirror::{PgMirror, SettingsSource};
