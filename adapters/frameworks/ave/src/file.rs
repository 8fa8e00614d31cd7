//! The file journal manager: durable, crash-safe storage in one directory.

use std::path::Path;

use persevere_driver::Backend;
use persevere_file::{FileError, FileStore};

use crate::error::Error;
use crate::manager::Manager;
use persevere_tokio::Tokio;

/// A manager over a [`FileStore`] directory: durable, crash-safe, group-committed on tokio's
/// blocking pool. One opener per directory at a time; clones share it.
///
/// ```no_run
/// let manager = persevere_ave::FileManager::open("data/actors")?;
/// # Ok::<(), persevere_ave::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileManager {
    manager: Manager,
}

impl FileManager {
    /// Opens (or creates) the file journal in `dir`. A directory another manager holds
    /// (in this process or another) is a lock error; a dropped manager releases it at once.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::opened(FileStore::open(dir.as_ref()))
    }

    /// Opens the file journal a `file://` URL names (see [`open`](Self::open)).
    pub fn open_url(url: &str) -> Result<Self, Error> {
        Self::opened(FileStore::open_url(url))
    }

    fn opened(store: Result<FileStore, FileError>) -> Result<Self, Error> {
        store
            .map(Self::from_store)
            .map_err(|error| Error::Open(error.to_string()))
    }

    /// A manager over an open file store.
    pub fn from_store(store: FileStore) -> Self {
        Self {
            manager: Manager::new(Backend::new(Tokio::ambient(), store)),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }
}

impl From<FileManager> for Manager {
    fn from(manager: FileManager) -> Self {
        manager.manager
    }
}
