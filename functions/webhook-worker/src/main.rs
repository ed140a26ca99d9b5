use aws_adapters::blobs::S3BlobStore;
use aws_adapters::companies::CachedRegistry;
use aws_adapters::dynamodb::DynamoObjectStore;
use aws_adapters::env::Env;
use aws_adapters::resync_ledger::DynamoResyncLedger;
use aws_adapters::sdk::load_sdk_config;
use aws_adapters::sqs::SqsQueue;
use aws_adapters::sync_records::DynamoSyncRecords;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_sqs::Client as SqsClient;
use domain::claim::LargeValues;
use domain::registry::WORKER_REGISTRY_TTL;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use webhook_worker::config::Config;
use webhook_worker::handler::Worker;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    aws_adapters::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = load_sdk_config().await?;
    let dynamodb = DynamoDbClient::new(&sdk);
    let payloads = config
        .payload_bucket
        .map(|bucket| S3BlobStore::new(&sdk, bucket));
    let store = DynamoObjectStore::new(dynamodb.clone(), config.table_name)
        .with_tombstone_policy(config.tombstones);
    let mut worker = Worker::new(
        LargeValues::new(store, payloads.clone()),
        SqsQueue::new(SqsClient::new(&sdk), config.quarantine_queue_url),
        config.concurrency,
    )
    .with_payloads(payloads);
    if let Some(table) = &config.sync_table_name {
        worker = worker.with_sync_book(DynamoSyncRecords::new(dynamodb.clone(), table));
    }
    if let Some(table) = &config.registry_table_name {
        let registry = DynamoResyncLedger::new(dynamodb, table);
        worker = worker.with_registry(CachedRegistry::load(registry, WORKER_REGISTRY_TTL).await?);
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(worker.handle(event.payload).await)
    }))
    .await
}
