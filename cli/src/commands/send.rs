//! `send`: a webhook posted to the deployment's receiver exactly as Tripletex posts one (the
//! company's target URL, header, signature), then followed until the worker has stored it.
//!
//! It never makes an object up. A made-up version would outrank the real one in the copy and be
//! kept, as newer; a made-up delete would leave a tombstone, and tombstones are final. So an upsert
//! carries the object as Tripletex has it now, and a delete is only sent for an object the copy has
//! seen and Tripletex no longer has (an id never seen may be given to a new object later, which a
//! tombstone would then block): whatever `send` stores is true.

use crate::context::{Answer, CliError, Context, object_key, tripletex_now};
use crate::ops;
use crate::render::stored;

use domain::auth::{IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, hmac_signature};
use domain::envelope::{EventName, OutgoingEnvelope};
use domain::ids::Secret;
use domain::keeper::KeeperSettings;
use serde::Serialize;

use crate::ops::tables::StoredObject;
use crate::tripletex::InTripletex;

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The event, e.g. customer.update or product.delete.
    event: String,
    id: i64,
    #[arg(long, default_value = "default")]
    company: String,
    /// How long to wait for the worker.
    #[arg(long, default_value_t = 120)]
    timeout_seconds: u64,
}

pub async fn run(ctx: &Context, args: &SendArgs) -> Result<Answer, CliError> {
    let sent = send(ctx, args).await?;
    let needs = sent.needs_a_person();
    ctx.answer(&sent, render, needs)
}

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

impl From<SendRefused> for CliError {
    fn from(error: SendRefused) -> Self {
        Self::Command(Box::new(error))
    }
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
        (true, None) => None,
        // Tripletex's object, parsed once already: its text again cannot fail.
        (false, Some(now)) => serde_json::value::to_raw_value(&now.value).ok(),
        (true, Some(_)) => return Err(SendRefused::StillInTripletex { object, id }),
        (false, None) => return Err(SendRefused::NotInTripletex { object, id }),
    };
    let envelope = OutgoingEnvelope {
        subscription_id: None,
        event: event.as_str(),
        id,
        value: value.as_deref(),
    };
    Ok(envelope.body().into_bytes())
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
    /// The worker handled it, but the object's value was erased on request (`forget`) at this
    /// version or a later one: only a newer version than that is stored again.
    Forgotten,
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
    // An accepted upsert clears the mark; one still there refused this upsert.
    if now.forgotten_at.is_some() && !now.deleted && expected != Expected::Deleted {
        return Progress::Forgotten;
    }
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

/// The company's webhook settings as the keeper gives them to Tripletex: the same URL and
/// credentials, for this event.
async fn company_settings(
    ctx: &Context,
    event: &EventName,
    tenant: &domain::ids::TenantId,
) -> Result<KeeperSettings, CliError> {
    use domain::auth::AuthConfig;
    use domain::keeper::{DEFAULT_RESYNC_LOOKBACK, KeeperPolicy};

    let deployment = &ctx.deployment;
    let (Some(receiver_url), Some(auth_secret)) = (
        deployment.receiver_url.as_deref(),
        deployment.receiver_auth_secret.as_deref(),
    ) else {
        return Err(CliError::NoReceiver);
    };
    let auth_json = ops::secret_text(&ctx.sdk, auth_secret, "the receiver auth secret").await?;
    let auth = AuthConfig::from_json(&auth_json).map_err(CliError::ReceiverAuth)?;
    let policy = KeeperPolicy {
        receiver_url: receiver_url.to_owned(),
        events: vec![event.as_str().to_owned()],
        fields: deployment
            .object_fields
            .clone()
            .unwrap_or_else(|| "*".into()),
        reenable: Default::default(),
        resync_lookback: DEFAULT_RESYNC_LOOKBACK,
        dry_run: false,
    };
    KeeperSettings::for_tenant(&policy, tenant, auth.tenant(tenant).as_deref(), false)
        .map_err(CliError::Settings)
}

/// The delivery posted to the receiver: its status and its answer (JSON when it is).
async fn post(delivery: Delivery) -> Result<(u16, serde_json::Value), CliError> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(CliError::Receiver)?;
    let mut post = client.post(delivery.url.expose()).body(delivery.body);
    for (name, value) in &delivery.headers {
        post = post.header(name.as_str(), value.expose());
    }
    // The error would name the URL, which can carry credentials: say only that it failed.
    let response = post
        .send()
        .await
        .map_err(|error| CliError::Receiver(error.without_url()))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let answer = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok((status, answer))
}

/// How often `send` reads the stored copy while it waits for the worker.
const SEND_POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Posts the company's webhook for the object as Tripletex has it now, then reads the copy until
/// the worker has stored it (or the time is up).
async fn send(ctx: &Context, args: &SendArgs) -> Result<Sent, CliError> {
    let (deployment, dynamodb, sqs) = (&ctx.deployment, &ctx.dynamodb(), &ctx.sqs());
    let (id, company) = (args.id, args.company.as_str());
    let timeout = std::time::Duration::from_secs(args.timeout_seconds);
    let event = EventName::parse(&args.event)
        .map_err(|error| CliError::NotAnEvent(args.event.clone(), error))?;
    let key = object_key(ctx, company, event.object(), id).await?;
    let tenant = &key.tenant;
    let settings = company_settings(ctx, &event, tenant).await?;
    let now = tripletex_now(ctx, company, event.object(), id, &settings.fields).await?;
    let key = key.to_string();
    let payloads = ctx.payloads();
    let before =
        ops::tables::stored_object(dynamodb, &payloads, &deployment.objects_table, &key).await?;
    let body = envelope(&event, id, now.as_ref(), before.as_ref())?;
    let expected = Expected::of(now.as_ref());

    let started = std::time::Instant::now();
    // The prefix makes it a probe: the worker records the key on the item whatever it writes.
    let idempotency_key = format!(
        "{}{}-{}",
        domain::dedup::SEND_PROBE_PREFIX,
        jiff::Timestamp::now().as_nanosecond(),
        std::process::id()
    );
    let delivery = delivery(&settings, body, &idempotency_key);
    let (receiver_status, receiver_answer) = post(delivery).await?;
    let mut stored = before.clone();
    let mut state = Progress::Waiting;
    if receiver_status == 200 {
        let deadline = started + timeout;
        while state == Progress::Waiting && std::time::Instant::now() < deadline {
            tokio::time::sleep(SEND_POLL_EVERY).await;
            stored =
                ops::tables::stored_object(dynamodb, &payloads, &deployment.objects_table, &key)
                    .await?;
            state = progress(expected, &idempotency_key, before.as_ref(), stored.as_ref());
        }
    }
    let webhook_queue_depth = if receiver_status == 200 && state == Progress::Waiting {
        let queue = crate::ops::queues::queue_status(
            sqs,
            "webhook queue",
            crate::ops::queues::QueueRole::Webhooks,
            &deployment.webhook_queue,
        )
        .await?;
        Some(queue.depth())
    } else {
        None
    };
    Ok(Sent {
        webhook_queue_depth,
        key,
        event: event.as_str().to_owned(),
        version: now.as_ref().and_then(|now| now.version),
        receiver_status,
        receiver_answer,
        progress: state,
        waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        stored,
    })
}

pub fn render(sent: &Sent) -> String {
    let version = sent
        .version
        .map_or_else(String::new, |v| format!(" at version {v}"));
    let mut out = format!(
        "sent {} for {}{version}: the receiver answered {} {}\n",
        sent.event, sent.key, sent.receiver_status, sent.receiver_answer
    );
    let seconds = sent.waited_ms as f64 / 1000.0;
    out.push_str(&match (sent.receiver_status, sent.progress) {
        (401, _) => {
            "the receiver refused the company's credentials as its auth secret holds them: \
check the secret and the receiver's cache (it rereads the secret every few minutes)\n"
                .to_owned()
        }
        (202, _) => "the receiver quarantined it: see `quarantine`\n".to_owned(),
        (200, Progress::Stored) => {
            format!("the worker stored it {seconds:.1} s after the send: the whole loop works\n")
        }
        (200, Progress::AlreadyCurrent) => format!(
            "the worker handled it {seconds:.1} s after the send; the copy held this version \
already, so its dedup changed nothing: the whole loop works\n"
        ),
        (200, Progress::Tombstoned) => "the worker handled it, but the copy holds a tombstone for \
this id, and no upsert lifts one: Tripletex gave a new object an id the copy saw deleted\n"
            .to_owned(),
        (200, Progress::Forgotten) => format!(
            "the worker handled it {seconds:.1} s after the send, and kept it out: the object was \
forgotten on request ({}), and only a version newer than the one it was forgotten at is stored again\n",
            sent.stored
                .as_ref()
                .and_then(|stored| stored.forgotten_at.as_deref())
                .unwrap_or("at a time the copy does not say")
        ),
        (200, Progress::Waiting) => match sent.webhook_queue_depth {
            Some(depth) if depth > 0 => format!(
                "the worker has not handled it after {seconds:.0} s; the webhook queue holds {depth} \
messages, which it may still be behind (wait longer with --timeout-seconds, or see `status`)\n"
            ),
            _ => format!(
                "the worker has not handled it after {seconds:.0} s, and the webhook queue is empty: \
see `dlq`, `quarantine` and the worker's logs\n"
            ),
        },
        (status, _) => format!("the receiver did not take it ({status}): nothing was queued\n"),
    });
    if let Some(object) = &sent.stored {
        out.push_str(&stored(object));
    }
    out
}

#[cfg(test)]
mod tests {
    use domain::auth::AuthConfig;
    use domain::ids::TenantId;
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
            serde_json::json!({"subscriptionId": null, "event": "customer.update", "id": 7,
                "value": {"id": 7, "version": 4, "name": "Ola"}})
        );
        let body = envelope(&event("customer.delete"), 7, None, Some(&stored(3, false))).unwrap();
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"subscriptionId": null, "event": "customer.delete", "id": 7, "value": null})
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
    fn an_upsert_of_a_forgotten_object_is_said_to_be_kept_out_and_a_delete_closes_it() {
        let forgotten = |deleted| StoredObject {
            last_probe: Some("probe-1".into()),
            forgotten_at: Some("2026-12-06T10:00:00Z".into()),
            ..stored(4, deleted)
        };
        let before = Some(stored(4, false));
        assert_eq!(
            progress(
                Expected::AtVersion(4),
                "probe-1",
                before.as_ref(),
                Some(&forgotten(false))
            ),
            Progress::Forgotten,
            "the worker's outcome was forgotten, not a dedup of a version held"
        );
        assert_eq!(
            progress(
                Expected::Deleted,
                "probe-1",
                before.as_ref(),
                Some(&forgotten(true))
            ),
            Progress::Stored,
            "a delete still writes its tombstone"
        );
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
