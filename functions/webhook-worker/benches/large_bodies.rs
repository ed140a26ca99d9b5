//! The worker's warm call for one record of a 1 MiB voucher beside one of a 1 KiB voucher, with its
//! real adapters against moto: the 1 KiB record is read from its body and written on the item; the
//! 1 MiB record's body is read from the payload bucket (S3, the claim check), and its value, over an
//! item's limit, is put in the bucket before the item's conditional write points at it. Samples
//! alternate, so drift in moto hits both alike.
//! `cargo bench -p webhook-worker --bench large_bodies [-- --samples N]`; the receiver's half:
//! `cargo bench -p webhook-receiver --bench large_bodies`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

use std::time::{Duration, Instant};

use aws_adapters::blobs::S3BlobStore;
use aws_adapters::dynamodb::{DynamoObjectStore, item};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use domain::claim::{self, LargeValues};
use domain::message::QueueMessage;
use test_support::{MotoServer, RecordingQueue, create_bucket, sdk_config_for};
use webhook_worker::handler::Worker;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A voucher of about `bytes` as the receiver queues it.
fn voucher(id: usize, version: usize, bytes: usize) -> QueueMessage {
    let line = r#"{"id":10000000,"url":"https://tripletex.no/v2/ledger/posting/10000000"}"#;
    let lines = vec![line; bytes / (line.len() + 1)].join(",");
    QueueMessage {
        body: format!(
            r#"{{"subscriptionId":1,"event":"voucher.update","id":{id},"value":{{"id":{id},"version":{version},"postings":[{lines}]}}}}"#
        ),
        attributes: vec![
            ("tenant".into(), "default".into()),
            ("event".into(), "voucher.update".into()),
            ("objectId".into(), id.to_string()),
        ],
    }
}

fn batch_of(message: &QueueMessage) -> BenchResult<SqsEvent> {
    let attributes: serde_json::Map<_, _> = message
        .attributes
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                serde_json::json!({"stringValue": value, "dataType": "String"}),
            )
        })
        .collect();
    Ok(serde_json::from_value(serde_json::json!({"Records": [{
        "messageId": "m-1",
        "body": message.body,
        "messageAttributes": attributes,
        "eventSource": "aws:sqs",
    }]}))?)
}

fn main() -> BenchResult<()> {
    let samples: usize = std::env::args()
        .skip_while(|arg| arg != "--samples")
        .nth(1)
        .map_or(Ok(60), |n| n.parse())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
        let client = DynamoDbClient::new(&sdk);
        let table = "bench-large-values";
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(item::KEY)
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(item::KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .send()
            .await?;
        let payloads = S3BlobStore::new(&sdk, create_bucket(&sdk, "bench-worker-payloads").await);
        let worker = Worker::new(
            LargeValues::new(DynamoObjectStore::new(client, table), payloads.clone()),
            RecordingQueue::new(),
            10,
        )
        .with_payloads(payloads.clone());
        let sizes = [("1 KiB", 1024), ("1 MiB", 1024 * 1024)];
        let mut timings = vec![Vec::new(); sizes.len()];
        for sample in 0..samples + 3 {
            for (index, (_, bytes)) in sizes.iter().enumerate() {
                let message = voucher(index + 1, sample, *bytes);
                let queued = claim::checked(&payloads, &message).await?;
                let event = batch_of(&queued)?;
                let started = Instant::now();
                let response = worker.handle(event).await;
                let elapsed = started.elapsed();
                assert!(response.batch_item_failures.is_empty());
                if sample >= 3 {
                    timings[index].push(elapsed);
                }
            }
        }
        let medians: Vec<Duration> = timings.into_iter().map(median).collect();
        for ((label, _), median) in sizes.iter().zip(&medians) {
            println!("worker warm call, one record of a {label} voucher, median of {samples}: {median:?}");
        }
        println!(
            "ratio: {:.1} × (the 1 MiB body read from S3 and checked, its value put in S3, the item pointing at it)",
            medians[1].as_secs_f64() / medians[0].as_secs_f64()
        );
        Ok(())
    })
}
