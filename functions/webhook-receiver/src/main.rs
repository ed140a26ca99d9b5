use std::convert::Infallible;

use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use aws_sdk_sqs::Client as SqsClient;
use lambda_http::{Error, service_fn};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::sqs::SqsQueue;
use shared::config::{Env, RECEIVER_AUTH_CONFIG, ReceiverConfig, parse_auth_config};
use webhook_receiver::handler::Receiver;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = ReceiverConfig::from_env(&Env::process())?;
    let sdk = load_sdk_config().await;
    let auth = config
        .auth
        .load(
            &SecretsManagerClient::new(&sdk),
            parse_auth_config,
            config.auth_cache_ttl,
            RECEIVER_AUTH_CONFIG,
        )
        .await?;
    let sqs = SqsClient::new(&sdk);
    let receiver = Receiver::new(
        auth,
        SqsQueue::new(sqs.clone(), config.queue_url),
        SqsQueue::new(sqs, config.quarantine_queue_url),
        config.limits,
    );
    lambda_http::run(service_fn(|request| async {
        Ok::<_, Infallible>(receiver.handle(request).await)
    }))
    .await
}
