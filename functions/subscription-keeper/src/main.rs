use aws_adapters::env::Env;
use aws_adapters::resync_ledger::DynamoResyncLedger;
use aws_adapters::sdk::load_sdk_config;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use domain::auth::AuthConfig;
use domain::keeper::KeeperRequest;
use domain::tripletex::CredentialsSecret;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use subscription_keeper::config::Config;
use subscription_keeper::handler::Keeper;
use tripletex_client::{HttpTripletexCompanies, RetryPolicy};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    aws_adapters::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = load_sdk_config().await?;
    let secrets = SecretsManagerClient::new(&sdk);
    // Both at once: init waits for one round trip to Secrets Manager, not two.
    let (companies, receiver_auth) = tokio::try_join!(
        config
            .credentials
            .load(&secrets, CredentialsSecret::parse_secret, config.secret_ttl),
        config
            .receiver_auth
            .load(&secrets, AuthConfig::parse_secret, config.secret_ttl),
    )?;
    let keeper = Keeper::new(
        HttpTripletexCompanies::new(&config.api_base_url, RetryPolicy::default())?,
        DynamoResyncLedger::new(DynamoDbClient::new(&sdk), &config.resync_table_name),
        companies,
        receiver_auth,
        config.policy,
    )
    .with_pace(config.pace);
    lambda_runtime::run(service_fn(|event: LambdaEvent<KeeperRequest>| {
        // The deadline as this process's clock reads it: no company starts too late to finish. A
        // deadline already passed is a local emulator's, not Lambda's: the run then has none.
        let left = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .ok()
            .filter(|left| !left.is_zero());
        tracing::debug!(
            seconds_left = left.map(|l| l.as_secs_f64()),
            "invocation deadline"
        );
        let keeper = &keeper;
        async move {
            keeper
                .handle_until(
                    event.payload,
                    left.map(|left| std::time::Instant::now() + left),
                )
                .await
        }
    }))
    .await
}
