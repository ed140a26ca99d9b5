//! `send`: what Tripletex has, posted as Tripletex would, and the worker waited for.

use super::*;

/// A stand-in for the receiver and the worker, built from their own parts: the receiver's intake
/// rules with the local auth config decide each request (401 when they refuse it), and the queued
/// message waits in `queued` for the test to apply it as the worker does (its record reading and
/// the DynamoDB store) — or to leave it, as a worker that is down would.
struct StandInReceiver {
    url: String,
    queued: std::sync::mpsc::Receiver<domain::message::QueueMessage>,
}

impl StandInReceiver {
    fn start(auth: domain::auth::AuthConfig) -> Self {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (queue, queued) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let request = support::read_request(&stream);
                let method: http::Method = request.method.parse().unwrap();
                let target =
                    url::Url::parse(&format!("http://receiver{}", request.target)).unwrap();
                let mut headers = http::HeaderMap::new();
                for (name, value) in &request.headers {
                    headers.append(
                        http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        value.parse().unwrap(),
                    );
                }
                let body = request.body;
                let query: Vec<(String, String)> = target.query_pairs().into_owned().collect();
                let incoming = domain::intake::IncomingRequest {
                    method: &method,
                    path: target.path(),
                    headers: &headers,
                    query: &query,
                    body: &body,
                    request_id: "stand-in",
                    received_at: jiff::Timestamp::now(),
                };
                let verdict = domain::intake::assess(&auth, &Default::default(), &incoming);
                let (status, answer) = match verdict {
                    domain::intake::Verdict::Queue(message) => {
                        queue
                            .send(domain::message::QueueMessage::from(&message))
                            .unwrap();
                        ("200 OK", r#"{"status":"queued"}"#)
                    }
                    _ => ("401 Unauthorized", r#"{"error":"unauthorized"}"#),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            }
        });
        Self { url, queued }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn send_posts_what_tripletex_has_as_tripletex_would_and_waits_for_the_worker() {
    let (sim, ids) = simulator_with_two_customers();
    let credentials = credentials_of_the_default_company("send");
    let auth_file = paths::workspace_root().join("infra/local/receiver-auth.json");
    let auth =
        domain::auth::AuthConfig::from_json(&std::fs::read_to_string(&auth_file).unwrap()).unwrap();
    let receiver = StandInReceiver::start(auth);
    let local = local_stack_with(
        "cli-send",
        "http://127.0.0.1:9",
        &[
            "--secret".into(),
            format!("TripletexCredentialsSecret={}", credentials.display()),
            "--secret".into(),
            format!("ReceiverAuthSecret={}", auth_file.display()),
            "--parameter".into(),
            format!("TripletexApiBaseUrl={}", sim.api_base_url()),
            "--function-url".into(),
            format!("WebhookReceiver={}", receiver.url),
        ],
    )
    .await;
    let store = aws_adapters::dynamodb::DynamoObjectStore::new(
        local.dynamodb.clone(),
        local.table("ObjectsTable"),
    );
    // The worker's part: read the queued message as the worker does and store it.
    let work_one = || async {
        let message = receiver
            .queued
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the receiver queued nothing");
        test_support::apply_as_worker(&store, &message).await
    };
    let send_in_background = |args: Vec<String>| {
        let summary = local.summary.clone();
        std::thread::spawn(move || {
            let output = Command::new(env!("CARGO_BIN_EXE_tripletex-webhooks"))
                .env("AWS_CONFIG_FILE", "/nonexistent")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
                .arg(format!("--local={}", summary.display()))
                .args(["--json", "send"])
                .args(args)
                .output()
                .unwrap();
            let value: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
            (value, output.status.code(), output.stderr)
        })
    };
    let id = ids[0].to_string();

    let sending = send_in_background(vec!["customer.update".into(), id.clone()]);
    assert_eq!(work_one().await, domain::dedup::Outcome::Accepted);
    let (sent, code, stderr) = sending.join().unwrap();
    assert_eq!(code, Some(0), "{sent} {}", String::from_utf8_lossy(&stderr));
    assert_eq!(sent["progress"], "stored");
    assert_eq!(sent["receiverStatus"], 200);
    assert_eq!(sent["version"], sent["stored"]["version"]);
    assert_eq!(sent["stored"]["value"]["id"], ids[0], "Tripletex's object");
    let first_probe = sent["stored"]["lastProbe"].as_str().unwrap().to_owned();
    assert!(first_probe.starts_with("tripletex-webhooks-send-"));

    // Again: the copy holds it, the worker's dedup changes nothing, and the probe still shows
    // that the worker handled this delivery.
    let sending = send_in_background(vec!["customer.update".into(), id.clone()]);
    assert_eq!(work_one().await, domain::dedup::Outcome::Duplicate);
    let (sent, code, _) = sending.join().unwrap();
    assert_eq!(
        (sent["progress"].clone(), code),
        ("alreadyCurrent".into(), Some(0))
    );
    assert_ne!(sent["stored"]["lastProbe"], first_probe.as_str());

    // A worker that never handles it: exit 1 once the time is up.
    let (sent, code) = local.json(&[
        "send",
        "customer.update",
        &ids[1].to_string(),
        "--timeout-seconds",
        "1",
    ]);
    assert_eq!(
        (sent["progress"].clone(), code),
        ("waiting".into(), Some(1))
    );
    assert_eq!(sent["webhookQueueDepth"], 0, "no backlog to be behind");
    assert!(
        receiver.queued.try_recv().is_ok(),
        "it was queued all the same"
    );

    // Refused before anything is posted: a delete of a live object, of an id the copy never
    // held, an object Tripletex does not have, a company the receiver has no credentials for.
    for (args, error) in [
        (
            vec!["customer.delete", id.as_str()],
            format!(
                "Tripletex still has customer {id}: a delete would leave a tombstone in the copy, and tombstones are final"
            ),
        ),
        (
            vec!["customer.delete", "999"],
            "the copy has never held customer 999: a tombstone for an id Tripletex may give a new object later would block that object".to_owned(),
        ),
        (
            vec!["customer.update", "999"],
            "Tripletex has no customer 999: only its delete event can be sent".to_owned(),
        ),
        (
            vec!["customer.update", "1", "--company", "nobody"],
            // A company the deployment does not know: said before anything is asked of anyone.
            "no company 'nobody'; companies: default".to_owned(),
        ),
    ] {
        let mut full = vec!["send"];
        full.extend(args);
        let output = local.cli(&full);
        assert_eq!(output.status.code(), Some(2), "{full:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("tripletex-webhooks: {error}\n")
        );
    }
    assert!(
        receiver.queued.try_recv().is_err(),
        "nothing more was posted"
    );
}
