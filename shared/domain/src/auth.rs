//! Who may post webhooks: the receiver's authentication rules, as pure functions.
//!
//! A deployment configures, per tenant, any combination of the four ways Tripletex can authenticate a
//! callback. Every configured method must pass; a tenant with no method refuses everything. Each
//! method accepts several values at once, so a value is rotated by adding the new one, moving
//! Tripletex over, then removing the old one.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::ids::{DEFAULT_TENANT, Secret, TenantId};

/// Header carrying Tripletex's HMAC signature.
pub const SIGNATURE_HEADER: &str = "x-request-signature";
/// Header Tripletex sends with a signed delivery; part of the signed message.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The accepted credentials of every tenant, as stored in the receiver's auth secret:
///
/// ```json
/// {"tenants": {"default": {
///     "header": {"name": "X-Tripletex-Token", "values": ["current", "previous"]},
///     "basic":  {"credentials": [{"username": "tripletex", "password": "…"}]},
///     "query":  {"parameter": "token", "values": ["…"]},
///     "hmac":   {"secrets": ["at least ten characters"]}}}}
/// ```
///
/// With `derived`, a tenant not listed under `tenants` has credentials derived from a master key,
/// so the secret stays the same size however many companies there are:
///
/// ```json
/// {"tenants": {}, "derived": {"masters": ["newest", "older"], "header": "X-Tripletex-Webhook-Token",
///                             "hmac": true}}
/// ```
#[derive(Debug, Clone)]
pub struct AuthConfig {
    tenants: BTreeMap<TenantId, TenantAuth>,
    derived: Option<DerivedAuth>,
}

/// Per-tenant webhook credentials derived from master keys, within a scope (the stack's name, say):
/// the scope's key is `HMAC-SHA256(master, "scope:" + scope)`, the header value
/// `hex(HMAC-SHA256(scope key, "header:" + tenant))` and the HMAC signing secret
/// `hex(HMAC-SHA256(scope key, "hmac:" + tenant))`. Two stacks that share a master but not a scope
/// accept none of each other's credentials. Each master's derivation is accepted, so a master is
/// rotated by putting a new one first (the keeper sends the first; `resendAuth` moves Tripletex over)
/// and dropping the old one later.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedAuth {
    pub masters: Vec<Secret>,
    /// What sets this deployment's derivation apart from another's with the same masters.
    #[serde(default)]
    pub scope: Option<String>,
    /// Also accepts what subscriptions carried before scopes (`earlier_for_tenant`), never sent:
    /// set while `resendAuth` moves Tripletex over to the scoped credentials, then removed.
    #[serde(default, rename = "acceptUnscoped")]
    pub accept_unscoped: bool,
    /// The custom header that carries the derived value; none for no header method.
    #[serde(default)]
    pub header: Option<String>,
    /// Whether Tripletex signs each delivery with the derived HMAC secret: on unless `false`, for
    /// a signature binds the credential to the body, so a header value seen in transit or in a
    /// log cannot write.
    #[serde(default = "signed_by_default")]
    pub hmac: bool,
}

fn signed_by_default() -> bool {
    true
}

/// A master shorter than this is guessable (32 characters: 24 random bytes in base64, say).
const MIN_MASTER_LEN: usize = 32;

/// A scope longer than this is a mistake (a stack's name is at most 128 characters).
const MAX_SCOPE_LEN: usize = 128;

impl DerivedAuth {
    /// The credentials of one tenant, newest master first.
    pub fn for_tenant(&self, tenant: &TenantId) -> TenantAuth {
        self.derived(
            tenant,
            self.scope.as_deref(),
            self.header.as_ref(),
            self.hmac,
        )
    }

    /// What a tenant's subscriptions carried before scopes (the unscoped header value, or the
    /// unscoped HMAC secret where no header was sent), accepted in place of its current credentials
    /// while `acceptUnscoped` is set: signatures came in only with the scoped credentials.
    pub fn earlier_for_tenant(&self, tenant: &TenantId) -> Option<TenantAuth> {
        self.accept_unscoped.then(|| {
            self.derived(
                tenant,
                None,
                self.header.as_ref(),
                self.header.is_none() && self.hmac,
            )
        })
    }

    fn derived(
        &self,
        tenant: &TenantId,
        scope: Option<&str>,
        header: Option<&String>,
        hmac: bool,
    ) -> TenantAuth {
        let derive = |purpose: &str| -> Vec<Secret> {
            self.masters
                .iter()
                .map(|master| Secret::new(derived_value(master, scope, purpose, tenant)))
                .collect()
        };
        TenantAuth {
            header: header.map(|name| HeaderAuth {
                name: name.clone(),
                values: derive("header"),
            }),
            basic: None,
            query: None,
            hmac: hmac.then(|| HmacAuth {
                secrets: derive("hmac"),
            }),
        }
    }
}

/// `hex(HMAC-SHA256(key, purpose + ":" + tenant))`, where the key is the master's key for `scope`
/// (`HMAC-SHA256(master, "scope:" + scope)`), or the master itself for the unscoped derivation: 64
/// characters, distinct per scope, purpose and tenant.
pub fn derived_value(
    master: &Secret,
    scope: Option<&str>,
    purpose: &str,
    tenant: &TenantId,
) -> String {
    let key = match scope {
        Some(scope) => hmac_sha256(master.expose().as_bytes(), &[b"scope:", scope.as_bytes()]),
        None => master.expose().as_bytes().to_vec(),
    };
    hmac_sha256(
        &key,
        &[purpose.as_bytes(), b":", tenant.as_str().as_bytes()],
    )
    .iter()
    .map(|byte| format!("{byte:02x}"))
    .collect()
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length (as `hmac_sha512` says): never an empty, accept-all value.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantAuth {
    #[serde(default)]
    pub header: Option<HeaderAuth>,
    #[serde(default)]
    pub basic: Option<BasicAuth>,
    #[serde(default)]
    pub query: Option<QueryTokenAuth>,
    #[serde(default)]
    pub hmac: Option<HmacAuth>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderAuth {
    pub name: String,
    #[serde(default)]
    pub values: Vec<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub credentials: Vec<BasicCredential>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryTokenAuth {
    pub parameter: String,
    pub values: Vec<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacAuth {
    pub secrets: Vec<Secret>,
}

/// Tripletex's own lower bound for `hmacSharedSecret`.
const MIN_HMAC_SECRET_LEN: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth config is not valid JSON of the expected shape")]
    Malformed(#[source] crate::error::SecretJsonError),
    #[error(transparent)]
    InvalidTenant(#[from] crate::ids::InvalidTenant),
    #[error("tenant {tenant}: {method} lists no accepted value")]
    NoValues { tenant: String, method: AuthMethod },
    #[error(
        "tenant {tenant}: {method} has an empty value, which would accept a missing credential"
    )]
    EmptyValue { tenant: String, method: AuthMethod },
    #[error("tenant {tenant}: header name {name:?} is not a valid HTTP header name")]
    InvalidHeaderName { tenant: String, name: String },
    #[error("generatedHeaderValue needs a header method on the default tenant")]
    GeneratedValueWithoutHeader,
    #[error("tenant {tenant}: hmac secrets must be at least {MIN_HMAC_SECRET_LEN} characters")]
    HmacSecretTooShort { tenant: String },
    #[error(
        "derived credentials need at least one master of at least {MIN_MASTER_LEN} characters, and a header or hmac"
    )]
    InvalidDerived,
    #[error(
        "derived credentials need a scope of 1 to {MAX_SCOPE_LEN} characters (this stack's name, say): without one, another stack given the same master would accept this one's credentials"
    )]
    DerivedWithoutScope,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct RawAuthConfig {
    tenants: BTreeMap<String, TenantAuth>,
    /// Filled by the template's `GenerateSecretString` on deploy (it can only write a top-level key):
    /// one more accepted value for the default tenant's custom header.
    #[serde(default)]
    generated_header_value: Option<Secret>,
    #[serde(default)]
    derived: Option<DerivedAuth>,
}

impl AuthConfig {
    /// `from_json` with its error boxed: the shape a secret source takes a parser in.
    pub fn parse_secret(json: &str) -> Result<Self, crate::error::BoxError> {
        Ok(Self::from_json(json)?)
    }

    pub fn from_json(json: &str) -> Result<Self, AuthConfigError> {
        let mut raw: RawAuthConfig = serde_json::from_str(json).map_err(|error| {
            AuthConfigError::Malformed(crate::error::SecretJsonError::of(&error))
        })?;
        if let Some(generated) = raw.generated_header_value {
            let header = raw
                .tenants
                .get_mut(DEFAULT_TENANT)
                .and_then(|auth| auth.header.as_mut())
                .ok_or(AuthConfigError::GeneratedValueWithoutHeader)?;
            header.values.push(generated);
        }
        let mut tenants = BTreeMap::new();
        for (key, auth) in raw.tenants {
            let tenant = TenantId::parse(&key)?;
            auth.validate(&tenant)?;
            tenants.insert(tenant, auth);
        }
        if let Some(derived) = &raw.derived {
            let usable = !derived.masters.is_empty()
                && derived
                    .masters
                    .iter()
                    .all(|master| master.expose().len() >= MIN_MASTER_LEN)
                && (derived.header.is_some() || derived.hmac);
            if !usable {
                return Err(AuthConfigError::InvalidDerived);
            }
            if !derived
                .scope
                .as_deref()
                .is_some_and(|scope| (1..=MAX_SCOPE_LEN).contains(&scope.trim().len()))
            {
                return Err(AuthConfigError::DerivedWithoutScope);
            }
            if let Some(name) = &derived.header
                && http::HeaderName::from_bytes(name.as_bytes()).is_err()
            {
                return Err(AuthConfigError::InvalidHeaderName {
                    tenant: "(derived)".to_owned(),
                    name: name.clone(),
                });
            }
        }
        Ok(Self {
            tenants,
            derived: raw.derived,
        })
    }

    pub fn new(tenants: impl IntoIterator<Item = (TenantId, TenantAuth)>) -> Self {
        Self {
            tenants: tenants.into_iter().collect(),
            derived: None,
        }
    }

    /// A tenant's accepted credentials: its own entry, else those derived from the masters; none
    /// when neither is configured.
    pub fn tenant(&self, tenant: &TenantId) -> Option<Cow<'_, TenantAuth>> {
        match self.tenants.get(tenant) {
            Some(auth) => Some(Cow::Borrowed(auth)),
            None => self
                .derived
                .as_ref()
                .map(|derived| Cow::Owned(derived.for_tenant(tenant))),
        }
    }

    /// Credentials still accepted in place of a tenant's current ones while a move is under way
    /// (derived credentials from before scopes, `acceptUnscoped`); never sent by the keeper.
    pub fn earlier(&self, tenant: &TenantId) -> Option<TenantAuth> {
        if self.tenants.contains_key(tenant) {
            return None;
        }
        self.derived
            .as_ref()
            .and_then(|derived| derived.earlier_for_tenant(tenant))
    }

    pub fn tenants(&self) -> impl Iterator<Item = &TenantId> {
        self.tenants.keys()
    }
}

impl TenantAuth {
    fn validate(&self, tenant: &TenantId) -> Result<(), AuthConfigError> {
        let check = |method: AuthMethod, values: &mut dyn Iterator<Item = &str>| {
            let mut any = false;
            for value in values {
                if value.is_empty() {
                    return Err(AuthConfigError::EmptyValue {
                        tenant: tenant.to_string(),
                        method,
                    });
                }
                any = true;
            }
            if any {
                Ok(())
            } else {
                Err(AuthConfigError::NoValues {
                    tenant: tenant.to_string(),
                    method,
                })
            }
        };
        if let Some(header) = &self.header {
            if http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
                return Err(AuthConfigError::InvalidHeaderName {
                    tenant: tenant.to_string(),
                    name: header.name.clone(),
                });
            }
            check(
                AuthMethod::Header,
                &mut header.values.iter().map(Secret::expose),
            )?;
        }
        if let Some(basic) = &self.basic {
            check(
                AuthMethod::Basic,
                &mut basic.credentials.iter().map(|c| c.password.expose()),
            )?;
        }
        if let Some(query) = &self.query {
            check(
                AuthMethod::QueryToken,
                &mut std::iter::once(query.parameter.as_str()),
            )?;
            check(
                AuthMethod::QueryToken,
                &mut query.values.iter().map(Secret::expose),
            )?;
        }
        if let Some(hmac) = &self.hmac {
            check(
                AuthMethod::Hmac,
                &mut hmac.secrets.iter().map(Secret::expose),
            )?;
            if hmac
                .secrets
                .iter()
                .any(|s| s.expose().len() < MIN_HMAC_SECRET_LEN)
            {
                return Err(AuthConfigError::HmacSecretTooShort {
                    tenant: tenant.to_string(),
                });
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.header.is_none() && self.basic.is_none() && self.query.is_none() && self.hmac.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Header,
    Basic,
    QueryToken,
    Hmac,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "custom header",
            Self::Basic => "basic auth",
            Self::QueryToken => "query token",
            Self::Hmac => "hmac signature",
        })
    }
}

/// Why a request was refused. For logs only: every refusal gets the same answer on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no tenant is configured for this path")]
    UnknownTenant,
    #[error("the tenant has no authentication method configured")]
    NoMethodConfigured,
    #[error("{0}: credential missing")]
    Missing(AuthMethod),
    #[error("{0}: credential malformed")]
    Malformed(AuthMethod),
    #[error("{0}: credential does not match")]
    Mismatch(AuthMethod),
    #[error("hmac signature: idempotency-key header missing")]
    MissingIdempotencyKey,
}

/// The parts of a request that authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub headers: &'a HeaderMap,
    /// Decoded query parameters, in order, repeated names kept.
    pub query: &'a [(String, String)],
    /// The raw body, exactly as received (the HMAC covers these bytes).
    pub body: &'a [u8],
}

/// Checks a request against the tenant's configuration. Every configured method must pass.
pub fn authenticate(
    config: &AuthConfig,
    tenant: &TenantId,
    request: Credentials<'_>,
) -> Result<(), AuthFailure> {
    let auth = config.tenant(tenant).ok_or(AuthFailure::UnknownTenant)?;
    verify_every_method(auth.as_ref(), &request).or_else(|failure| match config.earlier(tenant) {
        Some(earlier) => verify_every_method(&earlier, &request).map_err(|_| failure),
        None => Err(failure),
    })
}

/// Every method the tenant has must pass.
fn verify_every_method(auth: &TenantAuth, request: &Credentials<'_>) -> Result<(), AuthFailure> {
    if auth.is_empty() {
        return Err(AuthFailure::NoMethodConfigured);
    }
    if let Some(header) = &auth.header {
        verify_header(header, request.headers)?;
    }
    if let Some(basic) = &auth.basic {
        verify_basic(basic, request.headers)?;
    }
    if let Some(query) = &auth.query {
        verify_query_token(query, request.query)?;
    }
    if let Some(hmac) = &auth.hmac {
        verify_hmac(hmac, request.headers, request.body)?;
    }
    Ok(())
}

/// The single value of a header sent exactly once; a repeated header is treated as malformed so that
/// a request cannot carry several guesses.
fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &str,
    method: AuthMethod,
) -> Result<&'h [u8], AuthFailure> {
    let mut values = headers.get_all(name).iter();
    let first = values.next().ok_or(AuthFailure::Missing(method))?;
    if values.next().is_some() {
        return Err(AuthFailure::Malformed(method));
    }
    Ok(first.as_bytes())
}

fn verify_header(auth: &HeaderAuth, headers: &HeaderMap) -> Result<(), AuthFailure> {
    // HeaderMap lookups are case-insensitive; the configured name may be written in any case.
    let name = auth.name.to_ascii_lowercase();
    let presented = single_header(headers, &name, AuthMethod::Header)?;
    if presented.is_empty() {
        return Err(AuthFailure::Missing(AuthMethod::Header));
    }
    matches_any(presented, &auth.values, AuthMethod::Header)
}

fn verify_basic(auth: &BasicAuth, headers: &HeaderMap) -> Result<(), AuthFailure> {
    let header = single_header(headers, "authorization", AuthMethod::Basic)?;
    let header =
        std::str::from_utf8(header).map_err(|_| AuthFailure::Malformed(AuthMethod::Basic))?;
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(AuthFailure::Malformed(AuthMethod::Basic))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthFailure::Missing(AuthMethod::Basic));
    }
    let decoded = BASE64
        .decode(encoded.trim())
        .map_err(|_| AuthFailure::Malformed(AuthMethod::Basic))?;
    let colon = decoded
        .iter()
        .position(|b| *b == b':')
        .ok_or(AuthFailure::Malformed(AuthMethod::Basic))?;
    let (username, password) = (&decoded[..colon], &decoded[colon + 1..]);
    let mut matched = subtle::Choice::from(0);
    for credential in &auth.credentials {
        matched |= digest_eq(username, credential.username.as_bytes())
            & digest_eq(password, credential.password.expose().as_bytes());
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(AuthFailure::Mismatch(AuthMethod::Basic))
    }
}

fn verify_query_token(
    auth: &QueryTokenAuth,
    query: &[(String, String)],
) -> Result<(), AuthFailure> {
    let mut values = query.iter().filter(|(name, _)| *name == auth.parameter);
    let (_, presented) = values
        .next()
        .ok_or(AuthFailure::Missing(AuthMethod::QueryToken))?;
    if values.next().is_some() {
        return Err(AuthFailure::Malformed(AuthMethod::QueryToken));
    }
    matches_any(presented.as_bytes(), &auth.values, AuthMethod::QueryToken)
}

fn verify_hmac(auth: &HmacAuth, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthFailure> {
    let signature = single_header(headers, SIGNATURE_HEADER, AuthMethod::Hmac)?;
    let signature = BASE64
        .decode(signature.trim_ascii())
        .map_err(|_| AuthFailure::Malformed(AuthMethod::Hmac))?;
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        Some(key) if !key.is_empty() => key.as_bytes(),
        _ => return Err(AuthFailure::MissingIdempotencyKey),
    };
    for secret in &auth.secrets {
        let mut mac = hmac_sha512(secret.expose().as_bytes());
        mac.update(idempotency_key);
        mac.update(b"&");
        mac.update(body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(AuthFailure::Mismatch(AuthMethod::Hmac))
}

/// The signature Tripletex sends in `x-request-signature` for this key and body.
pub fn hmac_signature(secret: &str, idempotency_key: &str, body: &[u8]) -> String {
    let mut mac = hmac_sha512(secret.as_bytes());
    mac.update(idempotency_key.as_bytes());
    mac.update(b"&");
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

fn hmac_sha512(key: &[u8]) -> Hmac<Sha512> {
    match Hmac::<Sha512>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn matches_any(
    presented: &[u8],
    accepted: &[Secret],
    method: AuthMethod,
) -> Result<(), AuthFailure> {
    // Every accepted value is compared, so the time taken does not tell which one (if any) matched.
    let matched = accepted
        .iter()
        .fold(subtle::Choice::from(0), |matched, value| {
            matched | digest_eq(presented, value.expose().as_bytes())
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(AuthFailure::Mismatch(method))
    }
}

/// Constant-time equality that also hides the length of the secret: both sides are hashed first.
fn digest_eq(presented: &[u8], expected: &[u8]) -> subtle::Choice {
    Sha256::digest(presented).ct_eq(&Sha256::digest(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const HEADER_VALUE: &str = "current-header-value";
    const OLD_HEADER_VALUE: &str = "previous-header-value";
    const HMAC_SECRET: &str = "shared-hmac-secret";

    fn tenant() -> TenantId {
        TenantId::default_tenant()
    }

    fn config(auth: TenantAuth) -> AuthConfig {
        AuthConfig::new([(tenant(), auth)])
    }

    fn header_auth(values: &[&str]) -> TenantAuth {
        TenantAuth {
            header: Some(HeaderAuth {
                name: "X-Tripletex-Token".into(),
                values: values.iter().map(|v| Secret::new(*v)).collect(),
            }),
            ..TenantAuth::default()
        }
    }

    fn basic_auth() -> TenantAuth {
        TenantAuth {
            basic: Some(BasicAuth {
                credentials: vec![BasicCredential {
                    username: "tripletex".into(),
                    password: Secret::new("pa:ss word"),
                }],
            }),
            ..TenantAuth::default()
        }
    }

    fn query_auth() -> TenantAuth {
        TenantAuth {
            query: Some(QueryTokenAuth {
                parameter: "token".into(),
                values: vec![Secret::new("query-token-value")],
            }),
            ..TenantAuth::default()
        }
    }

    fn hmac_auth(secrets: &[&str]) -> TenantAuth {
        TenantAuth {
            hmac: Some(HmacAuth {
                secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            }),
            ..TenantAuth::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn check(
        config: &AuthConfig,
        headers: &HeaderMap,
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<(), AuthFailure> {
        authenticate(
            config,
            &tenant(),
            Credentials {
                headers,
                query,
                body,
            },
        )
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
    }

    fn signed(secret: &str, key: &str, body: &[u8]) -> HeaderMap {
        headers(&[
            (SIGNATURE_HEADER, &hmac_signature(secret, key, body)),
            (IDEMPOTENCY_KEY_HEADER, key),
        ])
    }

    // -- no configuration ------------------------------------------------------------------------

    #[test]
    fn refuses_everything_when_the_tenant_has_no_method() {
        let config = config(TenantAuth::default());
        let result = check(
            &config,
            &headers(&[("x-tripletex-token", HEADER_VALUE)]),
            &[],
            b"{}",
        );
        assert_eq!(result, Err(AuthFailure::NoMethodConfigured));
    }

    #[test]
    fn refuses_a_tenant_that_is_not_configured() {
        let config = config(header_auth(&[HEADER_VALUE]));
        let other = TenantId::parse("acme").unwrap();
        let h = headers(&[("x-tripletex-token", HEADER_VALUE)]);
        let result = authenticate(
            &config,
            &other,
            Credentials {
                headers: &h,
                query: &[],
                body: b"",
            },
        );
        assert_eq!(result, Err(AuthFailure::UnknownTenant));
    }

    // -- custom header ---------------------------------------------------------------------------

    #[test]
    fn accepts_the_configured_header_value() {
        let config = config(header_auth(&[HEADER_VALUE]));
        assert_eq!(
            check(
                &config,
                &headers(&[("X-Tripletex-Token", HEADER_VALUE)]),
                &[],
                b""
            ),
            Ok(())
        );
    }

    #[test]
    fn header_name_matches_in_any_case() {
        let config = config(header_auth(&[HEADER_VALUE]));
        for name in [
            "x-tripletex-token",
            "X-TRIPLETEX-TOKEN",
            "x-TripleTex-token",
        ] {
            assert_eq!(
                check(&config, &headers(&[(name, HEADER_VALUE)]), &[], b""),
                Ok(()),
                "{name}"
            );
        }
    }

    #[test]
    fn rejects_a_wrong_header_value() {
        let config = config(header_auth(&[HEADER_VALUE]));
        let result = check(
            &config,
            &headers(&[("x-tripletex-token", "guess")]),
            &[],
            b"",
        );
        assert_eq!(result, Err(AuthFailure::Mismatch(AuthMethod::Header)));
    }

    #[test]
    fn rejects_a_missing_or_empty_header() {
        let config = config(header_auth(&[HEADER_VALUE]));
        assert_eq!(
            check(&config, &headers(&[]), &[], b""),
            Err(AuthFailure::Missing(AuthMethod::Header))
        );
        assert_eq!(
            check(&config, &headers(&[("x-tripletex-token", "")]), &[], b""),
            Err(AuthFailure::Missing(AuthMethod::Header))
        );
    }

    #[test]
    fn rejects_a_truncated_or_extended_header_value() {
        let config = config(header_auth(&[HEADER_VALUE]));
        let truncated = &HEADER_VALUE[..HEADER_VALUE.len() - 1];
        let extended = format!("{HEADER_VALUE}x");
        for value in [truncated, extended.as_str()] {
            let result = check(&config, &headers(&[("x-tripletex-token", value)]), &[], b"");
            assert_eq!(
                result,
                Err(AuthFailure::Mismatch(AuthMethod::Header)),
                "{value}"
            );
        }
    }

    #[test]
    fn rejects_a_header_value_in_another_case() {
        let config = config(header_auth(&[HEADER_VALUE]));
        let result = check(
            &config,
            &headers(&[("x-tripletex-token", &HEADER_VALUE.to_uppercase())]),
            &[],
            b"",
        );
        assert_eq!(result, Err(AuthFailure::Mismatch(AuthMethod::Header)));
    }

    #[test]
    fn rejects_a_header_sent_twice() {
        let config = config(header_auth(&[HEADER_VALUE]));
        let h = headers(&[
            ("x-tripletex-token", "guess"),
            ("x-tripletex-token", HEADER_VALUE),
        ]);
        assert_eq!(
            check(&config, &h, &[], b""),
            Err(AuthFailure::Malformed(AuthMethod::Header))
        );
    }

    #[test]
    fn accepts_the_old_value_only_while_it_is_configured() {
        let during_rotation = config(header_auth(&[HEADER_VALUE, OLD_HEADER_VALUE]));
        let after_rotation = config(header_auth(&[HEADER_VALUE]));
        let old = headers(&[("x-tripletex-token", OLD_HEADER_VALUE)]);
        let new = headers(&[("x-tripletex-token", HEADER_VALUE)]);
        assert_eq!(check(&during_rotation, &old, &[], b""), Ok(()));
        assert_eq!(check(&during_rotation, &new, &[], b""), Ok(()));
        assert_eq!(
            check(&after_rotation, &old, &[], b""),
            Err(AuthFailure::Mismatch(AuthMethod::Header))
        );
        assert_eq!(check(&after_rotation, &new, &[], b""), Ok(()));
    }

    // -- basic -----------------------------------------------------------------------------------

    #[test]
    fn accepts_basic_credentials_as_tripletex_sends_them_for_a_user_pass_url() {
        let config = config(basic_auth());
        // The password holds a colon and a space: only the first colon separates the user.
        let h = headers(&[("authorization", &basic("tripletex", "pa:ss word"))]);
        assert_eq!(check(&config, &h, &[], b""), Ok(()));
    }

    #[test]
    fn basic_scheme_name_is_case_insensitive() {
        let config = config(basic_auth());
        let value = basic("tripletex", "pa:ss word").replace("Basic", "bAsIc");
        assert_eq!(
            check(&config, &headers(&[("Authorization", &value)]), &[], b""),
            Ok(())
        );
    }

    #[test]
    fn rejects_basic_with_a_wrong_user_or_password() {
        let config = config(basic_auth());
        for (user, password) in [
            ("tripletex", "wrong"),
            ("someone", "pa:ss word"),
            ("tripletex", "pa:ss wor"),
            ("", ""),
        ] {
            let h = headers(&[("authorization", &basic(user, password))]);
            assert_eq!(
                check(&config, &h, &[], b""),
                Err(AuthFailure::Mismatch(AuthMethod::Basic)),
                "{user}:{password}"
            );
        }
    }

    #[test]
    fn rejects_missing_or_malformed_basic() {
        let config = config(basic_auth());
        assert_eq!(
            check(&config, &headers(&[]), &[], b""),
            Err(AuthFailure::Missing(AuthMethod::Basic))
        );
        assert_eq!(
            check(
                &config,
                &headers(&[("authorization", "Bearer abc")]),
                &[],
                b""
            ),
            Err(AuthFailure::Missing(AuthMethod::Basic))
        );
        for value in [
            "Basic",
            "Basic !!!not-base64",
            &format!("Basic {}", BASE64.encode("no-colon")),
        ] {
            assert_eq!(
                check(&config, &headers(&[("authorization", value)]), &[], b""),
                Err(AuthFailure::Malformed(AuthMethod::Basic)),
                "{value}"
            );
        }
    }

    // -- query token -----------------------------------------------------------------------------

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accepts_the_secret_query_parameter() {
        let config = config(query_auth());
        assert_eq!(
            check(
                &config,
                &headers(&[]),
                &query(&[("token", "query-token-value")]),
                b""
            ),
            Ok(())
        );
    }

    #[test]
    fn rejects_a_wrong_missing_empty_or_repeated_query_token() {
        let config = config(query_auth());
        let h = headers(&[]);
        assert_eq!(
            check(&config, &h, &query(&[("token", "query-token-valu")]), b""),
            Err(AuthFailure::Mismatch(AuthMethod::QueryToken))
        );
        assert_eq!(
            check(&config, &h, &query(&[("token", "")]), b""),
            Err(AuthFailure::Mismatch(AuthMethod::QueryToken))
        );
        assert_eq!(
            check(&config, &h, &query(&[("Token", "query-token-value")]), b""),
            Err(AuthFailure::Missing(AuthMethod::QueryToken))
        );
        assert_eq!(
            check(
                &config,
                &h,
                &query(&[("token", "a"), ("token", "query-token-value")]),
                b""
            ),
            Err(AuthFailure::Malformed(AuthMethod::QueryToken))
        );
    }

    // -- hmac ------------------------------------------------------------------------------------

    const BODY: &[u8] =
        br#"{"subscriptionId":1,"event":"product.create","id":2,"value":{"id":2,"version":0}}"#;

    #[test]
    fn accepts_a_valid_hmac_signature() {
        let config = config(hmac_auth(&[HMAC_SECRET]));
        assert_eq!(
            check(&config, &signed(HMAC_SECRET, "key-1", BODY), &[], BODY),
            Ok(())
        );
    }

    #[test]
    fn hmac_signature_matches_an_independent_computation() {
        // HMAC-SHA512("key", "idem&body"), computed with Python's hmac module.
        let expected = "I5LngWz5I5rpB+97tXnsVBMJuARvQAcSm8cuId5sJYUiXMFbHoaAxOeohQqYBsfdezRr1nE4EW5wBt4CwiXdSQ==";
        assert_eq!(hmac_signature("key", "idem", b"body"), expected);
    }

    #[test]
    fn rejects_hmac_over_an_altered_body() {
        let config = config(hmac_auth(&[HMAC_SECRET]));
        let h = signed(HMAC_SECRET, "key-1", BODY);
        let mut altered = BODY.to_vec();
        altered[BODY.len() - 3] = b'1';
        assert_eq!(
            check(&config, &h, &[], &altered),
            Err(AuthFailure::Mismatch(AuthMethod::Hmac))
        );
    }

    #[test]
    fn rejects_hmac_made_with_another_key() {
        let config = config(hmac_auth(&[HMAC_SECRET]));
        let h = signed("some-other-secret", "key-1", BODY);
        assert_eq!(
            check(&config, &h, &[], BODY),
            Err(AuthFailure::Mismatch(AuthMethod::Hmac))
        );
    }

    #[test]
    fn rejects_hmac_when_the_idempotency_key_was_changed_or_is_missing() {
        let config = config(hmac_auth(&[HMAC_SECRET]));
        let signature = hmac_signature(HMAC_SECRET, "key-1", BODY);
        let other_key = headers(&[
            (SIGNATURE_HEADER, &signature),
            (IDEMPOTENCY_KEY_HEADER, "key-2"),
        ]);
        assert_eq!(
            check(&config, &other_key, &[], BODY),
            Err(AuthFailure::Mismatch(AuthMethod::Hmac))
        );
        let no_key = headers(&[(SIGNATURE_HEADER, &signature)]);
        assert_eq!(
            check(&config, &no_key, &[], BODY),
            Err(AuthFailure::MissingIdempotencyKey)
        );
    }

    #[test]
    fn rejects_missing_truncated_or_malformed_signatures() {
        let config = config(hmac_auth(&[HMAC_SECRET]));
        let no_signature = headers(&[(IDEMPOTENCY_KEY_HEADER, "key-1")]);
        assert_eq!(
            check(&config, &no_signature, &[], BODY),
            Err(AuthFailure::Missing(AuthMethod::Hmac))
        );
        let full = hmac_signature(HMAC_SECRET, "key-1", BODY);
        let truncated = BASE64.encode(&BASE64.decode(&full).unwrap()[..32]);
        let h = headers(&[
            (SIGNATURE_HEADER, &truncated),
            (IDEMPOTENCY_KEY_HEADER, "key-1"),
        ]);
        assert_eq!(
            check(&config, &h, &[], BODY),
            Err(AuthFailure::Mismatch(AuthMethod::Hmac))
        );
        let h = headers(&[(SIGNATURE_HEADER, "%%%"), (IDEMPOTENCY_KEY_HEADER, "key-1")]);
        assert_eq!(
            check(&config, &h, &[], BODY),
            Err(AuthFailure::Malformed(AuthMethod::Hmac))
        );
    }

    #[test]
    fn accepts_hmac_from_any_configured_secret_during_rotation() {
        let config = config(hmac_auth(&["new-hmac-secret", HMAC_SECRET]));
        assert_eq!(
            check(&config, &signed(HMAC_SECRET, "k", BODY), &[], BODY),
            Ok(())
        );
        assert_eq!(
            check(&config, &signed("new-hmac-secret", "k", BODY), &[], BODY),
            Ok(())
        );
    }

    // -- combinations ----------------------------------------------------------------------------

    #[test]
    fn every_configured_method_must_pass() {
        let mut auth = header_auth(&[HEADER_VALUE]);
        auth.hmac = hmac_auth(&[HMAC_SECRET]).hmac;
        let config = config(auth);
        let mut both = signed(HMAC_SECRET, "k", BODY);
        both.append("x-tripletex-token", HeaderValue::from_static(HEADER_VALUE));
        assert_eq!(check(&config, &both, &[], BODY), Ok(()));
        assert_eq!(
            check(&config, &signed(HMAC_SECRET, "k", BODY), &[], BODY),
            Err(AuthFailure::Missing(AuthMethod::Header))
        );
        assert_eq!(
            check(
                &config,
                &headers(&[("x-tripletex-token", HEADER_VALUE)]),
                &[],
                BODY
            ),
            Err(AuthFailure::Missing(AuthMethod::Hmac))
        );
    }

    // -- configuration ---------------------------------------------------------------------------

    #[test]
    fn reads_the_documented_json_shape() {
        let config = AuthConfig::from_json(
            r#"{"tenants": {"default": {
                "header": {"name": "X-Tripletex-Token", "values": ["a-value"]},
                "basic": {"credentials": [{"username": "u", "password": "p"}]},
                "query": {"parameter": "token", "values": ["q"]},
                "hmac": {"secrets": ["0123456789"]}},
              "acme": {"header": {"name": "X-Other", "values": ["b"]}}}}"#,
        )
        .unwrap();
        let tenants: Vec<_> = config.tenants().map(TenantId::as_str).collect();
        assert_eq!(tenants, ["acme", "default"]);
    }

    #[test]
    fn accepts_the_header_value_generated_by_the_template_on_deploy() {
        // The shape `GenerateSecretString` writes from infra/template.yaml's SecretStringTemplate.
        let generated = r#"{"tenants": {"default": {"header": {"name": "X-Tripletex-Webhook-Token"}}},
            "generatedHeaderValue": "Zx81kQ0aPmWc3VtR7yBn2LsD9fHg4JeU6oTi5NqA1rXw0KuE"}"#;
        let config = AuthConfig::from_json(generated).unwrap();
        let h = headers(&[(
            "x-tripletex-webhook-token",
            "Zx81kQ0aPmWc3VtR7yBn2LsD9fHg4JeU6oTi5NqA1rXw0KuE",
        )]);
        assert_eq!(check(&config, &h, &[], b""), Ok(()));
        let wrong = headers(&[(
            "x-tripletex-webhook-token",
            "Zx81kQ0aPmWc3VtR7yBn2LsD9fHg4JeU6oTi5NqA1rXw0Ku",
        )]);
        assert_eq!(
            check(&config, &wrong, &[], b""),
            Err(AuthFailure::Mismatch(AuthMethod::Header))
        );
    }

    #[test]
    fn config_rejects_values_that_would_weaken_auth() {
        let cases = [
            (
                r#"{"tenants": {"default": {"header": {"name": "X-A", "values": []}}}}"#,
                "lists no accepted value",
            ),
            (
                r#"{"tenants": {"default": {"header": {"name": "X-A", "values": [""]}}}}"#,
                "empty value",
            ),
            (
                r#"{"tenants": {"default": {"header": {"name": "bad name", "values": ["v"]}}}}"#,
                "not a valid HTTP header name",
            ),
            (
                r#"{"tenants": {"default": {"hmac": {"secrets": ["short"]}}}}"#,
                "at least 10",
            ),
            (r#"{"tenants": {"Bad#Tenant": {}}}"#, "tenant key"),
            (
                r#"{"tenants": {"default": {"headr": {}}}}"#,
                "expected shape",
            ),
            (
                r#"{"tenants": {"default": {"query": {"parameter": "", "values": ["v"]}}}}"#,
                "empty value",
            ),
        ];
        for (json, expected) in cases {
            let error = AuthConfig::from_json(json).unwrap_err().to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn config_debug_output_hides_every_secret() {
        let config = AuthConfig::from_json(
            r#"{"tenants": {"default": {"header": {"name": "X-A", "values": ["header-secret"]},
                "basic": {"credentials": [{"username": "u", "password": "basic-secret"}]},
                "hmac": {"secrets": ["hmac-secret-value"]}}}}"#,
        )
        .unwrap();
        let debug = format!("{config:?}");
        for secret in ["header-secret", "basic-secret", "hmac-secret-value"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn tenant_keys_are_lower_case_words_without_separators() {
        assert!(TenantId::parse("acme-1_x").is_ok());
        for bad in ["", "Acme", "a#b", "a/b", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    const MASTER: &str = "0123456789abcdef0123456789abcdef";
    const OLD_MASTER: &str = "fedcba9876543210fedcba9876543210";

    fn derived_config(masters: &[&str]) -> AuthConfig {
        AuthConfig::from_json(
            &serde_json::json!({
                "tenants": {"listed": {"header": {"name": "X-Other", "values": ["its-own-value"]}}},
                "derived": {"masters": masters, "scope": "tripletex-webhooks",
                            "header": "X-Tripletex-Webhook-Token", "hmac": true}
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn derived_credentials_match_fixed_vectors() {
        // Computed apart with Python's hmac module: the scope's key, then "<purpose>:<tenant>".
        let acme = TenantId::parse("acme").unwrap();
        let master = Secret::new(MASTER);
        let scope = Some("tripletex-webhooks");
        assert_eq!(
            derived_value(&master, scope, "header", &acme),
            "869e06963f59a2f2e008c8930eafb34d587fede46cdac2a53ba1b228619a13db"
        );
        assert_eq!(
            derived_value(&master, scope, "hmac", &acme),
            "9f57c6ca0abe4ff1c144a9172c0498761e875a638fbbfb4644be538f7337008d"
        );
        assert_eq!(
            derived_value(&master, scope, "header", &TenantId::default_tenant()),
            "b3c9bc0c9e13a4319a196fbc4dde414b4dc05a42ef752fa1dee4daa005bd3fcf"
        );
        assert_eq!(
            derived_value(&master, Some("other-stack"), "header", &acme),
            "f5e02ff7acd797c91bffdacc44e9c2f75d724ae11d3f8323a0f43cd7fcd97096",
            "another stack's scope, another value"
        );
        assert_eq!(
            derived_value(&master, None, "header", &acme),
            "04583a8beaad8fc69744fbb95376ff9c82948ba6019dfea4ef70d9ad880f3f7f",
            "the unscoped derivation of before: hex(HMAC-SHA256(master, \"header:acme\"))"
        );
    }

    #[test]
    fn a_stack_sharing_a_master_accepts_only_its_own_scope_and_the_unscoped_only_when_asked() {
        let acme = TenantId::parse("acme").unwrap();
        let config = |derived: serde_json::Value| {
            AuthConfig::from_json(
                &serde_json::json!({"tenants": {}, "derived": derived}).to_string(),
            )
            .unwrap()
        };
        let header_values = |config: &AuthConfig| -> Vec<String> {
            config
                .tenant(&acme)
                .unwrap()
                .header
                .as_ref()
                .unwrap()
                .values
                .iter()
                .map(|value| value.expose().to_owned())
                .collect()
        };
        let ours = config(
            serde_json::json!({"masters": [MASTER], "scope": "tripletex-webhooks", "header": "X-T"}),
        );
        let theirs = config(
            serde_json::json!({"masters": [MASTER], "scope": "other-stack", "header": "X-T"}),
        );
        let (ours, theirs) = (header_values(&ours), header_values(&theirs));
        assert!(
            ours.iter().all(|value| !theirs.contains(value)),
            "{ours:?} {theirs:?}"
        );
        let scope = Some("tripletex-webhooks");
        let master = Secret::new(MASTER);
        let body = br#"{"id":1}"#;
        let with_header = |value: &str, mut headers: HeaderMap| {
            headers.insert(
                http::HeaderName::from_static("x-t"),
                HeaderValue::from_str(value).unwrap(),
            );
            headers
        };
        let scoped = derived_value(&master, scope, "header", &acme);
        let signed_scoped = with_header(
            &scoped,
            signed(&derived_value(&master, scope, "hmac", &acme), "key-1", body),
        );
        let unscoped_unsigned = with_header(
            &derived_value(&master, None, "header", &acme),
            HeaderMap::new(),
        );
        let passes = |config: &AuthConfig, headers: &HeaderMap| {
            authenticate(
                config,
                &acme,
                Credentials {
                    headers,
                    query: &[],
                    body,
                },
            )
            .is_ok()
        };
        let signed_now = config(
            serde_json::json!({"masters": [MASTER], "scope": "tripletex-webhooks", "header": "X-T"}),
        );
        assert!(passes(&signed_now, &signed_scoped), "header and signature");
        assert!(
            !passes(&signed_now, &with_header(&scoped, HeaderMap::new())),
            "signed by default: the header alone does not write"
        );
        assert!(
            !passes(&signed_now, &unscoped_unsigned),
            "the earlier value is refused"
        );
        let moving = config(
            serde_json::json!({"masters": [MASTER], "scope": "tripletex-webhooks",
                                               "acceptUnscoped": true, "header": "X-T"}),
        );
        assert!(passes(&moving, &signed_scoped));
        assert!(
            passes(&moving, &unscoped_unsigned),
            "what the subscriptions carried before, while they are moved over"
        );
        assert_eq!(
            header_values(&moving),
            [scoped],
            "the keeper sends only the scoped value"
        );
    }

    #[test]
    fn a_tenant_not_listed_is_checked_against_its_derived_credentials_under_any_master() {
        let config = derived_config(&[MASTER, OLD_MASTER]);
        let acme = TenantId::parse("acme").unwrap();
        let auth = config.tenant(&acme).unwrap();
        let values: Vec<&str> = auth
            .header
            .as_ref()
            .unwrap()
            .values
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(
            values,
            [
                derived_value(
                    &Secret::new(MASTER),
                    Some("tripletex-webhooks"),
                    "header",
                    &acme
                ),
                derived_value(
                    &Secret::new(OLD_MASTER),
                    Some("tripletex-webhooks"),
                    "header",
                    &acme
                ),
            ],
            "the newest master first: the one the keeper sends"
        );
        let body = br#"{"id":1}"#;
        let hmac_secret = derived_value(
            &Secret::new(OLD_MASTER),
            Some("tripletex-webhooks"),
            "hmac",
            &acme,
        );
        let mut request = signed(&hmac_secret, "key-1", body);
        request.insert(
            http::HeaderName::from_static("x-tripletex-webhook-token"),
            HeaderValue::from_str(values[1]).unwrap(),
        );
        let credentials = |headers| Credentials {
            headers,
            query: &[],
            body,
        };
        assert!(authenticate(&config, &acme, credentials(&request)).is_ok());
        // Another tenant's derived value is not this one's.
        let beta = TenantId::parse("beta").unwrap();
        assert!(authenticate(&config, &beta, credentials(&request)).is_err());
        // A listed tenant keeps its own entry.
        let listed = TenantId::parse("listed").unwrap();
        assert_eq!(
            config
                .tenant(&listed)
                .unwrap()
                .header
                .as_ref()
                .unwrap()
                .name,
            "X-Other"
        );
    }

    #[test]
    fn a_derived_config_needs_a_long_master_and_a_method() {
        let error = |derived: serde_json::Value| {
            AuthConfig::from_json(
                &serde_json::json!({"tenants": {}, "derived": derived}).to_string(),
            )
            .unwrap_err()
            .to_string()
        };
        assert!(
            error(serde_json::json!({"masters": ["short"], "scope": "s", "header": "X-T"}))
                .contains("at least 32")
        );
        assert!(
            error(serde_json::json!({"masters": [MASTER], "scope": "s", "hmac": false}))
                .contains("a header or hmac")
        );
        assert!(
            error(serde_json::json!({"masters": [], "scope": "s", "hmac": true}))
                .contains("one master")
        );
        for scope in [
            serde_json::json!(null),
            serde_json::json!(" "),
            serde_json::json!("x".repeat(129)),
        ] {
            assert!(
                error(serde_json::json!({"masters": [MASTER], "scope": scope, "hmac": true}))
                    .contains("need a scope"),
                "{scope}"
            );
        }
        let without = AuthConfig::from_json(r#"{"tenants": {}}"#).unwrap();
        assert!(
            without.tenant(&TenantId::parse("acme").unwrap()).is_none(),
            "fail-closed"
        );
    }

    #[test]
    fn a_wrongly_typed_secret_is_refused_without_its_value_in_the_error() {
        let error = AuthConfig::from_json(
            r#"{"tenants": {"default": {"header": {"name": "X-Token", "values": "tok-9d41a7c2"}}}}"#,
        )
        .unwrap_err();
        let said = crate::error::error_chain(&error);
        assert!(!said.contains("tok-9d41a7c2"), "{said}");
        assert!(
            format!("{error:?}").find("tok-9d41a7c2").is_none(),
            "nor in its Debug"
        );
        assert!(said.contains("wrong type (expected a sequence)"), "{said}");
    }
}
