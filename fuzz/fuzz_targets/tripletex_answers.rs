//! The Tripletex client's reading of answers on any bytes: subscription pages, object list pages
//! (ids and versions, and objects in full), session and event answers, and error envelopes. The
//! first byte picks the answer; the rest is its body.
#![no_main]

use std::collections::BTreeMap;

use domain::sync::{FetchedObject, Listed};
use domain::tripletex::{
    EventDescription, ListPage, SessionToken, Single, Subscription, api_error, parse_answer,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 7 {
        0 => {
            if let Ok(page) = parse_answer::<ListPage<Subscription>>(body) {
                for subscription in &page.values {
                    let _ = format!("{subscription:?}");
                }
            }
        }
        1 => {
            let _ = parse_answer::<Single<Subscription>>(body);
        }
        2 => {
            if let Ok(page) = parse_answer::<ListPage<Listed>>(body) {
                assert!(page.values.len() <= body.len());
            }
        }
        3 => {
            let Ok(page) = parse_answer::<ListPage<Box<RawValue>>>(body) else {
                return;
            };
            for raw in page.values {
                let text = raw.get().to_owned();
                let Ok(object) = FetchedObject::read(raw) else {
                    continue;
                };
                assert_eq!(object.value.get(), text, "kept exactly as received");
                // The raw scan lets escapes through that a full read refuses (a lone `\ud800`):
                // such a value reaches the worker, which quarantines it with its reason.
                if let Ok(json) = serde_json::from_str::<Value>(&text) {
                    assert_eq!(json.get("id").and_then(Value::as_i64), Some(object.id));
                }
            }
        }
        4 => {
            let _ = parse_answer::<Single<SessionToken>>(body);
        }
        5 => {
            let _ = parse_answer::<Single<BTreeMap<String, EventDescription>>>(body);
        }
        _ => {
            let status = 400 + u16::from(body.first().copied().unwrap_or(0)) % 200;
            let error = api_error(status, body);
            assert_eq!(error.status, status, "the HTTP status is kept");
            let _ = error.to_string();
        }
    }
});
