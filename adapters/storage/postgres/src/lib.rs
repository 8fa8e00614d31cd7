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
//! - **Outcome unknown**: a connection lost (or a server restarted, or silent past the
//!   [request timeout](#timeouts)) mid-batch answers
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
//! # Timeouts
//!
//! The store never waits forever on a server that went silent (a host powered off, a network
//! partition, a stopped server, a proxy holding the line). URL query parameters set the
//! limits, in whole seconds; a parameter absent or 0 takes the default:
//!
//! | parameter | default | what it bounds |
//! |---|---|---|
//! | `connect_timeout` | 10 s | one connection attempt to one address: TCP connect and the startup handshake together (then the next host is tried) |
//! | `request_timeout` | 30 s | each call's wait on the server: one [`Store::execute`](persevere_core::Store::execute) (its retries included), one [`read_global`](PostgresStore::read_global), the session set-up at open |
//! | `keepalives` | 1 | TCP keepalive on (0: off) |
//! | `keepalives_idle` | 15 s | idle time before the first keepalive probe |
//! | `keepalives_interval` | 5 s | time between probes |
//! | `keepalives_retries` | 3 | unanswered probes before the kernel drops the connection |
//! | `tcp_user_timeout` | 30 s | Linux only (`TCP_USER_TIMEOUT`): how long sent data may stay unacknowledged before the kernel drops the connection |
//!
//! `request_timeout` is this crate's own (like `schema`); the others have their libpq meaning
//! and are applied by the store to the socket it opens. An `execute` that reaches its
//! `request_timeout` is cut short with an **unknown outcome**: every command of the batch
//! answers [`StorageError::Failed`](persevere_core::StorageError::Failed), never "not
//! written", the connection is cut and the store fenced, exactly as for a lost connection. Set
//! `request_timeout` above your slowest legitimate batch (a long lock wait behind another
//! writer of the same stream counts). A server-side limit can be added through `options`,
//! e.g. `options=-c%20statement_timeout%3D20s`; the server then cancels the statement itself.
//! [`PostgresConfig::with_request_timeout`] sets the request timeout without a URL.
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

pub use connect::{
    PostgresConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVES_IDLE, DEFAULT_KEEPALIVES_INTERVAL,
    DEFAULT_KEEPALIVES_RETRIES, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SCHEMA, DEFAULT_TCP_USER_TIMEOUT,
};
pub use error::PostgresError;
pub use schema::SCHEMA_VERSION;
pub use store::{GlobalEvent, GlobalPosition, PostgresStore};
