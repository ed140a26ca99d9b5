//! Rows per second of the mirror's batches of 100 stream records (one transaction each: the upsert
//! and the history), against the same rows loaded by `COPY` into the same two tables (the limit on
//! this machine; target, docs/src/benchmarks.md: ratio ≥ 0.5); then what the history's `valid_to`,
//! worked out by a view, costs an as-of query against the stored column it replaced, with the
//! answers compared. A real PostgreSQL started by test-support.
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
const HISTORY_TABLE: &str = "tripletex.object_version_row";

/// `data` (CSV) loaded by one `COPY … FROM STDIN`: the rows it wrote.
async fn copy(client: &tokio_postgres::Client, statement: &str, data: String) -> u64 {
    let sink = client.copy_in(statement).await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await.unwrap();
    sink.finish().await.unwrap()
}

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
                analyst.batch_execute("ANALYZE tripletex.object, tripletex.object_version_row").await.unwrap();
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
        let copied = copy(
            &client,
            "COPY tripletex.object (tenant, type, id, version, version_unknown, deleted, value, last_value, \
             source, received_at, updated_at, deleted_at, forgotten_at) FROM STDIN (FORMAT csv)",
            data,
        )
        .await;
        let copied_history = copy(
            &client,
            &format!(
                "COPY {HISTORY_TABLE} (tenant, type, id, version, valid_from, value, request_id) FROM STDIN (FORMAT csv)"
            ),
            history,
        )
        .await;
        let copy = started.elapsed();
        assert_eq!((copied, copied_history), (count as u64, count as u64));

        let per_second = |elapsed: std::time::Duration| count as f64 / elapsed.as_secs_f64();
        println!(
            "{count} rows in batches of {batch_size} (one transaction each: upsert, history): {:.2} s, {:.0} rows/s",
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

        history_reads(server).await;
    });
}

/// What `valid_to` computed by the view (schema 6) costs the history's readers, against the column
/// the mirror wrote on each batch before (schema 5): the same versions in both, the same as-of
/// queries, their answers compared and timed.
async fn history_reads(server: &PostgresServer) {
    const OBJECTS: i64 = 10_000;
    const VERSIONS: i64 = 5;
    let day = |n: i64| format!("2026-01-{:02}T00:00:00Z", n + 1);
    let mut objects = String::new();
    let mut history = String::new();
    for id in 0..OBJECTS {
        // Every tenth object ends in a tombstone, the day after its last version.
        let deleted = id % 10 == 0;
        objects.push_str(&format!(
            "company-{},customer,{id},{VERSIONS},{deleted},{},{},{}\n",
            id % 10,
            if deleted {
                String::new()
            } else {
                csv(&format!(r#"{{"id":{id}}}"#))
            },
            day(VERSIONS + 1),
            if deleted {
                day(VERSIONS + 1)
            } else {
                String::new()
            },
        ));
        for version in 1..=VERSIONS {
            // Objects start on different days, so an as-of day finds different versions.
            history.push_str(&format!(
                "company-{},customer,{id},{version},{},{}\n",
                id % 10,
                day(version + id % 3),
                csv(&format!(r#"{{"id":{id},"version":{version}}}"#)),
            ));
        }
    }
    let load = async |name: &str, schema: i32, history_table: &str| {
        let settings = DatabaseSettings::parse_secret(&server.fresh_database(name)).unwrap();
        let mut client = settings.connect().await.unwrap();
        postgres_adapter::migrations::migrate_to(&mut client, schema)
            .await
            .unwrap();
        for (statement, data) in [
            (
                "COPY tripletex.object (tenant, type, id, version, deleted, value, updated_at, deleted_at) \
                 FROM STDIN (FORMAT csv)"
                    .to_owned(),
                &objects,
            ),
            (
                format!("COPY {history_table} (tenant, type, id, version, valid_from, value) FROM STDIN (FORMAT csv)"),
                &history,
            ),
        ] {
            copy(&client, &statement, data.clone()).await;
        }
        client
    };
    let stored = load("bench_history_stored", 5, "tripletex.object_version").await;
    // What the mirror's batches kept up to date, at once.
    stored
        .batch_execute(
            "UPDATE tripletex.object_version h SET valid_to = n.valid_to FROM (
                 SELECT h.tenant, h.type, h.id, h.version,
                        COALESCE(lead(h.valid_from) OVER (PARTITION BY h.tenant, h.type, h.id ORDER BY h.version),
                                 CASE WHEN o.deleted THEN o.deleted_at END) AS valid_to
                 FROM tripletex.object_version h
                 LEFT JOIN tripletex.object o USING (tenant, type, id)) n
             WHERE (h.tenant, h.type, h.id, h.version) = (n.tenant, n.type, n.id, n.version);
             ANALYZE tripletex.object, tripletex.object_version",
        )
        .await
        .unwrap();
    let computed = load(
        "bench_history_computed",
        postgres_adapter::migrations::latest(),
        HISTORY_TABLE,
    )
    .await;
    computed
        .batch_execute("ANALYZE tripletex.object, tripletex.object_version_row")
        .await
        .unwrap();

    const ONE: &str = "SELECT version FROM tripletex.object_version
        WHERE tenant = $1 AND type = 'customer' AND id = $2
          AND valid_from <= $3::text::timestamptz AND (valid_to IS NULL OR valid_to > $3::text::timestamptz)";
    const COMPANY: &str = "SELECT count(*), COALESCE(sum(version), 0)::bigint FROM tripletex.object_version
        WHERE tenant = $1 AND type = 'customer'
          AND valid_from <= $2::text::timestamptz AND (valid_to IS NULL OR valid_to > $2::text::timestamptz)";
    let lookups: Vec<(String, i64, String)> = (0..1_000)
        .map(|n| {
            (
                format!("company-{}", (n * 7) % 10),
                (n * 7) % OBJECTS,
                day(1 + n % 7),
            )
        })
        .collect();
    let mut answers = Vec::new();
    for (label, client) in [
        ("stored column (schema 5)", &stored),
        ("view (schema 6)", &computed),
    ] {
        let one = client.prepare(ONE).await.unwrap();
        let company = client.prepare(COMPANY).await.unwrap();
        let started = Instant::now();
        let mut found = Vec::new();
        for (tenant, id, at) in &lookups {
            let row = client.query_opt(&one, &[tenant, id, at]).await.unwrap();
            found.push(row.map(|r| r.get::<_, i64>(0)));
        }
        let one_elapsed = started.elapsed();
        let started = Instant::now();
        let mut snapshots = Vec::new();
        for n in 0..10 {
            let row = client
                .query_one(&company, &[&format!("company-{n}"), &day(1 + n as i64 % 7)])
                .await
                .unwrap();
            snapshots.push((row.get::<_, i64>(0), row.get::<_, i64>(1)));
        }
        let company_elapsed = started.elapsed();
        println!(
            "history as of a day, {label}: one object {:.3} ms a query (1,000), one company's {} objects {:.1} ms a query (10)",
            one_elapsed.as_secs_f64() * 1000.0 / 1_000.0,
            OBJECTS / 10,
            company_elapsed.as_secs_f64() * 1000.0 / 10.0,
        );
        answers.push((found, snapshots));
    }
    assert_eq!(
        answers[0], answers[1],
        "the view must answer as the stored column did"
    );
    println!(
        "the same answers both ways: {} objects' versions, {} companies' snapshots",
        answers[0].0.len(),
        answers[0].1.len()
    );
}
