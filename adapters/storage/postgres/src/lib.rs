//! # persevere-postgres
//!
//! A PostgreSQL storage backend for persevere: many nodes share one journal, each stream has
//! one writer, and nothing acknowledged is lost when connections die.
//!
//! - **Fencing**: each stream has a row holding its head. An append names the head it expects;
//!   when another writer got there first the append is refused with
//!   [`StorageError::Conflict`](persevere_core::StorageError::Conflict) and writes nothing,
//!   while the other appends of the same batch go on.
//! - **Group commit**: every [`Store::execute`](persevere_core::Store::execute) call is one
//!   transaction; a run of appends is one set-based statement (`unnest` arrays).
//! - **Outcome unknown**: a connection lost (or a server restarted) mid-batch answers
//!   [`StorageError::Failed`](persevere_core::StorageError::Failed) and fences the store; the
//!   driver reopens it with backoff and the journal re-reads its tail to learn whether the
//!   write landed.
//! - **Read side ready**: each event row carries the writer's transaction id
//!   (`pg_current_xact_id()`) and an identity column; ordered by both and read only below
//!   `pg_snapshot_xmin(pg_current_snapshot())`, a reader never skips a late-committing
//!   transaction.
//! - **Schema by versioned migrations**, run at open under an advisory lock; a newer schema or
//!   a table that is not ours is a typed [`PostgresError`].
//!
//! The client is `tokio-postgres` without default features, connected with `connect_raw` over
//! an `async-io` socket; its connection future runs on a thread of its own and `execute` blocks
//! on the client's futures. No tokio runtime is hidden inside, so the store works on the
//! blocking pool of tokio, smol or async-std, on plain threads, and may be dropped anywhere.
//!
//! ```no_run
//! use persevere_postgres::PostgresStore;
//!
//! let store = PostgresStore::open("postgres://postgres@127.0.0.1:5432/test?schema=orders")?;
//! # drop(store);
//! # Ok::<(), persevere_postgres::PostgresError>(())
//! ```
#![forbid(unsafe_code)]

mod block;
mod connect;
mod error;
mod schema;
mod store;

pub use connect::{PostgresConfig, DEFAULT_SCHEMA};
pub use error::PostgresError;
pub use schema::SCHEMA_VERSION;
pub use store::{GlobalEvent, GlobalPosition, PostgresStore};
