//! Rows per second of the mirror's batches of 100 stream records (one transaction each: the upsert,
//! the history, its valid_to), against the same object rows loaded by one `COPY` (the limit on this
//! machine; target, docs/src/benchmarks.md: ratio ≥ 0.5). A real PostgreSQL started by test-support.
//! `cargo bench -p postgres-adapter --bench batches_against_copy [-- --rows N --batch B]`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic: that is its failure

use std::time::Instant;

use domain::mirror::MirrorRow;
use domain::ports::Mirror;
use futures_util::SinkExt as _;
use jiff::Timestamp;
use postgres_adapter::{DatabaseSettings, PgMirror};
use test_support::PostgresServer;

fn rows(count: i64) -> Vec<MirrorRow> {
    (0..count)
        .map(|i| MirrorRow {
            tenant: format!("company-{}", i % 10),
            object_type: "customer".into(),
            object_id: 20_000_000 + i,
            version: Some(i % 7),
            version_unknown: false,
            deleted: false,
            value: Some(format!(
                r#"{{"id":{},"version":{},"name":"Kunde {i} AS","organizationNumber":"9{:08}","email":"post{i}@example.invalid","isInactive":false,"postalAddress":{{"addressLine1":"Gate {i}","postalCode":"0150","city":"Oslo"}}}}"#,
                20_000_000 + i,
                i % 7,
                i
            )),
            last_value: None,
            source: Some("webhook".into()),
            received_at: Some(Timestamp::from_second(1_760_000_000 + i).unwrap()),
            updated_at: Timestamp::from_second(1_760_000_000 + i).unwrap(),
            deleted_at: None,
            forgotten_at: None,
            replaced_at: None,
            request: Some(format!("req-{i}")),
        })
        .collect()
}

/// Where the history's rows are written.
const HISTORY_TABLE: &str = "tripletex.object_version";

fn csv(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn main() {
    let count: i64 = std::env::args()
        .skip_while(|arg| arg != "--rows")
        .nth(1)
        .map_or(20_000, |n| n.parse().expect("--rows N"));
    let batch_size: usize = std::env::args()
        .skip_while(|arg| arg != "--batch")
        .nth(1)
        .map_or(100, |n| n.parse().expect("--batch N"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = PostgresServer::shared();
        let rows = rows(count);

        let settings = |name: &str| DatabaseSettings::parse_secret(&server.fresh_database(name)).unwrap();
        let batch_settings = settings("bench_batches");
        let mirror = PgMirror::connect(batch_settings.clone()).await.unwrap();
        let analyst = batch_settings.connect().await.unwrap();
        let started = Instant::now();
        for (index, batch) in rows.chunks(batch_size).enumerate() {
            mirror.apply(batch, &[]).await.unwrap();
            // What autovacuum does to a table that has grown: the planner learns it is no longer
            // empty (a bench from empty would otherwise measure plans made for empty tables).
            if index == 1000 / batch_size {
                analyst.batch_execute("ANALYZE tripletex.object, tripletex.object_version").await.unwrap();
            }
        }
        let batches = started.elapsed();

        let copy_settings = settings("bench_copy");
        let _schema = PgMirror::connect(copy_settings.clone()).await.unwrap();
        let client = copy_settings.connect().await.unwrap();
        let mut data = String::with_capacity(rows.len() * 400);
        for row in &rows {
            data.push_str(&format!(
                "{},{},{},{},false,false,{},,{},{},{},,\n",
                row.tenant,
                row.object_type,
                row.object_id,
                row.version.unwrap_or_default(),
                csv(row.value.as_deref().unwrap_or("null")),
                row.source.as_deref().unwrap_or_default(),
                row.received_at.map(|t| t.to_string()).unwrap_or_default(),
                row.updated_at
            ));
        }
        let mut history = String::with_capacity(rows.len() * 400);
        for row in &rows {
            history.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                row.tenant,
                row.object_type,
                row.object_id,
                row.version.unwrap_or_default(),
                row.received_at.unwrap_or(row.updated_at),
                csv(row.value.as_deref().unwrap_or("null")),
                row.request.as_deref().unwrap_or_default(),
            ));
        }
        let started = Instant::now();
        let sink = client
            .copy_in(
                "COPY tripletex.object (tenant, type, id, version, version_unknown, deleted, value, last_value, \
                 source, received_at, updated_at, deleted_at, forgotten_at) FROM STDIN (FORMAT csv)",
            )
            .await
            .unwrap();
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await.unwrap();
        let copied = sink.finish().await.unwrap();
        let history_sink = client
            .copy_in(&format!(
                "COPY {HISTORY_TABLE} (tenant, type, id, version, valid_from, value, request_id) FROM STDIN (FORMAT csv)"
            ))
            .await
            .unwrap();
        futures_util::pin_mut!(history_sink);
        history_sink.send(bytes::Bytes::from(history)).await.unwrap();
        let copied_history = history_sink.finish().await.unwrap();
        let copy = started.elapsed();
        assert_eq!((copied, copied_history), (count as u64, count as u64));

        let per_second = |elapsed: std::time::Duration| count as f64 / elapsed.as_secs_f64();
        println!(
            "{count} rows in batches of {batch_size} (one transaction each: upsert, history, valid_to): {:.2} s, {:.0} rows/s",
            batches.as_secs_f64(),
            per_second(batches)
        );
        println!(
            "the same rows by COPY into both tables (objects and history): {:.2} s, {:.0} rows/s",
            copy.as_secs_f64(),
            per_second(copy)
        );
        println!(
            "ratio: {:.2} (target ≥ 0.5)",
            per_second(batches) / per_second(copy)
        );
    });
}
