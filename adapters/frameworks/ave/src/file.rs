//! The file journal manager: durable, crash-safe storage in one directory.

use std::path::Path;

use persevere_driver::Backend;
use persevere_file::FileStore;

use crate::error::Error;
use crate::manager::Manager;
use crate::runtime::Ambient;

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
    /// Opens (or creates) the file journal in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let store = FileStore::open(dir).map_err(|e| Error::Open(e.to_string()))?;
        Ok(Self::from_store(store))
    }

    /// Opens the file journal a `file://` URL names.
    pub fn open_url(url: &str) -> Result<Self, Error> {
        let store = FileStore::open_url(url).map_err(|e| Error::Open(e.to_string()))?;
        Ok(Self::from_store(store))
    }

    /// A manager over an open file store.
    pub fn from_store(store: FileStore) -> Self {
        Self {
            manager: Manager::new(Backend::new(Ambient, store)),
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
