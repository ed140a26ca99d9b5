//! The receiver with its real adapters, against SQS and Secrets Manager emulated by moto server.
//! The moto server is started by the test process itself (see `test_support::MotoServer`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_adapters::env::SecretLocation;
use aws_adapters::secrets::SecretSource;
use aws_adapters::sqs::SqsQueue;
use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use domain::auth::AuthConfig;
use domain::intake::ReceiverLimits;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use test_support::{MotoServer, free_port, sdk_config_for};
use webhook_receiver::handler::Receiver;

const LOCAL_AUTH: &str = include_str!("../../../infra/local/receiver-auth.json");
const PRODUCT_CREATE: &str =
    include_str!("../../../events/webhook-receiver/function-url-product-create.json");
const VOUCHER_CREATE: &str =
    include_str!("../../../events/webhook-receiver/function-url-voucher-create.json");
const NOT_AN_ENVELOPE: &str =
    include_str!("../../../events/webhook-receiver/function-url-not-an-envelope.json");

struct Stack {
    sqs: SqsClient,
    queue_url: String,
    quarantine_url: String,
    receiver: Receiver<SqsQueue>,
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

async fn stack() -> Stack {
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let sqs = SqsClient::new(&sdk);
    let mut urls = Vec::new();
    for name in [unique("webhooks"), unique("webhooks-quarantine")] {
        let created = sqs.create_queue().queue_name(name).send().await.unwrap();
        urls.push(created.queue_url.unwrap());
    }
    let auth = SecretSource::Fixed(AuthConfig::from_json(LOCAL_AUTH).unwrap().into());
    let receiver = Receiver::new(
        auth,
        SqsQueue::new(sqs.clone(), &urls[0]),
        SqsQueue::new(sqs.clone(), &urls[1]),
        ReceiverLimits::default(),
    );
    Stack {
        sqs,
        quarantine_url: urls.pop().unwrap(),
        queue_url: urls.pop().unwrap(),
        receiver,
    }
}

async fn post(receiver: &Receiver<SqsQueue>, event: &str) -> Response<Body> {
    receiver
        .handle(lambda_http::request::from_str(event).unwrap())
        .await
}

async fn receive_all(sqs: &SqsClient, queue_url: &str) -> Vec<Message> {
    let output = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    output.messages.unwrap_or_default()
}

fn attributes(message: &Message) -> HashMap<String, String> {
    message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| {
                    (
                        name.clone(),
                        value.string_value().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn event_body(event: &str) -> String {
    let event: serde_json::Value = serde_json::from_str(event).unwrap();
    event["body"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn queued_message_arrives_in_sqs_with_body_and_attributes() {
    let stack = stack().await;

    let response = post(&stack.receiver, VOUCHER_CREATE).await;

    assert_eq!(response.status(), StatusCode::OK);
    let messages = receive_all(&stack.sqs, &stack.queue_url).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].body(),
        Some(event_body(VOUCHER_CREATE).as_str())
    );
    let attributes = attributes(&messages[0]);
    assert_eq!(attributes["tenant"], "hmac-demo");
    assert_eq!(attributes["event"], "voucher.create");
    assert_eq!(attributes["objectId"], "5005");
    assert_eq!(attributes["subscriptionId"], "56");
    assert_eq!(
        attributes["requestId"],
        "c1f4a1de-0000-4000-8000-000000000006"
    );
    assert_eq!(
        attributes["idempotencyKey"],
        "9b0a3c52-5f3e-4a8e-9d7c-2f51a1c0e001"
    );
    assert_eq!(attributes["bodyEncoding"], "raw");
    assert!(attributes["receivedAt"].parse::<jiff::Timestamp>().is_ok());
    assert!(!attributes.contains_key("quarantineReason"));
    // No credential reaches the queue: the signature header and secrets are not in the message.
    let everything = format!("{:?} {:?}", messages[0].body(), attributes);
    for secret in ["local-dev-hmac-secret", "x-request-signature", "Qb+bPvR"] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into the queue"
        );
    }
    assert!(
        receive_all(&stack.sqs, &stack.quarantine_url)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn quarantine_queue_receives_the_bad_envelope_with_its_reason() {
    let stack = stack().await;

    let response = post(&stack.receiver, NOT_AN_ENVELOPE).await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let quarantined = receive_all(&stack.sqs, &stack.quarantine_url).await;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        quarantined[0].body(),
        Some(event_body(NOT_AN_ENVELOPE).as_str())
    );
    let attributes = attributes(&quarantined[0]);
    assert!(
        attributes["quarantineReason"].starts_with("body is not an envelope"),
        "{attributes:?}"
    );
    assert_eq!(attributes["tenant"], "default");
    assert!(receive_all(&stack.sqs, &stack.queue_url).await.is_empty());
}

#[tokio::test]
async fn answers_503_when_sqs_is_unreachable() {
    // Nothing listens on this loopback port: every SendMessage fails to connect.
    let unreachable = format!("http://127.0.0.1:{}", free_port().unwrap());
    let sqs = SqsClient::new(&sdk_config_for(&unreachable).await);
    let queue_url = format!("{unreachable}/123456789012/webhooks");
    let receiver = Receiver::new(
        SecretSource::Fixed(AuthConfig::from_json(LOCAL_AUTH).unwrap().into()),
        SqsQueue::new(sqs.clone(), &queue_url),
        SqsQueue::new(sqs, &queue_url),
        ReceiverLimits::default(),
    );

    for event in [PRODUCT_CREATE, NOT_AN_ENVELOPE] {
        let response = post(&receiver, event).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

#[tokio::test]
async fn reads_auth_from_secrets_manager_and_picks_up_a_rotation_after_the_ttl() {
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let secrets = SecretsManagerClient::new(&sdk);
    let name = unique("receiver-auth");
    let before = r#"{"tenants": {"default": {"header": {"name": "X-Tripletex-Webhook-Token", "values": ["old-value-0001"]}}}}"#;
    let created = secrets
        .create_secret()
        .name(&name)
        .secret_string(before)
        .send()
        .await
        .unwrap();
    let location = SecretLocation::SecretsManager {
        secret_id: created.arn.unwrap(),
    };
    let ttl = Duration::from_millis(300);
    let source = location
        .load(&secrets, AuthConfig::parse_secret, ttl)
        .await
        .unwrap();
    let stack = stack().await;
    let receiver = Receiver::new(
        source,
        SqsQueue::new(stack.sqs.clone(), &stack.queue_url),
        SqsQueue::new(stack.sqs.clone(), &stack.quarantine_url),
        ReceiverLimits::default(),
    );
    let with_token = |token: &str| {
        let mut event: serde_json::Value = serde_json::from_str(PRODUCT_CREATE).unwrap();
        event["headers"]["x-tripletex-webhook-token"] = token.into();
        event.to_string()
    };

    assert_eq!(
        post(&receiver, &with_token("old-value-0001"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        post(&receiver, &with_token("new-value-0002"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let after = r#"{"tenants": {"default": {"header": {"name": "X-Tripletex-Webhook-Token", "values": ["new-value-0002"]}}}}"#;
    secrets
        .put_secret_value()
        .secret_id(&name)
        .secret_string(after)
        .send()
        .await
        .unwrap();
    // Within the TTL the cached value is still in force.
    assert_eq!(
        post(&receiver, &with_token("new-value-0002"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;

    assert_eq!(
        post(&receiver, &with_token("new-value-0002"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        post(&receiver, &with_token("old-value-0001"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refuses_to_start_when_the_auth_secret_cannot_be_read() {
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let secrets = SecretsManagerClient::new(&sdk);
    let location = SecretLocation::SecretsManager {
        secret_id: unique("no-such-secret"),
    };
    let result = location
        .load(&secrets, AuthConfig::parse_secret, Duration::from_secs(60))
        .await;
    let Err(error) = result else {
        panic!("a missing secret must stop the cold start");
    };
    assert!(
        error
            .to_string()
            .starts_with("could not read secret no-such-secret"),
        "{error}"
    );
}
