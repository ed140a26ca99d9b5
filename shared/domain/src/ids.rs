//! The identities every layer shares: which tenant a thing belongs to, and credential values that
//! never show themselves.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The tenant used for requests whose path names none.
pub const DEFAULT_TENANT: &str = "default";

/// A credential value that never shows itself in `Debug` or logs.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A tenant key as it appears in `/t/{tenant}` and in every object key: short, lower-case, and free
/// of the `#` that separates key parts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TryFrom<String> for TenantId {
    type Error = InvalidTenant;

    fn try_from(value: String) -> Result<Self, InvalidTenant> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(tenant: TenantId) -> String {
        tenant.0
    }
}

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, InvalidTenant> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidTenant(value.chars().take(64).collect()))
        }
    }

    pub fn default_tenant() -> Self {
        Self(DEFAULT_TENANT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant key that is not 1–64 characters of `a-z`, `0-9`, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant key {0:?} must be 1-64 characters of a-z, 0-9, '-' or '_'")]
pub struct InvalidTenant(pub String);
