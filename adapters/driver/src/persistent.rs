//! One persistent entity driven in the caller's task: the plain async API.

use std::ops::RangeInclusive;
use std::sync::Arc;

use persevere_core::seal::KeyRing;
use persevere_core::{Borsh, Codec, Entity, Journal, JournalConfig, Phase};

use crate::backend::Backend;
use crate::driver::Driver;
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
/// the next call before anything else.
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
/// drop(counter);
///
/// let again = Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default).await?;
/// assert_eq!(again.state().value, 9);
/// # Ok::<(), persevere_driver::Error>(())
/// # }).unwrap();
/// ```
pub struct Persistent<E: Entity, C = Borsh> {
    driver: Driver<E, C>,
    state: E,
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
    ) -> Result<Self, Error> {
        let state = initial();
        Self::open_journal(backend, Journal::new(config, initial), state).await
    }

    /// Opens the entity with every record sealed under `keys` (see
    /// [`persevere_core::seal`]); nonces come from a generator seeded by the operating system.
    pub async fn open_encrypted(
        backend: &Backend,
        config: JournalConfig,
        initial: impl Fn() -> E + Send + 'static,
        keys: Arc<KeyRing>,
    ) -> Result<Self, Error> {
        let state = initial();
        let journal = Journal::new(config, initial).with_encryption(keys, os_random()?);
        Self::open_journal(backend, journal, state).await
    }

    /// Opens an entity from a journal built by the caller (for example with a snapshot
    /// predicate) and a scratch state that recovery replaces.
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

    /// The recovered state with every acknowledged event applied.
    pub fn state(&self) -> &E {
        &self.state
    }

    /// The state, consuming the handle.
    pub fn into_state(self) -> E {
        self.state
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

impl<E: Entity + std::fmt::Debug, C> std::fmt::Debug for Persistent<E, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistent")
            .field("driver", &self.driver)
            .field("state", &self.state)
            .finish()
    }
}
