//! One exchange with Tripletex and its bounded retries: 429s (waiting for the rate limit's
//! reset), 5xx answers, timeouts and broken connections, with exponential backoff and jitter.

use std::hash::{BuildHasher, RandomState};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Serialize;
use tracing::warn;

use super::{Answer, Exchange, HttpTripletexApi};
use domain::tripletex::{ApiError, TripletexError, api_error};

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

impl HttpTripletexApi {
    /// One exchange with bounded retries of 429s, 5xx answers and transport failures.
    pub(super) async fn exchange<B: Serialize + Sync + ?Sized>(
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
                Ok(response) => match self.answer_of(response, if_none_match.is_some()).await {
                    Ok(settled) => return settled,
                    Err(failure) => failure,
                },
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

    /// What an answer settles (a body, a 304, or an error no retry mends), or the failure to retry.
    async fn answer_of(
        &self,
        response: reqwest::Response,
        conditional: bool,
    ) -> Result<Result<Answer, TripletexError>, Failure> {
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let headers = response.headers().clone();
        self.note_rate_limit(&headers, status);
        let bytes = response
            .bytes()
            .await
            .map_err(|broken| Failure::Transport(broken.without_url()))?;
        if status.is_success() {
            return Ok(Ok(Answer::Body(bytes.to_vec())));
        }
        if status == StatusCode::NOT_MODIFIED && conditional {
            return Ok(Ok(Answer::NotModified));
        }
        let error = api_error(status.as_u16(), &bytes);
        match status {
            StatusCode::UNAUTHORIZED => Ok(Err(TripletexError::Unauthorized(Box::new(error)))),
            StatusCode::TOO_MANY_REQUESTS => Err(Failure::RateLimited(
                reset_header(&headers).map(Duration::from_secs),
            )),
            status if status.is_server_error() => Err(Failure::Server(error)),
            _ => Ok(Err(TripletexError::Api(Box::new(error)))),
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
