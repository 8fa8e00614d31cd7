//! The PostgreSQL manager: a journal many processes share, one writer per stream.

use persevere_driver::Backend;
use persevere_postgres::PostgresStore;
use persevere_tokio::Tokio;

use crate::error::AdapterError;
use crate::manager::Manager;

/// A manager over a [`PostgresStore`]: the journal lives in a PostgreSQL schema that every
/// node reaches; group-committed on tokio's blocking pool.
///
/// ```no_run
/// let manager = persevere_ave::PostgresManager::open_url(
///     "postgres://postgres@127.0.0.1:5432/test?schema=actors",
/// )?;
/// # drop(manager);
/// # Ok::<(), persevere_ave::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PostgresManager {
    manager: Manager,
}

impl PostgresManager {
    /// Opens the journal a `postgres://` URL names (see
    /// [`PostgresConfig::from_url`](persevere_postgres::PostgresConfig::from_url)), running
    /// its schema's migrations.
    pub fn open_url(url: &str) -> Result<Self, AdapterError> {
        PostgresStore::open(url)
            .map(Self::from_store)
            .map_err(|error| AdapterError::Open(error.to_string()))
    }

    /// A manager over an open store.
    pub fn from_store(store: PostgresStore) -> Self {
        Self {
            manager: Manager::new(Backend::new(Tokio::ambient(), store)),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }
}

impl From<PostgresManager> for Manager {
    fn from(manager: PostgresManager) -> Self {
        manager.manager
    }
}
