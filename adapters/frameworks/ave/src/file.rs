//! The file journal manager: durable, crash-safe storage in one directory.

use std::path::Path;
use std::time::{Duration, Instant};

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
    /// Opens (or creates) the file journal in `dir`.
    ///
    /// A manager dropped in this process releases its directory when the backend's last batch
    /// has finished on the blocking pool, a moment after its last answer: a directory found
    /// locked is tried again for up to [`LOCK_GRACE`](Self::LOCK_GRACE) before the lock error
    /// is returned.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        Self::open_with(|| FileStore::open(dir))
    }

    /// Opens the file journal a `file://` URL names (see [`open`](Self::open)).
    pub fn open_url(url: &str) -> Result<Self, Error> {
        Self::open_with(|| FileStore::open_url(url))
    }

    /// How long [`open`](Self::open) waits for a directory held by this process to be released.
    pub const LOCK_GRACE: Duration = Duration::from_millis(500);

    fn open_with(open: impl Fn() -> Result<FileStore, FileError>) -> Result<Self, Error> {
        let started = Instant::now();
        loop {
            match open() {
                Ok(store) => return Ok(Self::from_store(store)),
                Err(FileError::Locked { .. }) if started.elapsed() < Self::LOCK_GRACE => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(error) => return Err(Error::Open(error.to_string())),
            }
        }
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
