//! One persistent entity driven in the caller's task: the plain async API.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};

use persevere_core::seal::KeyRing;
use persevere_core::{Borsh, Codec, Entity, Journal, JournalConfig, Phase, Repair};

use crate::backend::Backend;
use crate::driver::{Driver, Resume};
use crate::error::Error;
use crate::random::os_random;

/// One persistent entity: its journal and its state, driven in the task that calls it.
///
/// [`open`](Self::open) recovers the state; [`persist`](Self::persist),
/// [`persist_all`](Self::persist_all) and [`snapshot`](Self::snapshot) return once the outcome
/// is known, with the core's typed failures. Many entities share one [`Backend`]; commands of
/// entities persisting at the same time are group-committed by it.
///
/// Every call is cancel-safe: if its future is dropped, a command already sent is finished by
/// the next call before anything else, and until then [`state`](Self::state) refuses to show
/// a state that may hold unacknowledged events ([`Error::Unsettled`]).
///
/// An entity opened with [`open`](Self::open) or [`open_encrypted`](Self::open_encrypted)
/// outlives a storage outage: once the backend has reopened its store, the next call recovers
/// a journal that stopped on the failure and goes on (see [`Driver`]'s policy).
/// [`repairs`](Self::repairs) tells what the store repaired that may involve this entity.
///
/// ```
/// # use std::time::Duration;
/// # use persevere_driver::{BlockingWork, Runtime, Task};
/// # struct Threads;
/// # impl Runtime for Threads {
/// #     fn spawn(&self, task: Task) { std::thread::spawn(move || futures::executor::block_on(task)); }
/// #     fn spawn_blocking(&self, work: BlockingWork) { std::thread::spawn(work); }
/// #     fn sleep(&self, d: Duration) -> Task { Box::pin(async move { std::thread::sleep(d) }) }
/// # }
/// use persevere_core::memory::MemoryStore;
/// use persevere_core::{Entity, JournalConfig};
/// use persevere_driver::{Backend, Persistent};
///
/// #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
/// struct Counter { value: u64 }
///
/// impl Entity for Counter {
///     type Event = u64;
///     type Error = String;
///     fn apply(&mut self, n: &u64) -> Result<(), String> {
///         self.value = self.value.checked_add(*n).ok_or("overflow")?;
///         Ok(())
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let backend = Backend::new(Threads, MemoryStore::new());
/// let mut counter = Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default).await?;
/// assert_eq!(counter.persist(2).await?, 1..=1);
/// assert_eq!(counter.persist_all([3, 4]).await?, 2..=3);
/// assert_eq!(counter.snapshot().await?, 3);
/// assert!(counter.repairs().is_empty()); // nothing set aside by the store
/// assert_eq!(counter.resume().await?, persevere_driver::Resume::Unchanged); // never stopped
/// drop(counter);
///
/// let again = Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default).await?;
/// assert_eq!(again.state()?.value, 9);
/// # Ok::<(), persevere_driver::Error>(())
/// # }).unwrap();
/// ```
pub struct Persistent<E: Entity, C = Borsh> {
    pub(crate) driver: Driver<E, C>,
    pub(crate) state: E,
}

impl<E, C> Persistent<E, C>
where
    E: Entity,
    C: Codec<E> + Codec<E::Event>,
{
    /// Opens the entity `config.stream()` on `backend` and recovers its state (the newest
    /// snapshot plus the events after it; `initial()` when the stream is new).
    pub async fn open(
        backend: &Backend,
        config: JournalConfig,
        initial: impl Fn() -> E + Send + 'static,
    ) -> Result<Self, Error>
    where
        E: 'static,
    {
        let mut state = initial();
        let initial = shared(initial);
        let recipe = move || Ok(Journal::new(config.clone(), initial_from(&initial)));
        let driver = Driver::open_with(backend, Box::new(recipe), &mut state).await?;
        Ok(Self { driver, state })
    }

    /// Opens the entity with every record sealed under `keys` (see
    /// [`persevere_core::seal`]); nonces come from a generator seeded by the operating system.
    pub async fn open_encrypted(
        backend: &Backend,
        config: JournalConfig,
        initial: impl Fn() -> E + Send + 'static,
        keys: Arc<KeyRing>,
    ) -> Result<Self, Error>
    where
        E: 'static,
    {
        let mut state = initial();
        let initial = shared(initial);
        let recipe = move || {
            Ok(Journal::new(config.clone(), initial_from(&initial))
                .with_encryption(Arc::clone(&keys), os_random()?))
        };
        let driver = Driver::open_with(backend, Box::new(recipe), &mut state).await?;
        Ok(Self { driver, state })
    }

    /// Opens an entity whose journal `recipe` builds (for example with a snapshot predicate),
    /// with a scratch state that recovery replaces. The recipe is called again to resume after
    /// a storage outage (see [`Driver::open_with`]).
    pub async fn open_with(
        backend: &Backend,
        recipe: impl FnMut() -> Result<Journal<E, C>, Error> + Send + 'static,
        mut state: E,
    ) -> Result<Self, Error> {
        let driver = Driver::open_with(backend, Box::new(recipe), &mut state).await?;
        Ok(Self { driver, state })
    }

    /// Like [`open_with`](Self::open_with), claiming the stream as `claim` says (see
    /// [`Backend::claim`]): every other `open` refuses a stream another live entity of the
    /// process writes ([`Error::Owned`]); [`Claim::TakeOver`](crate::Claim::TakeOver)
    /// supersedes it, for a supervised restart.
    pub async fn open_claiming(
        backend: &Backend,
        recipe: impl FnMut() -> Result<Journal<E, C>, Error> + Send + 'static,
        mut state: E,
        claim: crate::Claim,
    ) -> Result<Self, Error> {
        let driver = Driver::open_claiming(backend, Box::new(recipe), &mut state, claim).await?;
        Ok(Self { driver, state })
    }

    /// Whether this entity still owns its stream (see [`Backend::claim`]).
    pub fn owns_stream(&self) -> bool {
        self.driver.owns_stream()
    }

    /// Opens an entity from a journal built by the caller and a scratch state that recovery
    /// replaces. Without a recipe to build the journal again, a journal that stops on a
    /// storage outage stays stopped: prefer [`open_with`](Self::open_with).
    pub async fn open_journal(
        backend: &Backend,
        journal: Journal<E, C>,
        mut state: E,
    ) -> Result<Self, Error> {
        let driver = Driver::open(backend, journal, &mut state).await?;
        Ok(Self { driver, state })
    }

    /// Persists one event: once it returns `Ok`, the event is durable and applied, and the
    /// range holds its seq. On `Err` the state is as before (see [`Error`]).
    pub async fn persist(&mut self, event: E::Event) -> Result<RangeInclusive<u64>, Error> {
        self.driver.persist(event, &mut self.state).await
    }

    /// Persists `events` atomically: all of them become durable and applied, or none.
    pub async fn persist_all(
        &mut self,
        events: impl IntoIterator<Item = E::Event>,
    ) -> Result<RangeInclusive<u64>, Error> {
        self.driver.persist_all(events, &mut self.state).await
    }

    /// Writes a snapshot of the current state (unless the newest one covers it) and returns
    /// the seq it covers.
    pub async fn snapshot(&mut self) -> Result<u64, Error> {
        self.driver.snapshot(&mut self.state).await
    }

    /// Recovers the journal if it stopped on a storage failure and the store is back (the
    /// request methods do it first); returns what it did. See [`Driver::resume`].
    pub async fn resume(&mut self) -> Result<Resume, Error> {
        self.driver.resume(&mut self.state).await
    }

    /// What the backend's store repaired or set aside (at open or at a reopen) that may
    /// involve this entity's stream: repairs naming it, and repairs naming no stream (the store
    /// could not tell which it involves). Every repair is also logged as a WARN.
    pub fn repairs(&self) -> Vec<Repair> {
        self.driver.repairs()
    }

    /// The state: every acknowledged event applied, and no other.
    ///
    /// A call dropped mid-flight (a `timeout`, a `select!`) leaves its request unsettled, and
    /// the state may then hold events that are not acknowledged: until the request is settled
    /// ([`settle`](Self::settle), or any other request, which settles it first) this returns
    /// [`Error::Unsettled`] instead of showing them. After the journal stopped on a failure
    /// that leaves the state unknown (a write whose outcome stayed unknown, a recovery that
    /// failed part-way) it returns [`Error::StateUnknown`] until [`resume`](Self::resume) (or
    /// the next request) has recovered the state from the log.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use persevere_driver::{BlockingWork, Runtime, Task};
    /// # struct Threads;
    /// # impl Runtime for Threads {
    /// #     fn spawn(&self, task: Task) { std::thread::spawn(move || futures::executor::block_on(task)); }
    /// #     fn spawn_blocking(&self, work: BlockingWork) { std::thread::spawn(work); }
    /// #     fn sleep(&self, d: Duration) -> Task { Box::pin(async move { std::thread::sleep(d) }) }
    /// # }
    /// # #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
    /// # struct Counter { value: u64 }
    /// # impl persevere_core::Entity for Counter {
    /// #     type Event = u64;
    /// #     type Error = String;
    /// #     fn apply(&mut self, n: &u64) -> Result<(), String> { self.value += n; Ok(()) }
    /// # }
    /// use futures::FutureExt;
    /// use persevere_core::{memory::MemoryStore, JournalConfig};
    /// use persevere_driver::{Backend, Error, Persistent};
    ///
    /// # futures::executor::block_on(async {
    /// let backend = Backend::new(Threads, MemoryStore::new());
    /// let mut counter = Persistent::<Counter>::open(&backend, JournalConfig::new("c"), Counter::default).await?;
    /// let _ = counter.persist(2).now_or_never(); // the call is dropped, maybe mid-flight
    /// match counter.state() {
    ///     Ok(state) => assert_eq!(state.value, 2), // it had finished
    ///     Err(Error::Unsettled { stream }) => assert_eq!(stream, "c"),
    ///     Err(other) => panic!("{other}"),
    /// }
    /// assert_eq!(counter.settle().await?.value, 2);
    /// # Ok::<(), persevere_driver::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn state(&self) -> Result<&E, Error> {
        self.driver.check_settled()?;
        Ok(&self.state)
    }

    /// Settles a request left in flight by a call dropped mid-flight (see
    /// [`state`](Self::state)), then returns the state: every acknowledged event applied, and
    /// no other ([`Error::StateUnknown`] if the journal stopped on a failure that leaves that
    /// unknown).
    pub async fn settle(&mut self) -> Result<&E, Error> {
        self.driver.settle(&mut self.state).await?;
        Ok(&self.state)
    }

    /// Whether the state holds exactly the acknowledged events (see [`state`](Self::state)).
    pub fn is_settled(&self) -> bool {
        self.driver.holds_acknowledged_state()
    }

    /// The state, consuming the handle, once any request left in flight is settled.
    pub async fn into_state(mut self) -> Result<E, Error> {
        self.driver.settle(&mut self.state).await?;
        Ok(self.state)
    }

    /// The last durable seq.
    pub fn last_seq(&self) -> u64 {
        self.driver.last_seq()
    }

    /// The journal's phase.
    pub fn phase(&self) -> Phase {
        self.driver.phase()
    }

    /// The stream id.
    pub fn stream(&self) -> &str {
        self.driver.stream()
    }

    /// The journal (read-only).
    pub fn journal(&self) -> &Journal<E, C> {
        self.driver.journal()
    }
}

/// The initial-state factory, shared by every journal a recipe builds.
type Initial<E> = Arc<Mutex<dyn Fn() -> E + Send>>;

fn shared<E>(initial: impl Fn() -> E + Send + 'static) -> Initial<E> {
    Arc::new(Mutex::new(initial))
}

fn initial_from<E: 'static>(initial: &Initial<E>) -> impl Fn() -> E + Send + 'static {
    let initial = Arc::clone(initial);
    move || (initial.lock().unwrap_or_else(PoisonError::into_inner))()
}

impl<E: Entity + std::fmt::Debug, C> std::fmt::Debug for Persistent<E, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistent")
            .field("driver", &self.driver)
            .field("state", &self.state)
            .finish()
    }
}
