//! The stores open in this process, by location ([`OpenStores`]): one registry for every
//! adapter that opens stores by name (a directory, a URL), so that the rule lives once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{select, Either};
use thiserror::Error;

use crate::release::{Fired, Hold, Signal};
use crate::runtime::Runtime;

/// How long an open waits, by default, for a store whose last handle is gone to be dropped
/// ([`OpenStores::new`]): it is being dropped by the thread that ran its last commit, or on the
/// blocking pool; only a store kept without its handle holds on longer.
pub const RELEASE_PATIENCE: Duration = Duration::from_secs(10);

/// Whether an open shares the live store of its location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sharing {
    /// Share the live store of the location (the usual open).
    Share,
    /// Refuse with [`OpenError::AlreadyOpen`] while the location's store lives (a create, which
    /// must make a new store).
    Refuse,
}

/// Why an open through [`OpenStores`] failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpenError<E> {
    /// The opener failed; its error, unchanged.
    #[error("{0}")]
    Open(E),
    /// The location's store is live in this process and the open was [`Sharing::Refuse`].
    #[error("the store at {location} is already open in this process")]
    AlreadyOpen {
        /// The location (its `Debug` text).
        location: String,
    },
    /// The location's previous store was not released in time.
    #[error(transparent)]
    NotReleased(#[from] NotReleased),
    /// The opener never answered: it panicked, or the runtime dropped it unrun (it is shutting
    /// down). Nothing is registered for the location.
    #[error("the opener of the store at {location} did not finish: it panicked, or the runtime dropped it")]
    Abandoned {
        /// The location (its `Debug` text).
        location: String,
    },
}

/// A store whose last handle is gone was not dropped within the registry's patience: something
/// keeps it (its backend, held without the handle the registry shares), with its lock and files.
///
/// ```
/// use persevere_driver::{NotReleased, OpenError, OpenStores, Sharing};
/// use std::time::Duration;
///
/// static STORES: OpenStores<&str, u32> = OpenStores::with_patience(Duration::from_millis(1));
/// let mut kept = None;
/// let first = STORES.open_blocking("db", Sharing::Share, |hold| {
///     kept = Some(hold); // as a backend kept elsewhere would
///     Ok::<_, String>(std::sync::Arc::new(1))
/// })?;
/// drop(first);
/// let second = STORES.open_blocking("db", Sharing::Share, |_| Ok::<_, String>(std::sync::Arc::new(2)));
/// assert_eq!(
///     second.unwrap_err(),
///     OpenError::NotReleased(NotReleased { location: "\"db\"".into(), patience: Duration::from_millis(1) })
/// );
/// # Ok::<(), OpenError<String>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the store at {location} was not released within {patience:?}: something still holds it")]
pub struct NotReleased {
    /// The location (its `Debug` text).
    pub location: String,
    /// How long the open waited.
    pub patience: Duration,
}

/// Where a location of an [`OpenStores`] stands.
enum Phase<T> {
    /// An open is at work; other opens of the location wait for it to fire.
    Opening(Arc<Signal>),
    /// Opened: shared while `handle` lives; `released` fires once every [`Hold`] of the store
    /// is dropped.
    Open {
        handle: Weak<T>,
        released: Arc<Signal>,
    },
}

/// What an open finds at its location.
enum Step<'a, K: Ord + Clone + fmt::Debug, T> {
    /// The live store.
    Live(Arc<T>),
    /// Another open is at work: wait for it, then look again.
    AwaitOpener(Arc<Signal>),
    /// The previous store is being dropped: wait for its release, then look again.
    AwaitRelease(Arc<Signal>),
    /// Nothing holds the location: this open opens it.
    Start(Opening<'a, K, T>),
}

/// Whether an [`Opening`] has put its outcome in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpeningState {
    Running,
    Settled,
}

/// An open at work on a location: settles the location when it finishes — or, should it be
/// dropped unfinished (its opener panicked, or the runtime dropped it), clears it — and wakes
/// the opens waiting for it.
struct Opening<'a, K: Ord + Clone + fmt::Debug, T> {
    stores: &'a OpenStores<K, T>,
    location: K,
    /// Fires when this open settles.
    opened: Arc<Signal>,
    /// Fires when the store this open makes is released.
    released: Arc<Signal>,
    state: OpeningState,
}

impl<K: Ord + Clone + fmt::Debug, T> Opening<'_, K, T> {
    fn hold(&self) -> Hold {
        Hold::new(Arc::clone(&self.released))
    }

    /// Registers the opener's handle (a failed open leaves the location free) and wakes the
    /// opens waiting.
    fn finish<E>(mut self, opened: Result<Arc<T>, E>) -> Result<Arc<T>, OpenError<E>> {
        self.settle(opened.as_ref().ok());
        opened.map_err(OpenError::Open)
    }

    fn settle(&mut self, handle: Option<&Arc<T>>) {
        self.state = OpeningState::Settled;
        let mut entries = self.stores.entries();
        let ours = matches!(
            entries.get(&self.location),
            Some(Phase::Opening(opened)) if Arc::ptr_eq(opened, &self.opened)
        );
        // A location forgotten meanwhile stays forgotten.
        if ours {
            match handle {
                Some(handle) => {
                    entries.insert(
                        self.location.clone(),
                        Phase::Open {
                            handle: Arc::downgrade(handle),
                            released: Arc::clone(&self.released),
                        },
                    );
                }
                None => {
                    entries.remove(&self.location);
                }
            }
        }
        drop(entries);
        self.opened.fire();
    }
}

impl<K: Ord + Clone + fmt::Debug, T> Drop for Opening<'_, K, T> {
    fn drop(&mut self) {
        if self.state == OpeningState::Running {
            tracing::warn!(location = ?self.location, "an open of a store did not finish");
            self.settle(None);
        }
    }
}

/// The stores open in this process, by canonical location: keep one in a `static` and open
/// every store of a kind through it ([`open`](Self::open) on the blocking pool, or
/// [`open_blocking`](Self::open_blocking) in the calling thread).
///
/// `K` is the canonical location (a directory made canonical, a URL without its options); `T`
/// is the handle the opener returns and the registry shares (a [`Backend`](crate::Backend), or
/// an adapter's manager around one). The registry holds handles weakly: a location is open
/// while a handle the opener returned lives. It then:
///
/// - **shares the live store** of a location: an open gets its handle again
///   ([`Sharing::Share`]) or a typed refusal ([`Sharing::Refuse`], for a create), never a
///   second store (a file journal opened twice in one process would fail on its own lock);
/// - **opens a location once at a time**: an open of a location another open is working on
///   waits for it, and shares what it opened;
/// - **waits for a store being released**: once the last handle of a location's store is
///   gone, the store may still be being dropped — by the thread that ran its last commit, or on
///   the blocking pool ([`close`](Self::close)) — and it keeps its lock and files until then.
///   The opener is given a [`Hold`] to keep inside the store ([`Held`](crate::Held)) or beside its handle;
///   an open of the location meanwhile waits until every clone of it is dropped, at most the
///   registry's [patience](Self::patience), and past it fails with [`OpenError::NotReleased`]
///   naming the location (something keeps the store without its handle).
///   [`released`](Self::released) waits the same way without opening.
///
/// Only this process is seen: another process opening the location still gets the store's own
/// error (a file journal's lock).
///
/// ```
/// use persevere_driver::{Held, OpenError, OpenStores, Sharing};
/// use std::sync::Arc;
///
/// static STORES: OpenStores<&str, String> = OpenStores::new();
/// let first = STORES.open_blocking("db", Sharing::Share, |_hold| Ok::<_, String>(Arc::new("store".into())))?;
/// // The live store is shared; a create is refused.
/// let again = STORES.open_blocking("db", Sharing::Share, |_| Err("not called".into()))?;
/// assert!(Arc::ptr_eq(&first, &again));
/// let create = STORES.open_blocking("db", Sharing::Refuse, |_| Err("not called".to_string()));
/// assert!(matches!(create, Err(OpenError::AlreadyOpen { .. })));
/// // Once its handles are gone (and with them the hold), the location opens anew.
/// drop((first, again));
/// let fresh = STORES.open_blocking("db", Sharing::Share, |_| Ok(Arc::new("new".into())))?;
/// assert_eq!(*fresh, "new");
/// # Ok::<(), OpenError<String>>(())
/// ```
pub struct OpenStores<K, T> {
    entries: Mutex<BTreeMap<K, Phase<T>>>,
    patience: Duration,
}

impl<K, T> fmt::Debug for OpenStores<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let locations = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("OpenStores")
            .field("locations", &locations)
            .field("patience", &self.patience)
            .finish()
    }
}

impl<K, T> Default for OpenStores<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, T> OpenStores<K, T> {
    /// An empty registry waiting at most [`RELEASE_PATIENCE`] for a store's release.
    pub const fn new() -> Self {
        Self::with_patience(RELEASE_PATIENCE)
    }

    /// An empty registry waiting at most `patience` for a store's release.
    pub const fn with_patience(patience: Duration) -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            patience,
        }
    }

    /// How long an open waits for the previous store of its location to be released.
    pub fn patience(&self) -> Duration {
        self.patience
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<K, Phase<T>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Ord + Clone + fmt::Debug, T> OpenStores<K, T> {
    /// The live store of `location`, if it has one.
    pub fn live(&self, location: &K) -> Option<Arc<T>> {
        match self.entries().get(location) {
            Some(Phase::Open { handle, .. }) => handle.upgrade(),
            _ => None,
        }
    }

    /// Forgets `location`: the next open opens it anew, even while handles of its store live
    /// (for a file journal, that open then fails on the store's lock until they are gone).
    /// Returns whether it had a live store.
    pub fn forget(&self, location: &K) -> bool {
        let forgotten = self.entries().remove(location);
        matches!(forgotten, Some(Phase::Open { handle, .. }) if handle.strong_count() > 0)
    }

    /// Drops `handle`, and when it is the store's last handle, drops the store on `runtime`'s
    /// blocking pool (a store's drop may write and sync its files): the location counts as
    /// released once that has run. Returns whether it was the last handle.
    ///
    /// ```
    /// use persevere_driver::{Hold, OpenStores, Sharing};
    /// # use std::time::Duration;
    /// # use persevere_driver::{BlockingWork, Runtime, Task};
    /// # struct Threads;
    /// # impl Runtime for Threads {
    /// #     fn spawn(&self, task: Task) { std::thread::spawn(move || futures::executor::block_on(task)); }
    /// #     fn spawn_blocking(&self, work: BlockingWork) { std::thread::spawn(work); }
    /// #     fn sleep(&self, d: Duration) -> Task { Box::pin(async move { std::thread::sleep(d) }) }
    /// # }
    /// static STORES: OpenStores<&str, Hold> = OpenStores::new();
    /// let store = STORES.open_blocking("db", Sharing::Share, |hold| Ok::<_, String>(std::sync::Arc::new(hold)))?;
    /// assert!(STORES.close(&Threads, store));
    /// futures::executor::block_on(STORES.released(&Threads, &"db"))?; // dropped on a thread of its own
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self, runtime: &dyn Runtime, handle: Arc<T>) -> bool
    where
        T: Send + Sync + 'static,
    {
        let Some(store) = Arc::into_inner(handle) else {
            return false;
        };
        tracing::debug!("closing a store on the blocking pool");
        runtime.spawn_blocking(Box::new(move || drop(store)));
        true
    }

    /// Opens the store at `location` with `open`, in the calling thread — or shares its live
    /// store ([`Sharing`]), waits for another open of it, or waits (at most the
    /// [patience](Self::patience)) for its previous store to be released. `open` is given the
    /// [`Hold`] to keep inside the store ([`Held`](crate::Held)) or beside its handle.
    pub fn open_blocking<E>(
        &self,
        location: K,
        sharing: Sharing,
        open: impl FnOnce(Hold) -> Result<Arc<T>, E>,
    ) -> Result<Arc<T>, OpenError<E>> {
        loop {
            match self.step(&location, sharing)? {
                Step::Live(handle) => return Ok(handle),
                Step::AwaitOpener(opened) => {
                    opened.wait_blocking(None);
                }
                Step::AwaitRelease(released) => {
                    self.log_wait(&location);
                    if !released.wait_blocking(Some(self.patience)) {
                        return Err(self.not_released(&location).into());
                    }
                }
                Step::Start(opening) => {
                    let hold = opening.hold();
                    return opening.finish(open(hold));
                }
            }
        }
    }

    /// [`open_blocking`](Self::open_blocking) for async callers: the waits are awaited (the
    /// release's bounded by `runtime`'s timer), and `open` runs on `runtime`'s blocking pool.
    /// The open goes on should this future be dropped: the store is registered (and dropped
    /// there, on the blocking pool, if nothing shares it).
    ///
    /// ```
    /// use persevere_driver::{OpenStores, Sharing};
    /// # use std::time::Duration;
    /// # use persevere_driver::{BlockingWork, Runtime, Task};
    /// # struct Threads;
    /// # impl Runtime for Threads {
    /// #     fn spawn(&self, task: Task) { std::thread::spawn(move || futures::executor::block_on(task)); }
    /// #     fn spawn_blocking(&self, work: BlockingWork) { std::thread::spawn(work); }
    /// #     fn sleep(&self, d: Duration) -> Task { Box::pin(async move { std::thread::sleep(d) }) }
    /// # }
    ///
    /// static STORES: OpenStores<String, u64> = OpenStores::new();
    /// let store = futures::executor::block_on(STORES.open(&Threads, "db".into(), Sharing::Share, |_hold| {
    ///     Ok::<_, std::io::Error>(std::sync::Arc::new(7)) // blocking work is fine here
    /// }))?;
    /// assert_eq!(STORES.live(&"db".into()), Some(store));
    /// # Ok::<(), persevere_driver::OpenError<std::io::Error>>(())
    /// ```
    pub async fn open<E>(
        &'static self,
        runtime: &dyn Runtime,
        location: K,
        sharing: Sharing,
        open: impl FnOnce(Hold) -> Result<Arc<T>, E> + Send + 'static,
    ) -> Result<Arc<T>, OpenError<E>>
    where
        K: Send + Sync + 'static,
        T: Send + Sync + 'static,
        E: Send + 'static,
    {
        loop {
            match self.step(&location, sharing)? {
                Step::Live(handle) => return Ok(handle),
                Step::AwaitOpener(opened) => Fired(opened).await,
                Step::AwaitRelease(released) => {
                    self.log_wait(&location);
                    self.await_release(runtime, &location, released).await?;
                }
                Step::Start(opening) => {
                    let (answer, answered) = oneshot::channel();
                    runtime.spawn_blocking(Box::new(move || {
                        let hold = opening.hold();
                        // Nobody waiting: the store, if unshared, is dropped here.
                        let _ = answer.send(opening.finish(open(hold)));
                    }));
                    return answered.await.unwrap_or_else(|_| {
                        Err(OpenError::Abandoned {
                            location: describe(&location),
                        })
                    });
                }
            }
        }
    }

    /// Waits until `location` has no store being dropped (its last handle gone, its [`Hold`]s
    /// not yet): at once when it has a live store, none, or one being opened; at most the
    /// [patience](Self::patience), bounded by `runtime`'s timer.
    pub async fn released(&self, runtime: &dyn Runtime, location: &K) -> Result<(), NotReleased> {
        loop {
            let released = {
                let mut entries = self.entries();
                match entries.get(location) {
                    Some(Phase::Open { handle, released }) if handle.strong_count() == 0 => {
                        if released.is_fired() {
                            entries.remove(location);
                            return Ok(());
                        }
                        Arc::clone(released)
                    }
                    _ => return Ok(()),
                }
            };
            self.log_wait(location);
            self.await_release(runtime, location, released).await?;
        }
    }

    /// What an open of `location` finds; the location is taken for this open when free.
    fn step<E>(&self, location: &K, sharing: Sharing) -> Result<Step<'_, K, T>, OpenError<E>> {
        let mut entries = self.entries();
        match entries.get(location) {
            Some(Phase::Opening(opened)) => return Ok(Step::AwaitOpener(Arc::clone(opened))),
            Some(Phase::Open { handle, released }) => {
                if let Some(handle) = handle.upgrade() {
                    drop(entries);
                    return match sharing {
                        Sharing::Share => Ok(Step::Live(handle)),
                        Sharing::Refuse => Err(OpenError::AlreadyOpen {
                            location: describe(location),
                        }),
                    };
                }
                if !released.is_fired() {
                    return Ok(Step::AwaitRelease(Arc::clone(released)));
                }
            }
            None => {}
        }
        let opened = Signal::new();
        entries.insert(location.clone(), Phase::Opening(Arc::clone(&opened)));
        Ok(Step::Start(Opening {
            stores: self,
            location: location.clone(),
            opened,
            released: Signal::new(),
            state: OpeningState::Running,
        }))
    }

    /// Awaits `released`, at most the patience.
    async fn await_release(
        &self,
        runtime: &dyn Runtime,
        location: &K,
        released: Arc<Signal>,
    ) -> Result<(), NotReleased> {
        let fired = Fired(Arc::clone(&released));
        match select(fired, runtime.sleep(self.patience)).await {
            Either::Left(((), _)) => Ok(()),
            Either::Right(_) if released.is_fired() => Ok(()),
            Either::Right(_) => Err(self.not_released(location)),
        }
    }

    fn log_wait(&self, location: &K) {
        tracing::debug!(
            ?location,
            "waiting for the previous store of the location to be released"
        );
    }

    fn not_released(&self, location: &K) -> NotReleased {
        let error = NotReleased {
            location: describe(location),
            patience: self.patience,
        };
        tracing::warn!(%error, "a store was not released in time");
        error
    }
}

/// A location as errors name it.
fn describe<K: fmt::Debug>(location: &K) -> String {
    format!("{location:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::Held;
    use crate::runtime::{BlockingWork, Task};
    use persevere_core::memory::MemoryStore;
    use persevere_core::Store;
    use persevere_core::{Command, CommandId, Completion};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::Wake;
    use std::task::{Context, Poll, Waker};

    /// A runtime whose blocking work waits until the test runs it, and whose timer either
    /// never fires or fires at once.
    struct Manual {
        blocking: Mutex<Vec<BlockingWork>>,
        timer: Timer,
    }

    #[derive(Clone, Copy)]
    enum Timer {
        Never,
        AtOnce,
    }

    impl Manual {
        fn new(timer: Timer) -> Self {
            Self {
                blocking: Mutex::new(Vec::new()),
                timer,
            }
        }

        /// Runs the blocking work queued so far; how much.
        fn run_blocking(&self) -> usize {
            let work = std::mem::take(&mut *self.blocking.lock().unwrap());
            let count = work.len();
            work.into_iter().for_each(|work| work());
            count
        }

        /// Drops the blocking work queued so far unrun, as a runtime shutting down does.
        fn drop_blocking(&self) {
            drop(std::mem::take(&mut *self.blocking.lock().unwrap()));
        }
    }

    impl Runtime for Manual {
        fn spawn(&self, _task: Task) {
            unreachable!("the registry spawns no task")
        }

        fn spawn_blocking(&self, work: BlockingWork) {
            self.blocking.lock().unwrap().push(work);
        }

        fn sleep(&self, _duration: Duration) -> Task {
            match self.timer {
                Timer::Never => Box::pin(futures::future::pending()),
                Timer::AtOnce => Box::pin(futures::future::ready(())),
            }
        }
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Polls `future` once.
    fn poll_once<F: Future + Unpin>(future: &mut F, wakes: &Arc<Wakes>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(wakes));
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    /// A store handle whose store (with the location's hold) may outlive it, as a backend's
    /// store outlives its last handle while a commit thread drops it.
    #[derive(Debug, PartialEq)]
    struct Handle {
        generation: usize,
    }

    fn handle(generation: usize) -> Result<Arc<Handle>, String> {
        Ok(Arc::new(Handle { generation }))
    }

    /// Opens `location` and drops its handle, keeping its store's hold: the store being dropped
    /// elsewhere.
    fn outliving_store(stores: &OpenStores<&'static str, Handle>, location: &'static str) -> Hold {
        let mut store_hold = None;
        let handle = stores
            .open_blocking(location, Sharing::Share, |hold| {
                store_hold = Some(hold);
                handle(1)
            })
            .unwrap();
        drop(handle);
        store_hold.expect("the opener ran")
    }

    #[test]
    fn a_live_store_is_shared_and_a_create_refused() {
        static STORES: OpenStores<&str, Handle> = OpenStores::new();
        let opens = AtomicUsize::new(0);
        let open = |_hold: Hold| {
            opens.fetch_add(1, Ordering::SeqCst);
            handle(1)
        };
        let first = STORES.open_blocking("a", Sharing::Share, open).unwrap();
        let second = STORES.open_blocking("a", Sharing::Share, open).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(opens.load(Ordering::SeqCst), 1);
        assert_eq!(
            STORES.open_blocking("a", Sharing::Refuse, open).err(),
            Some(OpenError::AlreadyOpen {
                location: "\"a\"".into()
            })
        );
        // Another location is another store.
        let other = STORES.open_blocking("b", Sharing::Refuse, open).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(opens.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_open_waits_until_the_dropped_store_released_its_location() {
        static STORES: OpenStores<&str, Handle> = OpenStores::new();
        let runtime = Manual::new(Timer::Never);
        let store_hold = outliving_store(&STORES, "a");
        // The last handle is gone, the store (its hold) not yet: the open waits.
        let released = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&released);
        let mut open = Box::pin(STORES.open(&runtime, "a", Sharing::Share, move |_| {
            assert!(seen.load(Ordering::SeqCst), "opened before the release");
            handle(2)
        }));
        let wakes = Arc::new(Wakes::default());
        assert!(poll_once(&mut open, &wakes).is_pending());
        assert_eq!(runtime.run_blocking(), 0, "nothing opened yet");
        assert!(STORES.live(&"a").is_none());
        // The store is dropped: the open is woken and opens the location anew.
        released.store(true, Ordering::SeqCst);
        drop(store_hold);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(poll_once(&mut open, &wakes).is_pending());
        assert_eq!(runtime.run_blocking(), 1);
        let Poll::Ready(Ok(second)) = poll_once(&mut open, &wakes) else {
            panic!("the open did not finish");
        };
        assert_eq!(second.generation, 2);
    }

    #[test]
    fn a_blocking_open_waits_for_the_release_on_another_thread() {
        static STORES: OpenStores<&str, Handle> = OpenStores::new();
        let store_hold = outliving_store(&STORES, "a");
        let released = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&released);
        let opener = std::thread::spawn(move || {
            STORES
                .open_blocking("a", Sharing::Share, |_| {
                    assert!(seen.load(Ordering::SeqCst), "opened before the release");
                    handle(2)
                })
                .map(|handle| handle.generation)
        });
        released.store(true, Ordering::SeqCst);
        drop(store_hold);
        assert_eq!(opener.join().unwrap(), Ok(2));
    }

    #[test]
    fn a_store_not_released_in_time_is_a_typed_error_naming_the_location() {
        static STORES: OpenStores<&str, Handle> =
            OpenStores::with_patience(Duration::from_millis(1));
        let store_hold = outliving_store(&STORES, "kept");
        let expected = NotReleased {
            location: "\"kept\"".into(),
            patience: Duration::from_millis(1),
        };
        let blocking = STORES.open_blocking("kept", Sharing::Share, |_| handle(2));
        assert_eq!(
            blocking.err(),
            Some(OpenError::NotReleased(expected.clone()))
        );
        // The async open and `released` are bounded by the runtime's timer.
        let runtime = Manual::new(Timer::AtOnce);
        let open = STORES.open(&runtime, "kept", Sharing::Share, |_| handle(2));
        let opened = futures::executor::block_on(open);
        assert_eq!(opened.err(), Some(OpenError::NotReleased(expected.clone())));
        let released = futures::executor::block_on(STORES.released(&runtime, &"kept"));
        assert_eq!(released, Err(expected.clone()));
        assert!(expected.to_string().contains("\"kept\""), "{expected}");
        // Once released, the location opens.
        drop(store_hold);
        let again = STORES.open_blocking("kept", Sharing::Share, |_| handle(3));
        assert_eq!(again.map(|handle| handle.generation), Ok(3));
    }

    #[test]
    fn a_closed_store_is_released_once_dropped_on_the_blocking_pool() {
        static STORES: OpenStores<&str, Hold> = OpenStores::new();
        let runtime = Manual::new(Timer::Never);
        let first = STORES
            .open_blocking("a", Sharing::Share, |hold| Ok::<_, ()>(Arc::new(hold)))
            .unwrap();
        let second = Arc::clone(&first);
        assert!(!STORES.close(&runtime, second), "not the last handle");
        assert_eq!(runtime.run_blocking(), 0);
        assert!(STORES.close(&runtime, first), "the last handle");
        // Unshared at once, released once the blocking pool dropped it.
        assert!(STORES.live(&"a").is_none());
        let wakes = Arc::new(Wakes::default());
        let mut released = Box::pin(STORES.released(&runtime, &"a"));
        assert!(poll_once(&mut released, &wakes).is_pending());
        assert_eq!(runtime.run_blocking(), 1);
        assert_eq!(poll_once(&mut released, &wakes), Poll::Ready(Ok(())));
        // Nothing left at the location: `released` answers at once.
        let mut again = Box::pin(STORES.released(&runtime, &"a"));
        assert_eq!(poll_once(&mut again, &wakes), Poll::Ready(Ok(())));
    }

    #[test]
    fn concurrent_opens_of_a_location_share_one_store() {
        static STORES: OpenStores<&str, Handle> = OpenStores::new();
        let runtime = Manual::new(Timer::Never);
        let wakes = Arc::new(Wakes::default());
        let mut first = Box::pin(STORES.open(&runtime, "a", Sharing::Share, |_| handle(1)));
        let mut second = Box::pin(STORES.open(&runtime, "a", Sharing::Share, |_| handle(2)));
        assert!(poll_once(&mut first, &wakes).is_pending());
        assert!(poll_once(&mut second, &wakes).is_pending());
        assert_eq!(runtime.run_blocking(), 1, "one opener runs");
        let (Poll::Ready(Ok(first)), Poll::Ready(Ok(second))) = (
            poll_once(&mut first, &wakes),
            poll_once(&mut second, &wakes),
        ) else {
            panic!("the opens did not finish");
        };
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.generation, 1);
    }

    #[test]
    fn an_abandoned_or_failed_open_leaves_the_location_free() {
        static STORES: OpenStores<&str, Handle> = OpenStores::new();
        let runtime = Manual::new(Timer::Never);
        let wakes = Arc::new(Wakes::default());
        let mut open = Box::pin(STORES.open(&runtime, "a", Sharing::Share, |_| handle(1)));
        assert!(poll_once(&mut open, &wakes).is_pending());
        runtime.drop_blocking();
        assert_eq!(
            poll_once(&mut open, &wakes),
            Poll::Ready(Err(OpenError::Abandoned {
                location: "\"a\"".into()
            }))
        );
        let failed = STORES.open_blocking("a", Sharing::Share, |_| Err("disk gone".to_string()));
        assert_eq!(failed.err(), Some(OpenError::Open("disk gone".into())));
        let opened = STORES.open_blocking("a", Sharing::Share, |_| handle(2));
        assert_eq!(opened.map(|handle| handle.generation), Ok(2));
    }

    #[test]
    fn a_forgotten_location_opens_anew_while_its_old_store_lives() {
        static STORES: OpenStores<&str, Handle> = OpenStores::new();
        let old = STORES
            .open_blocking("a", Sharing::Share, |_| handle(1))
            .unwrap();
        assert!(STORES.forget(&"a"));
        assert!(!STORES.forget(&"a"));
        let new = STORES
            .open_blocking("a", Sharing::Share, |_| handle(2))
            .unwrap();
        assert_eq!((old.generation, new.generation), (1, 2));
    }

    #[test]
    fn a_held_store_answers_as_its_store_and_releases_after_it() {
        static STORES: OpenStores<&str, std::sync::Mutex<Held<MemoryStore>>> = OpenStores::new();
        let store = STORES
            .open_blocking("a", Sharing::Share, |hold| {
                Ok::<_, ()>(Arc::new(Mutex::new(Held::new(MemoryStore::new(), hold))))
            })
            .unwrap();
        let read = Command::ReadEvents {
            id: CommandId(1),
            from: 1,
            limit: 10,
        };
        let answer = store.lock().unwrap().execute_one(&"s".into(), read);
        assert_eq!(
            answer,
            (
                CommandId(1),
                Ok(Completion::Events {
                    records: vec![],
                    head: 0
                })
            )
        );
        assert!(store.lock().unwrap().repairs().is_empty());
        assert_eq!(store.lock().unwrap().fenced(), None);
        drop(store);
        let runtime = Manual::new(Timer::Never);
        let wakes = Arc::new(Wakes::default());
        let mut released = Box::pin(STORES.released(&runtime, &"a"));
        assert_eq!(poll_once(&mut released, &wakes), Poll::Ready(Ok(())));
    }
}
