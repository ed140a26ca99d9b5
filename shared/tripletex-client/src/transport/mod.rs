//! The transport every Tripletex call goes through: session tokens made from the consumer and
//! employee tokens and cached while valid, Basic auth, paging, the error envelope, and the retries
//! Tripletex's limits call for:
//! - 401: the session is made again, once, and the call repeated;
//! - 429: wait `X-Rate-Limit-Reset` seconds when given (Tripletex often leaves it out of 429s, so the
//!   last one seen on a 2xx is used), else exponential backoff with jitter; bounded;
//! - 5xx, timeouts, connection failures: exponential backoff with jitter; bounded.

mod retry;
mod session;

pub use retry::RetryPolicy;
pub use session::{Session, SharedSession};

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::warn;

use domain::ids::Secret;
use domain::tripletex::{ListPage, TripletexCredentials, TripletexError, parse_answer};

/// Subscriptions per page when listing (Tripletex's default and maximum is 1000).
pub const DEFAULT_PAGE_SIZE: u32 = 1000;

/// The HTTP client the API's calls go through: the retry policy's timeouts, our user agent, and
/// Mozilla's roots compiled into the binary (no certificate file is read when a function starts).
pub fn http_client(retry: &RetryPolicy) -> Result<reqwest::Client, TripletexError> {
    let unavailable = |source: reqwest::Error| TripletexError::Unavailable {
        attempts: 0,
        source: Box::new(source),
    };
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| reqwest::Certificate::from_der(der.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    reqwest::Client::builder()
        .tls_certs_only(roots)
        // A redirect would send the session's Basic auth and a call's body to wherever it points:
        // Tripletex's API never redirects, so a 3xx is an answer to report, not to follow.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(retry.attempt_timeout)
        .connect_timeout(retry.attempt_timeout.min(Duration::from_secs(5)))
        .user_agent(concat!(
            "tripletex-webhook-bundle/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(unavailable)
}

pub struct HttpTripletexApi {
    http: reqwest::Client,
    base_url: String,
    credentials: TripletexCredentials,
    retry: RetryPolicy,
    page_size: u32,
    /// Shared by every company one credential serves: a session token is made from the consumer and
    /// employee tokens, and the Basic user picks the company it acts for.
    session: SharedSession,
    /// When Tripletex said the rate-limit period ends with nothing left: no call before then.
    rate_limited_until: Mutex<Option<Instant>>,
    jitter_counter: AtomicU64,
    requests: AtomicU64,
    rate_limited: AtomicU64,
}

impl HttpTripletexApi {
    pub fn new(
        base_url: &str,
        credentials: TripletexCredentials,
        retry: RetryPolicy,
    ) -> Result<Self, TripletexError> {
        let http = http_client(&retry)?;
        Ok(Self::with_client(http, base_url, credentials, retry))
    }

    /// One company's API on an HTTP client shared with others (its connections, TLS roots and
    /// memory are made once, not per company).
    pub fn with_client(
        http: reqwest::Client,
        base_url: &str,
        credentials: TripletexCredentials,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            credentials,
            retry,
            page_size: DEFAULT_PAGE_SIZE,
            session: SharedSession::default(),
            rate_limited_until: Mutex::new(None),
            jitter_counter: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// Calls sent so far (sessions and retries included) and how many were answered 429.
    pub fn usage(&self) -> domain::ports::ApiUsage {
        domain::ports::ApiUsage {
            requests: self.requests.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
        }
    }

    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Uses this session, shared with the other companies of the same credential.
    pub fn with_session(mut self, session: SharedSession) -> Self {
        self.session = session;
        self
    }

    /// Every value of a list endpoint, page by page (`from`, `count`). Paging stops on a short page,
    /// since Tripletex says `fullResultSize` is not exact.
    pub(crate) async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, TripletexError> {
        let mut all = Vec::new();
        let mut from = 0_u64;
        loop {
            let mut page_query = vec![
                ("from", from.to_string()),
                ("count", self.page_size.to_string()),
            ];
            page_query.extend(query.iter().cloned());
            let page: ListPage<T> = self
                .call(Method::GET, path, &page_query, None::<&()>)
                .await?;
            let received = page.values.len();
            all.extend(page.values);
            if received < self.page_size as usize {
                return Ok(all);
            }
            from += received as u64;
        }
    }

    /// A call with the session's Basic auth; on 401 the session is made again once.
    pub(crate) async fn call<T: DeserializeOwned, B: Serialize + Sync + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, TripletexError> {
        parse(self.authorized(method, path, query, body, None).await?)
    }

    /// A call whose answer has no body to read (a DELETE's 204).
    pub(crate) async fn call_for_effect(
        &self,
        method: Method,
        path: &str,
    ) -> Result<(), TripletexError> {
        self.authorized(method, path, &[], None::<&()>, None)
            .await
            .map(drop)
    }

    /// A GET that sends `If-None-Match`: `None` when Tripletex answers 304 Not Modified.
    pub(crate) async fn call_if_changed<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        if_none_match: &str,
    ) -> Result<Option<T>, TripletexError> {
        match self
            .authorized(Method::GET, path, query, None::<&()>, Some(if_none_match))
            .await?
        {
            Answer::NotModified => Ok(None),
            answer => parse(answer).map(Some),
        }
    }

    async fn authorized<B: Serialize + Sync + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        if_none_match: Option<&str>,
    ) -> Result<Answer, TripletexError> {
        let with_session = |token| Exchange {
            method: method.clone(),
            path,
            query,
            session: Some(token),
            if_none_match,
        };
        let token = self.session_token().await?;
        match self.exchange(with_session(&token), body).await {
            Err(TripletexError::Unauthorized(refusal)) => {
                warn!(path, error = %refusal, "session refused; creating a new one");
                self.forget_session(&token).await;
                let token = self.session_token().await?;
                self.exchange(with_session(&token), body).await
            }
            other => other,
        }
    }

    /// One call without a session (the session's own creation, the public event list).
    pub(crate) async fn send<T: DeserializeOwned, B: Serialize + Sync + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, TripletexError> {
        let unauthenticated = Exchange {
            method,
            path,
            query,
            session: None,
            if_none_match: None,
        };
        parse(self.exchange(unauthenticated, body).await?)
    }
}

/// What one call sends besides its body.
struct Exchange<'a> {
    method: Method,
    path: &'a str,
    query: &'a [(&'a str, String)],
    session: Option<&'a Secret>,
    if_none_match: Option<&'a str>,
}

/// A 2xx answer's body, or a 304 to a conditional GET.
enum Answer {
    Body(Vec<u8>),
    NotModified,
}

fn parse<T: DeserializeOwned>(answer: Answer) -> Result<T, TripletexError> {
    match answer {
        Answer::Body(bytes) => parse_answer(&bytes),
        Answer::NotModified => Err(TripletexError::InvalidResponse {
            source: "304 Not Modified to a request that did not ask for it".into(),
        }),
    }
}
