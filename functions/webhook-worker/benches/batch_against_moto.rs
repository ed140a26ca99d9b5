//! Records per second of the worker for batches of 10 against DynamoDB in moto, records applied
//! concurrently vs one at a time, beside the time of one conditional write (the target, docs/src/benchmarks.md: a
//! batch of 10 in at most 1.3 × one write). `cargo bench -p webhook-worker --bench batch_against_moto`.
//!
//! moto answers one request at a time (Python), so against it concurrency cannot show; the same two
//! runs against the in-memory store with 5 ms added per write (a network round trip, which is what a
//! real DynamoDB write mostly costs) show what concurrency buys.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::time::{Duration, Instant};

use aws_adapters::dynamodb::{DynamoObjectStore, item};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use domain::dedup::{ObjectChange, Outcome};
use domain::ports::{ObjectStore, StoreError};
use test_support::{InMemoryObjectStore, MotoServer, RecordingQueue, sdk_config_for};
use webhook_worker::handler::Worker;

const BATCHES: i64 = 60;
const WARM_UP: i64 = 5;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn batch(round: i64) -> BenchResult<SqsEvent> {
    let records: Vec<_> = (0..10)
        .map(|i| {
            let body = format!(
                r#"{{"subscriptionId":1,"event":"product.update","id":{id},"value":{{"id":{id},"version":{round},"name":"n"}}}}"#,
                id = i + 1
            );
            serde_json::json!({
                "messageId": format!("m-{round}-{i}"),
                "body": body,
                "messageAttributes": {"tenant": {"stringValue": "default", "dataType": "String"}},
                "eventSource": "aws:sqs",
            })
        })
        .collect();
    Ok(serde_json::from_value(
        serde_json::json!({ "Records": records }),
    )?)
}

/// The fake store behind a network's worth of latency.
struct DistantStore {
    store: InMemoryObjectStore,
    round_trip: Duration,
}

impl ObjectStore for DistantStore {
    async fn apply(&self, change: &ObjectChange) -> Result<Outcome, StoreError> {
        tokio::time::sleep(self.round_trip).await;
        self.store.apply(change).await
    }
}

async fn time_batches<S: ObjectStore>(
    worker: &Worker<S, RecordingQueue>,
    round: &mut i64,
    size: usize,
) -> BenchResult<Duration> {
    let mut elapsed = Duration::ZERO;
    for batch_number in 0..BATCHES + WARM_UP {
        *round += 1;
        let mut event = batch(*round)?;
        event.records.truncate(size);
        let started = Instant::now();
        let response = worker.handle(event).await;
        assert!(response.batch_item_failures.is_empty());
        if batch_number >= WARM_UP {
            elapsed += started.elapsed();
        }
    }
    Ok(elapsed / BATCHES as u32)
}

fn main() -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
        let client = DynamoDbClient::new(&sdk);
        let mut round = 0;
        for (label, concurrency) in [("one at a time", 1), ("concurrent (10)", 10)] {
            let table = format!("bench-{concurrency}");
            client
                .create_table()
                .table_name(&table)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(KeySchemaElement::builder().attribute_name(item::KEY).key_type(KeyType::Hash).build()?)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(item::KEY)
                        .attribute_type(ScalarAttributeType::S)
                        .build()?,
                )
                .send()
                .await?;
            let worker = Worker::new(DynamoObjectStore::new(client.clone(), &table), RecordingQueue::new(), concurrency);
            let mut elapsed = Duration::ZERO;
            for batch_number in 0..BATCHES + WARM_UP {
                round += 1;
                let event = batch(round)?;
                let started = Instant::now();
                let response = worker.handle(event).await;
                assert!(response.batch_item_failures.is_empty());
                if batch_number >= WARM_UP {
                    elapsed += started.elapsed();
                }
            }
            let per_batch = elapsed / BATCHES as u32;
            let records_per_second = (BATCHES * 10) as f64 / elapsed.as_secs_f64();
            println!("worker, batch of 10, {label}: {per_batch:?} per batch, {records_per_second:.0} records/s");
        }

        // One conditional write alone, the unit the target is stated in.
        let store_worker = Worker::new(DynamoObjectStore::new(client.clone(), "bench-1"), RecordingQueue::new(), 1);
        let mut elapsed = Duration::ZERO;
        for _ in 0..BATCHES {
            round += 1;
            let mut event = batch(round)?;
            event.records.truncate(1);
            let started = Instant::now();
            store_worker.handle(event).await;
            elapsed += started.elapsed();
        }
        println!("worker, batch of 1 (one conditional write): {:?} per batch", elapsed / BATCHES as u32);

        let round_trip = Duration::from_millis(5);
        let one_write = time_batches(
            &Worker::new(DistantStore { store: InMemoryObjectStore::new(), round_trip }, RecordingQueue::new(), 1),
            &mut round,
            1,
        )
        .await?;
        for (label, concurrency) in [("one at a time", 1), ("concurrent (10)", 10)] {
            let worker = Worker::new(DistantStore { store: InMemoryObjectStore::new(), round_trip }, RecordingQueue::new(), concurrency);
            let per_batch = time_batches(&worker, &mut round, 10).await?;
            println!(
                "worker, batch of 10, {label}, store {round_trip:?} away: {per_batch:?} per batch ({:.2} × one write of {one_write:?}), {:.0} records/s",
                per_batch.as_secs_f64() / one_write.as_secs_f64(),
                10.0 / per_batch.as_secs_f64()
            );
        }
        Ok(())
    })
}
