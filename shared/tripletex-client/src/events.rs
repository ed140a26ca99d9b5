//! `GET /event`: the events a subscription can name. Not a port: no function needs it at run time;
//! the tests use it to check the simulator's list against Tripletex's.

use std::collections::BTreeMap;

use domain::tripletex::{EventDescription, Single, TripletexError};
use reqwest::Method;
use tracing::instrument;

use crate::transport::HttpTripletexApi;

impl HttpTripletexApi {
    #[instrument(skip_all)]
    pub async fn list_events(&self) -> Result<BTreeMap<String, EventDescription>, TripletexError> {
        // No auth needed since 2.56.4; a session is not spent on it.
        let answer: Single<BTreeMap<String, EventDescription>> =
            self.send(Method::GET, "/event", &[], None::<&()>).await?;
        Ok(answer.value.unwrap_or_default())
    }
}
