//! The transport every Tripletex call goes through: session tokens made from the consumer and
//! employee tokens and cached while valid, Basic auth, paging, the error envelope, and the retries
//! Tripletex's limits call for:
//! - 401: the session is made again, once, and the call repeated;
//! - 429: wait `X-Rate-Limit-Reset` seconds when given (Tripletex often leaves it out of 429s, so the
//!   last one seen on a 2xx is used), else exponential backoff with jitter; bounded;
//! - 5xx, timeouts, connection failures: exponential backoff with jitter; bounded.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::Date;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, instrument, warn};

use domain::ids::Secret;
use domain::tripletex::{
    ApiError, ListPage, SessionToken, Single, TripletexCredentials, TripletexError, api_error,
    parse_answer,
};

/// How hard a call tries before it gives up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts of one call in all (the first one included).
    pub max_attempts: u32,
    /// First backoff; doubled per attempt.
    pub base_delay: Duration,
    /// Longest single backoff, and the longest wait a rate-limit reset may ask for.
    pub max_delay: Duration,
    /// Time limit of one attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter: a random wait between half and all of `base × 2^(n-1)`.
    fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1_u32 << attempt.saturating_sub(1).min(16));
        let capped = exponential.min(self.max_delay);
        capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// `X-Rate-Limit-Reset` is in whole seconds: the period may end up to this much after it says.
const ROUNDING_OF_RESET: Duration = Duration::from_secs(1);

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

pub struct Session {
    token: Secret,
    expiration_date: Date,
}

/// A credential's session, shared by the APIs of the companies it serves.
pub type SharedSession = Arc<tokio::sync::Mutex<Option<Session>>>;

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

    /// A valid session token: the cached one while its expiration date lies ahead (in Oslo), else
    /// a new one that expires tomorrow.
    async fn session_token(&self) -> Result<Secret, TripletexError> {
        let mut session = self.session.lock().await;
        let today = oslo_today();
        if let Some(current) = session.as_ref().filter(|s| s.expiration_date > today) {
            return Ok(current.token.clone());
        }
        let created = self
            .create_session(today.tomorrow().unwrap_or(today))
            .await?;
        let token = created.token.clone();
        *session = Some(created);
        Ok(token)
    }

    /// Forgets the session if it is still the one that was refused (another call may have renewed it).
    async fn forget_session(&self, refused: &Secret) {
        let mut session = self.session.lock().await;
        if session
            .as_ref()
            .is_some_and(|s| s.token.expose() == refused.expose())
        {
            *session = None;
        }
    }

    /// `POST /token/session/:create` with the tokens in the body: the spec's preferred form, which
    /// keeps them out of URLs (and so out of any access log on the way).
    #[instrument(skip_all)]
    async fn create_session(&self, expiration_date: Date) -> Result<Session, TripletexError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            consumer_token: &'a str,
            employee_token: &'a str,
            expiration_date: String,
        }
        let body = Body {
            consumer_token: self.credentials.consumer_token.expose(),
            employee_token: self.credentials.employee_token.expose(),
            expiration_date: expiration_date.to_string(),
        };
        let answer: Single<SessionToken> = self
            .send(Method::POST, "/token/session/:create", &[], Some(&body))
            .await
            .map_err(|error| match error {
                // Tripletex answers bad tokens with 422 (code 18000): the credentials are wrong.
                TripletexError::Api(api) if api.status < 500 => TripletexError::Unauthorized(api),
                other => other,
            })?;
        let session = answer.value.unwrap_or(SessionToken {
            token: None,
            expiration_date: None,
        });
        let token = session
            .token
            .ok_or_else(|| TripletexError::InvalidResponse {
                source: "the session token answer holds no token".into(),
            })?;
        let expiration_date = session
            .expiration_date
            .and_then(|text| text.parse().ok())
            .unwrap_or(expiration_date);
        debug!(%expiration_date, "Tripletex session created");
        Ok(Session {
            token: Secret::new(token),
            expiration_date,
        })
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

    /// One exchange with bounded retries of 429s, 5xx answers and transport failures.
    async fn exchange<B: Serialize + Sync + ?Sized>(
        &self,
        call: Exchange<'_>,
        body: Option<&B>,
    ) -> Result<Answer, TripletexError> {
        let Exchange {
            method,
            path,
            query,
            session,
            if_none_match,
        } = call;
        let url = format!("{}{}", self.base_url, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_for_rate_limit_period().await;
            let mut request = self.http.request(method.clone(), &url).query(query);
            if let Some(token) = session {
                request = request.basic_auth(self.credentials.basic_user(), Some(token.expose()));
            }
            if let Some(digest) = if_none_match {
                request = request.header(reqwest::header::IF_NONE_MATCH, digest);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let failure = match request.send().await {
                Err(error) => Failure::Transport(error.without_url()),
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        self.rate_limited.fetch_add(1, Ordering::Relaxed);
                    }
                    let headers = response.headers().clone();
                    self.note_rate_limit(&headers, status);
                    let bytes =
                        response
                            .bytes()
                            .await
                            .map_err(|error| TripletexError::Unavailable {
                                attempts: attempt,
                                source: Box::new(error.without_url()),
                            });
                    let bytes = match bytes {
                        Ok(bytes) => bytes,
                        Err(error) if attempt < self.retry.max_attempts => {
                            self.pause(attempt, None).await;
                            debug!(path, attempt, error = %error, "retrying after a broken body");
                            continue;
                        }
                        Err(error) => return Err(error),
                    };
                    if status.is_success() {
                        return Ok(Answer::Body(bytes.to_vec()));
                    }
                    if status == StatusCode::NOT_MODIFIED && if_none_match.is_some() {
                        return Ok(Answer::NotModified);
                    }
                    let error = api_error(status.as_u16(), &bytes);
                    match status {
                        StatusCode::UNAUTHORIZED => {
                            return Err(TripletexError::Unauthorized(Box::new(error)));
                        }
                        StatusCode::TOO_MANY_REQUESTS => {
                            Failure::RateLimited(reset_header(&headers).map(Duration::from_secs))
                        }
                        status if status.is_server_error() => Failure::Server(error),
                        _ => return Err(TripletexError::Api(Box::new(error))),
                    }
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(failure.into_error(attempt));
            }
            let wait = match &failure {
                Failure::RateLimited(reset) => reset
                    .or_else(|| self.rate_limit_remaining())
                    .or_else(|| self.just_past_reset()),
                _ => None,
            };
            warn!(
                path,
                attempt,
                failure = failure.describe(),
                "retrying Tripletex call"
            );
            self.pause(attempt, wait).await;
        }
    }

    async fn pause(&self, attempt: u32, wait: Option<Duration>) {
        let delay = match wait {
            Some(reset) => reset.min(self.retry.max_delay),
            None => self.retry.backoff(attempt, self.jitter()),
        };
        tokio::time::sleep(delay).await;
    }

    /// A number in [0, 1) that differs per call and per process: enough to spread retries.
    fn jitter(&self) -> f64 {
        let n = self.jitter_counter.fetch_add(1, Ordering::Relaxed);
        let hash = RandomState::new().hash_one(n);
        (hash >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn note_rate_limit(&self, headers: &HeaderMap, status: StatusCode) {
        let remaining = header_number(headers, "x-rate-limit-remaining");
        if status.is_success()
            && remaining == Some(0)
            && let Some(reset) = reset_header(headers)
        {
            let until = Instant::now() + Duration::from_secs(reset);
            *self
                .rate_limited_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(until);
        }
    }

    fn rate_limit_remaining(&self) -> Option<Duration> {
        let until = *self
            .rate_limited_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        until.and_then(|until| until.checked_duration_since(Instant::now()))
    }

    /// A 429 just after the reset Tripletex gave ran out: the reset is whole seconds, so the period
    /// ends within the second. Try again shortly rather than backing off exponentially (which
    /// would idle through most of the next period).
    fn just_past_reset(&self) -> Option<Duration> {
        let until = (*self
            .rate_limited_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner))?;
        let past = Instant::now().checked_duration_since(until)?;
        (past < ROUNDING_OF_RESET).then_some(ROUNDING_OF_RESET / 4)
    }

    /// Tripletex answers every call with 429 until the period ends: wait rather than spend a call.
    async fn wait_for_rate_limit_period(&self) {
        if let Some(wait) = self.rate_limit_remaining() {
            tokio::time::sleep(wait.min(self.retry.max_delay)).await;
        }
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

enum Failure {
    Transport(reqwest::Error),
    RateLimited(Option<Duration>),
    Server(ApiError),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Self::Transport(error) => format!("transport: {error}"),
            Self::RateLimited(reset) => format!("429, reset {reset:?}"),
            Self::Server(error) => error.to_string(),
        }
    }

    fn into_error(self, attempts: u32) -> TripletexError {
        match self {
            Self::Transport(error) => TripletexError::Unavailable {
                attempts,
                source: Box::new(error),
            },
            Self::RateLimited(_) => TripletexError::RateLimited { attempts },
            Self::Server(error) => TripletexError::Unavailable {
                attempts,
                source: Box::new(error),
            },
        }
    }
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn reset_header(headers: &HeaderMap) -> Option<u64> {
    header_number(headers, "x-rate-limit-reset")
}

/// Today's date in Oslo, where Tripletex's session expiration dates are counted.
fn oslo_today() -> Date {
    Timestamp::now()
        .to_zoned(jiff::tz::get!("Europe/Oslo"))
        .date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_within_half_to_all() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(2, 1.0), Duration::from_millis(200));
        assert_eq!(policy.backoff(3, 0.0), Duration::from_millis(200));
        assert_eq!(policy.backoff(10, 1.0), Duration::from_secs(1));
        assert_eq!(
            policy.backoff(60, 1.0),
            Duration::from_secs(1),
            "no overflow"
        );
    }
}
