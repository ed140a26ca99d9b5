//! For tests only (a dev-dependency, never in a function's build): in-memory fakes of every port,
//! and harnesses that start moto and the Tripletex simulator on loopback and stop them.

pub mod fakes;
pub mod heap;
pub mod moto;
pub mod net;
pub mod paths;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod simulator;
pub mod sync;
pub mod tripletex;
pub mod tripletex_objects;
pub mod worker;

pub use fakes::{
    InMemoryBlobs, InMemoryMirror, InMemoryObjectStore, InMemoryResyncLedger, LedgerCall,
    RecordingJournal, RecordingQueue, StoreFailure, StoreReads, StoredItem,
};
#[cfg(feature = "s3")]
pub use moto::create_bucket;
pub use moto::{MotoServer, sdk_config_for};
pub use net::free_port;
#[cfg(feature = "postgres")]
pub use postgres::PostgresServer;
pub use simulator::TripletexSimulator;
pub use sync::{InMemorySyncRecords, RecordingSyncTasks, RunRecord};
pub use tripletex::{CallKind, FakeTripletex, FakeTripletexCompany, TripletexCall};
pub use tripletex_objects::{FakeObject, FakeTripletexObjects, ObjectCallKind};
pub use worker::apply_as_worker;
