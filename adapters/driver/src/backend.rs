//! A shared storage backend: executes the commands of many journals against one [`Store`],
//! group-committing every command that waits while a batch runs.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use persevere_core::{
    Command, CommandId, CommandResult, Completion, Repair, StorageError, Store, StreamCommand,
};

use crate::error::Error;
use crate::runtime::Runtime;

/// The outcome of one command.
pub(crate) type Outcome = Result<Completion, StorageError>;

/// Where a backend runs its store's batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Execution {
    /// On the runtime's blocking pool, one batch at a time: every command submitted while a
    /// batch runs joins the next batch (one [`Store::execute`] call, one fsync or transaction).
    /// Right for any store that does IO; [`InPlace`](Self::InPlace) adds one shortcut to it.
    Blocking,
    /// The default of [`Backend::new`]: as [`Blocking`](Self::Blocking), except that a command
    /// that finds the backend idle (no batch running, none queued) runs at once on the
    /// submitting thread — **when the runtime can let that thread block without holding up
    /// its other tasks** ([`Runtime::block_in_place`]: tokio's multi-thread runtime, which
    /// first hands the worker's other tasks to another thread). Every command submitted while
    /// a batch runs is group-committed on the blocking pool, as with `Blocking`.
    ///
    /// It spares a lone writer the two thread hand-offs of the blocking pool (waking one of
    /// its threads, then waking the task with the answer), which cost tens of microseconds per
    /// command on top of the sync. Only the submitting task waits for the write, as it would
    /// anyway (with whatever it runs concurrently inside itself, as in `join!`); the
    /// executor's other tasks go on. On a runtime that cannot block in place (tokio's
    /// current-thread runtime, smol, async-std) it is exactly `Blocking`.
    InPlace,
    /// In the submitting task, at once, under a lock: for stores whose work is a few hundred
    /// nanoseconds in memory. Batches hold one command (there is no durability step to share).
    Inline,
    /// Opt-in, for a lone hot writer on a durable store: a command that finds the backend idle
    /// (no batch running, none queued) is executed at once in the submitting task, as a batch
    /// of one; every command submitted while a batch runs is group-committed on the blocking
    /// pool, as with [`Blocking`](Self::Blocking).
    ///
    /// It spares the two thread hand-offs of [`Blocking`](Self::Blocking) — waking a thread
    /// of the blocking pool, and waking the task with the answer — which cost tens of
    /// microseconds per command on top of the store's sync. The price: **the async worker that
    /// submits an idle backend's command blocks for that command's write and sync** (a
    /// fraction of a millisecond to a few milliseconds on a disk; longer on a stalled one).
    /// On a current-thread runtime every other task waits that long; on a multi-thread one,
    /// that worker's other tasks do. Choose it only where one entity's durable latency
    /// matters more than the executor's responsiveness, on a runtime where
    /// [`InPlace`](Self::InPlace) (the default, which spares the same hand-offs without
    /// holding up other tasks) falls back to the blocking pool.
    Direct,
}

/// What a backend has executed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// [`Store::execute`] calls.
    pub batches: u64,
    /// Commands executed in them.
    pub commands: u64,
    /// The most commands in one batch.
    pub largest: u64,
}

impl CommitStats {
    /// The mean number of commands per batch (0 before the first).
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.commands as f64 / self.batches as f64
        }
    }
}

/// Whether a committer is draining the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitPhase {
    Idle,
    Committing,
}

struct Queue {
    phase: CommitPhase,
    commands: Vec<StreamCommand>,
    waiters: Vec<oneshot::Sender<Outcome>>,
}

/// How long a backend waits between two attempts to reopen a fenced store: the first attempt
/// is made by the first batch after the store fenced itself; after each failed attempt the
/// delay doubles, from `first` up to `max`. Batches arriving before the delay has elapsed fail
/// at once, without touching the store.
///
/// ```
/// use std::time::Duration;
/// use persevere_driver::ReopenBackoff;
///
/// let backoff = ReopenBackoff::new(Duration::from_millis(10), Duration::from_secs(1));
/// assert_eq!(backoff.delay(1), Duration::from_millis(10));
/// assert_eq!(backoff.delay(3), Duration::from_millis(40));
/// assert_eq!(backoff.delay(30), Duration::from_secs(1));
/// assert_eq!(ReopenBackoff::default().delay(1), Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReopenBackoff {
    first: Duration,
    max: Duration,
}

impl ReopenBackoff {
    /// Waits `first` after the first failed reopen, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
        }
    }

    /// The wait after `failures` failed reopens in a row (at least 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }
}

impl Default for ReopenBackoff {
    /// 10 ms, doubling up to 5 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(10), Duration::from_secs(5))
    }
}

/// Whether a backend's store executes commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreHealth {
    /// The store executes commands.
    Open,
    /// The store refuses every command (a failed log write or sync fenced it, or it panicked);
    /// the backend reopens it with [`ReopenBackoff`] and batches fail until it has.
    Fenced {
        /// Why the store is fenced.
        reason: String,
        /// Reopen attempts that failed since it was fenced.
        failed_reopens: u32,
        /// The last reopen attempt's error, if one failed.
        last_error: Option<String>,
        /// The earliest moment of the next reopen attempt (made by the first batch after it).
        next_reopen: Instant,
    },
}

/// What the backend knows of its store beyond the store itself, readable while a batch runs.
struct Status {
    health: StoreHealth,
    backoff: ReopenBackoff,
    /// Every repair the store reported, at open and at each reopen since.
    repairs: Vec<Repair>,
}

/// A stream's live writer: the generation of its [`Ownership`], and the flag that says it is
/// current.
type Owner = (u64, Arc<AtomicBool>);

struct Shared {
    runtime: Arc<dyn Runtime>,
    execution: Execution,
    store: Mutex<Box<dyn Store>>,
    status: Mutex<Status>,
    /// Whether `status` says [`StoreHealth::Open`] (read without its lock on every batch;
    /// written under it).
    healthy: AtomicBool,
    queue: Mutex<Queue>,
    /// The live writer of each stream in this process: the generation of its [`Ownership`],
    /// and the flag that says it is current.
    owners: Mutex<HashMap<Arc<str>, Owner>>,
    generations: AtomicU64,
    batches: AtomicU64,
    commands: AtomicU64,
    largest: AtomicU64,
}

/// A storage backend shared by many journals: a [`Store`], the [`Runtime`] to run it on, and
/// the group-commit queue. Cloning is cheap; every clone uses the same store.
///
/// # Fencing and self-recovery
///
/// A store that reports itself [fenced](Store::fenced) (a failed log write or fsync), or that
/// panicked inside [`Store::execute`], is never given another batch until it has been
/// [reopened](Store::reopen): the first batch after the fence tries to reopen it, and each
/// failed attempt doubles the wait before the next one ([`ReopenBackoff`]). A batch that
/// arrives while the store is fenced and the wait has not elapsed fails at once with
/// [`StorageError::Failed`] naming the reason and the next attempt; nothing spins. Journals
/// treat that failure like any other unknown outcome and re-read once the store is back;
/// [`health`](Self::health) tells the application where the store stands.
///
/// # Repairs
///
/// Everything the store [repaired or set aside](Store::repairs) when it opened, and at each
/// reopen, is logged as a WARN naming the streams involved (when the backend is built and
/// after each reopen) and kept: [`repairs`](Self::repairs) returns all of it,
/// [`repairs_for`](Self::repairs_for) those that may involve one stream.
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
/// use persevere_core::{Command, CommandId, Completion};
/// use persevere_driver::Backend;
///
/// let backend = Backend::new(Threads, MemoryStore::new());
/// let read = Command::ReadEvents { id: CommandId(1), from: 1, limit: 10 };
/// let result = futures::executor::block_on(backend.execute("a".into(), read));
/// assert_eq!(result, Ok(Completion::Events { records: vec![], head: 0 }));
/// assert_eq!(backend.stats().batches, 1);
/// ```
#[derive(Clone)]
pub struct Backend {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("execution", &self.shared.execution)
            .field("health", &self.health())
            .field("repairs", &lock(&self.shared.status).repairs.len())
            .field("stats", &self.stats())
            .finish()
    }
}

/// A command submitted to a backend: answered at once (inline) or later (blocking pool).
pub(crate) enum Pending {
    Ready(Outcome),
    Waiting(oneshot::Receiver<Outcome>),
}

impl Pending {
    pub(crate) async fn outcome(self) -> Outcome {
        match self {
            Pending::Ready(outcome) => outcome,
            Pending::Waiting(receiver) => receiver.await.unwrap_or_else(|_| {
                Err(StorageError::Failed(
                    "the backend dropped the command".into(),
                ))
            }),
        }
    }
}

impl Backend {
    /// A backend running `store` on `runtime`'s blocking pool, with group commit; a command
    /// that finds it idle runs on the submitting thread where the runtime allows it (see
    /// [`Execution::InPlace`]).
    pub fn new(runtime: impl Runtime, store: impl Store) -> Self {
        Self::with_execution(runtime, store, Execution::InPlace)
    }

    /// A backend running `store` inline in the submitting task (see [`Execution::Inline`]).
    pub fn inline(runtime: impl Runtime, store: impl Store) -> Self {
        Self::with_execution(runtime, store, Execution::Inline)
    }

    /// A backend running `store` as `execution` says.
    pub fn with_execution(runtime: impl Runtime, store: impl Store, execution: Execution) -> Self {
        Self::from_parts(Arc::new(runtime), Box::new(store), execution)
    }

    /// A backend from a shared runtime and a boxed store.
    pub fn from_parts(
        runtime: Arc<dyn Runtime>,
        store: Box<dyn Store>,
        execution: Execution,
    ) -> Self {
        let repairs = store.repairs().to_vec();
        for repair in &repairs {
            warn_repair(repair, "at open");
        }
        let health = match store.fenced() {
            Some(reason) => {
                tracing::warn!(%reason, "the store is fenced; the next batch reopens it");
                StoreHealth::Fenced {
                    reason,
                    failed_reopens: 0,
                    last_error: None,
                    next_reopen: Instant::now(),
                }
            }
            None => StoreHealth::Open,
        };
        Self {
            shared: Arc::new(Shared {
                runtime,
                execution,
                store: Mutex::new(store),
                healthy: AtomicBool::new(health == StoreHealth::Open),
                status: Mutex::new(Status {
                    health,
                    backoff: ReopenBackoff::default(),
                    repairs,
                }),
                queue: Mutex::new(Queue {
                    phase: CommitPhase::Idle,
                    commands: Vec::new(),
                    waiters: Vec::new(),
                }),
                owners: Mutex::new(HashMap::new()),
                generations: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                commands: AtomicU64::new(0),
                largest: AtomicU64::new(0),
            }),
        }
    }

    /// Sets how long the backend waits between attempts to reopen a fenced store (default:
    /// [`ReopenBackoff::default`]). Applies to every clone.
    pub fn with_reopen_backoff(self, backoff: ReopenBackoff) -> Self {
        lock(&self.shared.status).backoff = backoff;
        self
    }

    /// Whether the store executes commands, or is fenced and waiting to be reopened.
    pub fn health(&self) -> StoreHealth {
        lock(&self.shared.status).health.clone()
    }

    /// Every repair the store reported: at open, and at each reopen since, oldest first.
    pub fn repairs(&self) -> Vec<Repair> {
        lock(&self.shared.status).repairs.clone()
    }

    /// The repairs that may involve `stream`: those naming it, and those whose streams the
    /// store could not tell (an empty [`Repair::streams`]), since they may involve any stream.
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
    /// use persevere_core::{CommandResult, Repair, Store, StreamCommand};
    /// use persevere_driver::{Backend, StoreHealth};
    ///
    /// /// A store that cut a torn tail of stream "a" when it opened.
    /// struct Repaired(MemoryStore, Vec<Repair>);
    ///
    /// impl Store for Repaired {
    ///     fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
    ///         Store::execute(&mut self.0, batch)
    ///     }
    ///     fn repairs(&self) -> &[Repair] {
    ///         &self.1
    ///     }
    /// }
    ///
    /// let torn = Repair::new("cut a torn tail", Some("quarantine/1".into()), vec!["a".into()]);
    /// let backend = Backend::new(Threads, Repaired(MemoryStore::new(), vec![torn.clone()]));
    /// assert_eq!(backend.repairs(), [torn.clone()]);
    /// assert_eq!(backend.repairs_for("a"), [torn]);
    /// assert!(backend.repairs_for("b").is_empty());
    /// assert_eq!(backend.health(), StoreHealth::Open);
    /// ```
    pub fn repairs_for(&self, stream: &str) -> Vec<Repair> {
        lock(&self.shared.status)
            .repairs
            .iter()
            .filter(|repair| involves(repair, stream))
            .cloned()
            .collect()
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.shared.runtime
    }

    /// Where batches run.
    pub fn execution(&self) -> Execution {
        self.shared.execution
    }

    /// Batches and commands executed so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            commands: self.shared.commands.load(Ordering::Relaxed),
            largest: self.shared.largest.load(Ordering::Relaxed),
        }
    }

    /// Commands waiting for the next batch (always 0 with [`Execution::Inline`]).
    pub fn queued(&self) -> usize {
        lock(&self.shared.queue).commands.len()
    }

    /// Claims `stream` for one writer: the one rule of stream ownership in the process, kept
    /// here, keyed by the stream, for every entity, driver and adapter that writes through
    /// this backend (or a clone of it).
    ///
    /// With [`Claim::Exclusive`], a stream that already has a live owner is refused with
    /// [`Error::Owned`] naming it. With [`Claim::TakeOver`] (a supervised restart: the new
    /// instance replaces one that may not have finished stopping), the new owner takes the
    /// stream and the old [`Ownership`] stops being [current](Ownership::is_current): its
    /// driver's next request is refused with [`Error::Superseded`]. Dropping the current
    /// ownership frees the stream.
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
    /// use persevere_driver::{Backend, Claim, Error};
    ///
    /// let backend = Backend::new(Threads, MemoryStore::new());
    /// let first = backend.claim("a", Claim::Exclusive)?;
    /// assert_eq!(
    ///     backend.claim("a", Claim::Exclusive).unwrap_err(),
    ///     Error::Owned { stream: "a".into() }
    /// );
    /// let second = backend.claim("a", Claim::TakeOver)?;
    /// assert!(!first.is_current() && second.is_current());
    /// drop(first); // the old owner going away frees nothing
    /// assert!(backend.claim("a", Claim::Exclusive).is_err());
    /// drop(second);
    /// assert!(backend.claim("a", Claim::Exclusive).is_ok());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn claim(&self, stream: &str, claim: Claim) -> Result<Ownership, Error> {
        let mut owners = lock(&self.shared.owners);
        if claim == Claim::Exclusive && owners.contains_key(stream) {
            return Err(Error::Owned {
                stream: stream.to_owned(),
            });
        }
        let generation = self.shared.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let stream: Arc<str> = stream.into();
        let current = Arc::new(AtomicBool::new(true));
        if let Some((_, superseded)) =
            owners.insert(Arc::clone(&stream), (generation, Arc::clone(&current)))
        {
            superseded.store(false, Ordering::Release);
            tracing::info!(stream = %stream, "a new owner took the stream over");
        }
        Ok(Ownership {
            backend: Arc::downgrade(&self.shared),
            stream,
            generation,
            current,
        })
    }

    /// Executes one command on `stream` (in the next batch) and returns its result.
    pub async fn execute(&self, stream: Arc<str>, command: Command) -> Outcome {
        self.submit(&stream, command).outcome().await
    }

    /// Submits `command` on `stream`. A command run at once borrows the stream; only one that
    /// waits in the queue holds a reference to it.
    #[inline]
    pub(crate) fn submit(&self, stream: &Arc<str>, command: Command) -> Pending {
        match self.shared.execution {
            Execution::Inline => Pending::Ready(self.shared.run_one(stream, command)),
            Execution::Blocking => self.enqueue(StreamCommand {
                stream: Arc::clone(stream),
                command,
            }),
            Execution::Direct => self.run_if_idle(stream, command, Place::SubmittingTask),
            Execution::InPlace => self.run_if_idle(stream, command, Place::RuntimeAllowing),
        }
    }

    /// Runs `command` at once as a batch of one, at `place`, if the backend is idle; else (or
    /// if the runtime refuses to block in place) queues it for the blocking pool.
    fn run_if_idle(&self, stream: &Arc<str>, command: Command, place: Place) -> Pending {
        let queued = |command| StreamCommand {
            stream: Arc::clone(stream),
            command,
        };
        {
            let mut queue = lock(&self.shared.queue);
            if queue.phase != CommitPhase::Idle || !queue.commands.is_empty() {
                drop(queue);
                return self.enqueue(queued(command));
            }
            queue.phase = CommitPhase::Committing;
        }
        // The backend is ours until the guard drops: commands submitted meanwhile queue up,
        // and the guard hands them to the blocking pool.
        let guard = DirectCommit {
            shared: &self.shared,
        };
        let mut command = Some(command);
        let mut outcome = None;
        let mut run = || {
            if let Some(command) = command.take() {
                outcome = Some(self.shared.run_one(stream, command));
            }
        };
        match place {
            Place::SubmittingTask => run(),
            Place::RuntimeAllowing => {
                self.shared.runtime.block_in_place(&mut run);
            }
        }
        let pending = match (outcome, command) {
            (Some(outcome), _) => Pending::Ready(outcome),
            // Refused: it joins the queue, which the guard hands to the blocking pool.
            (None, Some(command)) => self.enqueue(queued(command)),
            (None, None) => Pending::Ready(Err(StorageError::Failed(
                "the runtime ran the command in place but it gave no answer".into(),
            ))),
        };
        drop(guard);
        pending
    }

    /// Queues `command` for the next batch on the blocking pool, starting a commit task if
    /// none runs.
    fn enqueue(&self, command: StreamCommand) -> Pending {
        let (sender, receiver) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.shared.queue);
            queue.commands.push(command);
            queue.waiters.push(sender);
            let idle = queue.phase == CommitPhase::Idle;
            queue.phase = CommitPhase::Committing;
            idle
        };
        if start {
            let task = CommitTask {
                backend: Arc::downgrade(&self.shared),
                state: CommitTaskState::Armed,
            };
            self.shared
                .runtime
                .spawn_blocking(Box::new(move || task.run()));
        }
        Pending::Waiting(receiver)
    }
}

/// Where [`Backend::run_if_idle`] runs an idle backend's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In the submitting task, whatever the runtime ([`Execution::Direct`]).
    SubmittingTask,
    /// On the submitting thread if the runtime lets it block there
    /// ([`Execution::InPlace`]), else on the blocking pool.
    RuntimeAllowing,
}

/// A batch running in the submitting task ([`Execution::Direct`], [`Execution::InPlace`]):
/// when it ends (or unwinds), the commands queued meanwhile go to the blocking pool, or the
/// backend goes idle.
struct DirectCommit<'a> {
    shared: &'a Arc<Shared>,
}

impl Drop for DirectCommit<'_> {
    fn drop(&mut self) {
        let start = {
            let mut queue = lock(&self.shared.queue);
            if queue.commands.is_empty() {
                queue.phase = CommitPhase::Idle;
                false
            } else {
                true
            }
        };
        if start {
            let task = CommitTask {
                backend: Arc::downgrade(self.shared),
                state: CommitTaskState::Armed,
            };
            self.shared
                .runtime
                .spawn_blocking(Box::new(move || task.run()));
        }
    }
}

/// How [`Backend::claim`] takes a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// Only if no live writer owns it; else [`Error::Owned`].
    Exclusive,
    /// From whoever owns it (a supervised restart): the old owner is superseded.
    TakeOver,
}

/// One writer's hold on a stream of a [`Backend`] (see [`Backend::claim`]): current until a
/// newer owner takes the stream over; dropping the current one frees the stream.
pub struct Ownership {
    backend: Weak<Shared>,
    stream: Arc<str>,
    generation: u64,
    /// Cleared when a newer owner takes the stream over: checked on every request without a
    /// lock or a lookup.
    current: Arc<AtomicBool>,
}

impl Ownership {
    /// Whether this is still the stream's owner (no newer owner took it over, and the backend
    /// is alive).
    #[inline]
    pub fn is_current(&self) -> bool {
        self.current.load(Ordering::Acquire) && self.backend.strong_count() > 0
    }

    /// `Ok` while [current](Self::is_current), else [`Error::Superseded`] naming the stream.
    #[inline]
    pub fn check(&self) -> Result<(), Error> {
        if self.is_current() {
            Ok(())
        } else {
            Err(self.superseded())
        }
    }

    /// [`Error::Superseded`] naming the stream: what a writer taken over answers.
    #[cold]
    pub fn superseded(&self) -> Error {
        Error::Superseded {
            stream: self.stream.to_string(),
        }
    }

    /// The stream owned.
    pub fn stream(&self) -> &str {
        &self.stream
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        if let Some(shared) = self.backend.upgrade() {
            let mut owners = lock(&shared.owners);
            if owners.get(&self.stream).map(|(g, _)| *g) == Some(self.generation) {
                owners.remove(&self.stream);
            }
        }
    }
}

impl std::fmt::Debug for Ownership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ownership")
            .field("stream", &self.stream)
            .field("current", &self.is_current())
            .finish()
    }
}

/// Where a commit task stands: a task dropped while still [`Armed`](Self::Armed) was lost by
/// the runtime (never run, or unwound part-way) and must not leave the backend committing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitTaskState {
    /// Spawned, not finished: the queue is marked committing on its behalf.
    Armed,
    /// Drained the queue and marked it idle.
    Finished,
}

/// The work a backend hands to the blocking pool to drain its queue.
///
/// It owns the promise that the queue is drained: if the runtime drops it without running it
/// (tokio refuses blocking work while a runtime shuts down) or it unwinds, its `Drop` fails
/// every command still waiting, with [`StorageError::Failed`] saying so, and sets the queue
/// idle, so that the next command starts a new task instead of waiting forever.
struct CommitTask {
    backend: Weak<Shared>,
    state: CommitTaskState,
}

impl CommitTask {
    fn run(mut self) {
        Shared::commit_loop(&self.backend);
        self.state = CommitTaskState::Finished;
    }
}

impl Drop for CommitTask {
    fn drop(&mut self) {
        if self.state == CommitTaskState::Finished {
            return;
        }
        // Nobody holds the backend any more: its queue, and the waiters in it, are gone, and
        // each waiter hears "the backend dropped the command".
        let Some(shared) = self.backend.upgrade() else {
            return;
        };
        let (commands, waiters) = {
            let mut queue = lock(&shared.queue);
            queue.phase = CommitPhase::Idle;
            (
                std::mem::take(&mut queue.commands),
                std::mem::take(&mut queue.waiters),
            )
        };
        drop(shared);
        tracing::error!(
            commands = commands.len(),
            "the runtime dropped the backend's commit task without running it; its commands fail"
        );
        for waiter in waiters {
            let _ = waiter.send(Err(StorageError::Failed(
                "the runtime dropped the backend's commit task without running it (is it shutting down?)"
                    .into(),
            )));
        }
    }
}

/// Whether `repair` may involve `stream` (a repair naming no stream may involve any).
pub(crate) fn involves(repair: &Repair, stream: &str) -> bool {
    repair.streams.is_empty() || repair.streams.iter().any(|s| &**s == stream)
}

/// Logs a repair for an operator.
fn warn_repair(repair: &Repair, when: &str) {
    tracing::warn!(
        streams = ?repair.streams,
        kept_at = ?repair.kept_at,
        "the store repaired or set aside data {when}: {}",
        repair.what
    );
}

fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The next result of a batch, checked against the id of the command it answers.
fn answer(results: &mut std::vec::IntoIter<CommandResult>, id: CommandId) -> Outcome {
    match results.next() {
        Some((got, outcome)) if got == id => outcome,
        Some((got, _)) => Err(StorageError::Failed(format!(
            "the store answered {got} in place of {id}"
        ))),
        None => Err(StorageError::Failed(format!(
            "the store returned no result for {id}"
        ))),
    }
}

impl Shared {
    /// Executes one batch on the store: one durability step for all of it.
    fn run_batch(&self, batch: Vec<StreamCommand>) -> std::vec::IntoIter<CommandResult> {
        let size = batch.len() as u64;
        let mut store = lock(&self.store);
        self.count(&store, size);
        if let Err(refusal) = self.ready(&mut **store) {
            return batch
                .iter()
                .map(|c| (c.command.id(), Err(refusal.clone())))
                .collect::<Vec<_>>()
                .into_iter();
        }
        match catch_unwind(AssertUnwindSafe(|| store.execute(batch))) {
            Ok(results) => {
                if let Some(reason) = store.fenced() {
                    self.fence(reason);
                }
                results.into_iter()
            }
            Err(_) => {
                tracing::error!(commands = size, "the store panicked executing a batch");
                // Its state may name writes that never happened: never reuse it unreopened.
                self.fence("the store panicked executing a batch".into());
                Vec::new().into_iter()
            }
        }
    }

    /// Counts a batch of `size` commands. Only the holder of the store's lock (`_store`)
    /// writes the counters, so each is updated with a plain load and store: no locked
    /// read-modify-write on every command. Readers ([`Backend::stats`]) need no lock.
    fn count(&self, _store: &MutexGuard<'_, Box<dyn Store>>, size: u64) {
        let add = |counter: &AtomicU64, n: u64| {
            counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        };
        add(&self.batches, 1);
        add(&self.commands, size);
        if size > self.largest.load(Ordering::Relaxed) {
            self.largest.store(size, Ordering::Relaxed);
        }
    }

    /// Executes one command on the store at once ([`Execution::Inline`]): a batch of one,
    /// through [`Store::execute_one`], under the same fencing rules as [`run_batch`](Self::run_batch).
    fn run_one(&self, stream: &Arc<str>, command: Command) -> Outcome {
        let id = command.id();
        let mut store = lock(&self.store);
        self.count(&store, 1);
        self.ready(&mut **store)?;
        match catch_unwind(AssertUnwindSafe(|| store.execute_one(stream, command))) {
            Ok((got, outcome)) => {
                // A store fences itself on a failed write, which fails the command: only then
                // is it asked.
                if outcome.is_err() {
                    if let Some(reason) = store.fenced() {
                        self.fence(reason);
                    }
                }
                if got == id {
                    outcome
                } else {
                    Err(StorageError::Failed(format!(
                        "the store answered {got} in place of {id}"
                    )))
                }
            }
            Err(_) => {
                tracing::error!(commands = 1, "the store panicked executing a batch");
                self.fence("the store panicked executing a batch".into());
                Err(StorageError::Failed(format!(
                    "the store returned no result for {id}"
                )))
            }
        }
    }

    /// Marks the store fenced (unless it already is); the next batch tries to reopen it.
    fn fence(&self, reason: String) {
        let mut status = lock(&self.status);
        self.healthy.store(false, Ordering::Release);
        if status.health == StoreHealth::Open {
            tracing::error!(%reason, "the store is fenced; the next batch reopens it");
            status.health = StoreHealth::Fenced {
                reason,
                failed_reopens: 0,
                last_error: None,
                next_reopen: Instant::now(),
            };
        }
    }

    /// Whether `store` may execute a batch: an open store may; a fenced one is reopened first
    /// if its backoff has elapsed, and refuses with the reason otherwise.
    fn ready(&self, store: &mut dyn Store) -> Result<(), StorageError> {
        if self.healthy.load(Ordering::Acquire) {
            return Ok(());
        }
        let (reason, failed_reopens) = {
            let status = lock(&self.status);
            match &status.health {
                StoreHealth::Open => return Ok(()),
                StoreHealth::Fenced {
                    reason,
                    failed_reopens,
                    last_error,
                    next_reopen,
                } => {
                    let now = Instant::now();
                    if now < *next_reopen {
                        let last = last_error
                            .as_deref()
                            .map(|e| format!("; the last reopen failed: {e}"))
                            .unwrap_or_default();
                        return Err(StorageError::Failed(format!(
                            "the store is fenced ({reason}){last}; next reopen attempt in {:?}",
                            *next_reopen - now
                        )));
                    }
                    (reason.clone(), *failed_reopens)
                }
            }
        };
        let reopened = catch_unwind(AssertUnwindSafe(|| store.reopen()))
            .unwrap_or_else(|_| Err(StorageError::Failed("the store panicked reopening".into())));
        let mut status = lock(&self.status);
        match reopened.and_then(|()| match store.fenced() {
            Some(still) => Err(StorageError::Failed(format!("still fenced: {still}"))),
            None => Ok(()),
        }) {
            Ok(()) => {
                tracing::info!(%reason, failed_reopens, "the fenced store reopened");
                let known = status.repairs.len();
                let all = store.repairs();
                let new = all.get(known..).unwrap_or(all);
                for repair in new {
                    warn_repair(repair, "at reopen");
                }
                status.repairs.extend_from_slice(new);
                status.health = StoreHealth::Open;
                self.healthy.store(true, Ordering::Release);
                Ok(())
            }
            Err(error) => {
                let failed_reopens = failed_reopens + 1;
                let delay = status.backoff.delay(failed_reopens);
                tracing::warn!(%reason, %error, failed_reopens, ?delay, "reopening the fenced store failed");
                let refusal = StorageError::Failed(format!(
                    "the store is fenced ({reason}); reopening it failed ({error}); next reopen attempt in {delay:?}"
                ));
                status.health = StoreHealth::Fenced {
                    reason,
                    failed_reopens,
                    last_error: Some(error.to_string()),
                    next_reopen: Instant::now() + delay,
                };
                Err(refusal)
            }
        }
    }

    /// Drains the queue on the blocking pool: every command waiting when a batch starts goes
    /// into it; the next batch starts when it returns.
    ///
    /// The loop holds the backend only while it runs a batch, and lets go of it before it
    /// answers: once the last handle is dropped after an answer, the store is closed (and a
    /// file store's lock released) before its owner can try to open it again.
    fn commit_loop(backend: &Weak<Shared>) {
        // Nobody holds the backend any more: nothing is waiting for an answer either.
        let Some(mut shared) = backend.upgrade() else {
            return;
        };
        loop {
            let (commands, waiters) = {
                let mut queue = lock(&shared.queue);
                if queue.commands.is_empty() {
                    queue.phase = CommitPhase::Idle;
                    return;
                }
                (
                    std::mem::take(&mut queue.commands),
                    std::mem::take(&mut queue.waiters),
                )
            };
            let ids: Vec<_> = commands.iter().map(|c| c.command.id()).collect();
            let span = tracing::debug_span!("group_commit", commands = ids.len());
            let _entered = span.enter();
            let mut results = shared.run_batch(commands);
            // Whether another batch is waiting is settled before the answers go out, so that
            // after them this loop holds the backend no more.
            let more = {
                let mut queue = lock(&shared.queue);
                if queue.commands.is_empty() {
                    queue.phase = CommitPhase::Idle;
                }
                !queue.commands.is_empty()
            };
            drop(shared);
            for (waiter, id) in waiters.into_iter().zip(ids) {
                // A waiter that went away (its future was dropped) needs no answer.
                let _ = waiter.send(answer(&mut results, id));
            }
            if !more {
                return;
            }
            shared = match backend.upgrade() {
                Some(shared) => shared,
                None => return,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use persevere_core::memory::MemoryStore;

    use super::*;
    use crate::runtime::{BlockingWork, Task};

    /// Blocking work on fresh threads; nothing else is needed here.
    struct Threads;

    impl Runtime for Threads {
        fn spawn(&self, task: Task) {
            std::thread::spawn(move || futures::executor::block_on(task));
        }
        fn spawn_blocking(&self, work: BlockingWork) {
            std::thread::spawn(work);
        }
        fn sleep(&self, duration: Duration) -> Task {
            Box::pin(async move { std::thread::sleep(duration) })
        }
    }

    /// A store that misbehaves as told.
    enum Misbehaving {
        Panics,
        AnswersNothing,
        AnswersOtherIds,
    }

    impl Store for Misbehaving {
        fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
            match self {
                Misbehaving::Panics => panic!("store bug"),
                Misbehaving::AnswersNothing => Vec::new(),
                Misbehaving::AnswersOtherIds => batch
                    .iter()
                    .map(|c| (CommandId(c.command.id().0 + 100), Ok(Completion::Done)))
                    .collect(),
            }
        }
    }

    fn read(id: u64) -> Command {
        Command::ReadEvents {
            id: CommandId(id),
            from: 1,
            limit: 1,
        }
    }

    #[test]
    fn a_misbehaving_store_fails_its_commands_instead_of_hanging() {
        for execution in [Execution::Inline, Execution::Blocking] {
            for store in [
                Misbehaving::Panics,
                Misbehaving::AnswersNothing,
                Misbehaving::AnswersOtherIds,
            ] {
                let backend = Backend::with_execution(Threads, store, execution);
                let outcome = futures::executor::block_on(backend.execute("s".into(), read(1)));
                assert!(
                    matches!(outcome, Err(StorageError::Failed(_))),
                    "{outcome:?}"
                );
                // The backend is still usable after a failed batch.
                let outcome = futures::executor::block_on(backend.execute("s".into(), read(2)));
                assert!(
                    matches!(outcome, Err(StorageError::Failed(_))),
                    "{outcome:?}"
                );
            }
        }
    }

    /// Panics in its first batch; counts its reopens.
    struct PanicsOnce {
        panicked: bool,
        reopens: Arc<AtomicU64>,
    }

    impl Store for PanicsOnce {
        fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
            if !self.panicked {
                self.panicked = true;
                panic!("store bug");
            }
            batch
                .iter()
                .map(|c| (c.command.id(), Ok(Completion::Done)))
                .collect()
        }

        fn reopen(&mut self) -> Result<(), StorageError> {
            self.reopens.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    #[test]
    fn a_store_that_panicked_is_reopened_before_it_is_used_again() {
        for execution in [Execution::Inline, Execution::Blocking] {
            let reopens = Arc::new(AtomicU64::new(0));
            let store = PanicsOnce {
                panicked: false,
                reopens: Arc::clone(&reopens),
            };
            let backend = Backend::with_execution(Threads, store, execution);
            let outcome = futures::executor::block_on(backend.execute("s".into(), read(1)));
            assert!(matches!(outcome, Err(StorageError::Failed(_))));
            assert!(matches!(backend.health(), StoreHealth::Fenced { .. }));
            assert_eq!(reopens.load(Ordering::Relaxed), 0);
            let outcome = futures::executor::block_on(backend.execute("s".into(), read(2)));
            assert_eq!(outcome, Ok(Completion::Done));
            assert_eq!(reopens.load(Ordering::Relaxed), 1);
            assert_eq!(backend.health(), StoreHealth::Open);
        }
    }

    #[test]
    fn stats_count_batches_and_commands() {
        let backend = Backend::inline(Threads, MemoryStore::new());
        for id in 1..=3 {
            let _ = futures::executor::block_on(backend.execute("s".into(), read(id)));
        }
        let stats = backend.stats();
        assert_eq!((stats.batches, stats.commands, stats.largest), (3, 3, 1));
        assert_eq!(stats.mean_batch(), 1.0);
        assert_eq!(backend.queued(), 0);
    }
}
