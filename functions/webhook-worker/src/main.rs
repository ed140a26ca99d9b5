use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_sqs::Client as SqsClient;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::dynamodb::DynamoObjectStore;
use shared::adapters::sqs::SqsQueue;
use shared::config::{Env, WorkerConfig};
use webhook_worker::handler::Worker;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = WorkerConfig::from_env(&Env::process())?;
    let sdk = load_sdk_config().await;
    let worker = Worker::new(
        DynamoObjectStore::new(DynamoDbClient::new(&sdk), config.table_name),
        SqsQueue::new(SqsClient::new(&sdk), config.quarantine_queue_url),
        config.concurrency,
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(worker.handle(event.payload).await)
    }))
    .await
}
