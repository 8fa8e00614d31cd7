//! The manager: the backend a store writes to (which enforces one live writer per stream).

use std::sync::Arc;

use persevere_core::Repair;
use persevere_driver::Backend;

pub(crate) struct Inner {
    backend: Backend,
    store_id: String,
    /// The tables open on this manager, by stream: a second opener of one shares it.
    tables: crate::database::OpenTables,
}

/// A persevere [`Backend`] as `start_store` takes it: any store (memory, file, and every
/// further backend) works without a change to this crate.
///
/// Clones (and [`with_store_id`](Self::with_store_id)) share the backend and the set of streams
/// owned by live stores, so a stream is never written by two stores at once through one
/// manager. Two managers built separately over one backend do not see each other's streams:
/// build one and clone it.
///
/// ```
/// use persevere_ave::Manager;
/// use persevere_driver::Backend;
/// # use std::time::Duration;
/// # use persevere_driver::{BlockingWork, Runtime, Task};
/// # struct Threads;
/// # impl Runtime for Threads {
/// #     fn spawn(&self, task: Task) { std::thread::spawn(move || futures::executor::block_on(task)); }
/// #     fn spawn_blocking(&self, work: BlockingWork) { std::thread::spawn(work); }
/// #     fn sleep(&self, d: Duration) -> Task { Box::pin(async move { std::thread::sleep(d) }) }
/// # }
/// let manager = Manager::new(Backend::new(Threads, persevere_memory::Memory::new()))
///     .with_store_id("node-1");
/// assert_eq!(manager.store_id(), "node-1");
/// ```
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl Manager {
    /// A manager over `backend`.
    pub fn new(backend: Backend) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                store_id: String::new(),
                tables: Default::default(),
            }),
        }
    }

    /// A manager over an ave [`DbManager`](crate::database::DbManager) — the application's own,
    /// ave-actors-sqlite's, ave-actors-store's memory manager — through a
    /// [`DbStore`](crate::database::DbStore): persevere's journal (atomic appends, exactly-once
    /// after an unknown outcome, bound encryption, no clone per persist) over the manager's
    /// collections, its calls made on tokio's blocking pool (inline for ave-actors-store's
    /// in-memory manager, which never blocks).
    ///
    /// `start_store` builds one for every call given a foreign manager; build it once and pass
    /// clones to share one backend (and its group commit) between actors.
    ///
    /// ```
    /// use persevere_ave::database::{Collection, DbManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let theirs = ave_actors_store::memory::MemoryManager::default();
    /// let manager = persevere_ave::Manager::from_db(theirs.clone());
    /// assert!(manager.repairs().is_empty());
    /// # });
    /// ```
    pub fn from_db<M, C, S>(manager: M) -> Self
    where
        M: crate::database::DbManager<C, S> + 'static,
        C: crate::database::Collection,
        S: crate::database::State,
    {
        let runtime = persevere_tokio::Tokio::ambient();
        // ave-actors-store's memory manager never blocks: its calls run inline, without the
        // hop to the blocking pool every other manager (which may do IO) takes.
        let in_memory =
            (&manager as &dyn std::any::Any).is::<ave_actors_store::memory::MemoryManager>();
        let store = crate::database::DbStore::new(manager);
        Self::new(if in_memory {
            Backend::inline(runtime, store)
        } else {
            Backend::new(runtime, store)
        })
    }

    /// The manager `start_store` uses for `manager`: a persevere manager of this crate as it
    /// is (its own backend), any other [`DbManager`](crate::database::DbManager) through
    /// [`from_db`](Self::from_db).
    pub fn resolve<M, C, S>(manager: M) -> Self
    where
        M: crate::database::DbManager<C, S> + 'static,
        C: crate::database::Collection,
        S: crate::database::State,
    {
        match Self::ours(&manager) {
            Some(ours) => ours,
            None => Self::from_db(manager),
        }
    }

    /// The manager of `manager` if it is one of this crate's.
    pub(crate) fn ours<M: 'static>(manager: &M) -> Option<Self> {
        let any: &dyn std::any::Any = manager;
        if let Some(ours) = any.downcast_ref::<Manager>() {
            return Some(ours.clone());
        }
        if let Some(ours) = any.downcast_ref::<crate::MemoryManager>() {
            return Some(ours.manager().clone());
        }
        if let Some(ours) = any.downcast_ref::<crate::FileManager>() {
            return Some(ours.manager().clone());
        }
        if let Some(ours) = any.downcast_ref::<crate::PostgresManager>() {
            return Some(ours.manager().clone());
        }
        #[cfg(feature = "sqlite")]
        if let Some(ours) = any.downcast_ref::<crate::SqliteManager>() {
            return Some(ours.manager().clone());
        }
        None
    }

    /// Names the store (see [`JournalConfig::with_store_id`](persevere_core::JournalConfig::with_store_id)):
    /// encrypted records are bound to it. Set it before the first `start_store` and never
    /// change it.
    pub fn with_store_id(self, store_id: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend: self.inner.backend.clone(),
                store_id: store_id.into(),
                tables: Default::default(),
            }),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Everything the backend's store repaired or set aside, when it was opened and at each
    /// reopen after a failure (see [`Backend::repairs`]); each one was also logged as a WARN
    /// naming its streams. [`store::repairs`](crate::store::repairs) gives one actor's.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let manager: persevere_ave::Manager = persevere_ave::MemoryManager::default().into();
    /// assert!(manager.repairs().is_empty());
    /// # });
    /// ```
    pub fn repairs(&self) -> Vec<Repair> {
        self.inner.backend.repairs()
    }

    /// The tables open on this manager.
    pub(crate) fn tables(&self) -> &crate::database::OpenTables {
        &self.inner.tables
    }

    /// What clones of the manager share (a registry of open stores holds it weakly).
    pub(crate) fn into_shared(self) -> Arc<Inner> {
        self.inner
    }

    /// The manager whose shared part is `inner` ([`into_shared`](Self::into_shared)).
    pub(crate) fn from_shared(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The store id (empty unless set).
    pub fn store_id(&self) -> &str {
        &self.inner.store_id
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("backend", &self.inner.backend)
            .field("store_id", &self.inner.store_id)
            .finish()
    }
}

impl From<Backend> for Manager {
    fn from(backend: Backend) -> Self {
        Manager::new(backend)
    }
}
