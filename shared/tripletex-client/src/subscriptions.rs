//! The event-subscription endpoints (`/event/subscription`), as the `SubscriptionsApi` port.

use domain::ports::SubscriptionsApi;
use domain::tripletex::{Single, Subscription, SubscriptionWrite, TripletexError};
use reqwest::Method;
use tracing::instrument;

use crate::transport::HttpTripletexApi;

const PATH: &str = "/event/subscription";

impl SubscriptionsApi for HttpTripletexApi {
    #[instrument(skip_all)]
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>, TripletexError> {
        self.list_all(PATH, &[("fields", "*".to_owned())]).await
    }

    #[instrument(skip(self))]
    async fn get_subscription(&self, id: i64) -> Result<Subscription, TripletexError> {
        let answer: Single<Subscription> = self
            .call(
                Method::GET,
                &format!("{PATH}/{id}"),
                &[("fields", "*".to_owned())],
                None::<&()>,
            )
            .await?;
        answer.value.ok_or_else(|| TripletexError::InvalidResponse {
            source: "the subscription answer holds no value".into(),
        })
    }

    #[instrument(skip_all, fields(event = write.event.as_deref()))]
    async fn create_subscription(
        &self,
        write: &SubscriptionWrite,
    ) -> Result<Subscription, TripletexError> {
        let answer: Single<Subscription> = self.call(Method::POST, PATH, &[], Some(write)).await?;
        Ok(answer.value.unwrap_or_default())
    }

    #[instrument(skip(self, write))]
    async fn update_subscription(
        &self,
        id: i64,
        write: &SubscriptionWrite,
    ) -> Result<Subscription, TripletexError> {
        let answer: Single<Subscription> = self
            .call(Method::PUT, &format!("{PATH}/{id}"), &[], Some(write))
            .await?;
        Ok(answer.value.unwrap_or_default())
    }

    #[instrument(skip(self))]
    async fn delete_subscription(&self, id: i64) -> Result<(), TripletexError> {
        self.call_for_effect(Method::DELETE, &format!("{PATH}/{id}"))
            .await
    }
}
