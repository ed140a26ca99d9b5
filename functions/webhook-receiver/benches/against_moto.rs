//! A warm receiver call with its real SQS adapter against moto, beside a bare `SendMessage` of the same
//! body to the same queue (the target, docs/src/benchmarks.md: warm call ≤ 1.05 × bare SendMessage). Samples alternate, so
//! drift in moto hits both alike. `cargo bench -p webhook-receiver --bench against_moto`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::time::{Duration, Instant};

use aws_adapters::secrets::SecretSource;
use aws_adapters::sqs::SqsQueue;
use aws_sdk_sqs::Client as SqsClient;
use domain::auth::AuthConfig;
use domain::intake::ReceiverLimits;
use test_support::{MotoServer, sdk_config_for};
use webhook_receiver::handler::Receiver;

const LOCAL_AUTH: &str = include_str!("../../../infra/local/receiver-auth.json");
const PRODUCT_CREATE: &str =
    include_str!("../../../events/webhook-receiver/function-url-product-create.json");
const SAMPLES: usize = 400;
const WARM_UP: usize = 30;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
        let sqs = SqsClient::new(&sdk);
        let queue = sqs
            .create_queue()
            .queue_name("bench-webhooks")
            .send()
            .await?;
        let quarantine = sqs
            .create_queue()
            .queue_name("bench-quarantine")
            .send()
            .await?;
        let queue_url = queue.queue_url.unwrap_or_default();
        let receiver = Receiver::new(
            SecretSource::Fixed(AuthConfig::from_json(LOCAL_AUTH)?.into()),
            SqsQueue::new(sqs.clone(), &queue_url),
            SqsQueue::new(sqs.clone(), quarantine.queue_url.unwrap_or_default()),
            ReceiverLimits::default(),
        );
        let event: serde_json::Value = serde_json::from_str(PRODUCT_CREATE)?;
        let body = event["body"].as_str().unwrap_or_default().to_owned();

        let (mut calls, mut sends) = (Vec::new(), Vec::new());
        for sample in 0..WARM_UP + SAMPLES {
            let request = lambda_http::request::from_str(PRODUCT_CREATE)?;
            let started = Instant::now();
            let response = receiver.handle(request).await;
            let call = started.elapsed();
            assert_eq!(response.status(), 200);
            let started = Instant::now();
            sqs.send_message()
                .queue_url(&queue_url)
                .message_body(&body)
                .send()
                .await?;
            let send = started.elapsed();
            if sample >= WARM_UP {
                calls.push(call);
                sends.push(send);
            }
        }
        let (call, send) = (median(calls), median(sends));
        println!("receiver warm call (handler + SendMessage with attributes), median: {call:?}");
        println!("bare SendMessage of the same body, median: {send:?}");
        println!(
            "ratio: {:.2} × bare SendMessage",
            call.as_secs_f64() / send.as_secs_f64()
        );
        Ok(())
    })
}
