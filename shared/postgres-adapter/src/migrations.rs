//! The schema the mirror owns, in versions. Each is applied once, in order, in its own transaction,
//! under an advisory lock (two cold starts at once wait for each other), and recorded in
//! `tripletex.schema_migrations`; running them again changes nothing.

use tokio_postgres::Client;

/// (version, name, SQL). Append only: a released version is never edited.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "objects",
        r#"
CREATE TABLE tripletex.object (
    tenant          text        NOT NULL,
    type            text        NOT NULL,
    id              bigint      NOT NULL,
    version         bigint,
    version_unknown boolean     NOT NULL DEFAULT false,
    deleted         boolean     NOT NULL DEFAULT false,
    value           jsonb,
    last_value      jsonb,
    source          text,
    received_at     timestamptz,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    forgotten_at    timestamptz,
    PRIMARY KEY (tenant, type, id)
);
CREATE INDEX object_changed ON tripletex.object (tenant, type, updated_at);
"#,
    ),
    (
        2,
        "history",
        r#"
CREATE TABLE tripletex.object_version (
    tenant     text        NOT NULL,
    type       text        NOT NULL,
    id         bigint      NOT NULL,
    version    bigint      NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz,
    value      jsonb,
    PRIMARY KEY (tenant, type, id, version)
);
-- What version 1 already mirrors is the history's first row of each object.
INSERT INTO tripletex.object_version (tenant, type, id, version, valid_from, valid_to, value)
SELECT tenant, type, id, version, COALESCE(received_at, updated_at), NULL, value
FROM tripletex.object
WHERE version IS NOT NULL AND NOT version_unknown AND NOT deleted AND value IS NOT NULL;
"#,
    ),
    (
        3,
        "views",
        r#"
CREATE VIEW tripletex.customer AS
SELECT tenant, id, version, value->>'name' AS name, value->>'organizationNumber' AS organization_number,
       value->>'customerNumber' AS customer_number, value->>'email' AS email,
       (value->>'isInactive')::boolean AS is_inactive, value, updated_at
FROM tripletex.object WHERE type = 'customer' AND NOT deleted;
CREATE VIEW tripletex.supplier AS
SELECT tenant, id, version, value->>'name' AS name, value->>'organizationNumber' AS organization_number,
       value->>'email' AS email, (value->>'isInactive')::boolean AS is_inactive, value, updated_at
FROM tripletex.object WHERE type = 'supplier' AND NOT deleted;
CREATE VIEW tripletex.contact AS
SELECT tenant, id, version, value->>'firstName' AS first_name, value->>'lastName' AS last_name,
       value->>'email' AS email, (value->'customer'->>'id')::bigint AS customer_id, value, updated_at
FROM tripletex.object WHERE type = 'contact' AND NOT deleted;
CREATE VIEW tripletex.employee AS
SELECT tenant, id, version, value->>'firstName' AS first_name, value->>'lastName' AS last_name,
       value->>'email' AS email, value->>'employeeNumber' AS employee_number, value, updated_at
FROM tripletex.object WHERE type = 'employee' AND NOT deleted;
CREATE VIEW tripletex.product AS
SELECT tenant, id, version, value->>'name' AS name, value->>'number' AS number,
       (value->>'priceExcludingVatCurrency')::numeric AS price_excluding_vat,
       (value->>'isInactive')::boolean AS is_inactive, value, updated_at
FROM tripletex.object WHERE type = 'product' AND NOT deleted;
CREATE VIEW tripletex."order" AS
SELECT tenant, id, version, value->>'number' AS number, (value->>'orderDate')::date AS order_date,
       (value->>'deliveryDate')::date AS delivery_date, (value->'customer'->>'id')::bigint AS customer_id,
       value->>'reference' AS reference, (value->>'isClosed')::boolean AS is_closed, value, updated_at
FROM tripletex.object WHERE type = 'order' AND NOT deleted;
CREATE VIEW tripletex.invoice AS
SELECT tenant, id, version, (value->>'invoiceNumber')::bigint AS invoice_number,
       (value->>'invoiceDate')::date AS invoice_date, (value->>'invoiceDueDate')::date AS due_date,
       (value->>'amount')::numeric AS amount, (value->>'amountOutstanding')::numeric AS amount_outstanding,
       (value->'customer'->>'id')::bigint AS customer_id, value, updated_at
FROM tripletex.object WHERE type = 'invoice' AND NOT deleted;
CREATE VIEW tripletex.voucher AS
SELECT tenant, id, version, (value->>'number')::bigint AS number, (value->>'date')::date AS date,
       value->>'description' AS description, jsonb_array_length(COALESCE(value->'postings', '[]')) AS postings,
       value, updated_at
FROM tripletex.object WHERE type = 'voucher' AND NOT deleted;
"#,
    ),
    (
        4,
        "replacements",
        r#"
-- When Tripletex's answer last replaced a copy it contradicted: the mirror orders a row by it first.
ALTER TABLE tripletex.object ADD COLUMN replaced_at timestamptz;
"#,
    ),
    (
        5,
        "requests",
        r#"
-- The request that made each version: the receiver's request id of Tripletex's call, or the sync's
-- run (`sync:<run>`), as `tripletex-webhooks log --request` finds it.
ALTER TABLE tripletex.object ADD COLUMN request_id text;
ALTER TABLE tripletex.object_version ADD COLUMN request_id text;
"#,
    ),
    (
        6,
        "valid_to computed",
        r#"
-- A version's valid_to is worked out where it is read, not written again on each batch (a third
-- statement that read every touched object's versions back): the history's rows keep what is
-- written once, and `object_version` is a view with the same columns as before. A version is valid
-- until the next one began; the last, until its object's tombstone.
ALTER TABLE tripletex.object_version RENAME TO object_version_row;
ALTER TABLE tripletex.object_version_row DROP COLUMN valid_to;
CREATE VIEW tripletex.object_version AS
SELECT h.tenant, h.type, h.id, h.version, h.valid_from,
       COALESCE(lead(h.valid_from) OVER (PARTITION BY h.tenant, h.type, h.id ORDER BY h.version),
                CASE WHEN o.deleted THEN o.deleted_at END) AS valid_to,
       h.value, h.request_id
FROM tripletex.object_version_row h
LEFT JOIN tripletex.object o ON (o.tenant, o.type, o.id) = (h.tenant, h.type, h.id);
"#,
    ),
];

/// The newest version this build knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

/// Applies every migration up to `target` that is not applied yet; the versions it applied.
pub async fn migrate_to(
    client: &mut Client,
    target: i32,
) -> Result<Vec<i32>, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(
            "SELECT pg_advisory_xact_lock(hashtext('tripletex-mirror-migrations'));
             CREATE SCHEMA IF NOT EXISTS tripletex;
             CREATE TABLE IF NOT EXISTS tripletex.schema_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );",
        )
        .await?;
    let applied: Vec<i32> = transaction
        .query("SELECT version FROM tripletex.schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut done = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if *version > target || applied.contains(version) {
            continue;
        }
        transaction.batch_execute(sql).await?;
        transaction
            .execute(
                "INSERT INTO tripletex.schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        done.push(*version);
    }
    transaction.commit().await?;
    Ok(done)
}

/// Applies every migration not applied yet.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    migrate_to(client, latest()).await
}
