//! What the sync asks of Tripletex's object endpoints (`ports::ObjectsApi`), and what comes back.

use serde_json::value::RawValue;

use super::catalog::{ObjectTypeSpec, Partition};
use super::window::DateWindow;

/// One page of a type's listing: `fields=id,version`, `sorting=id`, in one partition and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub spec: &'static ObjectTypeSpec,
    pub partition: &'static Partition,
    /// Required for the date-windowed types, absent for the others.
    pub window: Option<DateWindow>,
    pub from: u64,
    pub count: u32,
    /// The page's `versionDigest` from an earlier listing: Tripletex answers 304 if it still holds.
    pub digest: Option<String>,
}

/// A page, or word that it is the same as when its digest was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedPage {
    Listed {
        objects: Vec<Listed>,
        /// This page's checksum, for the next listing's `PageRequest::digest`.
        digest: Option<String>,
        /// Tripletex's `fullResultSize`: about how many the whole listing holds (not exact; for
        /// progress only).
        full_result_size: Option<u64>,
    },
    /// 304 Not Modified.
    Unchanged,
}

/// Objects of one type by id, in full with the subscription's `fields`, so that a synced object has
/// exactly the shape a webhook brings. The partition and window make hidden objects visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest<'a> {
    pub spec: &'static ObjectTypeSpec,
    pub partition: &'static Partition,
    pub window: Option<DateWindow>,
    pub ids: &'a [i64],
    pub fields: &'a str,
}

/// One object as Tripletex sent it, with the id and version read from it.
#[derive(Debug, Clone)]
pub struct FetchedObject {
    pub id: i64,
    pub version: Option<i64>,
    /// The object's JSON exactly as received.
    pub value: Box<RawValue>,
}

impl FetchedObject {
    /// Reads the id and version of an object, keeping its JSON as received.
    pub fn read(value: Box<RawValue>) -> Result<Self, crate::tripletex::TripletexError> {
        #[derive(serde::Deserialize)]
        struct Identity {
            id: i64,
            #[serde(default)]
            version: Option<i64>,
        }
        let identity: Identity = serde_json::from_str(value.get()).map_err(|source| {
            crate::tripletex::TripletexError::InvalidResponse {
                source: Box::new(source),
            }
        })?;
        Ok(Self {
            id: identity.id,
            version: identity.version,
            value,
        })
    }
}

/// One object of a list page fetched with `fields=id,version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listed {
    pub id: i64,
    pub version: Option<i64>,
}

/// What Tripletex said when an object was looked up by id (with the subscription's `fields`).
#[derive(Debug, Clone)]
pub enum Lookup {
    /// 404 with Tripletex's code 6000: the object does not exist.
    NotFound,
    /// It exists (listed in no partition the sync knows, moved past the listing by a deletion, or
    /// created again), as it is now.
    Found(FetchedObject),
}
