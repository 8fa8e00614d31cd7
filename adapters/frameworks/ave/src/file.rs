//! The file journal manager: durable, crash-safe storage in one directory.

use std::path::{Path, PathBuf};

use persevere_driver::{Backend, Held, OpenError, OpenStores, Sharing};
use persevere_file::{FileError, FileOptions, FileStore};

use crate::error::AdapterError;
use crate::manager::{self, Manager};
use persevere_tokio::Tokio;

/// A manager over a [`FileStore`] directory: durable, crash-safe, group-committed on tokio's
/// blocking pool. One opener per directory at a time; clones share it.
///
/// Within one process, opening a directory a live manager of this process holds (or that a
/// stopping actor's store still holds) returns a manager sharing it rather than a lock error,
/// and opening one whose last user is being dropped waits until its lock is released (at most
/// [`RELEASE_PATIENCE`](persevere_driver::RELEASE_PATIENCE); past it the open fails naming the
/// directory): so a stopped actor system's directory can be opened again as soon as the stop
/// returns. Another process still gets a lock error.
///
/// Opening an existing store ([`open`](Self::open)) and starting a new one
/// ([`create`](Self::create)) are distinct, so a mistyped path or an unmounted volume is an
/// error rather than a fresh, empty store; [`open_or_create`](Self::open_or_create) does
/// either. What the store repaired when it opened is in [`Manager::repairs`] (and logged as a
/// WARN); [`Recovery::Strict`](persevere_file::Recovery::Strict) (or `?strict` in a URL) refuses to open a store that needs
/// repair instead.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// assert!(persevere_ave::FileManager::open(dir.path().join("actors")).is_err());
/// let manager = persevere_ave::FileManager::open_or_create(dir.path().join("actors"))?;
/// assert!(manager.manager().repairs().is_empty());
/// # Ok::<(), persevere_ave::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileManager {
    manager: Manager,
}

impl FileManager {
    /// Opens the existing file journal in `dir` (a missing one is an error). A directory
    /// another manager holds (in this process or another) is a lock error; a dropped manager
    /// releases it at once.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, AdapterError> {
        Self::registered(dir.as_ref(), Sharing::Share, |dir| FileStore::open(dir))
    }

    /// Creates a new file journal in `dir` (one already there is an error).
    pub fn create(dir: impl AsRef<Path>) -> Result<Self, AdapterError> {
        Self::registered(dir.as_ref(), Sharing::Refuse, |dir| FileStore::create(dir))
    }

    /// Opens the file journal in `dir`, or creates it when there is none.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self, AdapterError> {
        Self::registered(dir.as_ref(), Sharing::Share, |dir| {
            FileStore::open_or_create(dir)
        })
    }

    /// Opens the existing file journal in `dir` with `options` (for example
    /// [`Recovery::Strict`](persevere_file::Recovery::Strict)); a directory already open in this process is shared as it is.
    pub fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, AdapterError> {
        Self::registered(dir.as_ref(), Sharing::Share, |dir| {
            FileStore::open_with(dir, options)
        })
    }

    /// Opens the store in `dir` with `open`, or shares the live one of this process (`sharing`),
    /// waiting for one being released ([`OpenStores`]).
    fn registered(
        dir: &Path,
        sharing: Sharing,
        open: impl FnOnce(&Path) -> Result<FileStore, FileError>,
    ) -> Result<Self, AdapterError> {
        let shared = OPEN
            .open_blocking(location(dir), sharing, |hold| {
                let store = open(dir)?;
                // The store keeps the hold: the directory counts as released once the store
                // (dropped by the thread that ran its last commit) has released its lock.
                let backend = Backend::new(Tokio::ambient(), Held::new(store, hold));
                Ok::<_, FileError>(Manager::new(backend).into_shared())
            })
            .map_err(|error| match error {
                OpenError::Open(error) => AdapterError::Open(error.to_string()),
                OpenError::AlreadyOpen { .. } => AdapterError::Open(format!(
                    "{} is already a file journal, open in this process",
                    dir.display()
                )),
                other => AdapterError::Open(other.to_string()),
            })?;
        Ok(Self {
            manager: Manager::from_shared(shared),
        })
    }

    /// Opens — or creates, on first use — the file journal a `file://` URL names (see
    /// [`persevere_file::parse_url`]). The query may hold `strict`: refuse to open a store
    /// that needs repair instead of setting anything aside.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let url = format!("file://{}?strict", dir.path().join("actors").display());
    /// persevere_ave::FileManager::open_url(&url)?;
    /// assert!(persevere_ave::FileManager::open_url("file:///x?fast").is_err());
    /// # Ok::<(), persevere_ave::Error>(())
    /// ```
    pub fn open_url(url: &str) -> Result<Self, AdapterError> {
        let options = persevere_file::url_options(url)
            .map_err(|error| AdapterError::Open(error.to_string()))?;
        let dir = persevere_file::parse_url(url)
            .map_err(|error| AdapterError::Open(error.to_string()))?;
        Self::registered(&dir, Sharing::Share, |dir| {
            FileStore::open_or_create_with(dir, options)
        })
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

/// The file journals open in this process, by canonical directory ([`location`]), shared
/// while a manager over them lives.
static OPEN: OpenStores<PathBuf, manager::Inner> = OpenStores::new();

/// The canonical form of `dir`, also before it exists: its nearest existing ancestor made
/// canonical, followed by the rest of the path.
fn location(dir: &Path) -> PathBuf {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut missing = Vec::new();
    let mut existing = dir.as_path();
    loop {
        if let Ok(canonical) = std::fs::canonicalize(existing) {
            return missing
                .iter()
                .rev()
                .fold(canonical, |path, part| path.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => return dir,
        }
    }
}
