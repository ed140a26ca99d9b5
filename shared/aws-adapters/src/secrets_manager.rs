//! Reading a secret's string from AWS Secrets Manager.

use aws_sdk_secretsmanager::Client;
use tracing::instrument;

use crate::secrets::{SecretError, SecretStore};

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
}

impl SecretStore for SecretsManagerSecret {
    fn secret_id(&self) -> &str {
        &self.secret_id
    }

    #[instrument(skip_all, fields(secret_id = %self.secret_id))]
    async fn read(&self) -> Result<String, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|error| SecretError::Unavailable {
                secret_id: self.secret_id.clone(),
                source: Box::new(crate::sdk::AwsFailure::of(&error)),
            })?;
        output.secret_string.ok_or_else(|| SecretError::NoString {
            secret_id: self.secret_id.clone(),
        })
    }
}
