//! Time per request of the receiver's pure path: authenticate, parse the envelope, build the message.
//! `cargo bench -p webhook-receiver` prints the figures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use domain::auth::{AuthConfig, IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, hmac_signature};
use domain::intake::{IncomingRequest, ReceiverLimits, Verdict, assess};
use jiff::Timestamp;
use lambda_http::http::{HeaderMap, HeaderValue, Method};

const LOCAL_AUTH: &str = include_str!("../../../infra/local/receiver-auth.json");
const BODY: &[u8] = br#"{"subscriptionId":12,"event":"product.update","id":1001,"value":{"id":1001,"version":3,"number":"P-1001","name":"Kaffetrakter Deluxe","priceExcludingVatCurrency":1799.0}}"#;

fn bench(c: &mut Criterion) {
    let auth = match AuthConfig::from_json(LOCAL_AUTH) {
        Ok(auth) => auth,
        Err(error) => panic!("local auth config: {error}"),
    };
    let limits = ReceiverLimits::default();

    let mut header_auth = HeaderMap::new();
    header_auth.insert(
        "x-tripletex-webhook-token",
        HeaderValue::from_static("local-dev-header-token"),
    );
    let mut hmac_auth = HeaderMap::new();
    let key = "9b0a3c52-5f3e-4a8e-9d7c-2f51a1c0e001";
    let signature = hmac_signature("local-dev-hmac-secret", key, BODY);
    hmac_auth.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&signature).unwrap_or(HeaderValue::from_static("")),
    );
    hmac_auth.insert(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_static(key));

    for (name, path, headers) in [
        ("custom header", "/", &header_auth),
        ("hmac", "/t/hmac-demo", &hmac_auth),
    ] {
        let request = IncomingRequest {
            method: &Method::POST,
            path,
            headers,
            query: &[],
            body: BODY,
            request_id: "c1f4a1de-0000-4000-8000-000000000001",
            received_at: Timestamp::UNIX_EPOCH,
        };
        assert!(
            matches!(assess(&auth, &limits, &request), Verdict::Queue(_)),
            "{name} must be queued"
        );
        c.bench_function(&format!("receiver pure path ({name})"), |b| {
            b.iter(|| assess(black_box(&auth), &limits, black_box(&request)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
