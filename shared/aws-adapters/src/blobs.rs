//! `BlobStore` on Amazon S3: the stack's payload bucket.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use tracing::instrument;

use domain::ports::{BlobError, BlobStore};

/// A body of several MB takes longer than the SDK's 2 s an attempt that suits small calls.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// A client for `bucket`. An endpoint of one's own (an emulator) is addressed by path, since
    /// its host name cannot take the bucket as a subdomain.
    pub fn new(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .timeout_config(timeouts)
            .build();
        Self {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl BlobStore for S3BlobStore {
    #[instrument(skip_all, fields(bucket = %self.bucket, key, bytes = bytes.len()))]
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    #[instrument(skip_all, fields(bucket = %self.bucket, key))]
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(classify(error)),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|source| BlobError::Unavailable {
                source: Box::new(source),
            })?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    #[instrument(skip_all, fields(bucket = %self.bucket, prefix))]
    async fn delete_under(&self, prefix: &str) -> Result<usize, BlobError> {
        let mut deleted = 0;
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(classify)?;
            for key in page.contents().iter().filter_map(|object| object.key()) {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(classify)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// Denied, a missing bucket or a malformed call fail again; anything else may pass.
fn classify<E, R>(error: SdkError<E, R>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let refused = error.as_service_error().is_some_and(|service| {
        matches!(
            service.code(),
            Some("AccessDenied" | "NoSuchBucket" | "InvalidArgument" | "InvalidRequest")
        )
    });
    let source = Box::new(crate::sdk::AwsFailure::of(&error));
    if refused {
        BlobError::Refused { source }
    } else {
        BlobError::Unavailable { source }
    }
}
