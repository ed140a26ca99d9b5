//! The session a credential's calls share: made from the consumer and employee tokens, kept
//! while its expiration date (in Oslo) lies ahead, and made again once when refused.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use reqwest::Method;
use serde::Serialize;
use tracing::{debug, instrument};

use super::HttpTripletexApi;
use domain::ids::Secret;
use domain::tripletex::{SessionToken, Single, TripletexError};

pub struct Session {
    token: Secret,
    expiration_date: Date,
}

/// A credential's session, shared by the APIs of the companies it serves.
pub type SharedSession = Arc<tokio::sync::Mutex<Option<Session>>>;

impl HttpTripletexApi {
    /// A valid session token: the cached one while its expiration date lies ahead (in Oslo), else
    /// a new one that expires tomorrow.
    pub(super) async fn session_token(&self) -> Result<Secret, TripletexError> {
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
    pub(super) async fn forget_session(&self, refused: &Secret) {
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
}

/// Today's date in Oslo, where Tripletex's session expiration dates are counted.
fn oslo_today() -> Date {
    Timestamp::now()
        .to_zoned(jiff::tz::get!("Europe/Oslo"))
        .date()
}
