//! Turns a Function URL (or HTTP API) request into an intake decision, carries it out, and answers.

use aws_adapters::secrets::SecretSource;
use aws_adapters::telemetry::LogJournal;
use domain::auth::{AuthConfig, IDEMPOTENCY_KEY_HEADER};
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::intake::{self, IncomingRequest, ReceiverLimits, Rejection, Verdict};
use domain::journal::{self, Entry, Receipt, Received};
use domain::message::{QueueMessage, WebhookMessage};
use domain::ports::{Journal, MessageQueue, TenantStates};
use domain::registry::CompanyState;
use jiff::Timestamp;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use tracing::warn;

/// Seconds a caller is asked to wait before retrying when the queue is down.
const RETRY_AFTER_SECONDS: &str = "5";

pub struct Receiver<Q> {
    auth: SecretSource<AuthConfig>,
    queue: Q,
    quarantine: Q,
    limits: ReceiverLimits,
    /// The company registry: a company being removed, or removed, is refused whatever it carries.
    registry: Option<Box<dyn TenantStates>>,
    journal: Box<dyn Journal>,
}

impl<Q: MessageQueue> Receiver<Q> {
    pub fn new(
        auth: SecretSource<AuthConfig>,
        queue: Q,
        quarantine: Q,
        limits: ReceiverLimits,
    ) -> Self {
        Self {
            auth,
            queue,
            quarantine,
            limits,
            registry: None,
            journal: Box::new(LogJournal),
        }
    }

    pub fn with_journal(mut self, journal: impl Journal + 'static) -> Self {
        self.journal = Box::new(journal);
        self
    }

    pub fn with_registry(mut self, registry: impl TenantStates + 'static) -> Self {
        self.registry = Some(Box::new(registry));
        self
    }

    /// Asked only of an authenticated request, so that a caller without credentials learns
    /// nothing of which companies exist.
    async fn refuses(&self, tenant: &TenantId) -> bool {
        match &self.registry {
            Some(registry) => registry
                .state_of(tenant)
                .await
                .is_some_and(CompanyState::refuses_webhooks),
            None => false,
        }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let request_id = request_id(&request);
        let (response, answered) = self.answer(&request, &request_id).await;
        self.journal.write(&Entry::Received(Received {
            at: journal::now(),
            request: request_id,
            tenant: answered.tenant.map(|tenant| tenant.to_string()),
            event: answered.event,
            id: answered.id,
            bytes: request.body().len() as u64,
            status: response.status().as_u16(),
            outcome: answered.outcome,
            reason: answered.reason.as_deref().map(journal::bounded),
            idempotency_key: request
                .headers()
                .get(IDEMPOTENCY_KEY_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(journal::bounded),
            source: matches!(
                answered.outcome,
                Receipt::Unauthorized | Receipt::MethodNotAllowed | Receipt::TooLarge
            )
            .then(|| source_address(&request))
            .flatten(),
        }));
        response
    }

    async fn answer(&self, request: &Request, request_id: &str) -> (Response<Body>, Answered) {
        let auth = self.auth.current().await;
        let query = intake::query_pairs(request.uri().query().unwrap_or_default());
        let path = request.raw_http_path();
        let incoming = IncomingRequest {
            method: request.method(),
            path,
            headers: request.headers(),
            query: &query,
            body: request.body().as_ref(),
            request_id,
            received_at: Timestamp::now(),
        };
        let verdict = intake::assess(&auth, &self.limits, &incoming);
        if let Verdict::Queue(message) | Verdict::Quarantine(message) = &verdict
            && self.refuses(&message.tenant).await
        {
            warn!(tenant = %message.tenant, request_id, "webhook refused: the company is removed");
            let response = respond(
                StatusCode::GONE,
                json!({"error": "this company is no longer served by this receiver"}),
            );
            return (response, Answered::about(message, Receipt::Gone));
        }
        match verdict {
            Verdict::Reject(rejection) => reject(rejection, &self.limits, request_id),
            Verdict::Queue(message) => {
                let answered = Answered::about(&message, Receipt::Queued);
                match self.queue.send(&QueueMessage::from(&message)).await {
                    Ok(_) => (
                        respond(StatusCode::OK, json!({"status": "queued"})),
                        answered,
                    ),
                    Err(error) => queue_unavailable(&error, request_id, answered),
                }
            }
            Verdict::Quarantine(message) => {
                let reason = message.quarantine_reason.clone().unwrap_or_default();
                let answered = Answered {
                    reason: Some(reason.clone()),
                    ..Answered::about(&message, Receipt::Quarantined)
                };
                match self.quarantine.send(&QueueMessage::from(&message)).await {
                    Ok(message_id) => {
                        warn!(tenant = %message.tenant, reason, message_id, request_id, "webhook quarantined");
                        let response = respond(
                            StatusCode::ACCEPTED,
                            json!({"status": "quarantined", "reason": reason}),
                        );
                        (response, answered)
                    }
                    Err(error) => queue_unavailable(&error, request_id, answered),
                }
            }
        }
    }
}

/// What the journal says of an answer: its class, and what the request was about once the caller
/// proved who it is.
struct Answered {
    outcome: Receipt,
    tenant: Option<TenantId>,
    event: Option<String>,
    id: Option<i64>,
    reason: Option<String>,
}

impl Answered {
    fn about(message: &WebhookMessage, outcome: Receipt) -> Self {
        Self {
            outcome,
            tenant: Some(message.tenant.clone()),
            event: message.event.clone(),
            id: message.object_id,
            reason: None,
        }
    }

    fn refused(outcome: Receipt, reason: Option<String>) -> Self {
        Self {
            outcome,
            tenant: None,
            event: None,
            id: None,
            reason,
        }
    }
}

fn reject(
    rejection: Rejection,
    limits: &ReceiverLimits,
    request_id: &str,
) -> (Response<Body>, Answered) {
    match rejection {
        Rejection::Unauthorized(failure) => {
            // The reason is logged for the operator; the caller learns nothing about it.
            warn!(reason = %failure, request_id, "request refused");
            let response = respond(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
            (
                response,
                Answered::refused(Receipt::Unauthorized, Some(failure.to_string())),
            )
        }
        Rejection::MethodNotAllowed => {
            let mut response = respond(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "method not allowed; use POST"}),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            (response, Answered::refused(Receipt::MethodNotAllowed, None))
        }
        Rejection::PayloadTooLarge => {
            warn!(
                limit_bytes = limits.max_body_bytes,
                request_id, "request body over the limit"
            );
            let response = respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "payload too large", "limitBytes": limits.max_body_bytes}),
            );
            (response, Answered::refused(Receipt::TooLarge, None))
        }
    }
}

fn queue_unavailable(
    error: &domain::ports::QueueError,
    request_id: &str,
    answered: Answered,
) -> (Response<Body>, Answered) {
    tracing::error!(error = %error_chain(error), request_id, "webhook not queued; asking the caller to retry");
    let mut response = respond(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "temporarily unable to accept the webhook; retry later"}),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    let answered = Answered {
        outcome: Receipt::QueueDown,
        reason: Some(error_chain(error)),
        ..answered
    };
    (response, answered)
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The caller's address as the front door saw it.
fn source_address(request: &Request) -> Option<String> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.http.source_ip.as_deref().map(journal::bounded)
        }
        _ => None,
    }
}

/// The front door's request id (what its own logs show), else the invocation's.
fn request_id(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
    .or_else(|| {
        request
            .lambda_context_ref()
            .map(|context| context.request_id.clone())
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use domain::auth::AuthConfig;
    use test_support::RecordingQueue;

    use super::*;

    /// The local-run auth configuration, whose sample values the events/ files carry.
    const LOCAL_AUTH: &str = include_str!("../../../infra/local/receiver-auth.json");

    macro_rules! event {
        ($name:literal) => {
            include_str!(concat!("../../../events/webhook-receiver/", $name, ".json"))
        };
    }

    struct Harness {
        receiver: Receiver<RecordingQueue>,
        queue: RecordingQueue,
        quarantine: RecordingQueue,
        journal: test_support::RecordingJournal,
    }

    impl Harness {
        fn new() -> Self {
            let auth = AuthConfig::from_json(LOCAL_AUTH).unwrap();
            let queue = RecordingQueue::new();
            let quarantine = RecordingQueue::new();
            let journal = test_support::RecordingJournal::default();
            let receiver = Receiver::new(
                SecretSource::Fixed(Arc::new(auth)),
                queue.clone(),
                quarantine.clone(),
                ReceiverLimits::default(),
            )
            .with_journal(journal.clone());
            Self {
                receiver,
                queue,
                quarantine,
                journal,
            }
        }

        async fn post(&self, event: &str) -> Response<Body> {
            let request = lambda_http::request::from_str(event).unwrap();
            self.receiver.handle(request).await
        }
    }

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    fn event_body(event: &str) -> String {
        let event: serde_json::Value = serde_json::from_str(event).unwrap();
        event["body"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn queues_each_sample_webhook_with_its_attributes() {
        let cases = [
            (
                event!("function-url-product-create"),
                "default",
                "product.create",
                "1001",
            ),
            (
                event!("function-url-product-update"),
                "default",
                "product.update",
                "1001",
            ),
            (
                event!("function-url-order-delete"),
                "default",
                "order.delete",
                "2002",
            ),
            (
                event!("function-url-invoice-charged"),
                "basic-demo",
                "invoice.charged",
                "3003",
            ),
            (
                event!("function-url-customer-update"),
                "query-demo",
                "customer.update",
                "4004",
            ),
            (
                event!("function-url-voucher-create"),
                "hmac-demo",
                "voucher.create",
                "5005",
            ),
        ];
        for (event, tenant, name, object_id) in cases {
            let harness = Harness::new();
            let response = harness.post(event).await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{name}: {:?}",
                response.body()
            );
            assert_eq!(body_json(&response), json!({"status": "queued"}));
            let sent = harness.queue.sent();
            assert_eq!(sent.len(), 1, "{name}");
            let message = &sent[0];
            assert_eq!(
                message.body,
                event_body(event),
                "{name}: body is queued as sent"
            );
            assert_eq!(message.attribute("bodyEncoding"), Some("raw"));
            assert_eq!(message.attribute("tenant"), Some(tenant), "{name}");
            assert_eq!(message.attribute("event"), Some(name));
            assert_eq!(message.attribute("objectId"), Some(object_id));
            assert!(
                message.attribute("requestId").is_some(),
                "{name}: request id kept"
            );
            assert!(harness.quarantine.sent().is_empty());
        }
    }

    #[tokio::test]
    async fn keeps_the_idempotency_key_of_a_signed_delivery() {
        let harness = Harness::new();
        harness.post(event!("function-url-voucher-create")).await;
        let sent = harness.queue.sent();
        assert_eq!(
            sent[0].attribute("idempotencyKey"),
            Some("9b0a3c52-5f3e-4a8e-9d7c-2f51a1c0e001")
        );
        assert_eq!(sent[0].attribute("subscriptionId"), Some("56"));
    }

    #[tokio::test]
    async fn refuses_forged_and_anonymous_requests_with_one_answer() {
        for event in [
            event!("function-url-forged-header"),
            event!("function-url-forged-hmac"),
            event!("function-url-no-auth"),
            event!("function-url-unknown-tenant"),
        ] {
            let harness = Harness::new();
            let response = harness.post(event).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(body_json(&response), json!({"error": "unauthorized"}));
            assert!(harness.queue.sent().is_empty() && harness.quarantine.sent().is_empty());
        }
    }

    #[tokio::test]
    async fn quarantines_authenticated_bodies_that_are_not_envelopes() {
        let cases = [
            (
                event!("function-url-invalid-json"),
                "body is not valid JSON",
            ),
            (
                event!("function-url-not-an-envelope"),
                "body is not an envelope",
            ),
        ];
        for (event, reason) in cases {
            let harness = Harness::new();
            let response = harness.post(event).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            assert_eq!(body_json(&response)["status"], "quarantined");
            let quarantined = harness.quarantine.sent();
            assert_eq!(quarantined.len(), 1);
            assert_eq!(quarantined[0].body, event_body(event), "kept as sent");
            let stored_reason = quarantined[0].attribute("quarantineReason").unwrap();
            assert!(stored_reason.starts_with(reason), "{stored_reason}");
            assert!(harness.queue.sent().is_empty());
        }
    }

    #[tokio::test]
    async fn every_answer_is_one_journal_line_with_its_class_and_no_credential() {
        let harness = Harness::new();
        let mut too_large: serde_json::Value =
            serde_json::from_str(event!("function-url-product-create")).unwrap();
        too_large["body"] = json!(" ".repeat(domain::intake::DEFAULT_MAX_BODY_BYTES + 1));
        let too_large = too_large.to_string();
        for event in [
            event!("function-url-voucher-create"),
            event!("function-url-not-an-envelope"),
            event!("function-url-forged-header"),
            event!("function-url-get-method"),
            too_large.as_str(),
        ] {
            harness.post(event).await;
        }
        harness.queue.set_unavailable(true);
        harness.post(event!("function-url-product-create")).await;

        let entries = harness.journal.entries();
        type Line<'a> = (u16, Receipt, Option<&'a str>, Option<&'a str>, Option<i64>);
        let lines: Vec<Line> = entries
            .iter()
            .map(|entry| match entry {
                Entry::Received(r) => (
                    r.status,
                    r.outcome,
                    r.tenant.as_deref(),
                    r.event.as_deref(),
                    r.id,
                ),
                other => panic!("the receiver wrote {other:?}"),
            })
            .collect();
        assert_eq!(
            lines,
            [
                (
                    200,
                    Receipt::Queued,
                    Some("hmac-demo"),
                    Some("voucher.create"),
                    Some(5005)
                ),
                (202, Receipt::Quarantined, Some("default"), None, None),
                (401, Receipt::Unauthorized, None, None, None),
                (405, Receipt::MethodNotAllowed, None, None, None),
                (413, Receipt::TooLarge, None, None, None),
                (
                    503,
                    Receipt::QueueDown,
                    Some("default"),
                    Some("product.create"),
                    Some(1001)
                ),
            ]
        );
        let Entry::Received(signed) = &entries[0] else {
            unreachable!()
        };
        assert!(signed.idempotency_key.is_some(), "Tripletex's key is kept");
        assert_eq!(signed.source, None, "a request taken keeps no address");
        let Entry::Received(refused) = &entries[2] else {
            unreachable!()
        };
        assert!(
            refused.source.is_some(),
            "who knocked with a wrong credential"
        );
        assert_eq!(
            signed.request,
            harness.queue.sent()[0].attribute("requestId").unwrap(),
            "the id the message carries on"
        );
        let written = serde_json::to_string(&entries).unwrap();
        for credential in [
            "local-dev-header-token",
            "local-dev-hmac-secret",
            "guessed-token",
        ] {
            assert!(!written.contains(credential), "{credential} in {written}");
        }
    }

    #[tokio::test]
    async fn answers_405_with_allow_header_to_other_methods() {
        let harness = Harness::new();
        let response = harness.post(event!("function-url-get-method")).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
    }

    #[tokio::test]
    async fn answers_413_to_a_body_over_the_limit() {
        let mut event: serde_json::Value =
            serde_json::from_str(event!("function-url-product-create")).unwrap();
        event["body"] = json!(" ".repeat(domain::intake::DEFAULT_MAX_BODY_BYTES + 1));
        let harness = Harness::new();
        let response = harness.post(&event.to_string()).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(harness.queue.sent().is_empty());
    }

    #[tokio::test]
    async fn answers_503_and_never_2xx_when_the_queue_is_down() {
        let harness = Harness::new();
        harness.queue.set_unavailable(true);
        harness.quarantine.set_unavailable(true);
        for event in [
            event!("function-url-product-create"),
            event!("function-url-invalid-json"),
        ] {
            let response = harness.post(event).await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        }
    }

    #[tokio::test]
    async fn decodes_a_base64_encoded_body_before_checking_it() {
        // Function URLs base64-encode bodies whose content type is not text.
        let mut event: serde_json::Value =
            serde_json::from_str(event!("function-url-product-create")).unwrap();
        let body = event["body"].as_str().unwrap().to_owned();
        event["body"] = json!(BASE64.encode(body.as_bytes()));
        event["isBase64Encoded"] = json!(true);
        event["headers"]["content-type"] = json!("application/octet-stream");
        let harness = Harness::new();
        let response = harness.post(&event.to_string()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(harness.queue.sent()[0].body, body);
    }

    #[tokio::test]
    async fn a_removed_company_is_refused_whatever_it_carries_and_nothing_is_queued() {
        use domain::ports::CompanyRegistry as _;
        use domain::registry::RegisteredCompany;
        let ledger = test_support::InMemoryResyncLedger::new();
        let tenant = TenantId::parse("hmac-demo").unwrap();
        let company = RegisteredCompany::added(tenant.clone(), 5, "firm", Timestamp::UNIX_EPOCH);
        ledger.add(&company).await.unwrap();
        let ttl = std::time::Duration::ZERO;
        let harness = Harness::new();
        let receiver = harness.receiver.with_registry(
            aws_adapters::companies::CachedRegistry::load(ledger.clone(), ttl)
                .await
                .unwrap(),
        );
        let post = |event: &'static str| {
            let request = lambda_http::request::from_str(event).unwrap();
            receiver.handle(request)
        };

        let onboarding = post(event!("function-url-voucher-create")).await;
        assert_eq!(
            onboarding.status(),
            StatusCode::OK,
            "an onboarding company is served"
        );

        for (from, to) in [
            (CompanyState::Onboarding, CompanyState::Offboarding),
            (CompanyState::Offboarding, CompanyState::Removed),
        ] {
            ledger
                .change_state(&tenant, from, to, Timestamp::now())
                .await
                .unwrap();
            let refused = post(event!("function-url-voucher-create")).await;
            assert_eq!(refused.status(), StatusCode::GONE, "{to:?}");
            assert_eq!(
                body_json(&refused),
                json!({"error": "this company is no longer served by this receiver"})
            );
        }
        let other = post(event!("function-url-product-create")).await;
        assert_eq!(
            other.status(),
            StatusCode::OK,
            "another company is untouched"
        );
        assert_eq!(harness.queue.sent().len(), 2);
        assert!(harness.quarantine.sent().is_empty());

        let unauthenticated = lambda_http::request::from_str(
            &event!("function-url-voucher-create").replace("x-request-signature", "x-nothing"),
        )
        .unwrap();
        assert_eq!(
            receiver.handle(unauthenticated).await.status(),
            StatusCode::UNAUTHORIZED,
            "a caller without credentials learns nothing of the registry"
        );
    }
}
