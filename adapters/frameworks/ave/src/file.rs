//! The file journal manager: durable, crash-safe storage in one directory.

use std::path::Path;

use persevere_driver::Backend;
use persevere_file::{FileError, FileOptions, FileStore, Recovery};

use crate::error::Error;
use crate::manager::Manager;
use persevere_tokio::Tokio;

/// A manager over a [`FileStore`] directory: durable, crash-safe, group-committed on tokio's
/// blocking pool. One opener per directory at a time; clones share it.
///
/// Opening an existing store ([`open`](Self::open)) and starting a new one
/// ([`create`](Self::create)) are distinct, so a mistyped path or an unmounted volume is an
/// error rather than a fresh, empty store; [`open_or_create`](Self::open_or_create) does
/// either. What the store repaired when it opened is in [`Manager::repairs`] (and logged as a
/// WARN); [`Recovery::Strict`] (or `?strict` in a URL) refuses to open a store that needs
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
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::opened(FileStore::open(dir.as_ref()))
    }

    /// Creates a new file journal in `dir` (one already there is an error).
    pub fn create(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::opened(FileStore::create(dir.as_ref()))
    }

    /// Opens the file journal in `dir`, or creates it when there is none.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::opened(FileStore::open_or_create(dir.as_ref()))
    }

    /// Opens the existing file journal in `dir` with `options` (for example
    /// [`Recovery::Strict`]).
    pub fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, Error> {
        Self::opened(FileStore::open_with(dir.as_ref(), options))
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
    pub fn open_url(url: &str) -> Result<Self, Error> {
        let options = url_options(url)?;
        let dir = persevere_file::parse_url(url).map_err(|error| Error::Open(error.to_string()))?;
        Self::opened(FileStore::open_or_create_with(dir, options))
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

/// The file store options in a URL's query: `strict` (or `strict=true`).
fn url_options(url: &str) -> Result<FileOptions, Error> {
    let mut options = FileOptions::default();
    let query = url.split('#').next().unwrap_or_default();
    let query = query.split_once('?').map_or("", |(_, query)| query);
    for option in query.split('&').filter(|option| !option.is_empty()) {
        match option {
            "strict" | "strict=true" => options.recovery = Recovery::Strict,
            "strict=false" => options.recovery = Recovery::Repair,
            other => {
                return Err(Error::Open(format!(
                    "unknown file store option {other:?} in {url} (known: strict)"
                )))
            }
        }
    }
    Ok(options)
}

impl From<FileManager> for Manager {
    fn from(manager: FileManager) -> Self {
        manager.manager
    }
}
