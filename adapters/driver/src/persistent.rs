//! One persistent entity driven in the caller's task: the plain async API.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use persevere_core::{
    Borsh, Codec, CommandId, Entity, Journal, JournalConfig, JournalEvent, Phase, RequestId,
};

use crate::backend::{Backend, Outcome, Pending};
use crate::error::Error;

/// A command sent to the backend whose completion the journal has not seen yet.
enum InFlight {
    Idle,
    Ready(CommandId, Outcome),
    Waiting(CommandId, oneshot::Receiver<Outcome>),
}

/// What a drive of the run loop is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Recovered,
    Request(RequestId),
    Settled,
}

/// What a drive found for its goal.
enum Found {
    Recovered,
    Persisted(RangeInclusive<u64>),
    Snapshot(u64),
    Failed(Error),
}

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
    journal: Journal<E, C>,
    state: E,
    backend: Backend,
    stream: Arc<str>,
    in_flight: InFlight,
    epoch: Instant,
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

    /// Opens an entity from a journal built by the caller (for example with a snapshot
    /// predicate) and a scratch state that recovery replaces.
    pub async fn open_journal(
        backend: &Backend,
        journal: Journal<E, C>,
        state: E,
    ) -> Result<Self, Error> {
        let stream: Arc<str> = journal.config().stream().into();
        let span = tracing::debug_span!("open", stream = %stream);
        let _entered = span.enter();
        let mut entity = Self {
            journal,
            state,
            backend: backend.clone(),
            stream,
            in_flight: InFlight::Idle,
            epoch: Instant::now(),
        };
        match entity.drive(Goal::Recovered).await? {
            Some(Found::Failed(error)) => Err(error),
            _ => Ok(entity),
        }
    }

    /// Persists one event: once it returns `Ok`, the event is durable and applied, and the
    /// range holds its seq. On `Err` the state is as before (see [`Error`]).
    pub async fn persist(&mut self, event: E::Event) -> Result<RangeInclusive<u64>, Error> {
        self.drive(Goal::Settled).await?;
        let request = self.journal.handle_persist(event, &mut self.state)?;
        self.finish(request).await
    }

    /// Persists `events` atomically: all of them become durable and applied, or none.
    pub async fn persist_all(
        &mut self,
        events: impl IntoIterator<Item = E::Event>,
    ) -> Result<RangeInclusive<u64>, Error> {
        self.drive(Goal::Settled).await?;
        let request = self.journal.handle_persist_all(events, &mut self.state)?;
        self.finish(request).await
    }

    /// Writes a snapshot of the current state (unless the newest one covers it) and returns
    /// the seq it covers.
    pub async fn snapshot(&mut self) -> Result<u64, Error> {
        self.drive(Goal::Settled).await?;
        let request = self.journal.handle_snapshot_request(&mut self.state)?;
        match self.drive(Goal::Request(request)).await? {
            Some(Found::Snapshot(seq)) => Ok(seq),
            Some(Found::Failed(error)) => Err(error),
            _ => Err(self.stopped()),
        }
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
        self.journal.last_seq()
    }

    /// The journal's phase.
    pub fn phase(&self) -> Phase {
        self.journal.phase()
    }

    /// The stream id.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The journal (read-only).
    pub fn journal(&self) -> &Journal<E, C> {
        &self.journal
    }

    async fn finish(&mut self, request: RequestId) -> Result<RangeInclusive<u64>, Error> {
        match self.drive(Goal::Request(request)).await? {
            Some(Found::Persisted(range)) => Ok(range),
            Some(Found::Failed(error)) => Err(error),
            _ => Err(self.stopped()),
        }
    }

    fn stopped(&self) -> Error {
        match self.journal.stop_reason() {
            Some(reason) => Error::Stopped(reason.clone()),
            None => Error::Unanswered,
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The run loop: drains events, executes commands, feeds completions back and sleeps until
    /// timeouts, until the journal has nothing left to do. Returns what it found for `goal`.
    async fn drive(&mut self, goal: Goal) -> Result<Option<Found>, Error> {
        let mut found = None;
        loop {
            while let Some(event) = self.journal.poll_event() {
                if let Some(hit) = self.observe(goal, event) {
                    found.get_or_insert(hit);
                }
            }
            if let InFlight::Waiting(id, receiver) = &mut self.in_flight {
                // Awaited in place, so a dropped call loses no completion.
                let id = *id;
                let outcome = receiver.await.unwrap_or_else(|_| {
                    Err(persevere_core::StorageError::Failed(
                        "the backend dropped the command".into(),
                    ))
                });
                self.in_flight = InFlight::Ready(id, outcome);
            }
            if let InFlight::Ready(id, outcome) =
                std::mem::replace(&mut self.in_flight, InFlight::Idle)
            {
                let now = self.now();
                self.journal
                    .handle_completion(now, id, outcome, &mut self.state)?;
                continue;
            }
            if let Some(command) = self.journal.poll_command() {
                let id = command.id();
                self.in_flight = match self.backend.submit(Arc::clone(&self.stream), command) {
                    Pending::Ready(outcome) => InFlight::Ready(id, outcome),
                    Pending::Waiting(receiver) => InFlight::Waiting(id, receiver),
                };
                continue;
            }
            match self.journal.poll_timeout() {
                Some(deadline) => {
                    let wait = deadline.saturating_sub(self.now());
                    if !wait.is_zero() {
                        self.backend.runtime().sleep(wait).await;
                    }
                    let now = self.now().max(deadline);
                    self.journal.handle_timeout(now);
                }
                None => return Ok(found),
            }
        }
    }

    /// Logs `event` and reports it if it answers `goal`.
    fn observe(&self, goal: Goal, event: JournalEvent) -> Option<Found> {
        match event {
            JournalEvent::Recovered {
                last_seq,
                snapshot_seq,
                replayed,
            } => {
                tracing::debug!(stream = %self.stream, last_seq, ?snapshot_seq, replayed, "recovered");
                (goal == Goal::Recovered).then_some(Found::Recovered)
            }
            JournalEvent::RecoveryFailed(error) => {
                (goal == Goal::Recovered).then_some(Found::Failed(Error::Recovery(error)))
            }
            JournalEvent::Persisted {
                request,
                first_seq,
                last_seq,
            } => (goal == Goal::Request(request)).then_some(Found::Persisted(first_seq..=last_seq)),
            JournalEvent::PersistFailed { request, error } => {
                (goal == Goal::Request(request)).then_some(Found::Failed(Error::Persist(error)))
            }
            JournalEvent::SnapshotSaved {
                request: Some(request),
                seq,
            } => (goal == Goal::Request(request)).then_some(Found::Snapshot(seq)),
            JournalEvent::SnapshotFailed {
                request: Some(request),
                seq,
                reason,
            } if goal == Goal::Request(request) => {
                Some(Found::Failed(Error::Snapshot { seq, reason }))
            }
            JournalEvent::SnapshotFailed { seq, reason, .. } => {
                tracing::warn!(stream = %self.stream, seq, %reason, "snapshot failed");
                None
            }
            JournalEvent::SnapshotSkipped { seq, reason } => {
                tracing::warn!(stream = %self.stream, seq, %reason, "unreadable snapshot skipped");
                None
            }
            JournalEvent::HousekeepingFailed { reason } => {
                tracing::warn!(stream = %self.stream, %reason, "housekeeping failed");
                None
            }
            JournalEvent::Stopped(reason) => {
                tracing::error!(stream = %self.stream, %reason, "journal stopped");
                None
            }
            _ => None,
        }
    }
}

impl<E: Entity + std::fmt::Debug, C> std::fmt::Debug for Persistent<E, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistent")
            .field("stream", &self.stream)
            .field("state", &self.state)
            .finish()
    }
}
