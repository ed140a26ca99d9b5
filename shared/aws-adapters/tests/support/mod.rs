//! What the adapter tests share: a table in the shared moto server.

use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use test_support::{MotoServer, sdk_config_for};

/// A new table keyed by two string attributes (hash, range), and a client for it.
pub async fn keyed_table(table: &str, hash: &str, range: &str) -> Client {
    let client = Client::new(&sdk_config_for(MotoServer::shared().endpoint()).await);
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(hash, KeyType::Hash))
        .key_schema(key(range, KeyType::Range))
        .attribute_definitions(attribute(hash))
        .attribute_definitions(attribute(range))
        .send()
        .await
        .unwrap();
    client
}

/// Every item of the table, as the operator's `status` scans it (one page: the tests' tables are small).
pub async fn items(client: &Client, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    client
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}
