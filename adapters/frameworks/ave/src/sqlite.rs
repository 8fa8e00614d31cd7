//! The SQLite manager: durable storage in one SQLite database (feature `sqlite`).

use std::path::Path;

use persevere_driver::Backend;
use persevere_sqlite::{SqliteError, SqliteStore};
use persevere_tokio::Tokio;

use crate::error::AdapterError;
use crate::manager::Manager;

/// A manager over a [`SqliteStore`]: durable (WAL, `synchronous=FULL`), one transaction per
/// group commit on tokio's blocking pool. One opener per database at a time; clones share it.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let manager = persevere_ave::SqliteManager::open_or_create(dir.path().join("actors.db"))?;
/// let url = format!("sqlite://{}/other.db", dir.path().display());
/// let other = persevere_ave::SqliteManager::open_url(&url)?;
/// # drop((manager, other));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SqliteManager {
    manager: Manager,
}

impl SqliteManager {
    /// Opens the existing SQLite store at `path` (a missing database is an error).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AdapterError> {
        Self::opened(SqliteStore::open(path))
    }

    /// Opens the SQLite store at `path`, creating it if it does not exist.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, AdapterError> {
        Self::opened(SqliteStore::open_or_create(path))
    }

    /// Opens (or creates) the SQLite store a `sqlite://` URL names.
    pub fn open_url(url: &str) -> Result<Self, AdapterError> {
        Self::opened(SqliteStore::open_url(url))
    }

    fn opened(store: Result<SqliteStore, SqliteError>) -> Result<Self, AdapterError> {
        store
            .map(Self::from_store)
            .map_err(|error| AdapterError::Open(error.to_string()))
    }

    /// A manager over an open SQLite store.
    pub fn from_store(store: SqliteStore) -> Self {
        Self {
            manager: Manager::new(Backend::new(Tokio::ambient(), store)),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }
}

impl From<SqliteManager> for Manager {
    fn from(manager: SqliteManager) -> Self {
        manager.manager
    }
}
