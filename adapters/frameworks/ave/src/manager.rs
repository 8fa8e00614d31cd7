//! The manager: the backend a store writes to (which enforces one live writer per stream).

use std::sync::Arc;

use persevere_core::Repair;
use persevere_driver::Backend;

struct Inner {
    backend: Backend,
    store_id: String,
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
            }),
        }
    }

    /// Names the store (see [`JournalConfig::with_store_id`](persevere_core::JournalConfig::with_store_id)):
    /// encrypted records are bound to it. Set it before the first `start_store` and never
    /// change it.
    pub fn with_store_id(self, store_id: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend: self.inner.backend.clone(),
                store_id: store_id.into(),
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
