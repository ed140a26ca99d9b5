//! The receiver's whole pure path: a Function URL event, read by the receiver's own front door
//! (functions/webhook-receiver/src/front_door.rs, compiled here as it is), then the request the
//! handler builds from it, auth, the envelope and the queued message. Beyond "never
//! panics": what it queues, the worker can apply; what it quarantines, the worker would refuse; and
//! whatever it sends fits in SQS.
#![no_main]

use domain::auth::AuthConfig;
use domain::intake::{self, IncomingRequest, ReceiverLimits, Verdict};
use domain::message::{QueueMessage, WebhookMessage};
use domain::record::change_from_message;
use jiff::Timestamp;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::RequestContext;
use lambda_http::{Context, RequestExt};
use libfuzzer_sys::fuzz_target;
use std::cell::Cell;
use std::sync::{LazyLock, Once};

#[path = "../../functions/webhook-receiver/src/front_door.rs"]
mod front_door;

thread_local! {
    static IN_FRONT_DOOR: Cell<bool> = const { Cell::new(false) };
}

/// libFuzzer's hook aborts on every panic; the front door catches lambda_http's on purpose, so a
/// panic inside it unwinds to the front door's `catch_unwind` as it does in the function.
fn let_the_front_door_catch() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_FRONT_DOOR.get() {
                abort(info);
            }
        }));
    });
}

/// The local run's configuration: one tenant per auth method, whose values the seed events carry.
static AUTH: LazyLock<AuthConfig> = LazyLock::new(|| {
    AuthConfig::from_json(include_str!("../../infra/local/receiver-auth.json"))
        .unwrap_or_else(|error| panic!("the local auth configuration reads: {error}"))
});

/// SQS's limit on a message: body, attribute names, types and values together.
const SQS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The runtime refuses an event it cannot deserialise before the handler runs.
    let Ok(event) = serde_json::from_str::<ApiGatewayV2httpRequest>(text) else {
        return;
    };
    let_the_front_door_catch();
    IN_FRONT_DOOR.set(true);
    let read = front_door::read(event, Context::default());
    IN_FRONT_DOOR.set(false);
    let Ok(request) = read else {
        assert_eq!(
            front_door::answer(front_door::unreadable()).status_code,
            400
        );
        return;
    };
    let query = intake::query_pairs(request.uri().query().unwrap_or_default());
    let request_id = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
    .unwrap_or_default();
    let received_at = Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
    let incoming = IncomingRequest {
        method: request.method(),
        path: request.raw_http_path(),
        headers: request.headers(),
        query: &query,
        body: request.body().as_ref(),
        request_id: &request_id,
        received_at,
    };
    match intake::assess(&AUTH, &ReceiverLimits::default(), &incoming) {
        Verdict::Reject(rejection) => {
            assert!(rejection.status().is_client_error(), "{rejection:?}");
        }
        Verdict::Queue(message) => {
            assert_eq!(message.body.as_bytes(), incoming.body, "queued as sent");
            let queued = fits_sqs(&message);
            let change = change_from_message(
                Some(&queued.body),
                |name| queued.attribute(name),
                received_at,
            );
            let change = change.unwrap_or_else(|error| {
                panic!("the worker cannot apply a queued message: {error}")
            });
            assert_eq!(Some(change.key.object_id), message.object_id);
            assert_eq!(change.key.tenant, message.tenant);
        }
        Verdict::Quarantine(message) => {
            assert!(message.quarantine_reason.is_some());
            let quarantined = fits_sqs(&message);
            assert!(
                change_from_message(
                    Some(&quarantined.body),
                    |name| quarantined.attribute(name),
                    received_at,
                )
                .is_err(),
                "the worker would apply what the receiver quarantined"
            );
        }
    }
});

fn fits_sqs(message: &WebhookMessage) -> QueueMessage {
    let queued = QueueMessage::from(message);
    let mut size = queued.body.len();
    assert!(sqs_text(&queued.body), "body SQS refuses");
    for (name, value) in &queued.attributes {
        assert!(!value.is_empty(), "SQS refuses an empty attribute {name}");
        assert!(sqs_text(value), "attribute {name} SQS refuses: {value:?}");
        size += name.len() + "String".len() + value.len();
    }
    assert!(size <= SQS_MAX_MESSAGE_BYTES, "{size} bytes");
    queued
}

/// The characters SQS takes in a body or a string attribute.
fn sqs_text(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}
