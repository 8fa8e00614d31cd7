//! The schema, created and upgraded by versioned migrations recorded in the database.
//!
//! A persevere database carries `PRAGMA application_id` = [`APPLICATION_ID`] and, in
//! `persevere_migrations`, one row per migration applied (`PRAGMA user_version` mirrors the
//! newest). Opening a database whose newest migration is unknown to this version fails with
//! [`SqliteError::NewerSchema`]; a database with another application id, or with tables but no
//! application id, is refused as [`SqliteError::Foreign`].

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OptionalExtension};

use crate::SqliteError;

/// `PRAGMA application_id` of every persevere database: "PRSV".
pub const APPLICATION_ID: i32 = 0x5052_5356;

/// One step of the schema.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Never edit a released one: add the next.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "streams, events keyed by (stream, seq), snapshots, global positions",
        sql: "
        -- One row per stream: its id and head (the highest seq ever appended; compaction does
        -- not lower it).
        CREATE TABLE persevere_streams (
            stream_id INTEGER PRIMARY KEY,
            name      TEXT    NOT NULL UNIQUE,
            head      INTEGER NOT NULL
        );
        -- Events clustered by (stream, seq): replay is one range scan, no rowid. `position`
        -- is global, increasing and never reused (the read side's offset); `tags` and
        -- `metadata` are room for the read side.
        CREATE TABLE persevere_events (
            stream_id INTEGER NOT NULL,
            seq       INTEGER NOT NULL,
            position  INTEGER NOT NULL,
            payload   BLOB    NOT NULL,
            tags      TEXT,
            metadata  BLOB,
            PRIMARY KEY (stream_id, seq)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX persevere_events_by_position ON persevere_events (position);
        -- Snapshots by the seq they cover, with a CRC-32 of the payload.
        CREATE TABLE persevere_snapshots (
            stream_id INTEGER NOT NULL,
            seq       INTEGER NOT NULL,
            payload   BLOB    NOT NULL,
            crc32     INTEGER NOT NULL,
            PRIMARY KEY (stream_id, seq)
        ) WITHOUT ROWID;
        -- Counters that must never go back, such as the next global position.
        CREATE TABLE persevere_counters (
            name  TEXT    PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO persevere_counters (name, value) VALUES ('position', 1);
    ",
    },
    Migration {
        version: 2,
        name: "events in global-position order, found by a narrow (stream, seq) index",
        sql: "
        -- Events stored in the order they were appended: the global position is the row's key,
        -- so a transaction appends at the end of the table whichever streams it writes. Only a
        -- narrow unique index (stream, seq) -> position, about 12 bytes an entry, is touched
        -- per stream: a group commit of many streams dirties far fewer pages than rows of
        -- ~100 bytes clustered by stream did. Replay is one ordered range scan: of the table's
        -- positions when the stream's events lie close together, else of the index.
        CREATE TABLE persevere_events_v2 (
            position  INTEGER PRIMARY KEY,
            stream_id INTEGER NOT NULL,
            seq       INTEGER NOT NULL,
            payload   BLOB    NOT NULL,
            tags      TEXT,
            metadata  BLOB
        );
        INSERT INTO persevere_events_v2 (position, stream_id, seq, payload, tags, metadata)
            SELECT position, stream_id, seq, payload, tags, metadata
            FROM persevere_events ORDER BY position;
        DROP TABLE persevere_events;
        ALTER TABLE persevere_events_v2 RENAME TO persevere_events;
        CREATE UNIQUE INDEX persevere_events_by_stream ON persevere_events (stream_id, seq);
        -- Appends no longer write the streams table (one page less per transaction): the
        -- stored head is the head when the stream's events were last compacted (compaction
        -- records it before deleting them, so the head is never lowered), and a stream's
        -- head is the larger of it and its newest event's seq, shown by persevere_stream_heads.
        ALTER TABLE persevere_streams RENAME COLUMN head TO compacted_head;
        CREATE VIEW persevere_stream_heads (stream_id, name, head) AS
            SELECT s.stream_id, s.name, max(s.compacted_head, coalesce((
                SELECT e.seq FROM persevere_events e WHERE e.stream_id = s.stream_id
                ORDER BY e.seq DESC LIMIT 1), 0))
            FROM persevere_streams s;
    ",
    },
];

/// The newest schema version this crate knows.
pub const SCHEMA_VERSION: i64 = 2;

/// Whether an unmarked, empty database may be given the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Empty {
    /// Give it the schema (create, open-or-create).
    Initialize,
    /// Refuse it (open).
    Refuse,
}

/// Maps an error met while opening: damage is [`SqliteError::Corrupt`].
pub(crate) fn opening(path: &Path, op: &'static str, source: rusqlite::Error) -> SqliteError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => SqliteError::Corrupt {
            path: path.to_owned(),
            reason: source.to_string(),
        },
        _ => SqliteError::Sqlite {
            op,
            path: path.to_owned(),
            source,
        },
    }
}

/// Checks that the database is ours (or empty and may become ours), before changing anything.
pub(crate) fn identify(conn: &Connection, path: &Path, empty: Empty) -> Result<(), SqliteError> {
    let err = |source| opening(path, "reading the database header", source);
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(err)?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            [],
            |row| row.get(0),
        )
        .map_err(err)?;
    match application_id {
        APPLICATION_ID => Ok(()),
        0 if tables == 0 && empty == Empty::Initialize => Ok(()),
        0 if tables == 0 => Err(SqliteError::Foreign {
            path: path.to_owned(),
            reason: "the database is empty, it was never given persevere's schema; create the \
                     store (OpenMode::OpenOrCreate)"
                .into(),
        }),
        0 => Err(SqliteError::Foreign {
            path: path.to_owned(),
            reason: format!("it holds {tables} tables or indexes and no persevere application id"),
        }),
        other => Err(SqliteError::Foreign {
            path: path.to_owned(),
            reason: format!(
                "its application id is {other:#010x}, persevere's is {APPLICATION_ID:#010x}"
            ),
        }),
    }
}

/// Applies the missing migrations in one transaction; returns the schema version.
pub(crate) fn migrate(conn: &Connection, path: &Path) -> Result<i64, SqliteError> {
    let err = |op| move |source| opening(path, op, source);
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(err("starting the migration transaction"))?;
    let result = apply(conn, path);
    match result {
        Ok(version) => {
            conn.execute_batch("COMMIT")
                .map_err(err("committing the migrations"))?;
            Ok(version)
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

fn apply(conn: &Connection, path: &Path) -> Result<i64, SqliteError> {
    let err = |op| move |source| opening(path, op, source);
    let mut current: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(err("reading the schema version"))?;
    if current > 0 {
        let recorded: Option<i64> = conn
            .query_row("SELECT max(version) FROM persevere_migrations", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(err("reading the recorded migrations"))?
            .flatten();
        current = current.max(recorded.unwrap_or(0));
    }
    if current > SCHEMA_VERSION {
        return Err(SqliteError::NewerSchema {
            path: path.to_owned(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    if current == 0 {
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID};
             CREATE TABLE persevere_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT    NOT NULL,
                 applied_at INTEGER NOT NULL
             );"
        ))
        .map_err(err("creating the migrations table"))?;
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        conn.execute_batch(migration.sql)
            .map_err(err("applying a migration"))?;
        conn.execute(
            "INSERT INTO persevere_migrations (version, name, applied_at) \
             VALUES (?1, ?2, CAST(strftime('%s', 'now') AS INTEGER))",
            (migration.version, migration.name),
        )
        .map_err(err("recording a migration"))?;
        conn.execute_batch(&format!("PRAGMA user_version = {}", migration.version))
            .map_err(err("recording the schema version"))?;
        tracing::info!(path = %path.display(), version = migration.version, name = migration.name, "applied SQLite schema migration");
    }
    Ok(SCHEMA_VERSION)
}
