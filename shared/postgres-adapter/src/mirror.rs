//! `Mirror` on PostgreSQL: one transaction per batch, each step one multi-row statement over arrays
//! (`UNNEST`), never a round trip per record.

use domain::dedup::ObjectKey;
use domain::mirror::{MirrorRow, newest_per_object};
use domain::ports::{Mirror, MirrorError};
use tokio::sync::Mutex;
use tokio_postgres::{Client, GenericClient, Statement};
use tracing::{instrument, warn};

use crate::connect::{ConnectError, DatabaseSettings};
use crate::migrations;

/// The upsert states `MirrorRow::replaces` in its `WHERE`: a later replacement (Tripletex's answer
/// against a forged or mistaken write) wins, an image from before one never does; otherwise a
/// tombstone is final, and the image later in (version, updated_at) wins.
const UPSERT: &str = r#"
INSERT INTO tripletex.object AS o (tenant, type, id, version, version_unknown, deleted, value, last_value,
                                   source, received_at, updated_at, deleted_at, forgotten_at, replaced_at,
                                   request_id)
SELECT tenant, type, id, version, version_unknown, deleted, value::jsonb, last_value::jsonb, source,
       received_at::timestamptz, updated_at::timestamptz, deleted_at::timestamptz, forgotten_at::timestamptz,
       replaced_at::timestamptz, request_id
FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bool[], $6::bool[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
            $15::text[])
     AS r(tenant, type, id, version, version_unknown, deleted, value, last_value, source, received_at,
          updated_at, deleted_at, forgotten_at, replaced_at, request_id)
ON CONFLICT (tenant, type, id) DO UPDATE SET
    version = EXCLUDED.version, version_unknown = EXCLUDED.version_unknown, deleted = EXCLUDED.deleted,
    value = EXCLUDED.value, last_value = EXCLUDED.last_value, source = EXCLUDED.source,
    received_at = EXCLUDED.received_at, updated_at = EXCLUDED.updated_at,
    deleted_at = EXCLUDED.deleted_at, forgotten_at = EXCLUDED.forgotten_at, replaced_at = EXCLUDED.replaced_at,
    request_id = EXCLUDED.request_id
WHERE CASE WHEN EXCLUDED.replaced_at IS DISTINCT FROM o.replaced_at
           THEN COALESCE(EXCLUDED.replaced_at > o.replaced_at, EXCLUDED.replaced_at IS NOT NULL)
           ELSE NOT (o.deleted AND NOT EXCLUDED.deleted)
                AND (COALESCE(EXCLUDED.version, -1), EXCLUDED.updated_at) > (COALESCE(o.version, -1), o.updated_at)
      END
"#;

/// A replaced object's history loses the versions above the one Tripletex has: they were never
/// Tripletex's (a forged or mistaken write).
const DROP_REPLACED_HISTORY: &str = r#"
DELETE FROM tripletex.object_version_row h
USING tripletex.object o, UNNEST($1::text[], $2::text[], $3::bigint[]) AS t(tenant, type, id)
WHERE (o.tenant, o.type, o.id) = (t.tenant, t.type, t.id) AND o.replaced_at IS NOT NULL
  AND (h.tenant, h.type, h.id) = (o.tenant, o.type, o.id) AND h.version > o.version
  AND h.valid_from < o.replaced_at
"#;

/// A forgotten object's history loses its values too, up to the version it was forgotten at.
const ERASE_FORGOTTEN_HISTORY: &str = r#"
UPDATE tripletex.object_version_row h SET value = NULL
FROM tripletex.object o, UNNEST($1::text[], $2::text[], $3::bigint[]) AS t(tenant, type, id)
WHERE (o.tenant, o.type, o.id) = (t.tenant, t.type, t.id) AND o.forgotten_at IS NOT NULL
  AND (h.tenant, h.type, h.id) = (o.tenant, o.type, o.id) AND h.version <= o.version
  AND h.value IS NOT NULL
"#;

/// One history row per accepted version, once; none that would bring back a forgotten value, nor
/// a version a replacement undid (received before it, above the version Tripletex has).
const INSERT_HISTORY: &str = r#"
INSERT INTO tripletex.object_version_row (tenant, type, id, version, valid_from, value, request_id)
SELECT r.tenant, r.type, r.id, r.version, r.valid_from::timestamptz, r.value::jsonb, r.request_id
FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[])
     AS r(tenant, type, id, version, valid_from, value, request_id)
WHERE NOT EXISTS (
    SELECT 1 FROM tripletex.object o
    WHERE (o.tenant, o.type, o.id) = (r.tenant, r.type, r.id)
      AND ((o.forgotten_at IS NOT NULL AND o.version >= r.version)
           OR (o.replaced_at IS NOT NULL AND r.version > o.version
               AND r.valid_from::timestamptz < o.replaced_at)))
ON CONFLICT DO NOTHING
"#;

const REMOVE_OBJECTS: &str = r#"
DELETE FROM tripletex.object o USING UNNEST($1::text[], $2::text[], $3::bigint[]) AS r(tenant, type, id)
WHERE (o.tenant, o.type, o.id) = (r.tenant, r.type, r.id)
"#;

const REMOVE_HISTORY: &str = r#"
DELETE FROM tripletex.object_version_row h USING UNNEST($1::text[], $2::text[], $3::bigint[]) AS r(tenant, type, id)
WHERE (h.tenant, h.type, h.id) = (r.tenant, r.type, r.id)
"#;

/// The batch's statements, prepared once per connection.
pub struct Prepared {
    upsert: Statement,
    erase_forgotten: Statement,
    insert_history: Statement,
    remove_objects: Statement,
    remove_history: Statement,
    drop_replaced_history: Statement,
}

impl Prepared {
    pub async fn on(client: &impl GenericClient) -> Result<Self, tokio_postgres::Error> {
        let (
            upsert,
            erase_forgotten,
            insert_history,
            remove_objects,
            remove_history,
            drop_replaced_history,
        ) = tokio::try_join!(
            client.prepare(UPSERT),
            client.prepare(ERASE_FORGOTTEN_HISTORY),
            client.prepare(INSERT_HISTORY),
            client.prepare(REMOVE_OBJECTS),
            client.prepare(REMOVE_HISTORY),
            client.prepare(DROP_REPLACED_HISTORY),
        )?;
        Ok(Self {
            upsert,
            erase_forgotten,
            insert_history,
            remove_objects,
            remove_history,
            drop_replaced_history,
        })
    }
}

/// The mirror's database: one connection per process, made again when it was lost, with its
/// statements prepared.
pub struct PgMirror {
    settings: Mutex<DatabaseSettings>,
    connection: Mutex<Option<(Client, Prepared)>>,
    /// Where the settings are read again when the server refuses their credentials (an RDS-managed
    /// rotation changes the password under a running function).
    source: Option<Box<dyn SettingsSource>>,
}

/// The database's secret, read again on demand (at most as often as its own cache allows).
pub trait SettingsSource: Send + Sync {
    fn current(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = DatabaseSettings> + Send + '_>>;
}

impl PgMirror {
    /// Connects and brings the schema to this build's version.
    pub async fn connect(settings: DatabaseSettings) -> Result<Self, MirrorError> {
        let mut client = settings.connect().await.map_err(connect_error)?;
        migrations::migrate(&mut client)
            .await
            .map_err(database_error)?;
        let prepared = Prepared::on(&client).await.map_err(database_error)?;
        Ok(Self {
            settings: Mutex::new(settings),
            connection: Mutex::new(Some((client, prepared))),
            source: None,
        })
    }

    /// Reads the settings again from `source` when the server refuses their credentials.
    pub fn with_settings_source(mut self, source: impl SettingsSource + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A new connection; when the server refuses the credentials, once more with the settings read
    /// again (the secret rotated since they were read).
    async fn connect_again(&self) -> Result<Client, MirrorError> {
        let settings = self.settings.lock().await.clone();
        match (settings.connect().await, &self.source) {
            (Err(error), Some(source)) if error.is_authentication() => {
                warn!("the database refused the credentials; reading its secret again");
                let fresh = source.current().await;
                let client = fresh.connect().await.map_err(connect_error)?;
                *self.settings.lock().await = fresh;
                Ok(client)
            }
            (connected, _) => connected.map_err(connect_error),
        }
    }

    /// Runs `work` with the connection, connecting again first if it was lost.
    async fn with_client<T>(
        &self,
        work: impl AsyncFnOnce(&mut Client, &Prepared) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, MirrorError> {
        let mut guard = self.connection.lock().await;
        if guard.as_ref().is_none_or(|(client, _)| client.is_closed()) {
            let client = self.connect_again().await?;
            let prepared = Prepared::on(&client).await.map_err(database_error)?;
            *guard = Some((client, prepared));
        }
        let Some((client, prepared)) = guard.as_mut() else {
            return Err(MirrorError::Unavailable {
                source: "no connection".into(),
            });
        };
        let result = work(client, prepared).await.map_err(database_error);
        // An error other than the data's may be the connection ending (an administrator's
        // termination arrives as an error before the socket closes): the next call connects again
        // rather than find out on this one.
        if client.is_closed() || matches!(result, Err(MirrorError::Unavailable { .. })) {
            *guard = None;
        }
        result
    }

    /// Refreshes the planner's statistics of the mirror's tables: after a bulk load from empty, so
    /// that the next statements look keys up instead of scanning (autovacuum would, later).
    pub async fn analyze(&self) -> Result<(), MirrorError> {
        self.with_client(async |client, _| {
            client
                .batch_execute("ANALYZE tripletex.object, tripletex.object_version_row")
                .await
        })
        .await
    }

    /// Rows per tenant and type, tombstones apart: (tenant, type, live, deleted).
    pub async fn rows_per_type(&self) -> Result<Vec<(String, String, i64, i64)>, MirrorError> {
        self.with_client(async |client, _| {
            let rows = client
                .query(
                    "SELECT tenant, type, count(*) FILTER (WHERE NOT deleted), count(*) FILTER (WHERE deleted)
                     FROM tripletex.object GROUP BY tenant, type ORDER BY tenant, type",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
                .collect())
        })
        .await
    }

    /// Every row's (tenant, type, id, version, deleted), in key order: what `mirror check` compares.
    pub async fn keys(&self) -> Result<Vec<(String, String, i64, Option<i64>, bool)>, MirrorError> {
        self.with_client(async |client, _| {
            let rows = client
                .query(
                    "SELECT tenant, type, id, version, deleted FROM tripletex.object ORDER BY tenant, type, id",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
                .collect())
        })
        .await
    }
}

impl Mirror for PgMirror {
    #[instrument(skip_all, fields(images = images.len(), removed = removed.len()))]
    async fn apply(&self, images: &[MirrorRow], removed: &[ObjectKey]) -> Result<u64, MirrorError> {
        self.with_client(async |client, prepared| {
            let transaction = client.transaction().await?;
            let changed = apply_batch(&transaction, prepared, images, removed).await?;
            transaction.commit().await?;
            Ok(changed)
        })
        .await
    }
}

/// The batch's statements, on a transaction the caller commits. They are sent together (pipelined)
/// and the server runs them in that order: one round trip for the whole batch.
pub async fn apply_batch(
    client: &impl GenericClient,
    prepared: &Prepared,
    images: &[MirrorRow],
    removed: &[ObjectKey],
) -> Result<u64, tokio_postgres::Error> {
    let gone_tenants: Vec<&str> = removed.iter().map(|r| r.tenant.as_str()).collect();
    let gone_types: Vec<&str> = removed.iter().map(|r| r.object_type.as_str()).collect();
    let gone_ids: Vec<i64> = removed.iter().map(|r| r.object_id).collect();

    let newest = newest_per_object(images);
    let text = |t: Option<jiff::Timestamp>| t.map(|t| t.to_string());
    let tenants: Vec<&str> = newest.iter().map(|r| r.tenant.as_str()).collect();
    let types: Vec<&str> = newest.iter().map(|r| r.object_type.as_str()).collect();
    let ids: Vec<i64> = newest.iter().map(|r| r.object_id).collect();
    let versions: Vec<Option<i64>> = newest.iter().map(|r| r.version).collect();
    let unknown: Vec<bool> = newest.iter().map(|r| r.version_unknown).collect();
    let deleted: Vec<bool> = newest.iter().map(|r| r.deleted).collect();
    let values: Vec<Option<&str>> = newest.iter().map(|r| r.value.as_deref()).collect();
    let last_values: Vec<Option<&str>> = newest.iter().map(|r| r.last_value.as_deref()).collect();
    let sources: Vec<Option<&str>> = newest.iter().map(|r| r.source.as_deref()).collect();
    let received: Vec<Option<String>> = newest.iter().map(|r| text(r.received_at)).collect();
    let updated: Vec<String> = newest.iter().map(|r| r.updated_at.to_string()).collect();
    let deleted_at: Vec<Option<String>> = newest.iter().map(|r| text(r.deleted_at)).collect();
    let forgotten: Vec<Option<String>> = newest.iter().map(|r| text(r.forgotten_at)).collect();
    let replaced: Vec<Option<String>> = newest.iter().map(|r| text(r.replaced_at)).collect();
    let requests: Vec<Option<&str>> = newest.iter().map(|r| r.request.as_deref()).collect();

    let history: Vec<&MirrorRow> = images.iter().filter(|r| r.is_history()).collect();
    let h_tenants: Vec<&str> = history.iter().map(|r| r.tenant.as_str()).collect();
    let h_types: Vec<&str> = history.iter().map(|r| r.object_type.as_str()).collect();
    let h_ids: Vec<i64> = history.iter().map(|r| r.object_id).collect();
    let h_versions: Vec<Option<i64>> = history.iter().map(|r| r.version).collect();
    let h_from: Vec<String> = history
        .iter()
        .map(|r| r.received_at.unwrap_or(r.updated_at).to_string())
        .collect();
    let h_values: Vec<Option<&str>> = history.iter().map(|r| r.value.as_deref()).collect();
    let h_requests: Vec<Option<&str>> = history.iter().map(|r| r.request.as_deref()).collect();

    let gone_keys: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&gone_tenants, &gone_types, &gone_ids];
    let removal = async {
        if removed.is_empty() {
            return Ok(0);
        }
        let (objects, _) = tokio::try_join!(
            client.execute(&prepared.remove_objects, &gone_keys),
            client.execute(&prepared.remove_history, &gone_keys),
        )?;
        Ok(objects)
    };
    let upsert = async {
        if newest.is_empty() {
            return Ok(0);
        }
        client
            .execute(
                &prepared.upsert,
                &[
                    &tenants,
                    &types,
                    &ids,
                    &versions,
                    &unknown,
                    &deleted,
                    &values,
                    &last_values,
                    &sources,
                    &received,
                    &updated,
                    &deleted_at,
                    &forgotten,
                    &replaced,
                    &requests,
                ],
            )
            .await
    };
    let drop_replaced = async {
        if replaced.iter().all(Option::is_none) {
            return Ok(0);
        }
        client
            .execute(&prepared.drop_replaced_history, &[&tenants, &types, &ids])
            .await
    };
    let erase = async {
        if forgotten.iter().all(Option::is_none) {
            return Ok(0);
        }
        client
            .execute(&prepared.erase_forgotten, &[&tenants, &types, &ids])
            .await
    };
    let insert_history = async {
        if history.is_empty() {
            return Ok(0);
        }
        client
            .execute(
                &prepared.insert_history,
                &[
                    &h_tenants,
                    &h_types,
                    &h_ids,
                    &h_versions,
                    &h_from,
                    &h_values,
                    &h_requests,
                ],
            )
            .await
    };
    let (gone, changed, _, _, _) =
        tokio::try_join!(removal, upsert, erase, insert_history, drop_replaced)?;
    Ok(gone + changed)
}

fn connect_error(error: ConnectError) -> MirrorError {
    MirrorError::Unavailable {
        source: Box::new(error),
    }
}

/// Data and integrity errors (SQLSTATE classes 22 and 23) come back the same; anything else may pass.
fn database_error(error: tokio_postgres::Error) -> MirrorError {
    let refused = error
        .code()
        .is_some_and(|code| code.code().starts_with("22") || code.code().starts_with("23"));
    let source = Box::new(error);
    if refused {
        MirrorError::Refused { source }
    } else {
        MirrorError::Unavailable { source }
    }
}
