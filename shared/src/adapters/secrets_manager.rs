//! Reading a secret's string from AWS Secrets Manager.

use aws_sdk_secretsmanager::Client;
use tracing::instrument;

use crate::ports::BoxError;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("could not read secret {secret_id}")]
    Unavailable {
        secret_id: String,
        #[source]
        source: BoxError,
    },
    #[error("secret {secret_id} holds no string value")]
    NoString { secret_id: String },
    #[error("secret {secret_id} is not valid")]
    Invalid {
        secret_id: String,
        #[source]
        source: BoxError,
    },
}

#[derive(Debug, Clone)]
pub struct SecretsManagerSecret {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSecret {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    #[instrument(skip_all, fields(secret_id = %self.secret_id))]
    pub async fn read(&self) -> Result<String, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|source| SecretError::Unavailable {
                secret_id: self.secret_id.clone(),
                source: Box::new(source),
            })?;
        output.secret_string.ok_or_else(|| SecretError::NoString {
            secret_id: self.secret_id.clone(),
        })
    }
}
