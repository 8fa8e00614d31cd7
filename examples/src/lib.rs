//! Runnable programs a new user starts from; see the `[[example]]` targets:
//!
//! - `counter`: the core driven by hand over the file journal, no executor;
//! - `counter_tokio`, `counter_smol`, `counter_async_std`: the same counter through the async
//!   driver on each runtime ([`count_ten`] is their shared body);
//! - `kameo_counter`: the counter as an event-sourced kameo actor;
//! - `ave_counter`: the counter as an ave-actors actor through `persevere-ave`.
//!
//! Each of these keeps its journal in DATA_DIR (its first argument, default `counter-data`) and
//! prints `counter = N` last; a second run prints ten more. DATA_DIR may instead be a SQLite URL
//! (`sqlite:///absolute/path.db` or `sqlite://relative.db`) or a PostgreSQL URL
//! (`postgres://user@host:5432/db?schema=name`): the journal then lives in that database.
//!
//! - `kameo_manager`: kameo-persistence's quick start, a manager restoring its sub-actors from
//!   their keys; each run (DATA_DIR default `manager-data`) adds one sub-actor and prints
//!   `sub-actors = N` last.

use persevere_core::Entity;

/// A counter changed only by increments.
#[derive(Debug, Default, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Counter {
    /// The sum of every increment persisted.
    pub value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;

    fn apply(&mut self, increment: &u64) -> Result<(), String> {
        self.value = self
            .value
            .checked_add(*increment)
            .ok_or_else(|| "counter overflow".to_owned())?;
        Ok(())
    }
}

/// The data directory an example was given (its first argument), or `counter-data`.
pub fn data_dir() -> String {
    std::env::args()
        .nth(1)
        .unwrap_or_else(|| "counter-data".to_owned())
}

/// Whether an example's DATA_DIR argument is a PostgreSQL URL rather than a directory.
///
/// ```
/// assert!(persevere_examples::is_postgres_url("postgres://postgres@127.0.0.1:5432/test"));
/// assert!(!persevere_examples::is_postgres_url("counter-data"));
/// ```
pub fn is_postgres_url(data: &str) -> bool {
    data.starts_with("postgres://") || data.starts_with("postgresql://")
}

/// The store `location` names: a SQLite database for a `sqlite://` URL, a PostgreSQL journal
/// for a `postgres://` URL, else the file journal in that directory (created on first use).
pub fn open_store(location: &str) -> Result<Box<dyn persevere_core::Store>, ExampleError> {
    if location.starts_with("sqlite://") {
        Ok(Box::new(persevere_sqlite::SqliteStore::open_url(location)?))
    } else if is_postgres_url(location) {
        Ok(Box::new(persevere_postgres::PostgresStore::open(location)?))
    } else {
        Ok(Box::new(persevere_file::FileStore::open_or_create(
            location,
        )?))
    }
}

/// What an example can fail with.
pub type ExampleError = Box<dyn std::error::Error + Send + Sync>;

/// The body of the async counter examples, the same on every runtime: opens the store
/// `data_dir` names ([`open_store`]) on `runtime`'s blocking pool, recovers the counter, persists ten increments of
/// 1 and returns the counter. Repairs the store made that involve the counter are printed to
/// stderr; the first persist that fails is returned as the error.
pub async fn count_ten(
    runtime: impl persevere_driver::Runtime,
    data_dir: &str,
) -> Result<u64, ExampleError> {
    let backend = persevere_driver::Backend::from_parts(
        std::sync::Arc::new(runtime),
        open_store(data_dir)?,
        persevere_driver::Execution::Blocking,
    );
    let config = persevere_core::JournalConfig::new("counter");
    let mut counter =
        persevere_driver::Persistent::<Counter>::open(&backend, config, Counter::default).await?;
    for repair in counter.repairs() {
        eprintln!("warning: the store repaired or set aside data: {repair}");
    }
    println!(
        "recovered counter = {} from {data_dir}",
        counter.state()?.value
    );
    for _ in 0..10 {
        counter.persist(1).await?;
    }
    Ok(counter.state()?.value)
}
