//! # persevere-sqlite
//!
//! A persevere store in one SQLite database, implementing [`persevere_core::Store`] with group
//! commit: every [`Store::execute`](persevere_core::Store::execute) call — the appends,
//! snapshots and deletions of any number of streams — is **one `BEGIN IMMEDIATE`
//! transaction**, committed once, before any of its commands is acknowledged.
//!
//! ```
//! use persevere_sqlite::SqliteStore;
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::create(dir.path().join("actors.db"))?;   // a new database
//! drop(store);
//! let store = SqliteStore::open(dir.path().join("actors.db"))?;     // an existing one
//! drop(store);
//! let url = format!("sqlite://{}/actors.db", dir.path().display());
//! let store = SqliteStore::open_url(&url)?;                         // open or create
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Give the store to the driver (`persevere_driver::Backend::new(runtime, store)`): it is
//! synchronous, so the driver runs it on the runtime's blocking pool.
//!
//! # Guarantees
//!
//! - **Durable before acknowledged**: WAL with `synchronous=FULL` by default; the commit syncs
//!   the log. [`Durability::ProcessCrashOnly`] (`synchronous=NORMAL`) trades power-loss
//!   durability for speed and says exactly what is lost.
//! - **A commit syncs data, not the file's size**: the log is kept allocated ahead of the
//!   writer ([`WalGrowth::Reserved`], the default): the log's whole pass up to its checkpoint
//!   size is written with zeros and synced at open, and before a write transaction at least
//!   1 MiB of zeros follows the frames in use, so a commit writes inside the file and its sync
//!   need not also commit the file system's journal for a new size, as it would at every
//!   commit of a log SQLite extends itself. SQLite reads the zeros as the log's end (a zero
//!   frame never matches the log's salt and checksum), like the older frames of a log it
//!   reuses after a checkpoint.
//! - **Faults stay where they happen**: inside the transaction, an append whose expected head
//!   is not the stream's gets [`StorageError::Conflict`](persevere_core::StorageError::Conflict)
//!   and writes nothing, and the batch's other commands still commit (checks run before any
//!   write; a command SQLite refuses part-way, such as one a foreign row makes violate a key,
//!   rolls the transaction back and the batch runs again without it).
//! - **Fencing**: when a write transaction fails to commit (an IO error, a full disk) every
//!   command of the batch gets [`StorageError::Failed`](persevere_core::StorageError::Failed),
//!   the store is [fenced](persevere_core::Store::fenced) and refuses everything until
//!   [`reopen`](persevere_core::Store::reopen) reconnects and re-reads what is durable.
//! - **Damage is typed**: a snapshot row failing its CRC-32, a row holding what the store
//!   never writes (a payload that is not a blob; a seq, CRC or head that is not an integer
//!   SQLite kept in an integer column, or a seq no append writes), or a corrupt page a read
//!   meets, answers [`StorageError::Damaged`](persevere_core::StorageError::Damaged) for that
//!   command alone, naming the stream, the row and what to do (the journal falls back to an
//!   older snapshot); the rest of the batch commits and the store is not fenced. A file that is not a SQLite database, or fails the
//!   [`OpenCheck`] asked for, is [`SqliteError::Corrupt`]; a database of something else is
//!   [`SqliteError::Foreign`]; one from a newer persevere is [`SqliteError::NewerSchema`]:
//!   never a fresh empty store.
//! - **One owner**: an exclusive `flock` on a side file, `<database>.persevere-lock`, taken at
//!   open; a second opener (this process or another) gets [`SqliteError::Locked`]. A side
//!   file rather than `locking_mode=EXCLUSIVE` because the lock is taken at open (not at the
//!   first write), survives [`reopen`](persevere_core::Store::reopen), is released by the
//!   kernel when the process dies, and leaves the database readable by other processes (the
//!   `sqlite3` shell, a reporting job) through WAL, without ever blocking the writer.
//!
//! # Schema
//!
//! Created and upgraded by versioned migrations recorded in `persevere_migrations`
//! (`PRAGMA application_id` marks the database as persevere's, `PRAGMA user_version` mirrors
//! the newest migration):
//!
//! | table | key | holds |
//! |---|---|---|
//! | `persevere_streams` | `stream_id` (name unique) | each stream's id, and its head when its events were last compacted |
//! | `persevere_events` | `position` (the rowid: global, never reused); unique index `(stream_id, seq)` | payload; `tags`, `metadata` for the read side |
//! | `persevere_snapshots` | `(stream_id, seq)`, `WITHOUT ROWID` | payload and its CRC-32 |
//! | `persevere_counters` | `name` | the bound of the global positions reserved (in blocks of 4,096; never reused) |
//!
//! and the view `persevere_stream_heads (stream_id, name, head)`: a stream's head is the larger
//! of its newest event's seq and the head recorded at compaction (never lowered).
//!
//! Events are stored in the order they are appended: a transaction writes at the end of the
//! table whichever streams it touches, and only the narrow `(stream_id, seq)` index (about 12
//! bytes an entry) is written per stream, so a group commit of many streams dirties far fewer
//! pages than when each stream's events were clustered together: many streams share an index
//! leaf while they are young (up to about 300 events each), and past that each stream appended
//! dirties one leaf of the index rather than one of events (schema version 2; a version 1
//! database, its events clustered by stream, is migrated at open, in one transaction, keeping
//! every position). An append writes the event rows and the
//! index entries, nothing else: the streams table only when a stream is created or compacted,
//! the position counter once per 4,096 events.
//!
//! Replay is one ordered range query per page (`ReadEvents` with its limit), after two index
//! seeks for the page's first and last events: a scan of the table's positions when the
//! stream's events lie close together (at least half the rows in their range), else a scan of
//! the `(stream_id, seq)` index. Compaction (`DeleteEvents`) keeps the head, then deletes with
//! one statement; retention (`DeleteSnapshots`) is one statement. Statements are prepared once
//! and cached.
//!
//! `rusqlite` is re-exported: this crate uses rusqlite 0.39 (bundled SQLite), which links
//! `libsqlite3-sys` 0.37 like `ave-actors-sqlite` 0.6, so both can be in one build.
#![forbid(unsafe_code)]

mod error;
mod schema;
mod store;
mod url;
mod wal;

pub use error::SqliteError;
pub use rusqlite;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use store::{Durability, OpenCheck, OpenMode, SqliteOptions, SqliteStore, WalGrowth};
pub use url::parse_url;
