//! The file journal manager: durable, crash-safe storage in one directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use persevere_core::{CommandResult, Repair, StorageError, Store, StreamCommand};
use persevere_driver::Backend;
use persevere_file::{FileError, FileOptions, FileStore, Recovery};

use crate::error::AdapterError;
use crate::manager::Manager;
use persevere_tokio::Tokio;

/// A manager over a [`FileStore`] directory: durable, crash-safe, group-committed on tokio's
/// blocking pool. One opener per directory at a time; clones share it.
///
/// Within one process, opening a directory a live manager of this process holds (or that a
/// stopping actor's store still holds) returns a manager sharing it rather than a lock error,
/// and opening one whose last user is being dropped waits until its lock is released: so a
/// stopped actor system's directory can be opened again as soon as the stop returns. Another
/// process still gets a lock error.
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
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, AdapterError> {
        Self::registered(dir.as_ref(), true, |dir| FileStore::open(dir))
    }

    /// Creates a new file journal in `dir` (one already there is an error).
    pub fn create(dir: impl AsRef<Path>) -> Result<Self, AdapterError> {
        Self::registered(dir.as_ref(), false, |dir| FileStore::create(dir))
    }

    /// Opens the file journal in `dir`, or creates it when there is none.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self, AdapterError> {
        Self::registered(dir.as_ref(), true, |dir| FileStore::open_or_create(dir))
    }

    /// Opens the existing file journal in `dir` with `options` (for example
    /// [`Recovery::Strict`]); a directory already open in this process is shared as it is.
    pub fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, AdapterError> {
        Self::registered(dir.as_ref(), true, |dir| FileStore::open_with(dir, options))
    }

    /// Opens the store in `dir` with `open`, or shares the live one of this process (`share`),
    /// waiting for one being released.
    fn registered(
        dir: &Path,
        share: bool,
        open: impl FnOnce(&Path) -> Result<FileStore, FileError>,
    ) -> Result<Self, AdapterError> {
        let mut registry = registry();
        if let Some((key, entry)) = std::fs::canonicalize(dir)
            .ok()
            .and_then(|key| registry.get(&key).map(|entry| (key, entry)))
        {
            if let Some(manager) = Manager::upgrade(&entry.manager) {
                if !share {
                    return Err(AdapterError::Open(format!(
                        "{} is already a file journal, open in this process",
                        dir.display()
                    )));
                }
                return Ok(Self { manager });
            }
            // Its last user is gone and its store is being dropped: wait for the release. If it
            // is still held after the wait (someone keeps the backend without its manager), the
            // open below reports the lock.
            let release = Arc::clone(&entry.release);
            let released = release.wait(registry);
            registry = self::registry();
            if released {
                registry.remove(&key);
            }
        }
        let store = open(dir).map_err(|error| AdapterError::Open(error.to_string()))?;
        let release = Arc::new(Release::default());
        let manager = Manager::new(Backend::new(
            Tokio::ambient(),
            Tracked {
                store: Some(store),
                release: Arc::clone(&release),
            },
        ));
        if let Ok(key) = std::fs::canonicalize(dir) {
            registry.insert(
                key,
                Entry {
                    manager: manager.downgrade(),
                    release,
                },
            );
        }
        Ok(Self { manager })
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
        let options = url_options(url)?;
        let dir = persevere_file::parse_url(url)
            .map_err(|error| AdapterError::Open(error.to_string()))?;
        Self::registered(&dir, true, |dir| {
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

/// The file store options in a URL's query: `strict` (or `strict=true`).
fn url_options(url: &str) -> Result<FileOptions, AdapterError> {
    let mut options = FileOptions::default();
    let query = url.split('#').next().unwrap_or_default();
    let query = query.split_once('?').map_or("", |(_, query)| query);
    for option in query.split('&').filter(|option| !option.is_empty()) {
        match option {
            "strict" | "strict=true" => options.recovery = Recovery::Strict,
            "strict=false" => options.recovery = Recovery::Repair,
            other => {
                return Err(AdapterError::Open(format!(
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

/// A directory open in this process: its manager (while it lives) and the signal that its
/// store released the directory.
struct Entry {
    manager: Weak<crate::manager::Inner>,
    release: Arc<Release>,
}

/// The file journals open in this process, by canonical directory.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Entry>>> = LazyLock::new(Default::default);

fn registry() -> MutexGuard<'static, HashMap<PathBuf, Entry>> {
    OPEN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Set once a tracked store is dropped (its directory lock released).
#[derive(Default)]
struct Release {
    done: Mutex<bool>,
    signal: Condvar,
}

impl Release {
    /// How long an open waits for a store whose manager is gone to be dropped (it is being
    /// dropped by the thread that ran its last commit; only a backend kept without its
    /// manager holds it longer).
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Waits (releasing the registry) until the store is dropped; whether it was.
    fn wait(&self, registry: MutexGuard<'static, HashMap<PathBuf, Entry>>) -> bool {
        drop(registry);
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let (done, _) = self
            .signal
            .wait_timeout_while(done, Self::PATIENCE, |done| !*done)
            .unwrap_or_else(PoisonError::into_inner);
        *done
    }
}

/// A file store that signals its [`Release`] once dropped.
struct Tracked {
    store: Option<FileStore>,
    release: Arc<Release>,
}

impl Tracked {
    fn store(&mut self) -> &mut FileStore {
        self.store.as_mut().expect("the store lives until drop")
    }
}

impl Store for Tracked {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        self.store().execute(batch)
    }

    fn repairs(&self) -> &[Repair] {
        self.store.as_ref().map_or(&[], |store| store.repairs())
    }

    fn fenced(&self) -> Option<String> {
        self.store.as_ref().and_then(|store| store.fenced())
    }

    fn reopen(&mut self) -> Result<(), StorageError> {
        self.store().reopen()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        drop(self.store.take());
        *self
            .release
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.release.signal.notify_all();
    }
}
