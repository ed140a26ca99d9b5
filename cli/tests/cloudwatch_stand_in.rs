#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The queues' oldest-message ages, read from CloudWatch over its own protocol (RPCv2 CBOR) from a
//! stand-in that answers as CloudWatch does: moto answers that protocol in XML, so it cannot.

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_smithy_cbor::Encoder;
use aws_smithy_types::DateTime;
use tripletex_webhooks::ops::metrics::oldest_message_ages;

mod support;

/// What the stand-in was asked.
type Asked = Arc<Mutex<Vec<support::Request>>>;

/// Answers every request with `status` and `body` (CBOR), keeping what it was asked.
fn stand_in(status: &'static str, body: Vec<u8>) -> (String, Asked) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let asked: Asked = Arc::default();
    let kept = Arc::clone(&asked);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let request = support::read_request(&stream);
            kept.lock().unwrap().push(request);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/cbor\r\nsmithy-protocol: rpc-v2-cbor\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    (endpoint, asked)
}

fn client(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_cloudwatch::config::Region::new("eu-north-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "stand-in", "stand-in", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

const QUEUES: [&str; 3] = [
    "https://sqs.eu-north-1.amazonaws.com/123456789012/prod-WebhookQueue-AbC",
    "https://sqs.eu-north-1.amazonaws.com/123456789012/prod-WebhookDeadLetterQueue-DeF",
    "https://sqs.eu-north-1.amazonaws.com/123456789012/prod-QuarantineQueue-GhI",
];

#[tokio::test(flavor = "multi_thread")]
async fn each_queue_gets_its_latest_minute_and_a_queue_without_datapoints_none() {
    let now = jiff::Timestamp::from_second(1_796_000_000).unwrap();
    let at = |ago: i64| DateTime::from_secs(now.as_second() - ago);
    let mut answer = Encoder::new(Vec::new());
    answer.begin_map().str("MetricDataResults").array(2);
    // Newest last, to show the order does not matter.
    answer
        .begin_map()
        .str("Id")
        .str("q0")
        .str("Timestamps")
        .array(2)
        .timestamp(&at(180))
        .timestamp(&at(60))
        .str("Values")
        .array(2)
        .double(30.0)
        .double(95.4)
        .str("StatusCode")
        .str("Complete")
        .end();
    answer
        .begin_map()
        .str("Id")
        .str("q2")
        .str("Timestamps")
        .array(0)
        .str("Values")
        .array(0)
        .end();
    answer.end();
    let (endpoint, asked) = stand_in("200 OK", answer.into_writer());

    let ages = oldest_message_ages(&client(&endpoint), &QUEUES, now)
        .await
        .unwrap();

    assert_eq!(ages, [Some(95), None, None]);
    let asked = asked.lock().unwrap();
    let [request] = asked.as_slice() else {
        panic!("one call, not {}", asked.len());
    };
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        (
            "POST",
            "/service/GraniteServiceVersion20100801/operation/GetMetricData"
        )
    );
    assert!(
        request
            .headers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("content-type")
                && value == "application/cbor")
    );
    let body = &request.body;
    let contains = |text: &str| body.windows(text.len()).any(|w| w == text.as_bytes());
    for name in [
        "prod-WebhookQueue-AbC",
        "prod-WebhookDeadLetterQueue-DeF",
        "prod-QuarantineQueue-GhI",
        "ApproximateAgeOfOldestMessage",
        "AWS/SQS",
        "QueueName",
        "Maximum",
    ] {
        assert!(contains(name), "the query names {name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_an_error_that_says_what_was_being_read() {
    let mut answer = Encoder::new(Vec::new());
    answer
        .begin_map()
        .str("__type")
        .str("com.amazonaws.cloudwatch#AccessDenied")
        .str("message")
        .str("not allowed: cloudwatch:GetMetricData")
        .end();
    let (endpoint, _) = stand_in("403 Forbidden", answer.into_writer());

    let error = oldest_message_ages(&client(&endpoint), &QUEUES, jiff::Timestamp::now())
        .await
        .unwrap_err();

    let said = domain::error::error_chain(&error);
    assert_eq!(
        said,
        "reading the queues' ages from CloudWatch failed: AccessDenied: not allowed: \
         cloudwatch:GetMetricData",
        "what was being read and what the service said, in its words, not the SDK's"
    );
}
