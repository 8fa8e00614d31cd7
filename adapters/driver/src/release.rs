//! A store's release: the [`Hold`] that keeps a store's location from counting as released
//! while the store lives, the [`Held`] store that keeps one, and the signal an open waits on.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use persevere_core::{Command, CommandResult, Repair, StorageError, Store, StreamCommand};

/// A one-shot signal, awaited by threads (blocking) and tasks alike.
pub(crate) struct Signal {
    progress: Mutex<Progress>,
    fired: Condvar,
}

/// Where a [`Signal`] stands.
enum Progress {
    /// Not fired: the tasks to wake when it is.
    Pending(Vec<Waker>),
    /// Fired, for good.
    Fired,
}

impl Signal {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            progress: Mutex::new(Progress::Pending(Vec::new())),
            fired: Condvar::new(),
        })
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn fire(&self) {
        let waiting = std::mem::replace(&mut *self.progress(), Progress::Fired);
        self.fired.notify_all();
        if let Progress::Pending(wakers) = waiting {
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        matches!(*self.progress(), Progress::Fired)
    }

    /// Blocks until fired, or `patience` (when given) elapsed; whether it fired.
    pub(crate) fn wait_blocking(&self, patience: Option<Duration>) -> bool {
        let deadline = patience.map(|patience| Instant::now() + patience);
        let mut progress = self.progress();
        while let Progress::Pending(_) = *progress {
            progress = match deadline {
                None => self
                    .fired
                    .wait(progress)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.fired
                        .wait_timeout(progress, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        true
    }
}

/// The future of a [`Signal`] firing.
pub(crate) struct Fired(pub(crate) Arc<Signal>);

impl Future for Fired {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut *self.0.progress() {
            Progress::Fired => Poll::Ready(()),
            Progress::Pending(wakers) => {
                if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// Keeps the location of a store opened through [`OpenStores`](crate::OpenStores) from counting as released while
/// it (or a clone of it) lives. The opener is given one: keep it inside the store ([`Held`]),
/// so that the location is released only once the store itself is dropped, or beside the
/// handle it returns.
///
/// ```
/// use persevere_driver::{OpenStores, Sharing};
/// use std::sync::Arc;
///
/// /// A handle keeping the store's hold beside it.
/// struct Opened(#[allow(dead_code)] persevere_driver::Hold);
///
/// static STORES: OpenStores<&str, Opened> = OpenStores::new();
/// let opened = STORES.open_blocking("db", Sharing::Share, |hold| Ok::<_, ()>(Arc::new(Opened(hold))))?;
/// drop(opened); // the hold with it: the location is released at once
/// assert!(STORES.live(&"db").is_none());
/// # Ok::<(), persevere_driver::OpenError<()>>(())
/// ```
#[derive(Clone)]
pub struct Hold {
    _releaser: Arc<Releaser>,
}

/// Fires a location's release signal once every [`Hold`] is dropped.
struct Releaser {
    released: Arc<Signal>,
}

impl Drop for Releaser {
    fn drop(&mut self) {
        self.released.fire();
    }
}

impl Hold {
    /// A hold firing `released` once it and its clones are all dropped.
    pub(crate) fn new(released: Arc<Signal>) -> Self {
        Self {
            _releaser: Arc::new(Releaser { released }),
        }
    }
}

impl fmt::Debug for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hold").finish_non_exhaustive()
    }
}

/// A store keeping a [`Hold`]: dropped, it drops the store first, then the hold, so the store's
/// location counts as released only once the store released its lock and files. Every
/// [`Store`] call goes to the store as it is.
///
/// ```
/// use persevere_core::memory::MemoryStore;
/// use persevere_driver::{Held, OpenStores, Sharing};
/// # use std::time::Duration;
/// # use persevere_driver::{BlockingWork, Runtime, Task};
/// # struct Threads;
/// # impl Runtime for Threads {
/// #     fn spawn(&self, task: Task) { std::thread::spawn(move || futures::executor::block_on(task)); }
/// #     fn spawn_blocking(&self, work: BlockingWork) { std::thread::spawn(work); }
/// #     fn sleep(&self, d: Duration) -> Task { Box::pin(async move { std::thread::sleep(d) }) }
/// # }
/// use persevere_driver::Backend;
///
/// static STORES: OpenStores<String, Backend> = OpenStores::new();
/// let backend = STORES.open_blocking("memory://a".into(), Sharing::Share, |hold| {
///     Ok::<_, ()>(std::sync::Arc::new(Backend::new(Threads, Held::new(MemoryStore::new(), hold))))
/// })?;
/// let again = STORES.open_blocking("memory://a".into(), Sharing::Share, |_| Err(()))?;
/// assert!(std::sync::Arc::ptr_eq(&backend, &again));
/// # Ok::<(), persevere_driver::OpenError<()>>(())
/// ```
pub struct Held<S> {
    // Fields drop in order: the store, then its hold.
    store: S,
    _hold: Hold,
}

impl<S> Held<S> {
    /// `store`, keeping `hold` until it is dropped.
    pub fn new(store: S, hold: Hold) -> Self {
        Self { store, _hold: hold }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: fmt::Debug> fmt::Debug for Held<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held").field("store", &self.store).finish()
    }
}

impl<S: Store> Store for Held<S> {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        self.store.execute(batch)
    }

    fn execute_one(&mut self, stream: &Arc<str>, command: Command) -> CommandResult {
        self.store.execute_one(stream, command)
    }

    fn repairs(&self) -> &[Repair] {
        self.store.repairs()
    }

    fn fenced(&self) -> Option<String> {
        self.store.fenced()
    }

    fn reopen(&mut self) -> Result<(), StorageError> {
        self.store.reopen()
    }
}
