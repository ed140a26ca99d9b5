//! The receiver's front door: a Function URL (or HTTP API 2.0) event in, the answer it returns out.
//!
//! It does what `lambda_http::run` would, with one difference. lambda_http builds each request's URI
//! from the event's parts and panics when they do not make one: an `x-forwarded-proto` such as
//! `ht]ps`, a `host` or raw query with characters a URI cannot hold (found by the `receiver_request`
//! fuzz target). The runtime would turn that panic into a 502, which a caller retries for ever; here
//! such a request is answered 400.
//!
//! Only lambda_http is used here, so that the fuzz target compiles this very file.

use std::panic::{AssertUnwindSafe, catch_unwind};

use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::encodings::Body;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, Request, RequestExt, Response};

/// An event whose parts make no HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

/// The request an event stands for, as lambda_http reads it (its extensions included: raw path,
/// request context, the invocation's context).
pub fn read(event: ApiGatewayV2httpRequest, context: Context) -> Result<Request, Unreadable> {
    let request = catch_unwind(AssertUnwindSafe(|| {
        Request::from(LambdaRequest::ApiGatewayV2(event))
    }))
    .map_err(|_| Unreadable)?;
    Ok(request.with_lambda_context(context))
}

/// The answer to an event that [`read`] refused.
pub fn unreadable() -> Response<Body> {
    let mut response = Response::new(Body::Text(
        r#"{"error":"the request's URI, host or forwarded protocol cannot be read"}"#.to_owned(),
    ));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A response as a Function URL takes it (lambda_http's own conversion, for the bodies this
/// function sends: text or none).
pub fn answer(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(parts.status.as_u16());
    answer.is_base64_encoded = matches!(body, Body::Binary(_));
    answer.body = match body {
        Body::Empty => None,
        body => Some(body),
    };
    answer.headers = parts.headers;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> ApiGatewayV2httpRequest {
        serde_json::from_str(text).unwrap()
    }

    fn with_header(name: &'static str, value: &str) -> ApiGatewayV2httpRequest {
        let mut event = event(include_str!(
            "../../../events/webhook-receiver/function-url-product-create.json"
        ));
        event
            .headers
            .insert(name, HeaderValue::from_str(value).unwrap());
        event
    }

    #[test]
    fn reads_an_event_as_lambda_http_does() {
        let request = read(
            event(include_str!(
                "../../../events/webhook-receiver/function-url-product-create.json"
            )),
            Context::default(),
        )
        .unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.raw_http_path(), "/");
        assert!(request.request_context_ref().is_some());
        assert!(!request.body().is_empty());
    }

    /// The fuzz target's first crash (fuzz/artifacts/receiver_request), kept as a sample event.
    #[test]
    fn a_forwarded_protocol_that_makes_no_uri_is_unreadable_not_a_panic() {
        let event = event(include_str!(
            "../../../events/webhook-receiver/function-url-unreadable-forwarded-proto.json"
        ));
        assert_eq!(read(event, Context::default()).unwrap_err(), Unreadable);
        let answered = answer(unreadable());
        assert_eq!(answered.status_code, 400);
        assert_eq!(answered.headers["content-type"], "application/json");
    }

    #[test]
    fn a_host_or_query_that_makes_no_uri_is_unreadable() {
        assert_eq!(
            read(with_header("host", "exa mple.com"), Context::default()).unwrap_err(),
            Unreadable
        );
        let mut event = with_header("x-forwarded-proto", "https");
        event.raw_query_string = Some("token=a\"b".to_owned());
        assert_eq!(read(event, Context::default()).unwrap_err(), Unreadable);
    }

    #[test]
    fn an_answer_keeps_status_headers_and_text_body() {
        let mut response = Response::new(Body::Text("{\"status\":\"queued\"}".to_owned()));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        let answered = answer(response);
        assert_eq!(answered.status_code, 503);
        assert_eq!(answered.headers["retry-after"], "5");
        assert!(!answered.is_base64_encoded);
        assert!(matches!(answered.body, Some(Body::Text(ref text)) if text.contains("queued")));
        assert_eq!(answer(Response::new(Body::Empty)).body, None);
    }
}
