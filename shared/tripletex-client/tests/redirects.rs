#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure
//! A redirect from "Tripletex" is an answer, never followed: following it would send the tokens
//! (the session's creation carries them in its body) and the session's Basic auth elsewhere.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain::ports::SubscriptionsApi as _;
use domain::tripletex::TripletexCredentials;
use tripletex_client::{HttpTripletexApi, RetryPolicy};

/// A server that answers every request with `answer`, counting the connections it took.
fn serve(answer: impl Fn() -> String + Send + 'static) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let taken = Arc::new(AtomicUsize::new(0));
    let counted = taken.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            let mut request = [0_u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(answer().as_bytes());
        }
    });
    (address, taken)
}

#[tokio::test]
async fn a_redirect_is_reported_and_never_followed_with_the_tokens() {
    let (elsewhere, reached) =
        serve(|| "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_owned());
    let location = format!("{elsewhere}/stolen");
    let (tripletex, _) = serve(move || {
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
        )
    });
    let credentials: TripletexCredentials = serde_json::from_value(serde_json::json!({
        "consumerToken": "consumer-token", "employeeToken": "employee-token"
    }))
    .unwrap();
    let retry = RetryPolicy {
        max_attempts: 1,
        attempt_timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    let api = HttpTripletexApi::new(&format!("{tripletex}/v2"), credentials, retry).unwrap();
    let error = api.list_subscriptions().await.unwrap_err();
    assert!(
        domain::error::error_chain(&error).contains("307"),
        "the redirect is the answer: {error}"
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing went where it pointed"
    );
}
