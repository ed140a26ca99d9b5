//! Batched writes and deletes (BatchWriteItem, 25 at a time, what DynamoDB leaves unprocessed tried
//! again), and the deletes a filtered scan finds: shared by every table's adapter.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use domain::ports::StoreError;

use super::read_failed;

/// Unprocessed keys (throttling) are asked for again this many times.
pub(super) const BATCH_GET_ATTEMPTS: usize = 5;

/// Deletes items by their whole keys (at most 25, one BatchWriteItem), trying again what DynamoDB
/// leaves unprocessed.
pub(crate) async fn delete_keys(
    client: &Client,
    table_name: &str,
    keys: Vec<HashMap<String, AttributeValue>>,
) -> Result<(), StoreError> {
    let requests = keys
        .into_iter()
        .map(|key| {
            let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(rejected)?;
            Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
                .delete_request(delete)
                .build())
        })
        .collect::<Result<_, StoreError>>()?;
    write_batch(client, table_name, requests).await
}

/// Puts whole items (at most 25, one BatchWriteItem), trying again what DynamoDB leaves
/// unprocessed.
pub(crate) async fn put_items(
    client: &Client,
    table_name: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<(), StoreError> {
    let requests = items
        .into_iter()
        .map(|item| {
            let put = aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(rejected)?;
            Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
                .put_request(put)
                .build())
        })
        .collect::<Result<_, StoreError>>()?;
    write_batch(client, table_name, requests).await
}

fn rejected(source: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Rejected {
        source: Box::new(source),
    }
}

async fn write_batch(
    client: &Client,
    table_name: &str,
    mut requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<(), StoreError> {
    for attempt in 0..BATCH_GET_ATTEMPTS {
        if requests.is_empty() {
            return Ok(());
        }
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
        let output = client
            .batch_write_item()
            .request_items(table_name, requests)
            .send()
            .await
            .map_err(read_failed)?;
        requests = output
            .unprocessed_items
            .and_then(|mut left| left.remove(table_name))
            .unwrap_or_default();
    }
    if requests.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Throttled {
            source: format!(
                "{} writes still unprocessed after {BATCH_GET_ATTEMPTS} attempts",
                requests.len()
            )
            .into(),
        })
    }
}

/// BatchWriteItem takes at most 25 requests.
pub(crate) const WRITE_BATCH: usize = 25;

/// Every item a scan with this filter finds, deleted by its whole key (the attributes
/// `key_names`); the count.
pub(crate) async fn delete_scanned(
    client: &Client,
    table_name: &str,
    key_names: [&str; 2],
    filter: &str,
    mut names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
) -> Result<u64, StoreError> {
    names.insert("#key0".into(), key_names[0].into());
    names.insert("#key1".into(), key_names[1].into());
    let mut pages = client
        .scan()
        .table_name(table_name)
        .filter_expression(filter)
        .projection_expression("#key0, #key1")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .into_paginator()
        .send();
    let mut deleted = 0;
    while let Some(page) = pages.next().await {
        let keys: Vec<HashMap<String, AttributeValue>> = page
            .map_err(read_failed)?
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|mut found| {
                found.retain(|name, _| key_names.contains(&name.as_str()));
                found
            })
            .collect();
        for chunk in keys.chunks(WRITE_BATCH) {
            delete_keys(client, table_name, chunk.to_vec()).await?;
            deleted += chunk.len() as u64;
        }
    }
    Ok(deleted)
}
