//! One journal driven against a backend in the caller's task, for state the caller owns.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use persevere_core::{
    Batch, Borsh, Codec, CommandId, Entity, Journal, JournalEvent, Phase, RecoveryError, Repair,
    RequestId, StopReason, StorageError,
};

use crate::backend::{Backend, Claim, Outcome, Ownership, Pending};
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

/// What [`Driver::pump`] stopped for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Nothing to do: every request so far is answered.
    Idle,
    /// The completion of the command in flight ([`Driver::completion`]).
    Completion,
    /// The timeout at this instant ([`Driver::fire`]).
    Timer(Duration),
    /// Nothing: a recovery page was applied; let the executor run other tasks, then pump again.
    Yield,
}

/// Builds the same journal again: what a driver needs to resume a stream after its journal
/// stopped on a transient storage failure (see [`Driver::open_with`]).
pub type Recipe<E, C> = Box<dyn FnMut() -> Result<Journal<E, C>, Error> + Send + 'static>;

/// One journal driven against a [`Backend`] in the task that calls it, for state the caller
/// owns: the part of [`Persistent`](crate::Persistent) that actor adapters build on, where the
/// state is the actor itself.
///
/// Every call takes the entity's state and must be given the same state each time. Every call
/// is cancel-safe: if its future is dropped, a command already sent is finished by the next
/// call before anything else. Until then the caller's state may hold the dropped request's
/// unacknowledged events: [`is_settled`](Self::is_settled) says whether it may, and
/// [`settle`](Self::settle) finishes the request.
///
/// # Resuming after a transient storage failure
///
/// After a write whose outcome is unknown, the journal re-reads the log with its own backoff
/// ([`JournalConfig::reread`](persevere_core::JournalConfig::reread)); when the store stays
/// unreachable longer than that (a fenced store that cannot be reopened yet), it stops
/// [`Unresolved`](StopReason::Unresolved). A driver opened with [`open_with`](Self::open_with)
/// does not stay stopped for that: the next call ([`persist`](Self::persist),
/// [`persist_all`](Self::persist_all), [`snapshot`](Self::snapshot) or
/// [`resume`](Self::resume)) builds the journal again and recovers the state from the durable
/// log, replacing the caller's state. Then, comparing the log with what the caller was told:
///
/// - the log holds exactly the acknowledged events (the unknown write had not landed): the
///   request goes on as if nothing had happened;
/// - the log holds more (the unknown write had landed): the state now includes it, and the
///   request is refused once with [`Error::Landed`], so that a retry made blindly after an
///   unknown outcome cannot apply the same change twice; the next request goes on;
/// - the log holds fewer (acknowledged events are gone): every request is refused with a
///   recovery error, for good — nothing is written on top of a log that lost data.
///
/// Between the stop and the recovery the caller's state may hold the events of the request
/// whose outcome is unknown (the journal applies before it writes, and could not read the log
/// to undo them): the request's error says so (`landed: None`), and
/// [`last_seq`](Self::last_seq) is the last acknowledged seq.
///
/// While the store is still unreachable, recovery fails and the call returns the error; the
/// next call tries again (never sooner: the backend refuses at once while its reopen backoff
/// runs). Stops that say the data cannot be trusted ([`Conflict`](StopReason::Conflict):
/// another writer; a recovery error other than a storage
/// read) stay final. A driver opened with [`open`](Self::open) (no recipe) stays stopped.
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
/// use persevere_core::{Entity, Journal, JournalConfig};
/// use persevere_driver::{Backend, Driver};
///
/// #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
/// struct Counter { value: u64 }
///
/// impl Entity for Counter {
///     type Event = u64;
///     type Error = String;
///     fn apply(&mut self, n: &u64) -> Result<(), String> { self.value += n; Ok(()) }
/// }
///
/// # futures::executor::block_on(async {
/// let backend = Backend::new(Threads, MemoryStore::new());
/// let mut state = Counter::default();
/// let recipe = || Ok(Journal::<Counter>::new(JournalConfig::new("counter"), Counter::default));
/// let mut driver = Driver::open_with(&backend, Box::new(recipe), &mut state).await?;
/// driver.persist(5, &mut state).await?;
/// assert_eq!((state.value, driver.last_seq()), (5, 1));
/// assert!(driver.repairs().is_empty());
/// # Ok::<(), persevere_driver::Error>(())
/// # }).unwrap();
/// ```
pub struct Driver<E: Entity, C = Borsh> {
    journal: Journal<E, C>,
    recipe: Option<Recipe<E, C>>,
    /// The last seq the caller was told is durable (kept across a rebuilt journal).
    acknowledged: u64,
    /// While a resume is under way: the head acknowledged before it, which what it recovers is
    /// compared with. Set when the journal is rebuilt, cleared once the comparison is made —
    /// so a call dropped in the middle of the recovery leaves it for the next call to make.
    resuming: Option<u64>,
    /// Set when a rebuilt journal found fewer events than were acknowledged: the driver never
    /// writes on top of a log that lost acknowledged events.
    refused: Option<Error>,
    backend: Backend,
    stream: Arc<str>,
    /// This driver's hold on the stream: one writer per stream in the process.
    ownership: Ownership,
    in_flight: InFlight,
    epoch: Instant,
    /// The last reading of the clock since `epoch`.
    last_now: Duration,
}

impl<E, C> Driver<E, C>
where
    E: Entity,
    C: Codec<E> + Codec<E::Event>,
{
    /// Attaches `journal` (built by the caller, for example with encryption or a snapshot
    /// predicate) to `backend` and recovers `state` from the stream.
    ///
    /// The driver owns the stream while it lives ([`Backend::claim`] with
    /// [`Claim::Exclusive`]): opening a stream another live driver of the process writes fails
    /// with [`Error::Owned`].
    pub async fn open(
        backend: &Backend,
        journal: Journal<E, C>,
        state: &mut E,
    ) -> Result<Self, Error> {
        Self::attach(backend, journal, None, state, Claim::Exclusive).await
    }

    /// Like [`open`](Self::open), with a recipe that builds the journal (called once now, and
    /// again to resume after the journal stopped on a transient storage failure: see the
    /// [type documentation](Self)).
    pub async fn open_with(
        backend: &Backend,
        recipe: Recipe<E, C>,
        state: &mut E,
    ) -> Result<Self, Error> {
        Self::open_claiming(backend, recipe, state, Claim::Exclusive).await
    }

    /// Like [`open_with`](Self::open_with), claiming the stream as `claim` says: with
    /// [`Claim::TakeOver`] (a supervised restart) a live driver of the stream is superseded
    /// and its next request refused with [`Error::Superseded`].
    pub async fn open_claiming(
        backend: &Backend,
        mut recipe: Recipe<E, C>,
        state: &mut E,
        claim: Claim,
    ) -> Result<Self, Error> {
        let journal = recipe()?;
        Self::attach(backend, journal, Some(recipe), state, claim).await
    }

    async fn attach(
        backend: &Backend,
        journal: Journal<E, C>,
        recipe: Option<Recipe<E, C>>,
        state: &mut E,
        claim: Claim,
    ) -> Result<Self, Error> {
        let journal = sliced(journal);
        let stream: Arc<str> = journal.config().stream().into();
        let ownership = backend.claim(&stream, claim)?;
        let span = tracing::debug_span!("open", stream = %stream);
        let _entered = span.enter();
        for repair in backend.repairs_for(&stream) {
            tracing::warn!(
                stream = %stream,
                kept_at = ?repair.kept_at,
                "opening a stream the store may have repaired: {}",
                repair.what
            );
        }
        let mut driver = Self {
            journal,
            recipe,
            acknowledged: 0,
            resuming: None,
            refused: None,
            backend: backend.clone(),
            stream,
            ownership,
            in_flight: InFlight::Idle,
            epoch: Instant::now(),
            last_now: Duration::ZERO,
        };
        match driver.drive(Goal::Recovered, state).await? {
            Some(Found::Failed(error)) => Err(error),
            _ => Ok(driver),
        }
    }

    /// Settles the journal and, if it stopped on a transient storage failure and the driver
    /// has a recipe, builds it again and recovers `state` from the durable log (`state` is
    /// replaced). Returns what it did (see [`Resume`]); an error when recovery fails (the next
    /// call tries again). The request methods call it first and refuse the request unless the
    /// outcome is [`Resume::Unchanged`] or [`Resume::Recovered`] (see [`Resume::check`]). A
    /// call dropped during the recovery leaves the comparison with what was acknowledged to
    /// the next call, which answers it as this one would have.
    pub async fn resume(&mut self, state: &mut E) -> Result<Resume, Error> {
        self.recover_from_log(state, Rebuild::IfStopped).await
    }

    /// Recovers `state` afresh from the durable log (newest snapshot plus replay; `state` is
    /// replaced), whether or not the journal stopped: it settles the journal, builds it again
    /// from the driver's recipe and recovers, keeping the stream's ownership and what
    /// [`resume`](Self::resume) compares the recovery with. For a caller whose state may have
    /// come apart from the durable one. Returns what [`resume`](Self::resume) returns
    /// ([`Resume::Landed`] if a write of unknown outcome had landed); [`Error::Stopped`] when
    /// the journal stopped on what no recovery gets past (a conflict, damage), and
    /// [`Error::Unanswered`] when the driver has no recipe (it was opened on a journal).
    pub async fn recover(&mut self, state: &mut E) -> Result<Resume, Error> {
        self.recover_from_log(state, Rebuild::Always).await
    }

    /// [`resume`](Self::resume) and [`recover`](Self::recover): the journal settled, then built
    /// again and recovered `when` says.
    async fn recover_from_log(&mut self, state: &mut E, when: Rebuild) -> Result<Resume, Error> {
        if !self.is_settled() {
            self.drive(Goal::Settled, state).await?;
        }
        self.ownership.check()?;
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        let stop = self.journal.stop_reason().cloned();
        let rebuild = match &stop {
            Some(reason) if resumable(reason) => true,
            Some(reason) if when == Rebuild::Always => return Err(Error::Stopped(reason.clone())),
            Some(_) => false,
            None => when == Rebuild::Always,
        };
        if rebuild {
            let Some(recipe) = self.recipe.as_mut() else {
                return match when {
                    Rebuild::IfStopped => Ok(Resume::Unchanged),
                    Rebuild::Always => Err(stop.map_or(Error::Unanswered, Error::Stopped)),
                };
            };
            self.journal = sliced(recipe()?);
            self.in_flight = InFlight::Idle;
            // What the recovery is compared with: the head acknowledged before the first attempt.
            self.resuming.get_or_insert(self.acknowledged);
            match &stop {
                Some(reason) => {
                    tracing::info!(stream = %self.stream, %reason, "recovering a journal stopped by a storage failure")
                }
                None => {
                    tracing::debug!(stream = %self.stream, "recovering the state afresh from the log")
                }
            }
            if let Some(Found::Failed(error)) = self.drive(Goal::Recovered, state).await? {
                return Err(error);
            }
        }
        self.finish_resume()
    }

    /// Compares what a resume recovered with what was acknowledged before it (see
    /// [`resume`](Self::resume)); nothing to do when no resume is under way.
    fn finish_resume(&mut self) -> Result<Resume, Error> {
        let Some(acknowledged) = self.resuming else {
            return Ok(Resume::Unchanged);
        };
        if let Some(reason) = self.journal.stop_reason() {
            // The recovery failed for good: there is nothing to compare.
            return Err(Error::Stopped(reason.clone()));
        }
        self.resuming = None;
        let durable = self.journal.last_seq();
        if durable < acknowledged {
            let error = Error::Recovery(RecoveryError::MissingTail {
                last: durable,
                head: acknowledged,
            });
            tracing::error!(stream = %self.stream, %error, "acknowledged events are missing; the journal refuses to write");
            self.refused = Some(error.clone());
            return Err(error);
        }
        self.acknowledged = durable;
        tracing::info!(stream = %self.stream, last_seq = durable, acknowledged, "journal resumed");
        Ok(if durable == acknowledged {
            Resume::Recovered { last_seq: durable }
        } else {
            Resume::Landed {
                acknowledged,
                last_seq: durable,
            }
        })
    }

    /// [`resume`](Self::resume), then [`Resume::check`]: what a request does first.
    async fn ready_for_request(&mut self, state: &mut E) -> Result<(), Error> {
        match self.ready_at_once() {
            Some(ready) => ready,
            None => self.resume(state).await?.check(),
        }
    }

    /// What [`ready_for_request`](Self::ready_for_request) answers when it can tell without
    /// waiting (a settled journal with nothing to resume: every request but the rare one),
    /// checked before its future is made.
    fn ready_at_once(&self) -> Option<Result<(), Error>> {
        (self.is_settled()
            && self.refused.is_none()
            && self.resuming.is_none()
            && !self.needs_resume())
        .then(|| self.ownership.check())
    }

    /// Whether every request made so far is settled: no command in flight, and the journal is
    /// not in the middle of a write or of the re-read after one. Only then does the caller's
    /// state hold exactly the acknowledged events; while a call dropped mid-flight is unsettled,
    /// the state may hold its unacknowledged events. [`settle`](Self::settle), or any request,
    /// settles it.
    pub fn is_settled(&self) -> bool {
        matches!(self.in_flight, InFlight::Idle)
            && matches!(self.journal.phase(), Phase::Ready | Phase::Stopped)
    }

    /// Drives whatever a call dropped mid-flight left in flight to its end (the completion
    /// applied or rolled back, a re-read finished), so that `state` holds exactly the
    /// acknowledged events; then [`Error::StateUnknown`] if the journal stopped on a failure
    /// that leaves them unknown (see [`check_settled`](Self::check_settled)).
    pub async fn settle(&mut self, state: &mut E) -> Result<(), Error> {
        if !self.is_settled() {
            self.drive(Goal::Settled, state).await?;
        }
        self.check_state_known()
    }

    /// `Ok` when `state` holds exactly the acknowledged events: what an accessor that cannot
    /// settle checks before it shows the state. Else [`Error::Unsettled`] while a request is
    /// unsettled ([`is_settled`](Self::is_settled)), or [`Error::StateUnknown`] when the journal
    /// stopped on a failure after which the state may hold events that are not acknowledged
    /// (a write whose outcome stayed unknown) or miss some (a recovery that failed part-way),
    /// until [`resume`](Self::resume) recovers it from the log.
    pub fn check_settled(&self) -> Result<(), Error> {
        if !self.is_settled() {
            return Err(Error::Unsettled {
                stream: self.stream.to_string(),
            });
        }
        self.check_state_known()
    }

    /// [`Error::StateUnknown`] when the journal stopped on a failure that leaves the state
    /// unknown (see [`check_settled`](Self::check_settled)).
    fn check_state_known(&self) -> Result<(), Error> {
        match self
            .journal
            .stop_reason()
            .filter(|&r| leaves_state_unknown(r))
        {
            Some(reason) => Err(Error::StateUnknown {
                stream: self.stream.to_string(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Whether `state` holds exactly the acknowledged events: what
    /// [`check_settled`](Self::check_settled) checks, without making its error.
    pub fn holds_acknowledged_state(&self) -> bool {
        self.is_settled() && !self.journal.stop_reason().is_some_and(leaves_state_unknown)
    }

    /// Whether the journal stopped on a storage failure that [`resume`](Self::resume) may get
    /// past (whether or not this driver has a recipe to do it).
    pub fn needs_resume(&self) -> bool {
        self.journal.stop_reason().is_some_and(resumable)
    }

    /// Whether this driver still owns its stream (no newer driver took it over; see
    /// [`Backend::claim`]).
    pub fn owns_stream(&self) -> bool {
        self.ownership.is_current()
    }

    /// The repairs the backend's store reported that may involve this stream (see
    /// [`Backend::repairs_for`]).
    pub fn repairs(&self) -> Vec<Repair> {
        self.backend.repairs_for(&self.stream)
    }

    /// Persists one event into `state`: once it returns `Ok`, the event is durable and applied,
    /// and the range holds its seq. On `Err` the state is as before (see [`Error`]).
    pub async fn persist(
        &mut self,
        event: E::Event,
        state: &mut E,
    ) -> Result<RangeInclusive<u64>, Error> {
        match self.ready_at_once() {
            Some(ready) => ready?,
            None => self.ready_for_request(state).await?,
        }
        let request = self.journal.handle_persist(event, state)?;
        self.finish(request, state).await
    }

    /// Persists `events` atomically: all of them become durable and applied, or none.
    pub async fn persist_all(
        &mut self,
        events: impl IntoIterator<Item = E::Event>,
        state: &mut E,
    ) -> Result<RangeInclusive<u64>, Error> {
        self.persist_batch(events.into_iter().collect(), state)
            .await
    }

    /// [`persist_all`](Self::persist_all) of a [`Batch`] as it is: a batch of one event is
    /// persisted as [`persist`](Self::persist) persists it.
    pub async fn persist_batch(
        &mut self,
        events: Batch<E::Event>,
        state: &mut E,
    ) -> Result<RangeInclusive<u64>, Error> {
        match self.ready_at_once() {
            Some(ready) => ready?,
            None => self.ready_for_request(state).await?,
        }
        let request = self.journal.handle_persist_batch(events, state)?;
        self.finish(request, state).await
    }

    /// Writes a snapshot of `state` (unless the newest one covers it) and returns the seq it
    /// covers.
    pub async fn snapshot(&mut self, state: &mut E) -> Result<u64, Error> {
        self.ready_for_request(state).await?;
        let request = self.journal.handle_snapshot_request(state)?;
        self.snapshotted(request, state).await
    }

    /// Writes a snapshot of `state` even when the newest one is at the same seq (the store
    /// replaces it), and returns the seq it covers: for a state that is not the one the log
    /// recovers to, which becomes the durable state at the head (see
    /// [`Journal::handle_snapshot_replacing`]).
    pub async fn snapshot_replacing(&mut self, state: &mut E) -> Result<u64, Error> {
        self.ready_for_request(state).await?;
        let request = self.journal.handle_snapshot_replacing(state)?;
        self.snapshotted(request, state).await
    }

    /// Drives the journal until snapshot `request` is answered.
    async fn snapshotted(&mut self, request: RequestId, state: &mut E) -> Result<u64, Error> {
        match self.drive(Goal::Request(request), state).await? {
            Some(Found::Snapshot(seq)) => Ok(seq),
            Some(Found::Failed(error)) => Err(error),
            _ => Err(self.stopped()),
        }
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

    /// Drives the journal until `request` is answered. A request the first pump answers (an
    /// inline backend) returns without making the future of the rest of the loop.
    async fn finish(
        &mut self,
        request: RequestId,
        state: &mut E,
    ) -> Result<RangeInclusive<u64>, Error> {
        let goal = Goal::Request(request);
        let mut found = None;
        let found = match self.pump_for(goal, state, &mut found)? {
            Wait::Idle => found,
            wait => self.drive_from(goal, state, found, wait).await?,
        };
        self.persisted(found)
    }

    /// The answer to a persist request, from what the run loop found for it.
    fn persisted(&self, found: Option<Found>) -> Result<RangeInclusive<u64>, Error> {
        match found {
            Some(Found::Persisted(range)) => Ok(range),
            Some(Found::Failed(error)) => Err(error),
            _ => Err(self.stopped()),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
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

    /// The clock for a completion: read afresh unless it is a successful completion of a
    /// write, which schedules nothing (then the last reading, never ahead of the clock).
    fn now_for(&mut self, outcome: &Outcome) -> Duration {
        if outcome.is_err() || self.journal.phase() != Phase::Persisting {
            self.last_now = self.now();
        }
        self.last_now
    }

    /// The run loop: [`pump`](Self::pump)s, then waits for what it stopped for (a completion, a
    /// timer, a yield between replay slices), until the journal has nothing left to do.
    /// Returns what it found for `goal`.
    async fn drive(&mut self, goal: Goal, state: &mut E) -> Result<Option<Found>, Error> {
        // A replay paused between slices here means the call before this one was dropped at
        // its yield: its next slice is applied before this call can yield in turn, so that
        // calls dropped at their first wait (a `select!` that loses at once) still take the
        // recovery forward rather than repeat the same yield.
        if self.journal.poll_replay() {
            self.replay(state);
        }
        let mut found = None;
        let wait = self.pump_for(goal, state, &mut found)?;
        self.drive_from(goal, state, found, wait).await
    }

    /// [`pump`](Self::pump), keeping in `found` the first event that answers `goal`.
    fn pump_for(
        &mut self,
        goal: Goal,
        state: &mut E,
        found: &mut Option<Found>,
    ) -> Result<Wait, Error> {
        self.pump(state, &mut |event| {
            if let Some(hit) = answer(goal, event) {
                found.get_or_insert(hit);
            }
        })
    }

    /// The rest of [`drive`](Self::drive) after a first pump, which found `found` and stopped
    /// for `wait`.
    async fn drive_from(
        &mut self,
        goal: Goal,
        state: &mut E,
        mut found: Option<Found>,
        mut wait: Wait,
    ) -> Result<Option<Found>, Error> {
        loop {
            match wait {
                Wait::Idle => return Ok(found),
                // Awaited in place, so a dropped call loses no completion.
                Wait::Completion => self.completion().await,
                Wait::Timer(deadline) => {
                    let wait = self.until(deadline);
                    if !wait.is_zero() {
                        self.backend.runtime().sleep(wait).await;
                    }
                    self.fire(deadline);
                }
                // A recovery page or slice was applied: let the executor run its other tasks,
                // so that a recovery never holds an async worker for long (see `REPLAY_SLICE`).
                Wait::Yield => {
                    YieldNow::default().await;
                    self.replay(state);
                }
            }
            wait = self.pump_for(goal, state, &mut found)?;
        }
    }

    /// One turn of the run loop for a caller that waits on its own (the shared handle's task):
    /// drains events into `sink`, executes commands and feeds completions that are already
    /// there, until the loop must wait; returns for what. Never awaits, so the caller can
    /// wait for the returned [`Wait`] and for new requests at the same time.
    pub(crate) fn pump(
        &mut self,
        state: &mut E,
        sink: &mut impl FnMut(JournalEvent),
    ) -> Result<Wait, Error> {
        loop {
            while let Some(event) = self.journal.poll_event() {
                self.log(&event);
                sink(event);
            }
            match &self.in_flight {
                InFlight::Waiting(..) => return Ok(Wait::Completion),
                InFlight::Ready(..) => {
                    if let InFlight::Ready(id, outcome) =
                        std::mem::replace(&mut self.in_flight, InFlight::Idle)
                    {
                        if self.complete(id, outcome, state)? {
                            return Ok(Wait::Yield);
                        }
                    }
                    continue;
                }
                InFlight::Idle => {}
            }
            if self.journal.poll_replay() {
                return Ok(Wait::Yield);
            }
            if let Some(command) = self.journal.poll_command() {
                let id = command.id();
                if !self.ownership.is_current() {
                    // A newer writer took the stream over while this command was being made
                    // (say, by the completion of one in flight): nothing more is sent, and the
                    // journal hears that nothing of it was done.
                    let superseded = self.ownership.superseded().to_string();
                    let outcome = Err(StorageError::Rejected(superseded));
                    if self.complete(id, outcome, state)? {
                        return Ok(Wait::Yield);
                    }
                    continue;
                }
                match self.backend.submit(&self.stream, command) {
                    // Answered at once (inline): fed back here, with no await in between, so
                    // no cancellation can fall between the answer and the journal.
                    Pending::Ready(outcome) => {
                        if self.complete(id, outcome, state)? {
                            return Ok(Wait::Yield);
                        }
                    }
                    Pending::Waiting(receiver) => self.in_flight = InFlight::Waiting(id, receiver),
                }
                continue;
            }
            match self.journal.poll_timeout() {
                Some(deadline) => {
                    let wait = deadline.saturating_sub(self.now());
                    if !wait.is_zero() {
                        return Ok(Wait::Timer(deadline));
                    }
                    let now = self.now().max(deadline);
                    self.journal.handle_timeout(now);
                    if self.journal.phase() == Phase::Recovering {
                        return Ok(Wait::Yield);
                    }
                }
                None => {
                    if self.journal.phase() != Phase::Stopped && self.resuming.is_none() {
                        self.acknowledged = self.journal.last_seq();
                    }
                    return Ok(Wait::Idle);
                }
            }
        }
    }

    /// Feeds the journal the completion of command `id`; true when it was a page of a
    /// recovery (the loop then yields to the executor).
    fn complete(&mut self, id: CommandId, outcome: Outcome, state: &mut E) -> Result<bool, Error> {
        let now = self.now_for(&outcome);
        let recovering = self.journal.phase() == Phase::Recovering;
        self.journal.handle_completion(now, id, outcome, state)?;
        Ok(recovering)
    }

    /// Applies the next slice of a paused replay, after a [`Wait::Yield`] (nothing otherwise).
    pub(crate) fn replay(&mut self, state: &mut E) {
        let now = self.now();
        self.journal.handle_replay(now, state);
    }

    /// Waits for the completion of the command in flight ([`Wait::Completion`]), in place: a
    /// dropped wait loses nothing, and the next [`pump`](Self::pump) feeds it.
    pub(crate) async fn completion(&mut self) {
        if let InFlight::Waiting(id, receiver) = &mut self.in_flight {
            let id = *id;
            let outcome = receiver.await.unwrap_or_else(|_| {
                Err(StorageError::Failed(
                    "the backend dropped the command".into(),
                ))
            });
            self.in_flight = InFlight::Ready(id, outcome);
        }
    }

    /// How long until the timer a [`Wait::Timer`] named is due (zero when it is).
    pub(crate) fn until(&self, deadline: Duration) -> Duration {
        deadline.saturating_sub(self.now())
    }

    /// Feeds the journal the timeout a [`Wait::Timer`] named, once it is due.
    pub(crate) fn fire(&mut self, deadline: Duration) {
        let now = self.now().max(deadline);
        self.journal.handle_timeout(now);
    }

    /// Enqueues a persist of `events` (one, or an atomic batch), returning its request id.
    pub(crate) fn enqueue_persist(
        &mut self,
        events: Batch<E::Event>,
        state: &mut E,
    ) -> Result<RequestId, Error> {
        self.ownership.check()?;
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        Ok(self.journal.handle_persist_batch(events, state)?)
    }

    /// Enqueues a snapshot request, returning its request id.
    pub(crate) fn enqueue_snapshot(&mut self, state: &mut E) -> Result<RequestId, Error> {
        self.ownership.check()?;
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        Ok(self.journal.handle_snapshot_request(state)?)
    }

    /// [`resume`](Self::resume) then [`Resume::check`], for a caller outside this module.
    pub(crate) async fn ready(&mut self, state: &mut E) -> Result<(), Error> {
        self.ready_for_request(state).await
    }

    /// The error for a request the journal went idle without answering.
    pub(crate) fn unanswered(&self) -> Error {
        self.stopped()
    }

    /// Logs what an operator wants to see of `event`.
    fn log(&self, event: &JournalEvent) {
        match event {
            JournalEvent::Recovered {
                last_seq,
                snapshot_seq,
                replayed,
            } => {
                tracing::debug!(stream = %self.stream, last_seq, ?snapshot_seq, replayed, "recovered");
            }
            JournalEvent::SnapshotFailed { seq, reason, .. } => {
                tracing::warn!(stream = %self.stream, seq, %reason, "snapshot failed");
            }
            JournalEvent::SnapshotSkipped { seq, reason } => {
                tracing::warn!(stream = %self.stream, seq, %reason, "unreadable snapshot skipped");
            }
            JournalEvent::HousekeepingFailed { reason } => {
                tracing::warn!(stream = %self.stream, %reason, "housekeeping failed");
            }
            JournalEvent::Stopped(reason) => {
                tracing::error!(stream = %self.stream, %reason, "journal stopped");
            }
            _ => {}
        }
    }
}

/// What `event` answers of `goal`, if anything (the driver's `log` has reported it already).
fn answer(goal: Goal, event: JournalEvent) -> Option<Found> {
    match event {
        JournalEvent::Recovered { .. } => (goal == Goal::Recovered).then_some(Found::Recovered),
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
        } if goal == Goal::Request(request) => Some(Found::Failed(Error::Snapshot { seq, reason })),
        _ => None,
    }
}

/// When [`Driver::recover_from_log`] builds the journal again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rebuild {
    /// Only if a storage failure stopped it ([`Driver::resume`]).
    IfStopped,
    /// Whatever it holds ([`Driver::recover`]).
    Always,
}

/// What [`Driver::resume`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resume {
    /// Nothing: the journal was not stopped by a storage failure (or the driver has no recipe
    /// to build it again).
    Unchanged,
    /// The journal was built again and recovered; the log holds exactly the events the caller
    /// was told are durable (a write whose outcome was unknown had not landed).
    Recovered {
        /// The last durable seq.
        last_seq: u64,
    },
    /// The journal was built again and recovered, and the log holds events past the ones the
    /// caller was told are durable: a write whose outcome was unknown had landed. The state
    /// now includes them; the caller should look before it retries anything.
    Landed {
        /// The last seq the caller was told is durable.
        acknowledged: u64,
        /// The last durable seq.
        last_seq: u64,
    },
}

impl Resume {
    /// `Ok` unless events the caller was never told about landed ([`Error::Landed`]): a request
    /// made blindly after an unknown outcome could apply the same change twice.
    ///
    /// ```
    /// use persevere_driver::{Error, Resume};
    /// assert!(Resume::Recovered { last_seq: 3 }.check().is_ok());
    /// assert_eq!(
    ///     Resume::Landed { acknowledged: 3, last_seq: 4 }.check(),
    ///     Err(Error::Landed { acknowledged: 3, last_seq: 4 })
    /// );
    /// ```
    pub fn check(self) -> Result<(), Error> {
        match self {
            Resume::Landed {
                acknowledged,
                last_seq,
            } => Err(Error::Landed {
                acknowledged,
                last_seq,
            }),
            Resume::Unchanged | Resume::Recovered { .. } => Ok(()),
        }
    }
}

/// The most replayed events the driver lets a journal apply before it yields to the executor,
/// unless the journal's configuration sets its own
/// ([`JournalConfig::replay_slice`](persevere_core::JournalConfig::replay_slice)): about a
/// hundred microseconds of decoding and applying for small events (about 45 ns an event on
/// tokio over the in-memory backend), so that a long recovery never holds an async worker for
/// more than about a millisecond at a time. (Each yield costs a reschedule — on a
/// multi-thread runtime often a wake of another worker — so a smaller slice makes a long
/// recovery slower for no gain in responsiveness.)
pub const REPLAY_SLICE: usize = 2048;

/// `journal`, replaying [`REPLAY_SLICE`] events at a time unless its configuration says
/// otherwise.
fn sliced<E, C>(journal: Journal<E, C>) -> Journal<E, C>
where
    E: Entity,
    C: Codec<E> + Codec<E::Event>,
{
    if journal.config().replay_slice_size().is_some() {
        journal
    } else {
        journal.with_replay_slice(REPLAY_SLICE)
    }
}

/// Whether a journal stopped for `reason` may hold a state other than the acknowledged one:
/// a write whose outcome stayed unknown, or a recovery that failed part-way.
fn leaves_state_unknown(reason: &StopReason) -> bool {
    matches!(
        reason,
        StopReason::Unresolved { .. } | StopReason::Recovery(_)
    )
}

/// Whether a journal stopped for `reason` may be built again and recovered: a storage failure
/// that a later read may get past, never a sign that the data cannot be trusted.
fn resumable(reason: &StopReason) -> bool {
    matches!(
        reason,
        StopReason::Unresolved { .. } | StopReason::Recovery(RecoveryError::Storage(_))
    )
}

impl<E: Entity, C> std::fmt::Debug for Driver<E, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// Whether a [`YieldNow`] has given the executor its turn yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum YieldPhase {
    #[default]
    Fresh,
    Yielded,
}

/// A future that is pending once (waking itself at once), then ready: lets the executor run
/// its other tasks, with nothing but `futures`' task API.
#[derive(Debug, Default)]
pub(crate) struct YieldNow {
    phase: YieldPhase,
}

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match self.phase {
            YieldPhase::Yielded => std::task::Poll::Ready(()),
            YieldPhase::Fresh => {
                self.phase = YieldPhase::Yielded;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
    }
}
