//! The schema, built by versioned migrations run at open.

use tokio_postgres::Client;

use crate::error::PostgresError;

/// The newest schema version this crate writes.
pub const SCHEMA_VERSION: i32 = 1;

/// The tables a persevere schema holds, besides the version table.
pub(crate) const TABLES: &[&str] = &["streams", "events", "snapshots"];

/// The version table's name.
pub(crate) const VERSION_TABLE: &str = "persevere_schema";

/// Migration `n` (1-based) takes the schema from version `n - 1` to `n`. `{s}` is the quoted
/// schema name.
const MIGRATIONS: &[&str] = &[
    // 1: streams with their head (the fence), events keyed by (stream, seq) carrying a global
    // order (the writer's transaction id plus an identity), snapshots in their own table.
    r#"
    CREATE TABLE {s}.streams (
        stream text PRIMARY KEY,
        head bigint NOT NULL CHECK (head >= 0)
    );
    CREATE TABLE {s}.events (
        stream text NOT NULL,
        seq bigint NOT NULL CHECK (seq > 0),
        payload bytea NOT NULL,
        tx xid8 NOT NULL DEFAULT pg_current_xact_id(),
        pos bigint GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (stream, seq)
    );
    CREATE INDEX events_global_order ON {s}.events (tx, pos);
    CREATE TABLE {s}.snapshots (
        stream text NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 0),
        payload bytea NOT NULL,
        PRIMARY KEY (stream, seq)
    );
    "#,
];

/// Brings `schema` to [`SCHEMA_VERSION`], refusing a newer schema or tables that are not ours.
/// Concurrent openers serialise on an advisory lock.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), PostgresError> {
    let db = |doing| move |source| PostgresError::Database { doing, source };
    let quoted = format!("\"{schema}\"");
    let tx = client
        .transaction()
        .await
        .map_err(db("beginning the migration"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('persevere-postgres schema ' || $1::text))",
        &[&schema],
    )
    .await
    .map_err(db("locking the schema for migration"))?;
    let rows = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .map_err(db("listing the schema's tables"))?;
    let tables: Vec<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    let has = |name: &str| tables.iter().any(|t| t == name);
    let version: i32 = if has(VERSION_TABLE) {
        let marked = tx
            .query(
                &format!("SELECT max(version) FROM {quoted}.{VERSION_TABLE} WHERE crate = 'persevere-postgres'"),
                &[],
            )
            .await;
        match marked {
            Ok(rows) => rows
                .first()
                .and_then(|r| r.try_get::<_, Option<i32>>(0).ok())
                .flatten()
                .ok_or_else(|| PostgresError::NotOurs {
                    schema: schema.to_owned(),
                    table: VERSION_TABLE.to_owned(),
                })?,
            Err(_) => {
                return Err(PostgresError::NotOurs {
                    schema: schema.to_owned(),
                    table: VERSION_TABLE.to_owned(),
                })
            }
        }
    } else {
        if let Some(table) = TABLES.iter().find(|t| has(t)) {
            return Err(PostgresError::NotOurs {
                schema: schema.to_owned(),
                table: (*table).to_owned(),
            });
        }
        0
    };
    if version > SCHEMA_VERSION {
        return Err(PostgresError::NewerSchema {
            schema: schema.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return tx.commit().await.map_err(db("finishing the migration"));
    }
    if version == 0 {
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted};
             CREATE TABLE {quoted}.{VERSION_TABLE} (
                 version integer PRIMARY KEY,
                 crate text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(db("creating the schema"))?;
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let target = index as i32 + 1;
        tracing::info!(
            schema,
            version = target,
            "migrating the PostgreSQL journal schema"
        );
        tx.batch_execute(&migration.replace("{s}", &quoted))
            .await
            .map_err(db("migrating the schema"))?;
        tx.execute(
            &format!("INSERT INTO {quoted}.{VERSION_TABLE} (version, crate) VALUES ($1, 'persevere-postgres')"),
            &[&target],
        )
        .await
        .map_err(db("recording the schema version"))?;
    }
    tx.commit().await.map_err(db("committing the migration"))
}
