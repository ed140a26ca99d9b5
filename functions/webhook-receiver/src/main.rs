// The handler's future holds the registry's read through the SDK's paginator, whose future type is
// deep; its layout needs more than rustc's default query depth in a clean build.
#![recursion_limit = "256"]

use std::convert::Infallible;

use aws_adapters::blobs::S3BlobStore;
use aws_adapters::companies::CachedRegistry;
use aws_adapters::env::Env;
use aws_adapters::resync_ledger::DynamoResyncLedger;
use aws_adapters::sdk::load_sdk_config;
use aws_adapters::sqs::SqsQueue;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use aws_sdk_sqs::Client as SqsClient;
use domain::auth::AuthConfig;
use domain::claim::ClaimCheckedQueue;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::{Error, LambdaEvent, service_fn};
use webhook_receiver::config::Config;
use webhook_receiver::front_door::{self, Unreadable};
use webhook_receiver::handler::Receiver;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    aws_adapters::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = load_sdk_config().await?;
    let auth = config
        .auth
        .load(
            &SecretsManagerClient::new(&sdk),
            AuthConfig::parse_secret,
            config.auth_cache_ttl,
        )
        .await?;
    let sqs = SqsClient::new(&sdk);
    let payloads = config
        .payload_bucket
        .map(|bucket| S3BlobStore::new(&sdk, bucket));
    let mut receiver = Receiver::new(
        auth,
        ClaimCheckedQueue::new(
            SqsQueue::new(sqs.clone(), config.queue_url),
            payloads.clone(),
        ),
        ClaimCheckedQueue::new(SqsQueue::new(sqs, config.quarantine_queue_url), payloads),
        config.limits,
    );
    if let Some(table) = &config.registry_table_name {
        let registry = DynamoResyncLedger::new(DynamoDbClient::new(&sdk), table);
        receiver =
            receiver.with_registry(CachedRegistry::load(registry, config.auth_cache_ttl).await?);
    }
    lambda_http::lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayV2httpRequest>| async {
            let response = match front_door::read(event.payload, event.context) {
                Ok(request) => receiver.handle(request).await,
                Err(Unreadable) => {
                    tracing::warn!("request refused: its parts make no URI");
                    front_door::unreadable()
                }
            };
            Ok::<_, Infallible>(front_door::answer(response))
        },
    ))
    .await
}
