//! One API per Tripletex company, kept across invocations so that its session token is reused, and
//! made anew when the company's credentials change (a rotation). The companies one credential
//! serves (an accountant's key and its clients) share one session: Tripletex makes a session from
//! the consumer and employee tokens, and the Basic user picks the company. All of them share one
//! HTTP client: its connection pool, TLS roots and memory are made once, however many companies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use domain::ids::TenantId;
use domain::ports::TripletexCompanies;
use domain::tripletex::{TripletexCredentials, TripletexError};
use sha2::{Digest, Sha256};

use crate::transport::{
    DEFAULT_PAGE_SIZE, HttpTripletexApi, RetryPolicy, SharedSession, http_client,
};

pub struct HttpTripletexCompanies {
    base_url: String,
    retry: RetryPolicy,
    page_size: u32,
    clients: Mutex<HashMap<TenantId, (Fingerprint, Arc<HttpTripletexApi>)>>,
    /// One session per credential (consumer and employee token), whatever company it acts for.
    sessions: Mutex<HashMap<Fingerprint, SharedSession>>,
    /// Shared by every company's API: its connections, TLS roots and memory are made once.
    http: reqwest::Client,
}

impl HttpTripletexCompanies {
    /// Builds the HTTP client now (at init), so that no call pays for its TLS roots.
    pub fn new(base_url: impl Into<String>, retry: RetryPolicy) -> Result<Self, TripletexError> {
        Ok(Self {
            base_url: base_url.into(),
            http: http_client(&retry)?,
            retry,
            page_size: DEFAULT_PAGE_SIZE,
            clients: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self
    }
}

impl TripletexCompanies for HttpTripletexCompanies {
    type Api = HttpTripletexApi;

    fn company(
        &self,
        tenant: &TenantId,
        credentials: &TripletexCredentials,
    ) -> Result<Arc<HttpTripletexApi>, TripletexError> {
        let fingerprint = Fingerprint::of(credentials);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, api)) = clients.get(tenant)
            && *known == fingerprint
        {
            return Ok(Arc::clone(api));
        }
        let session = Arc::clone(
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(Fingerprint::of_credential(credentials))
                .or_default(),
        );
        let api = Arc::new(
            HttpTripletexApi::with_client(
                self.http.clone(),
                &self.base_url,
                credentials.clone(),
                self.retry.clone(),
            )
            .with_page_size(self.page_size)
            .with_session(session),
        );
        clients.insert(tenant.clone(), (fingerprint, Arc::clone(&api)));
        Ok(api)
    }
}

/// Tells credentials apart without keeping them in another form that could leak.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The credential and the company it acts for.
    fn of(credentials: &TripletexCredentials) -> Self {
        Self::hashed(credentials, Some(&credentials.basic_user()))
    }

    /// The credential alone: what a session is made from.
    fn of_credential(credentials: &TripletexCredentials) -> Self {
        Self::hashed(credentials, None)
    }

    fn hashed(credentials: &TripletexCredentials, basic_user: Option<&str>) -> Self {
        let mut hash = Sha256::new();
        hash.update(credentials.consumer_token.expose());
        hash.update([0]);
        hash.update(credentials.employee_token.expose());
        if let Some(user) = basic_user {
            hash.update([0]);
            hash.update(user);
        }
        Self(hash.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ids::Secret;

    fn credentials(employee_token: &str) -> TripletexCredentials {
        TripletexCredentials {
            consumer_token: Secret::new("consumer"),
            employee_token: Secret::new(employee_token),
            company_id: None,
        }
    }

    #[test]
    fn the_same_credentials_get_the_same_client_and_new_ones_a_new_client() {
        let pool =
            HttpTripletexCompanies::new("http://127.0.0.1:9/v2", RetryPolicy::default()).unwrap();
        let tenant = TenantId::default_tenant();
        let first = pool.company(&tenant, &credentials("a")).unwrap();
        let again = pool.company(&tenant, &credentials("a")).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the session is reused");
        let rotated = pool.company(&tenant, &credentials("b")).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &rotated),
            "a rotation gets a new session"
        );
        let other = pool
            .company(&TenantId::parse("other").unwrap(), &credentials("b"))
            .unwrap();
        assert!(!Arc::ptr_eq(&rotated, &other), "one client per company");
    }
}
