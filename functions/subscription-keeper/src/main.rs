use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::resync_ledger::DynamoResyncLedger;
use shared::config::{
    Env, KeeperConfig, RECEIVER_AUTH_CONFIG, TRIPLETEX_CREDENTIALS, parse_auth_config,
    parse_companies,
};
use subscription_keeper::handler::{Keeper, KeeperOptions, KeeperRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = KeeperConfig::from_env(&Env::process())?;
    let sdk = load_sdk_config().await;
    let secrets = SecretsManagerClient::new(&sdk);
    let companies = config
        .credentials
        .load(
            &secrets,
            parse_companies,
            config.secret_ttl,
            TRIPLETEX_CREDENTIALS,
        )
        .await?;
    let receiver_auth = config
        .receiver_auth
        .load(
            &secrets,
            parse_auth_config,
            config.secret_ttl,
            RECEIVER_AUTH_CONFIG,
        )
        .await?;
    let ledger = DynamoResyncLedger::new(DynamoDbClient::new(&sdk), &config.resync_table_name);
    let keeper = Keeper::new(
        ledger,
        companies,
        receiver_auth,
        KeeperOptions::from(&config),
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<KeeperRequest>| async {
        keeper.handle(event.payload).await
    }))
    .await
}
