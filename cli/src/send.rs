//! `send`: a webhook posted to the deployment's receiver exactly as Tripletex posts one (the
//! company's target URL, header, signature), then followed until the worker has stored it.
//!
//! It never makes an object up. A made-up version would outrank the real one in the copy and be
//! kept, as newer; a made-up delete would leave a tombstone, and tombstones are final. So an upsert
//! carries the object as Tripletex has it now, and a delete is only sent for an object the copy has
//! seen and Tripletex no longer has (an id never seen may be given to a new object later, which a
//! tombstone would then block): whatever `send` stores is true.

use domain::auth::{IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, hmac_signature};
use domain::envelope::EventName;
use domain::ids::Secret;
use domain::keeper::KeeperSettings;
use serde::Serialize;

use crate::aws::StoredObject;
use crate::tripletex::InTripletex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendRefused {
    #[error(
        "Tripletex still has {object} {id}: a delete would leave a tombstone in the copy, and tombstones are final"
    )]
    StillInTripletex { object: String, id: i64 },
    #[error("Tripletex has no {object} {id}: only its delete event can be sent")]
    NotInTripletex { object: String, id: i64 },
    #[error(
        "the copy has never held {object} {id}: a tombstone for an id Tripletex may give a new object later would block that object"
    )]
    NeverSeen { object: String, id: i64 },
}

/// The body of the webhook: the envelope Tripletex sends, with the object as it has it now.
pub fn envelope(
    event: &EventName,
    id: i64,
    now: Option<&InTripletex>,
    stored: Option<&StoredObject>,
) -> Result<Vec<u8>, SendRefused> {
    let object = event.object().to_owned();
    let value = match (event.is_delete(), now) {
        (true, None) if stored.is_none() => return Err(SendRefused::NeverSeen { object, id }),
        (true, None) => serde_json::Value::Null,
        (false, Some(now)) => now.value.clone(),
        (true, Some(_)) => return Err(SendRefused::StillInTripletex { object, id }),
        (false, None) => return Err(SendRefused::NotInTripletex { object, id }),
    };
    let envelope = serde_json::json!({"event": event.as_str(), "id": id, "value": value});
    Ok(envelope.to_string().into_bytes())
}

/// One POST as Tripletex makes it for the company: its target URL (which may carry Basic
/// credentials and a query token, so it is a secret), its headers and the exact signed body.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: Secret,
    pub headers: Vec<(String, Secret)>,
    pub body: Vec<u8>,
}

pub fn delivery(settings: &KeeperSettings, body: Vec<u8>, idempotency_key: &str) -> Delivery {
    let mut headers = vec![
        (
            "content-type".to_owned(),
            Secret::new("application/json".to_owned()),
        ),
        (
            IDEMPOTENCY_KEY_HEADER.to_owned(),
            Secret::new(idempotency_key.to_owned()),
        ),
    ];
    if let Some((name, value)) = &settings.auth_header {
        headers.push((name.clone(), value.clone()));
    }
    if let Some(secret) = &settings.hmac_secret {
        let signature = hmac_signature(secret.expose(), idempotency_key, &body);
        headers.push((SIGNATURE_HEADER.to_owned(), Secret::new(signature)));
    }
    Delivery {
        url: settings.target_url.clone(),
        headers,
        body,
    }
}

/// What was sent, as the copy will show it once the worker has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A tombstone.
    Deleted,
    /// The object at this version (or newer, if Tripletex changed it meanwhile).
    AtVersion(i64),
    /// An object without a version (the fields filter leaves it out): only its presence tells.
    Unversioned,
}

impl Expected {
    pub fn of(now: Option<&InTripletex>) -> Self {
        match now.map(|now| now.version) {
            None => Self::Deleted,
            Some(Some(version)) => Self::AtVersion(version),
            Some(None) => Self::Unversioned,
        }
    }

    fn held_by(self, stored: Option<&StoredObject>) -> bool {
        match (self, stored) {
            (_, None) => false,
            (Self::Deleted, Some(stored)) => stored.deleted,
            (Self::AtVersion(version), Some(stored)) => {
                !stored.deleted && stored.version.is_some_and(|stored| stored >= version)
            }
            (Self::Unversioned, Some(stored)) => !stored.deleted,
        }
    }
}

/// Where a sent webhook is, as the copy shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Progress {
    /// The worker has not handled it yet.
    Waiting,
    /// The worker handled it and wrote the object.
    Stored,
    /// The worker handled it; the copy held the object already, so its dedup changed nothing.
    AlreadyCurrent,
    /// The worker handled it, but the copy holds a tombstone, and no upsert lifts one.
    Tombstoned,
}

/// The worker has handled the delivery once the item carries its probe key (the store records it
/// whatever the write did); what the write did is read from the copy before and after.
pub fn progress(
    expected: Expected,
    probe: &str,
    before: Option<&StoredObject>,
    now: Option<&StoredObject>,
) -> Progress {
    let Some(now) = now.filter(|now| now.last_probe.as_deref() == Some(probe)) else {
        return Progress::Waiting;
    };
    if expected.held_by(before) {
        Progress::AlreadyCurrent
    } else if now.deleted && expected != Expected::Deleted {
        Progress::Tombstoned
    } else {
        Progress::Stored
    }
}

/// What `send` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    pub key: String,
    pub event: String,
    /// The version sent (none for a delete or an unversioned object).
    pub version: Option<i64>,
    /// The receiver's HTTP status and its answer's body.
    pub receiver_status: u16,
    pub receiver_answer: serde_json::Value,
    pub progress: Progress,
    pub waited_ms: u64,
    /// When the worker has not handled it in time: what the webhook queue held then, waiting and in
    /// flight (a backlog it may still be behind).
    pub webhook_queue_depth: Option<u64>,
    pub stored: Option<StoredObject>,
}

impl Sent {
    /// The loop worked: the receiver queued it and the worker handled it into the copy.
    pub fn needs_a_person(&self) -> bool {
        !(self.receiver_status == 200
            && matches!(self.progress, Progress::Stored | Progress::AlreadyCurrent))
    }
}

#[cfg(test)]
mod tests {
    use domain::auth::{AuthConfig, TenantId};
    use domain::intake::{self, IncomingRequest, ReceiverLimits, Verdict};
    use domain::keeper::{DEFAULT_RESYNC_LOOKBACK, KeeperPolicy};

    use super::*;

    fn event(name: &str) -> EventName {
        EventName::parse(name).unwrap()
    }

    fn now(version: Option<i64>) -> InTripletex {
        InTripletex {
            version,
            value: serde_json::json!({"id": 7, "version": version, "name": "Ola"}),
        }
    }

    fn stored(version: i64, deleted: bool) -> StoredObject {
        StoredObject::at("acme#customer#7", version, deleted)
    }

    #[test]
    fn an_upsert_carries_the_object_tripletex_has_and_a_delete_only_what_the_copy_saw_and_tripletex_no_longer_has()
     {
        let body = envelope(&event("customer.update"), 7, Some(&now(Some(4))), None).unwrap();
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"event": "customer.update", "id": 7,
                "value": {"id": 7, "version": 4, "name": "Ola"}})
        );
        let body = envelope(&event("customer.delete"), 7, None, Some(&stored(3, false))).unwrap();
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"event": "customer.delete", "id": 7, "value": null})
        );
        assert_eq!(
            envelope(&event("customer.delete"), 7, Some(&now(Some(4))), None),
            Err(SendRefused::StillInTripletex {
                object: "customer".into(),
                id: 7
            })
        );
        assert_eq!(
            envelope(&event("customer.create"), 7, None, None),
            Err(SendRefused::NotInTripletex {
                object: "customer".into(),
                id: 7
            })
        );
        assert_eq!(
            envelope(&event("customer.delete"), 7, None, None),
            Err(SendRefused::NeverSeen {
                object: "customer".into(),
                id: 7
            })
        );
    }

    /// The receiver's own rules accept what `send` posts for every way a company can be set up.
    #[test]
    fn the_receiver_accepts_each_kind_of_company_as_send_posts_for_it() {
        let auth = AuthConfig::from_json(
            r#"{"tenants": {
                "default": {"header": {"name": "X-Token", "values": ["header-value", "old"]}},
                "basic": {"basic": {"credentials": [{"username": "tx", "password": "p@ss:w/rd"}]}},
                "query": {"query": {"parameter": "token", "values": ["q&v=1"]}},
                "signed": {"hmac": {"secrets": ["a-long-hmac-secret"]},
                           "header": {"name": "X-Token", "values": ["both"]}}}}"#,
        )
        .unwrap();
        let policy = KeeperPolicy {
            receiver_url: "https://receiver.example/".into(),
            events: vec!["customer.update".into()],
            fields: "*".into(),
            reenable: Default::default(),
            resync_lookback: DEFAULT_RESYNC_LOOKBACK,
            dry_run: false,
        };
        let body = envelope(&event("customer.update"), 7, Some(&now(Some(4))), None).unwrap();
        for tenant in ["default", "basic", "query", "signed"] {
            let tenant = TenantId::parse(tenant).unwrap();
            let settings = KeeperSettings::for_tenant(
                &policy,
                &tenant,
                auth.tenant(&tenant).as_deref(),
                false,
            )
            .unwrap();
            let delivery = delivery(&settings, body.clone(), "send-1");
            let mut url = url::Url::parse(delivery.url.expose()).unwrap();
            let mut headers = http::HeaderMap::new();
            for (name, value) in &delivery.headers {
                headers.insert(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.expose().parse().unwrap(),
                );
            }
            // What an HTTP client makes of credentials in the URL.
            if !url.username().is_empty() {
                use base64::Engine as _;
                let user = urlencoding_decode(url.username());
                let password = urlencoding_decode(url.password().unwrap_or_default());
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                headers.insert("authorization", format!("Basic {basic}").parse().unwrap());
                url.set_username("").unwrap();
                url.set_password(None).unwrap();
            }
            let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let incoming = IncomingRequest {
                method: &http::Method::POST,
                path: url.path(),
                headers: &headers,
                query: &query,
                body: &delivery.body,
                request_id: "r",
                received_at: jiff::Timestamp::now(),
            };
            let verdict = intake::assess(&auth, &ReceiverLimits::default(), &incoming);
            assert!(
                matches!(&verdict, Verdict::Queue(message) if message.tenant == tenant),
                "{tenant}: {verdict:?}"
            );
        }
    }

    fn urlencoding_decode(text: &str) -> String {
        url::form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn progress_waits_for_the_probe_and_tells_a_fresh_write_from_a_copy_that_already_held_it() {
        use Progress::*;
        let marked = |version, deleted| StoredObject {
            last_probe: Some("probe-1".into()),
            ..stored(version, deleted)
        };
        let by_another = |version, deleted| StoredObject {
            last_probe: Some("probe-0".into()),
            ..stored(version, deleted)
        };
        let at = Expected::AtVersion(4);
        let cases = [
            (at, None, None, Waiting),
            // Written, but not by this delivery (the sync, or an earlier send): not yet.
            (at, None, Some(by_another(4, false)), Waiting),
            (at, None, Some(stored(4, false)), Waiting),
            (at, None, Some(marked(4, false)), Stored),
            (at, Some(stored(3, false)), Some(marked(3, false)), Stored),
            // Tripletex changed it again meanwhile: newer is stored too.
            (at, Some(stored(3, false)), Some(marked(5, false)), Stored),
            (
                at,
                Some(stored(4, false)),
                Some(marked(4, false)),
                AlreadyCurrent,
            ),
            (
                at,
                Some(stored(5, false)),
                Some(marked(5, false)),
                AlreadyCurrent,
            ),
            (at, Some(stored(2, true)), Some(marked(2, true)), Tombstoned),
            (
                Expected::Deleted,
                Some(stored(3, false)),
                Some(stored(3, false)),
                Waiting,
            ),
            (
                Expected::Deleted,
                Some(stored(3, false)),
                Some(marked(3, true)),
                Stored,
            ),
            (
                Expected::Deleted,
                Some(stored(3, true)),
                Some(marked(3, true)),
                AlreadyCurrent,
            ),
        ];
        for (expected, before, now, want) in cases {
            assert_eq!(
                progress(expected, "probe-1", before.as_ref(), now.as_ref()),
                want,
                "{expected:?} {before:?} {now:?}"
            );
        }
    }
}
