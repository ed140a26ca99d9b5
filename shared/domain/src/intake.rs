//! What the receiver does with a request, decided without I/O: refuse it, queue it, or quarantine it.

use http::{HeaderMap, Method, StatusCode};
use jiff::Timestamp;

use crate::auth::{self, AuthConfig, AuthFailure, Credentials, IDEMPOTENCY_KEY_HEADER};
use crate::envelope::WebhookEnvelope;
use crate::ids::TenantId;
use crate::message::{self, WebhookMessage};

/// Largest body taken by default: Lambda's own limit on a request (6 MB), so that any object
/// Tripletex sends is taken. What SQS cannot carry goes by claim check (`claim`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct ReceiverLimits {
    pub max_body_bytes: usize,
}

impl Default for ReceiverLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// A request as the receiver sees it, whatever front door (Function URL, HTTP API) it came through.
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    pub request_id: &'a str,
    pub received_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Reject(Rejection),
    /// A valid envelope from an authenticated caller.
    Queue(WebhookMessage),
    /// An authenticated caller sent something that is not a valid envelope: kept, with its reason.
    Quarantine(WebhookMessage),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MethodNotAllowed,
    PayloadTooLarge,
    Unauthorized(AuthFailure),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Checks run cheapest first: the method, the size (before hashing a large body), the caller, and
/// only then the body.
pub fn assess(
    auth: &AuthConfig,
    limits: &ReceiverLimits,
    request: &IncomingRequest<'_>,
) -> Verdict {
    if request.method != Method::POST {
        return Verdict::Reject(Rejection::MethodNotAllowed);
    }
    if request.body.len() > limits.max_body_bytes {
        return Verdict::Reject(Rejection::PayloadTooLarge);
    }
    let tenant = match tenant_from_path(request.path) {
        Ok(tenant) => tenant,
        Err(failure) => return Verdict::Reject(Rejection::Unauthorized(failure)),
    };
    let credentials = Credentials {
        headers: request.headers,
        query: request.query,
        body: request.body,
    };
    if let Err(failure) = auth::authenticate(auth, &tenant, credentials) {
        return Verdict::Reject(Rejection::Unauthorized(failure));
    }

    let (body, body_encoding) = message::message_body(request.body);
    let mut message = WebhookMessage {
        body,
        body_encoding,
        tenant,
        event: None,
        object_id: None,
        subscription_id: None,
        received_at: request.received_at,
        request_id: message::attribute_text(request.request_id),
        idempotency_key: request
            .headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .and_then(|value| message::copied_header_value(value.as_bytes())),
        quarantine_reason: None,
    };
    match WebhookEnvelope::parse(request.body) {
        Ok(envelope) => {
            message.event = Some(envelope.event.to_string());
            message.object_id = Some(envelope.object_id);
            message.subscription_id = envelope.subscription_id;
            Verdict::Queue(message)
        }
        Err(reason) => {
            message.quarantine_reason = Some(message::attribute_text(&reason.to_string()));
            Verdict::Quarantine(message)
        }
    }
}

/// Every query parameter of a raw query string, decoded, repeats kept (auth refuses a token sent
/// twice).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// `/t/{tenant}` (with or without a trailing slash) names a tenant; any other path is the default
/// tenant's, so a target URL may carry whatever path the integrator likes.
pub fn tenant_from_path(path: &str) -> Result<TenantId, AuthFailure> {
    match path.strip_prefix("/t/") {
        Some(rest) => {
            let key = rest.strip_suffix('/').unwrap_or(rest);
            TenantId::parse(key).map_err(|_| AuthFailure::UnknownTenant)
        }
        None => Ok(TenantId::default_tenant()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthMethod, HeaderAuth, TenantAuth};
    use crate::ids::Secret;
    use http::HeaderValue;

    const TOKEN: &str = "header-token-value";
    const ENVELOPE: &[u8] =
        br#"{"subscriptionId":5,"event":"product.update","id":42,"value":{"id":42,"version":3}}"#;

    fn auth_for(tenants: &[&str]) -> AuthConfig {
        AuthConfig::new(tenants.iter().map(|tenant| {
            let auth = TenantAuth {
                header: Some(HeaderAuth {
                    name: "X-Token".into(),
                    values: vec![Secret::new(TOKEN)],
                }),
                ..TenantAuth::default()
            };
            (TenantId::parse(tenant).unwrap(), auth)
        }))
    }

    fn authed_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-token", HeaderValue::from_static(TOKEN));
        headers.insert(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_static("idem-1"));
        headers
    }

    struct Case {
        method: Method,
        path: &'static str,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Case {
        fn post(body: &[u8]) -> Self {
            Self {
                method: Method::POST,
                path: "/",
                headers: authed_headers(),
                body: body.to_vec(),
            }
        }

        fn assess_with(&self, auth: &AuthConfig, limits: ReceiverLimits) -> Verdict {
            let request = IncomingRequest {
                method: &self.method,
                path: self.path,
                headers: &self.headers,
                query: &[],
                body: &self.body,
                request_id: "req-7",
                received_at: Timestamp::from_second(1_700_000_000).unwrap(),
            };
            assess(auth, &limits, &request)
        }

        fn assess(&self) -> Verdict {
            self.assess_with(&auth_for(&["default"]), ReceiverLimits::default())
        }
    }

    fn status(verdict: &Verdict) -> StatusCode {
        match verdict {
            Verdict::Reject(rejection) => rejection.status(),
            Verdict::Queue(_) => StatusCode::OK,
            Verdict::Quarantine(_) => StatusCode::ACCEPTED,
        }
    }

    #[test]
    fn queues_an_authenticated_envelope_with_its_attributes() {
        let Verdict::Queue(message) = Case::post(ENVELOPE).assess() else {
            panic!("expected the envelope to be queued");
        };
        assert_eq!(message.body.as_bytes(), ENVELOPE);
        assert_eq!(message.tenant.as_str(), "default");
        assert_eq!(message.event.as_deref(), Some("product.update"));
        assert_eq!(message.object_id, Some(42));
        assert_eq!(message.subscription_id, Some(5));
        assert_eq!(message.request_id, "req-7");
        assert_eq!(message.idempotency_key.as_deref(), Some("idem-1"));
        assert_eq!(message.received_at.to_string(), "2023-11-14T22:13:20Z");
        assert_eq!(message.quarantine_reason, None);
    }

    #[test]
    fn status_code_matrix() {
        let too_big = vec![b' '; DEFAULT_MAX_BODY_BYTES + 1];
        let mut unauthenticated = Case::post(ENVELOPE);
        unauthenticated.headers.remove("x-token");
        let mut wrong_method = Case::post(ENVELOPE);
        wrong_method.method = Method::GET;
        let mut put = Case::post(ENVELOPE);
        put.method = Method::PUT;
        let mut unknown_tenant = Case::post(ENVELOPE);
        unknown_tenant.path = "/t/nobody";

        let cases = [
            ("valid envelope", Case::post(ENVELOPE), 200),
            ("invalid JSON", Case::post(b"{oops"), 202),
            (
                "JSON that is no envelope",
                Case::post(br#"{"hello":1}"#),
                202,
            ),
            ("empty body", Case::post(b""), 202),
            ("no credentials", unauthenticated, 401),
            ("unknown tenant", unknown_tenant, 401),
            ("GET", wrong_method, 405),
            ("PUT", put, 405),
            ("body over the limit", Case::post(&too_big), 413),
        ];
        for (name, case, expected) in cases {
            assert_eq!(status(&case.assess()).as_u16(), expected, "{name}");
        }
    }

    #[test]
    fn checks_method_before_size_before_auth() {
        let mut case = Case::post(&vec![b'x'; DEFAULT_MAX_BODY_BYTES + 1]);
        case.headers.clear();
        assert_eq!(status(&case.assess()), StatusCode::PAYLOAD_TOO_LARGE);
        case.method = Method::DELETE;
        assert_eq!(status(&case.assess()), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn body_exactly_at_the_limit_is_taken() {
        let limits = ReceiverLimits {
            max_body_bytes: ENVELOPE.len(),
        };
        let verdict = Case::post(ENVELOPE).assess_with(&auth_for(&["default"]), limits);
        assert!(matches!(verdict, Verdict::Queue(_)));
    }

    #[test]
    fn unauthenticated_garbage_is_refused_not_quarantined() {
        let mut case = Case::post(b"{oops");
        case.headers.clear();
        assert_eq!(
            case.assess(),
            Verdict::Reject(Rejection::Unauthorized(AuthFailure::Missing(
                AuthMethod::Header
            )))
        );
    }

    #[test]
    fn quarantines_with_the_reason_and_the_body_as_sent() {
        let Verdict::Quarantine(message) = Case::post(br#"{"event":"product","id":1}"#).assess()
        else {
            panic!("expected quarantine");
        };
        assert_eq!(message.body, r#"{"event":"product","id":1}"#);
        assert_eq!(
            message.quarantine_reason.as_deref(),
            Some(r#"event "product" is not of the form object.verb"#)
        );
        assert_eq!(message.event, None);
    }

    #[test]
    fn routes_tenant_paths_to_their_own_credentials() {
        let auth = auth_for(&["acme"]);
        let mut case = Case::post(ENVELOPE);
        case.path = "/t/acme";
        let Verdict::Queue(message) = case.assess_with(&auth, ReceiverLimits::default()) else {
            panic!("expected queue");
        };
        assert_eq!(message.tenant.as_str(), "acme");
        // The default tenant is not configured here, so the bare path is refused.
        case.path = "/";
        assert_eq!(
            case.assess_with(&auth, ReceiverLimits::default()),
            Verdict::Reject(Rejection::Unauthorized(AuthFailure::UnknownTenant))
        );
    }

    #[test]
    fn tenant_paths() {
        assert_eq!(tenant_from_path("/t/acme").unwrap().as_str(), "acme");
        assert_eq!(tenant_from_path("/t/acme/").unwrap().as_str(), "acme");
        assert_eq!(tenant_from_path("/").unwrap().as_str(), "default");
        assert_eq!(
            tenant_from_path("/hooks/tripletex").unwrap().as_str(),
            "default"
        );
        assert_eq!(tenant_from_path("/t/"), Err(AuthFailure::UnknownTenant));
        assert_eq!(tenant_from_path("/t/Acme"), Err(AuthFailure::UnknownTenant));
        assert_eq!(tenant_from_path("/t/a/b"), Err(AuthFailure::UnknownTenant));
    }
}
