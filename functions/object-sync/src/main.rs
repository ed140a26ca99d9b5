// The handler's futures nest deeply (batch, task, step, SDK calls): the compiler needs more room to lay them out.
#![recursion_limit = "256"]

use aws_adapters::blobs::S3BlobStore;
use aws_adapters::companies::{CachedRegistry, CompanySource, LookedAfter};
use aws_adapters::dynamodb::DynamoObjectStore;
use aws_adapters::env::Env;
use aws_adapters::resync_ledger::DynamoResyncLedger;
use aws_adapters::sdk::load_sdk_config;
use aws_adapters::sqs::{SqsQueue, SqsSyncTasks};
use aws_adapters::sync_records::DynamoSyncRecords;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use aws_sdk_sqs::Client as SqsClient;
use domain::claim::ClaimCheckedQueue;
use domain::tripletex::CredentialsSecret;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use object_sync::config::Config;
use object_sync::handler::{ObjectSync, SyncPorts};
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    aws_adapters::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = load_sdk_config().await?;
    let sqs = SqsClient::new(&sdk);
    let dynamodb = DynamoDbClient::new(&sdk);
    let ledger = DynamoResyncLedger::new(dynamodb.clone(), &config.resync_table_name);
    // Both at once: init waits for one round trip, not two.
    let (credentials, registry) = tokio::try_join!(
        async {
            config
                .credentials
                .load(
                    &SecretsManagerClient::new(&sdk),
                    CredentialsSecret::parse_secret,
                    config.secret_ttl,
                )
                .await
                .map_err(Error::from)
        },
        async {
            CachedRegistry::load(ledger.clone(), config.registry_ttl)
                .await
                .map_err(Error::from)
        },
    )?;
    let companies = CompanySource::looked_after(LookedAfter::new(credentials, registry));
    let ports = SyncPorts {
        tripletex: HttpTripletexCompanies::new(&config.api_base_url, RetryPolicy::default())?,
        webhooks: ClaimCheckedQueue::new(
            SqsQueue::new(sqs.clone(), &config.sync_objects_queue_url),
            config
                .payload_bucket
                .as_ref()
                .map(|bucket| S3BlobStore::new(&sdk, bucket)),
        ),
        live_webhooks: config
            .webhook_queue_url
            .as_ref()
            .map(|url| ClaimCheckedQueue::new(SqsQueue::new(sqs.clone(), url), None)),
        tasks: SqsSyncTasks::new(sqs, &config.sync_queue_url),
        copy: DynamoObjectStore::new(dynamodb.clone(), &config.objects_table_name),
        records: DynamoSyncRecords::new(dynamodb.clone(), &config.sync_table_name),
        ledger,
    };
    let sync = ObjectSync::new(ports, companies, config.settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        sync.handle(event.payload).await
    }))
    .await
}
