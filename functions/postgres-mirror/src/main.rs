// The SDK and tokio-postgres futures nest deeply: the compiler needs more room to lay them out.
#![recursion_limit = "256"]

use aws_adapters::blobs::S3BlobStore;
use aws_adapters::env::Env;
use aws_adapters::sdk::load_sdk_config;
use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use postgres_adapter::{DatabaseSettings, PgMirror};
use postgres_mirror::config::Config;
use postgres_mirror::handler::MirrorHandler;

/// The database's secret is read at start, and again when the server refuses its credentials (an
/// RDS-managed rotation), at most once a minute.
const SECRET_TTL: std::time::Duration = std::time::Duration::from_secs(60);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    aws_adapters::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = load_sdk_config().await?;
    let secret = config
        .database
        .load(
            &SecretsManagerClient::new(&sdk),
            |text| DatabaseSettings::parse_secret(text).map_err(Into::into),
            SECRET_TTL,
        )
        .await?;
    let settings = secret.current().await;
    let mirror = PgMirror::connect((*settings).clone())
        .await?
        .with_settings_source(DatabaseSecret(secret));
    let payloads = config
        .payload_bucket
        .map(|bucket| S3BlobStore::new(&sdk, bucket));
    let handler = MirrorHandler::new(mirror, payloads);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(handler.handle(event.payload).await)
    }))
    .await
}

/// The database's secret as the mirror reads it again.
struct DatabaseSecret(aws_adapters::secrets::SecretSource<DatabaseSettings>);

impl postgres_adapter::SettingsSource for DatabaseSecret {
    fn current(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = DatabaseSettings> + Send + '_>> {
        Box::pin(async { (*self.0.current().await).clone() })
    }
}
