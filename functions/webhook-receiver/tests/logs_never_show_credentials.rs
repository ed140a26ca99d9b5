//! The receiver's logs never show a credential, at any log level a person can set: the real bootstrap,
//! started as Lambda starts it against a small Runtime API emulator on loopback, with the level at
//! TRACE (where the Lambda runtime would log each raw event, headers and query string included).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const EVENT: &str =
    include_str!("../../../events/webhook-receiver/function-url-customer-update.json");
const LOCAL_AUTH: &str = include_str!("../../../infra/local/receiver-auth.json");
/// The credential the sample event carries (query-token tenant `query-demo`).
const CREDENTIAL: &str = "local-dev-query-token";

/// One HTTP/1.1 request from a kept-alive connection: method, path and body.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

/// Serves one invocation of `event`, then sends the function's response to `responses`; later
/// `next` calls are left hanging, as Lambda leaves an idle function.
fn runtime_api(listener: TcpListener, event: String, responses: mpsc::Sender<String>) {
    let mut served = false;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let event = event.clone();
        let responses = responses.clone();
        let first = !served;
        served = true;
        thread::spawn(move || {
            let mut writer = stream.try_clone().expect("clone the socket");
            let mut reader = BufReader::new(stream);
            let mut handed_out = !first;
            while let Some((method, path, body)) = read_request(&mut reader) {
                if path.ends_with("/invocation/next") {
                    if handed_out {
                        thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    handed_out = true;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Lambda-Runtime-Aws-Request-Id: trace-test-1\r\n\
                         Lambda-Runtime-Deadline-Ms: 99999999999999\r\n\
                         Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-north-1:123456789012:function:webhook-receiver\r\n\
                         Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                         Content-Length: {}\r\n\r\n{event}",
                        event.len()
                    );
                    writer.write_all(answer.as_bytes()).expect("answer next");
                } else {
                    let _ = responses.send(format!(
                        "{method} {path} {}",
                        String::from_utf8_lossy(&body)
                    ));
                    writer
                        .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                        .expect("answer the response");
                }
            }
        });
    }
}

#[test]
fn at_trace_level_no_credential_reaches_the_logs() {
    assert!(
        EVENT.contains(CREDENTIAL),
        "the event carries the credential"
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the runtime API");
    let api = listener.local_addr().expect("address");
    let closed_queue = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port(); // freed when dropped below: nothing listens there
    let (responses, received) = mpsc::channel();
    thread::spawn(move || runtime_api(listener, EVENT.to_owned(), responses));

    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-receiver"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "webhook-receiver")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
        .env("RUST_LOG", "trace")
        .env("AWS_REGION", "eu-north-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "QUEUE_URL",
            format!("http://127.0.0.1:{closed_queue}/123456789012/queue"),
        )
        .env(
            "QUARANTINE_QUEUE_URL",
            format!("http://127.0.0.1:{closed_queue}/123456789012/quarantine"),
        )
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{closed_queue}"),
        )
        .env("RECEIVER_AUTH_CONFIG", LOCAL_AUTH)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the receiver");

    // Drained while it runs: a full pipe would stall the function's logging.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let response = received.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let logs = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    let response = response.unwrap_or_else(|_| panic!("the function did not answer:\n{logs}"));

    assert!(
        response.contains("/invocation/trace-test-1/response") && response.contains("503"),
        "authenticated, then the unreachable queue gave 503: {response}"
    );
    assert!(
        logs.contains("DEBUG"),
        "the level was lowered as asked (to the DEBUG cap): {logs}"
    );
    assert!(
        !logs.contains(CREDENTIAL),
        "a credential reached the logs:\n{logs}"
    );
    assert!(
        !logs.contains("raw JSON event received from Lambda"),
        "the runtime's raw-event line is filtered"
    );
}
