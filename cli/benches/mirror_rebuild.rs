//! `mirror rebuild` of a whole objects table: wall time and peak heap of the command's own process,
//! into a real PostgreSQL (started by test-support), from one of two sources:
//! - `--source moto` (the default): DynamoDB in moto, the items written first with BatchWriteItem
//!   (not timed), read by the command's parallel scan. moto's scan slows with the table's size (it
//!   serves each page from one Python process), so this source is for up to about 100,000 items;
//! - `--source memory`: the same items made page by page in memory (`--page` items a page, about a
//!   1 MB DynamoDB page of them) and handed to the same `mirror_pages` the scan feeds: everything the
//!   command does but the table's reading, at any size.
//!
//! docs/src/benchmarks.md. `cargo bench -p tripletex-webhooks --bench mirror_rebuild [-- --items N
//! --segments S --source moto|memory --page P]`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

use std::time::Instant;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use domain::claim::NoPayloadBucket;
use domain::item;
use postgres_adapter::{DatabaseSettings, PgMirror};
use test_support::heap::{self, CountingAllocator};
use test_support::{MotoServer, PostgresServer, sdk_config_for};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|arg| arg != name)
        .nth(1)
        .map_or(default, |n| n.parse().expect("a number"))
}

fn item(id: usize) -> std::collections::HashMap<String, AttributeValue> {
    let s = |text: String| AttributeValue::S(text);
    let tenant = format!("company-{}", id % 20);
    [
        (item::KEY, s(format!("{tenant}#customer#{id}"))),
        (item::TENANT, s(tenant.clone())),
        (item::OBJECT_TYPE, s("customer".into())),
        (item::OBJECT_ID, AttributeValue::N(id.to_string())),
        (item::VERSION, AttributeValue::N((id % 9).to_string())),
        (item::DELETED, AttributeValue::Bool(id.is_multiple_of(50))),
        (
            item::VALUE,
            s(format!(
                r#"{{"id":{id},"version":{},"name":"Kunde {id} AS","email":"post{id}@example.invalid","isInactive":false}}"#,
                id % 9
            )),
        ),
        (item::SOURCE, s("webhook".into())),
        (item::RECEIVED_AT, s("2026-12-01T10:00:00Z".into())),
        (item::UPDATED_AT, s("2026-12-01T10:00:00.5Z".into())),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

fn source() -> String {
    std::env::args()
        .skip_while(|arg| arg != "--source")
        .nth(1)
        .unwrap_or_else(|| "moto".to_owned())
}

/// The items in pages, made as the command takes them: never more than a few pages in memory.
fn pages_in_memory(items: usize, page: usize) -> tripletex_webhooks::commands::mirror::Pages {
    let (sender, pages) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for first in (0..items).step_by(page) {
            let made = (first..(first + page).min(items)).map(item).collect();
            if sender.send(Ok(made)).await.is_err() {
                return;
            }
        }
    });
    pages
}

fn main() {
    let items = arg("--items", 100_000);
    let segments = arg("--segments", 4) as i32;
    let page = arg("--page", 2_500);
    let source = source();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let database = PostgresServer::shared().fresh_database("bench_rebuild");
        let mirror = PgMirror::connect(DatabaseSettings::parse_secret(&database).unwrap())
            .await
            .unwrap();
        let (rebuilt, seconds, peak, from) = if source == "memory" {
            let mark = heap::start_peak();
            let started = Instant::now();
            let rebuilt = tripletex_webhooks::commands::mirror::mirror_pages(
                pages_in_memory(items, page),
                &NoPayloadBucket,
                &mirror,
            )
            .await
            .unwrap();
            let from = format!("pages of {page} made in memory");
            (
                rebuilt,
                started.elapsed().as_secs_f64(),
                heap::peak_since(mark),
                from,
            )
        } else {
            let (dynamodb, table) = load_into_moto(items).await;
            let mark = heap::start_peak();
            let started = Instant::now();
            let rebuilt = tripletex_webhooks::commands::mirror::rebuild(
                &dynamodb,
                &NoPayloadBucket,
                &mirror,
                &table,
                (None, None),
                segments,
            )
            .await
            .unwrap();
            let from = format!("moto, {segments} scan segments");
            (
                rebuilt,
                started.elapsed().as_secs_f64(),
                heap::peak_since(mark),
                from,
            )
        };
        assert_eq!(rebuilt.items, items as u64);
        println!(
            "mirror rebuild of {items} items ({from}): {seconds:.1} s, {:.0} items/s, \
             {:.1} s of it writing to PostgreSQL, {} rows changed, peak heap {:.1} MiB",
            items as f64 / seconds,
            rebuilt.writing_seconds,
            rebuilt.rows_changed,
            peak as f64 / (1024.0 * 1024.0)
        );
    });
}

/// A table in moto holding the items (written with BatchWriteItem, not timed).
async fn load_into_moto(items: usize) -> (aws_sdk_dynamodb::Client, String) {
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = format!("bench-rebuild-{}", std::process::id());
    dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(item::KEY)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(item::KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let loading = Instant::now();
    let chunks: Vec<Vec<usize>> = (0..items)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(<[usize]>::to_vec)
        .collect();
    let mut pending = futures_util::stream::iter(chunks.into_iter().map(|chunk| {
        let (dynamodb, table) = (dynamodb.clone(), table.clone());
        async move {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|id| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item(*id)))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect();
            while !requests.is_empty() {
                let output = dynamodb
                    .batch_write_item()
                    .request_items(&table, requests)
                    .send()
                    .await
                    .unwrap();
                requests = output
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&table))
                    .unwrap_or_default();
            }
        }
    }));
    use futures_util::StreamExt as _;
    let mut loaded = (&mut pending).buffer_unordered(4);
    while loaded.next().await.is_some() {}
    drop(loaded);
    drop(pending);
    println!(
        "{items} items written to moto in {:.1} s (not timed below)",
        loading.elapsed().as_secs_f64()
    );
    (dynamodb, table)
}
