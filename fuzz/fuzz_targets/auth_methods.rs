//! Each auth method's parsing on any bytes, against an oracle: a request passes exactly when it
//! carries the configured credential (the header's value, Basic's user and password, the query's
//! single token, HMAC-SHA512 of `key&body`).
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use domain::auth::{self, AuthConfig, Credentials, IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER};
use domain::ids::TenantId;
use domain::intake;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sha2::Sha512;
use std::sync::LazyLock;

static AUTH: LazyLock<AuthConfig> = LazyLock::new(|| {
    AuthConfig::from_json(include_str!("../../infra/local/receiver-auth.json"))
        .unwrap_or_else(|error| panic!("the local auth configuration reads: {error}"))
});

const HEADER_TOKENS: [&str; 2] = ["local-dev-header-token", "local-dev-header-token-previous"];
const BASIC: &[u8] = b"tripletex:local-dev-basic-password";
const QUERY_TOKEN: &str = "local-dev-query-token";
const HMAC_SECRET: &str = "local-dev-hmac-secret";

fuzz_target!(|data: &[u8]| {
    let Some((&method, rest)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let mut query = Vec::new();
    let mut body: &[u8] = &[];
    let (tenant, expected) = match method % 4 {
        0 => {
            let Ok(value) = HeaderValue::from_bytes(rest) else {
                return;
            };
            headers.insert(HeaderName::from_static("x-tripletex-webhook-token"), value);
            (
                "default",
                HEADER_TOKENS.iter().any(|token| token.as_bytes() == rest),
            )
        }
        1 => {
            let Ok(value) = HeaderValue::from_bytes(rest) else {
                return;
            };
            headers.insert(http::header::AUTHORIZATION, value);
            ("basic-demo", basic_oracle(rest))
        }
        2 => {
            let Ok(raw) = std::str::from_utf8(rest) else {
                return;
            };
            query = intake::query_pairs(raw);
            let tokens: Vec<_> = query.iter().filter(|(name, _)| name == "token").collect();
            (
                "query-demo",
                tokens.len() == 1 && tokens[0].1 == QUERY_TOKEN,
            )
        }
        _ => {
            // signature \0 idempotency key \0 body
            let mut parts = rest.splitn(3, |b| *b == 0);
            let (Some(signature), Some(key), Some(rest_body)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return;
            };
            let (Ok(signature_value), Ok(key_value)) = (
                HeaderValue::from_bytes(signature),
                HeaderValue::from_bytes(key),
            ) else {
                return;
            };
            headers.insert(HeaderName::from_static(SIGNATURE_HEADER), signature_value);
            headers.insert(HeaderName::from_static(IDEMPOTENCY_KEY_HEADER), key_value);
            body = rest_body;
            let expected = !key.is_empty()
                && BASE64
                    .decode(signature.trim_ascii())
                    .is_ok_and(|presented| presented == hmac_sha512(key, body));
            ("hmac-demo", expected)
        }
    };
    let tenant = TenantId::parse(tenant).unwrap_or_else(|_| panic!("a local tenant reads"));
    let verdict = auth::authenticate(
        &AUTH,
        &tenant,
        Credentials {
            headers: &headers,
            query: &query,
            body,
        },
    );
    assert_eq!(verdict.is_ok(), expected, "{verdict:?}");
});

/// HMAC-SHA512 with the configured secret over `key&body`, computed here with the hmac crate
/// directly rather than with the domain's helper.
fn hmac_sha512(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(HMAC_SECRET.as_bytes())
        .unwrap_or_else(|_| panic!("HMAC takes a key of any length"));
    mac.update(key);
    mac.update(b"&");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// `Basic <base64 of user:password>`, the scheme in any case, spaces around the parts allowed.
fn basic_oracle(header: &[u8]) -> bool {
    let Ok(header) = std::str::from_utf8(header) else {
        return false;
    };
    let Some((scheme, encoded)) = header.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic")
        && BASE64.decode(encoded.trim()).ok().as_deref() == Some(BASIC)
}
