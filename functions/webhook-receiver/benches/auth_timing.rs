//! Does the auth check's time say anything about the secret? A statistical test in the manner of
//! dudect: for each method (custom header, Basic, query token, HMAC), wrong credentials of several
//! classes are checked in random interleaved order, each measurement timed, and Welch's t-test
//! compares every class with the baseline class (wrong first byte). |t| < 4.5 is the pass mark; a
//! larger |t| means the classes' times differ: a leak an attacker could measure.
//!
//! `cargo bench -p webhook-receiver --bench auth_timing -- --samples 1000000` (per class; the default)
//! prints |t| per pair, raw and with the slowest 10 % cropped (dudect's way with scheduling noise),
//! beside a control class that is the baseline again: on a shared machine the crop makes even the
//! control come apart (memory layout, timer steps), so the pass mark is judged on the raw |t| and
//! the cropped figures are read against the control's.
//! The test command runs a small smoke of it, which only shows that it runs: figures need the full run
//! in the bench profile.
//!
//! What a class varies is the relation between what was sent and the secret, never the cost of
//! reading what was sent: for the header, Basic and query methods every request sends the same
//! value and the classes configure different secrets (first byte wrong, last byte wrong, one byte
//! shorter or longer, right for a quarter, half or three quarters of its length); for HMAC the secret
//! is one and the signature sent differs in its bytes (a wrong length there is public: SHA-512 tags
//! are 64 bytes). An early-exit comparison would show in the last-byte and prefix classes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use domain::auth::{
    AuthConfig, Credentials, IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, authenticate, hmac_signature,
};
use domain::ids::TenantId;
use http::{HeaderMap, HeaderValue};

/// 40 characters: with SHA-256 padding, 39, 40 and 41 bytes all fill one 64-byte block.
const SECRET: &str = "k3y-0f-f0rty-ch4racters-f0r-th3-t1m1ng!!";
const BODY: &[u8] =
    br#"{"subscriptionId":1,"event":"product.update","id":7,"value":{"id":7,"version":2}}"#;
const IDEMPOTENCY_KEY: &str = "7d9f3c1e-2b4a-4c8d-9e0f-1a2b3c4d5e6f";
const BASELINE: &str = "first byte wrong";
const CONTROL: &str = "(the same again)";
/// Copies of each class, picked at random for each measurement.
const COPIES: usize = 16;
/// Checks of one class timed together as one measurement.
const CHECKS_PER_MEASUREMENT: usize = 8;
/// The slowest share of measurements left out of the cropped test.
const CROP: f64 = 0.9;

/// The wrong values of each class, made from the right one.
fn classes(right: &[u8], with_length: bool) -> Vec<(&'static str, Vec<u8>)> {
    let flip = |at: usize| {
        let mut bytes = right.to_vec();
        bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
        bytes
    };
    let n = right.len();
    // The control is the baseline again, in copies of its own: how far two classes that cannot
    // differ come apart on this machine is the yardstick for the others.
    let mut classes = vec![
        (BASELINE, flip(0)),
        (CONTROL, flip(0)),
        ("last byte wrong", flip(n - 1)),
    ];
    if with_length {
        classes.push(("one byte shorter", right[..n - 1].to_vec()));
        classes.push(("one byte longer", [right, b"x"].concat()));
    }
    classes.extend([
        ("right for 1/4", flip(n / 4)),
        ("right for 1/2", flip(n / 2)),
        ("right for 3/4", flip(3 * n / 4)),
    ]);
    classes
}

/// One request's credentials: headers and query.
struct Attempt {
    headers: HeaderMap,
    query: Vec<(String, String)>,
}

fn header(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(name, HeaderValue::from_str(value).unwrap());
    headers
}

fn config(tenant_config: &str) -> AuthConfig {
    AuthConfig::from_json(&format!(r#"{{"tenants": {{"default": {tenant_config}}}}}"#)).unwrap()
}

/// One class of one method: the config checked against, and what is sent.
struct Case {
    class: &'static str,
    config: AuthConfig,
    attempt: Attempt,
}

/// The classes of a method whose secret is configured as text: the same request, secrets that
/// differ from what it sends.
fn secret_classes(
    tenant_config: fn(&str) -> String,
    attempt: fn(&str) -> Attempt,
) -> (AuthConfig, Vec<Vec<Case>>) {
    let right = config(&tenant_config(SECRET));
    let classes = classes(SECRET.as_bytes(), true);
    let cases = copies(classes.len(), |index| {
        let (class, secret) = &classes[index];
        Case {
            class,
            config: config(&tenant_config(std::str::from_utf8(secret).unwrap())),
            attempt: attempt(SECRET),
        }
    });
    (right, cases)
}

/// Copies of each class's case, made round-robin so that where a copy sits in memory does not go
/// with its class (a layout effect would otherwise pass for a leak).
fn copies(classes: usize, make: impl Fn(usize) -> Case) -> Vec<Vec<Case>> {
    let mut cases: Vec<Vec<Case>> = (0..classes).map(|_| Vec::new()).collect();
    for _ in 0..COPIES {
        for (index, class) in cases.iter_mut().enumerate() {
            class.push(make(index));
        }
    }
    cases
}

fn header_attempt(value: &str) -> Attempt {
    Attempt {
        headers: header("x-token", value),
        query: Vec::new(),
    }
}

fn basic_attempt(password: &str) -> Attempt {
    Attempt {
        headers: header(
            "authorization",
            &format!("Basic {}", BASE64.encode(format!("tripletex:{password}"))),
        ),
        query: Vec::new(),
    }
}

fn query_attempt(value: &str) -> Attempt {
    Attempt {
        headers: HeaderMap::new(),
        query: vec![("token".to_owned(), value.to_owned())],
    }
}

fn hmac_attempt(signature: &str) -> Attempt {
    let mut headers = header(SIGNATURE_HEADER, signature);
    headers.insert(
        IDEMPOTENCY_KEY_HEADER,
        HeaderValue::from_static(IDEMPOTENCY_KEY),
    );
    Attempt {
        headers,
        query: Vec::new(),
    }
}

/// Each method: the config the right credential passes, its right attempt, and its classes (each
/// in several copies).
fn methods() -> Vec<(&'static str, AuthConfig, Attempt, Vec<Vec<Case>>)> {
    let mut methods = Vec::new();
    let (right, cases) = secret_classes(
        |secret| format!(r#"{{"header": {{"name": "X-Token", "values": ["{secret}"]}}}}"#),
        header_attempt,
    );
    methods.push(("custom header", right, header_attempt(SECRET), cases));
    let (right, cases) = secret_classes(
        |secret| {
            format!(
                r#"{{"basic": {{"credentials": [{{"username": "tripletex", "password": "{secret}"}}]}}}}"#
            )
        },
        basic_attempt,
    );
    methods.push(("basic", right, basic_attempt(SECRET), cases));
    let (right, cases) = secret_classes(
        |secret| format!(r#"{{"query": {{"parameter": "token", "values": ["{secret}"]}}}}"#),
        query_attempt,
    );
    methods.push(("query token", right, query_attempt(SECRET), cases));
    let hmac_config = || config(&format!(r#"{{"hmac": {{"secrets": ["{SECRET}"]}}}}"#));
    let tag = BASE64
        .decode(hmac_signature(SECRET, IDEMPOTENCY_KEY, BODY))
        .unwrap();
    let classes = classes(&tag, false);
    let cases = copies(classes.len(), |index| {
        let (class, wrong) = &classes[index];
        Case {
            class,
            config: hmac_config(),
            attempt: hmac_attempt(&BASE64.encode(wrong)),
        }
    });
    methods.push((
        "hmac",
        hmac_config(),
        hmac_attempt(&BASE64.encode(&tag)),
        cases,
    ));
    methods
}

/// Welch's t statistic of two samples.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let stats = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let ((na, ma, va), (nb, mb, vb)) = (stats(a), stats(b));
    (ma - mb) / (va / na + vb / nb).sqrt()
}

/// The measurements below the `share` quantile of both samples together.
fn cropped(a: &[f64], b: &[f64], share: f64) -> (Vec<f64>, Vec<f64>) {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(f64::total_cmp);
    let limit = all[((all.len() as f64 * share) as usize).min(all.len() - 1)];
    let keep = |x: &[f64]| x.iter().copied().filter(|v| *v <= limit).collect();
    (keep(a), keep(b))
}

/// A small fast generator for the interleaving (the order must not follow the class).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn main() {
    let mut samples: usize = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--samples" {
            samples = args
                .next()
                .and_then(|n| n.parse().ok())
                .expect("--samples N");
        }
    }
    let tenant = TenantId::default_tenant();
    let (mut worst_raw, mut worst_cropped, mut worst_control) = (0.0_f64, 0.0_f64, 0.0_f64);
    println!(
        "auth timing: {samples} measurements of {CHECKS_PER_MEASUREMENT} checks per class, Welch's t against \"{BASELINE}\""
    );
    for (method, right, right_attempt, cases) in methods() {
        let check = |config: &AuthConfig, attempt: &Attempt| {
            authenticate(
                config,
                &tenant,
                Credentials {
                    headers: &attempt.headers,
                    query: &attempt.query,
                    body: BODY,
                },
            )
        };
        assert!(
            check(&right, &right_attempt).is_ok(),
            "{method}: the right credential passes"
        );
        assert!(
            cases
                .iter()
                .flatten()
                .all(|c| check(&c.config, &c.attempt).is_err()),
            "{method}: every class is wrong"
        );

        let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); cases.len()];
        let mut order = XorShift(0x9e37_79b9_7f4a_7c15);
        // A warm-up, then measurements in random order until every class has its share. One
        // measurement is a few checks of one class, for a resolution well above the timer's.
        for _ in 0..10_000 {
            let case = &cases[order.below(cases.len())][order.below(COPIES)];
            black_box(check(black_box(&case.config), black_box(&case.attempt)).is_ok());
        }
        while times.iter().any(|t| t.len() < samples) {
            let class = order.below(cases.len());
            if times[class].len() >= samples {
                continue;
            }
            let case = black_box(&cases[class][order.below(COPIES)]);
            let started = Instant::now();
            for _ in 0..CHECKS_PER_MEASUREMENT {
                black_box(check(black_box(&case.config), black_box(&case.attempt)).is_ok());
            }
            times[class].push(started.elapsed().as_nanos() as f64);
        }
        println!("\n{method}:");
        println!(
            "  {:<18} {:>10} {:>10} {:>12}",
            "class", "median ns", "|t| raw", "|t| cropped"
        );
        let median = |t: &[f64]| {
            let mut sorted = t.to_vec();
            sorted.sort_by(f64::total_cmp);
            sorted[sorted.len() / 2]
        };
        println!(
            "  {:<18} {:>10.0} {:>10} {:>12}",
            BASELINE,
            median(&times[0]),
            "-",
            "-"
        );
        for (index, case) in cases.iter().enumerate().skip(1) {
            let name = case[0].class;
            let raw = welch_t(&times[0], &times[index]).abs();
            let (a, b) = cropped(&times[0], &times[index], CROP);
            let crop = welch_t(&a, &b).abs();
            if name == CONTROL {
                worst_control = worst_control.max(crop);
            } else {
                worst_raw = worst_raw.max(raw);
                worst_cropped = worst_cropped.max(crop);
            }
            println!(
                "  {name:<18} {:>10.0} {raw:>10.2} {crop:>12.2}",
                median(&times[index])
            );
        }
    }
    println!(
        "\nworst |t|: raw {worst_raw:.2} ({} the 4.5 pass mark); cropped {worst_cropped:.2}, where the \
control, which cannot differ, reaches {worst_control:.2}",
        if worst_raw < 4.5 { "under" } else { "OVER" }
    );
}
