//! The mirror against a real PostgreSQL (Debian's package, started by test-support): migrations from
//! empty and from the previous version, a batch applied twice, out of order and bisected, the history
//! and an "as of" query, a view per type, a forgotten value, a removed company.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use domain::dedup::ObjectKey;
use domain::mirror::MirrorRow;
use domain::ports::Mirror;
use jiff::Timestamp;
use postgres_adapter::migrations::{self, migrate, migrate_to};
use postgres_adapter::mirror::{Prepared, apply_batch};
use postgres_adapter::{DatabaseSettings, PgMirror};
use test_support::PostgresServer;
use tokio_postgres::Client;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_760_000_000 + second).unwrap()
}

fn customer(id: i64, version: i64, second: i64) -> MirrorRow {
    MirrorRow {
        tenant: "acme".into(),
        object_type: "customer".into(),
        object_id: id,
        version: Some(version),
        version_unknown: false,
        deleted: false,
        value: Some(format!(
            r#"{{"id":{id},"version":{version},"name":"Kari {version}","organizationNumber":"99887766{id}","email":"k{id}@example.invalid","isInactive":false}}"#
        )),
        last_value: None,
        source: Some("webhook".into()),
        received_at: Some(at(second)),
        updated_at: at(second),
        deleted_at: None,
        forgotten_at: None,
        replaced_at: None,
        request: Some(format!("req-{id}-{version}")),
    }
}

fn tombstone(id: i64, version: i64, second: i64) -> MirrorRow {
    MirrorRow {
        deleted: true,
        value: None,
        deleted_at: Some(at(second)),
        ..customer(id, version, second)
    }
}

async fn database(name: &str) -> (PgMirror, Client) {
    let url = PostgresServer::shared().fresh_database(name);
    let settings = DatabaseSettings::parse_secret(&url).unwrap();
    let mirror = PgMirror::connect(settings.clone()).await.unwrap();
    (mirror, settings.connect().await.unwrap())
}

async fn rows(client: &Client) -> Vec<(i64, Option<i64>, bool, Option<String>)> {
    client
        .query(
            "SELECT id, version, deleted, value->>'name' FROM tripletex.object ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

#[tokio::test]
async fn migrations_run_from_empty_and_from_the_previous_version_and_again_change_nothing() {
    let url = PostgresServer::shared().fresh_database("migrations");
    let settings = DatabaseSettings::parse_secret(&url).unwrap();
    let mut client = settings.connect().await.unwrap();
    assert_eq!(migrate_to(&mut client, 1).await.unwrap(), [1]);
    client
        .execute(
            "INSERT INTO tripletex.object (tenant, type, id, version, value, received_at, updated_at)
             VALUES ('acme', 'customer', 1, 4, '{\"name\":\"Kari\"}', now(), now())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        migrate_to(&mut client, 5).await.unwrap(),
        [2, 3, 4, 5],
        "from version 1"
    );
    // At version 5 the history stored valid_to; from 6 the view works it out, the same.
    client
        .batch_execute(
            "UPDATE tripletex.object_version SET valid_to = '2026-01-02T00:00:00Z';
             INSERT INTO tripletex.object_version (tenant, type, id, version, valid_from, valid_to, value)
             VALUES ('acme', 'customer', 1, 5, '2026-01-02T00:00:00Z', NULL, '{\"name\":\"Kari 5\"}');
             UPDATE tripletex.object SET version = 5, value = '{\"name\":\"Kari 5\"}'",
        )
        .await
        .unwrap();
    let before = valid_to_of_object_1(&client).await;
    assert_eq!(migrate(&mut client).await.unwrap(), [6], "from version 5");
    assert_eq!(valid_to_of_object_1(&client).await, before);
    assert_eq!(before[1], (5, None));
    assert!(
        migrate(&mut client).await.unwrap().is_empty(),
        "safe to run twice"
    );
    let history = client
        .query_one(
            "SELECT version, value->>'name' FROM tripletex.object_version ORDER BY version LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (history.get::<_, i64>(0), history.get::<_, String>(1)),
        (4, "Kari".to_owned())
    );
    let applied: Vec<i32> = client
        .query(
            "SELECT version FROM tripletex.schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(applied, [1, 2, 3, 4, 5, 6]);
    assert_eq!(migrations::latest(), 6);
    let mut empty = settings_for("migrations_empty").connect().await.unwrap();
    assert_eq!(
        migrate(&mut empty).await.unwrap(),
        [1, 2, 3, 4, 5, 6],
        "from empty"
    );
}

/// Object 1's versions in the history, each with when it stopped being current.
async fn valid_to_of_object_1(client: &tokio_postgres::Client) -> Vec<(i64, Option<String>)> {
    client
        .query(
            "SELECT version, valid_to::text FROM tripletex.object_version WHERE id = 1 ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn settings_for(name: &str) -> DatabaseSettings {
    DatabaseSettings::parse_secret(&PostgresServer::shared().fresh_database(name)).unwrap()
}

#[tokio::test]
async fn a_batch_applied_twice_out_of_order_or_bisected_ends_the_same_and_never_moves_back() {
    let (mirror, client) = database("batches").await;
    let batch = vec![
        customer(1, 1, 10),
        customer(2, 1, 10),
        customer(1, 3, 30),
        customer(1, 2, 20),
        tombstone(3, 7, 40),
        customer(3, 8, 50),
    ];
    assert_eq!(mirror.apply(&batch, &[]).await.unwrap(), 3);
    let once = rows(&client).await;
    assert_eq!(
        once,
        [
            (1, Some(3), false, Some("Kari 3".into())),
            (2, Some(1), false, Some("Kari 1".into())),
            (3, Some(7), true, None),
        ],
        "the newest version of 1; 3's tombstone is final though a later update came in the same batch"
    );
    assert_eq!(
        mirror.apply(&batch, &[]).await.unwrap(),
        0,
        "a replay changes nothing"
    );
    assert_eq!(
        mirror.apply(&[customer(1, 2, 99)], &[]).await.unwrap(),
        0,
        "older version later"
    );
    assert_eq!(rows(&client).await, once);

    let (bisected, other) = database("bisected").await;
    let (front, back) = batch.split_at(3);
    bisected.apply(back, &[]).await.unwrap();
    bisected.apply(front, &[]).await.unwrap();
    assert_eq!(
        rows(&other).await,
        once,
        "halves in reverse order end the same"
    );
}

#[tokio::test]
async fn every_version_is_history_and_an_as_of_query_finds_the_one_then_current() {
    let (mirror, client) = database("history").await;
    for image in [customer(1, 3, 30), customer(1, 1, 10), customer(1, 2, 20)] {
        mirror.apply(&[image], &[]).await.unwrap();
    }
    mirror.apply(&[tombstone(1, 3, 40)], &[]).await.unwrap();
    let history = valid_to_of_object_1(&client).await;
    assert_eq!(history.len(), 3);
    assert!(
        history.iter().all(|(_, to)| to.is_some()),
        "each closed, the last by its tombstone: {history:?}"
    );
    let as_of = |second: i64| {
        let client = &client;
        async move {
            client
                .query_opt(
                    "SELECT version FROM tripletex.object_version
                     WHERE tenant = 'acme' AND type = 'customer' AND id = 1
                       AND valid_from <= $1::text::timestamptz
                       AND (valid_to IS NULL OR valid_to > $1::text::timestamptz)",
                    &[&at(second).to_string()],
                )
                .await
                .unwrap()
                .map(|row| row.get::<_, i64>(0))
        }
    };
    assert_eq!(as_of(25).await, Some(2));
    assert_eq!(as_of(35).await, Some(3));
    assert_eq!(as_of(45).await, None, "deleted by then");
    assert_eq!(as_of(5).await, None, "not yet made");
}

#[tokio::test]
async fn each_version_names_the_request_that_made_it() {
    let (mirror, client) = database("requests").await;
    for image in [customer(1, 1, 10), customer(1, 2, 20)] {
        mirror.apply(&[image], &[]).await.unwrap();
    }
    let history: Vec<(i64, Option<String>)> = client
        .query(
            "SELECT version, request_id FROM tripletex.object_version WHERE id = 1 ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        history,
        [
            (1, Some("req-1-1".to_owned())),
            (2, Some("req-1-2".to_owned()))
        ]
    );
    let current: Option<String> = client
        .query_one("SELECT request_id FROM tripletex.object WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(current.as_deref(), Some("req-1-2"));
}

#[tokio::test]
async fn a_view_per_type_gives_typed_columns() {
    let (mirror, client) = database("views").await;
    mirror.apply(&[customer(7, 2, 10)], &[]).await.unwrap();
    let row = client
        .query_one(
            "SELECT name, organization_number, email, is_inactive FROM tripletex.customer WHERE id = 7",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Kari 2");
    assert_eq!(row.get::<_, String>(1), "998877667");
    assert_eq!(row.get::<_, String>(2), "k7@example.invalid");
    assert!(!row.get::<_, bool>(3));
    let invoice = MirrorRow {
        object_type: "invoice".into(),
        value: Some(
            r#"{"id":8,"version":1,"invoiceNumber":1001,"invoiceDate":"2026-11-01","invoiceDueDate":"2026-11-15","amount":1250.5,"amountOutstanding":1250.5,"customer":{"id":7}}"#.into(),
        ),
        ..customer(8, 1, 10)
    };
    mirror.apply(&[invoice], &[]).await.unwrap();
    let unpaid = client
        .query_one(
            "SELECT c.name, sum(i.amount_outstanding)::text FROM tripletex.invoice i
             JOIN tripletex.customer c ON (c.tenant, c.id) = (i.tenant, i.customer_id)
             WHERE i.amount_outstanding > 0 GROUP BY c.name",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (unpaid.get::<_, String>(0), unpaid.get::<_, String>(1)),
        ("Kari 2".into(), "1250.5".into())
    );
}

#[tokio::test]
async fn a_forgotten_value_leaves_the_row_and_the_history_and_a_replay_does_not_bring_it_back() {
    let (mirror, client) = database("forgotten").await;
    mirror
        .apply(&[customer(1, 1, 10), customer(1, 2, 20)], &[])
        .await
        .unwrap();
    let forgotten = MirrorRow {
        value: None,
        forgotten_at: Some(at(30)),
        ..customer(1, 2, 30)
    };
    mirror.apply(&[forgotten], &[]).await.unwrap();
    mirror
        .apply(&[customer(1, 1, 10), customer(1, 2, 20)], &[])
        .await
        .unwrap();
    assert_eq!(rows(&client).await, [(1, Some(2), false, None)]);
    let kept: i64 = client
        .query_one(
            "SELECT count(*) FROM tripletex.object_version WHERE value IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        kept, 0,
        "no version of the forgotten object keeps its value"
    );
    mirror.apply(&[customer(1, 3, 40)], &[]).await.unwrap();
    assert_eq!(
        rows(&client).await,
        [(1, Some(3), false, Some("Kari 3".into()))],
        "a newer version lives"
    );
}

#[tokio::test]
async fn tripletexs_replacement_of_a_forged_write_reaches_the_row_and_the_history_and_stays() {
    let (mirror, client) = database("replaced").await;
    // A forged version 99 and a forged delete, then Tripletex's answers replacing them.
    mirror
        .apply(
            &[
                customer(1, 3, 10),
                customer(1, 99, 20),
                customer(2, 4, 10),
                tombstone(2, 4, 20),
            ],
            &[],
        )
        .await
        .unwrap();
    let replaced = |id, version| MirrorRow {
        replaced_at: Some(at(30)),
        source: Some("resync".into()),
        received_at: Some(at(30)),
        ..customer(id, version, 30)
    };
    mirror
        .apply(&[replaced(1, 3), replaced(2, 4)], &[])
        .await
        .unwrap();
    let expected = [
        (1, Some(3), false, Some("Kari 3".to_owned())),
        (2, Some(4), false, Some("Kari 4".to_owned())),
    ];
    assert_eq!(rows(&client).await, expected);
    // The stream replays the forged images (a retry, a rebuild beside it): nothing moves back.
    mirror
        .apply(&[customer(1, 99, 20), tombstone(2, 4, 20)], &[])
        .await
        .unwrap();
    assert_eq!(rows(&client).await, expected);
    let versions: Vec<(i64, i64)> = client
        .query(
            "SELECT id, version FROM tripletex.object_version ORDER BY id, version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        versions,
        [(1, 3), (2, 4)],
        "version 99 was never Tripletex's"
    );
}

#[tokio::test]
async fn a_removed_object_leaves_with_its_history() {
    let (mirror, client) = database("removed").await;
    mirror
        .apply(&[customer(1, 1, 10), customer(2, 1, 10)], &[])
        .await
        .unwrap();
    let removed: ObjectKey = "acme#customer#1".parse().unwrap();
    mirror.apply(&[], &[removed]).await.unwrap();
    assert_eq!(rows(&client).await.len(), 1);
    let history: i64 = client
        .query_one(
            "SELECT count(*) FROM tripletex.object_version WHERE id = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(history, 0);
    // The same statements inside a caller's transaction, for a rebuild that commits in pages.
    let mut client = client;
    let transaction = client.transaction().await.unwrap();
    let prepared = Prepared::on(&transaction).await.unwrap();
    assert_eq!(
        apply_batch(&transaction, &prepared, &[customer(5, 1, 1)], &[])
            .await
            .unwrap(),
        1
    );
    transaction.rollback().await.unwrap();
}

/// The database's secret as it reads after a rotation.
struct Rotated(DatabaseSettings);

impl postgres_adapter::SettingsSource for Rotated {
    fn current(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = DatabaseSettings> + Send + '_>> {
        Box::pin(async { self.0.clone() })
    }
}

#[tokio::test]
async fn a_rotated_password_is_read_again_from_the_secret_when_the_server_refuses_the_old_one() {
    let url = PostgresServer::shared().fresh_database("rotation");
    let admin = DatabaseSettings::parse_secret(&url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    // `rotating` is the one user whose password the test server checks (tools/postgres/serve.sh).
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS rotating; \
             CREATE ROLE rotating LOGIN SUPERUSER PASSWORD 'first-password'",
        )
        .await
        .unwrap();
    let as_rotating = |password: &str| {
        DatabaseSettings::parse_secret(&url.replacen(
            "postgres@",
            &format!("rotating:{password}@"),
            1,
        ))
        .unwrap()
    };
    let mirror = PgMirror::connect(as_rotating("first-password"))
        .await
        .unwrap()
        .with_settings_source(Rotated(as_rotating("second-password")));
    mirror.apply(&[customer(1, 1, 10)], &[]).await.unwrap();

    // The secret rotates: the password changes, and the mirror's connection is ended.
    admin
        .batch_execute(
            "ALTER ROLE rotating PASSWORD 'second-password'; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rotating'",
        )
        .await
        .unwrap();
    // The termination is a signal: wait until the server has ended the backend, so that the next
    // call meets a connection that is gone rather than racing it.
    while admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'rotating'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The call that finds its connection gone fails (the stream retries it); the next connects
    // again, is refused the old password, reads the secret and goes on with the new one.
    let mut applied = mirror.apply(&[customer(1, 2, 20)], &[]).await;
    if applied.is_err() {
        applied = mirror.apply(&[customer(1, 2, 20)], &[]).await;
    }
    applied.unwrap();
    assert_eq!(
        rows(&admin).await,
        [(1, Some(2), false, Some("Kari 2".to_owned()))]
    );
}
