//! The receiver's warm call for a 1 MiB voucher beside a 1 KiB one, with its real adapters against
//! moto: the 1 KiB body goes to SQS as it is, the 1 MiB body to the payload bucket (S3) and its key to
//! SQS (the claim check). Samples alternate, so drift in moto hits both alike.
//! `cargo bench -p webhook-receiver --bench large_bodies [-- --samples N]`; the worker's half:
//! `cargo bench -p webhook-worker --bench large_bodies`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

use std::time::{Duration, Instant};

use aws_adapters::blobs::S3BlobStore;
use aws_adapters::secrets::SecretSource;
use aws_adapters::sqs::SqsQueue;
use aws_sdk_sqs::Client as SqsClient;
use domain::auth::AuthConfig;
use domain::claim::ClaimCheckedQueue;
use domain::intake::ReceiverLimits;
use test_support::{MotoServer, create_bucket, sdk_config_for};
use webhook_receiver::handler::Receiver;

const LOCAL_AUTH: &str = include_str!("../../../infra/local/receiver-auth.json");
const PRODUCT_CREATE: &str =
    include_str!("../../../events/webhook-receiver/function-url-product-create.json");

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The sample event with a voucher of about `bytes` as its body.
fn event_of(bytes: usize, version: usize) -> BenchResult<String> {
    let mut event: serde_json::Value = serde_json::from_str(PRODUCT_CREATE)?;
    let line = r#"{"id":10000000,"url":"https://tripletex.no/v2/ledger/posting/10000000"}"#;
    let lines = vec![line; bytes / (line.len() + 1)].join(",");
    event["body"] = serde_json::Value::String(format!(
        r#"{{"subscriptionId":1,"event":"voucher.update","id":7,"value":{{"id":7,"version":{version},"postings":[{lines}]}}}}"#
    ));
    Ok(event.to_string())
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
        let sqs = SqsClient::new(&sdk);
        let queue = |name: &'static str| {
            let sqs = sqs.clone();
            async move {
                let created = sqs.create_queue().queue_name(name).send().await?;
                BenchResult::Ok(created.queue_url.unwrap_or_default())
            }
        };
        let bucket = create_bucket(&sdk, "bench-receiver-payloads").await;
        let payloads = S3BlobStore::new(&sdk, bucket);
        let receiver = Receiver::new(
            SecretSource::Fixed(AuthConfig::from_json(LOCAL_AUTH)?.into()),
            ClaimCheckedQueue::new(
                SqsQueue::new(sqs.clone(), queue("bench-large-webhooks").await?),
                payloads.clone(),
            ),
            ClaimCheckedQueue::new(
                SqsQueue::new(sqs.clone(), queue("bench-large-quarantine").await?),
                payloads,
            ),
            ReceiverLimits::default(),
        );
        let sizes = [("1 KiB", 1024), ("1 MiB", 1024 * 1024)];
        let mut timings = vec![Vec::new(); sizes.len()];
        for sample in 0..samples + 3 {
            for (index, (_, bytes)) in sizes.iter().enumerate() {
                let request = lambda_http::request::from_str(&event_of(*bytes, sample)?)?;
                let started = Instant::now();
                let response = receiver.handle(request).await;
                let elapsed = started.elapsed();
                assert_eq!(response.status(), 200, "{:?}", response.body());
                if sample >= 3 {
                    timings[index].push(elapsed);
                }
            }
        }
        let medians: Vec<Duration> = timings.into_iter().map(median).collect();
        for ((label, _), median) in sizes.iter().zip(&medians) {
            println!("receiver warm call, a {label} voucher, median of {samples}: {median:?}");
        }
        println!(
            "ratio: {:.1} × (the 1 MiB body parsed, hashed, put in S3, its key sent to SQS)",
            medians[1].as_secs_f64() / medians[0].as_secs_f64()
        );
        Ok(())
    })
}
