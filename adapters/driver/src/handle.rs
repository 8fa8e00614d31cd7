//! Many concurrent callers of one entity: a cloneable handle to a [`Persistent`] whose
//! journal runs in a task of its own.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use futures::channel::{mpsc, oneshot};
use futures::future::{select, Either};
use futures::StreamExt;
use persevere_core::{Batch, Codec, Entity, JournalEvent, RequestId};

use crate::driver::{Wait, YieldNow};
use crate::error::Error;
use crate::persistent::Persistent;

/// A read of the settled state, run by the entity's task.
type Read<E> = Box<dyn FnOnce(Result<&E, Error>) + Send>;

/// A call from a handle to the entity's task.
enum Call<E: Entity> {
    Persist {
        events: Batch<E::Event>,
        reply: oneshot::Sender<Result<RangeInclusive<u64>, Error>>,
    },
    Snapshot {
        reply: oneshot::Sender<Result<u64, Error>>,
    },
    Read(Read<E>),
    Close(oneshot::Sender<()>),
}

/// Where the answer to a request goes.
enum Reply {
    Persist(oneshot::Sender<Result<RangeInclusive<u64>, Error>>),
    Snapshot(oneshot::Sender<Result<u64, Error>>),
}

impl Reply {
    fn fail(self, error: Error) {
        // A caller that went away (its future was dropped) needs no answer.
        match self {
            Reply::Persist(reply) => drop(reply.send(Err(error))),
            Reply::Snapshot(reply) => drop(reply.send(Err(error))),
        }
    }
}

/// A cloneable handle to one persistent entity, for many tasks persisting to it at once
/// (see [`Persistent::into_handle`]).
///
/// The entity's journal and state live in a task of their own, spawned on the backend's
/// runtime. Each call is a request to it: requests made while an append is in flight are
/// coalesced by the journal into the next append (one write, one fsync for all of them, up to
/// [`JournalConfig::max_append`](persevere_core::JournalConfig::max_append)), and each caller
/// gets its own answer, in the order the requests reached the task — the same answers a
/// [`Persistent`] gives:
///
/// - `Ok(range)`: the events are durable and applied;
/// - a refusal by `apply` ([`Rejection::Refused`](persevere_core::Rejection::Refused), the
///   entity's own error) or an event that cannot be encoded fails that request alone; the
///   others of its append go on;
/// - a write that failed is rolled back for every request it carried (the state is rebuilt
///   from the durable log) and each hears why; a write whose outcome was unknown is resolved
///   by re-reading the log (fencing), and only requests found durable are acknowledged;
/// - after a storage outage stopped the journal, the first request resumes it; if a write
///   reported unknown had in fact landed, that request and every other request already sent
///   with it are refused with [`Error::Landed`] (each was sent before its caller could know),
///   so a blind retry among them is not applied twice. Requests sent after that answer go on.
///
/// A call whose future is dropped after it was made is not withdrawn: its request is answered
/// into the void, persisted or not, and the other callers are unaffected. Once every handle is
/// dropped, the task finishes the requests it holds and ends, dropping the entity (and its
/// hold on the stream).
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
///     fn apply(&mut self, n: &u64) -> Result<(), String> { self.value += n; Ok(()) }
/// }
///
/// # futures::executor::block_on(async {
/// let backend = Backend::new(Threads, MemoryStore::new());
/// let counter = Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default)
///     .await?
///     .into_handle();
/// // Eight callers at once: one append (or a few), each caller its own seq.
/// let calls = (1..=8).map(|n| {
///     let counter = counter.clone();
///     async move { counter.persist(n).await }
/// });
/// let mut seqs: Vec<u64> = futures::future::try_join_all(calls)
///     .await?
///     .into_iter()
///     .map(|range| *range.start())
///     .collect();
/// seqs.sort();
/// assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
/// assert_eq!(counter.read(|c| c.value).await?, 36);
/// # Ok::<(), persevere_driver::Error>(())
/// # }).unwrap();
/// ```
pub struct PersistentHandle<E: Entity> {
    calls: mpsc::UnboundedSender<Call<E>>,
    stream: Arc<str>,
}

impl<E: Entity> Clone for PersistentHandle<E> {
    fn clone(&self) -> Self {
        Self {
            calls: self.calls.clone(),
            stream: Arc::clone(&self.stream),
        }
    }
}

impl<E: Entity> std::fmt::Debug for PersistentHandle<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentHandle")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl<E: Entity> PersistentHandle<E> {
    /// Persists one event: once it returns `Ok`, the event is durable and applied, and the
    /// range holds its seq. On `Err` nothing of this request is applied (see [`Error`]).
    pub async fn persist(&self, event: E::Event) -> Result<RangeInclusive<u64>, Error> {
        self.persist_events(Batch::from(event)).await
    }

    /// Persists `events` atomically: all of them become durable and applied, or none.
    pub async fn persist_all(
        &self,
        events: impl IntoIterator<Item = E::Event>,
    ) -> Result<RangeInclusive<u64>, Error> {
        self.persist_events(events.into_iter().collect()).await
    }

    async fn persist_events(&self, events: Batch<E::Event>) -> Result<RangeInclusive<u64>, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Call::Persist { events, reply })?;
        answer.await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// Writes a snapshot of the state after every request made before it (unless the newest
    /// one covers it) and returns the seq it covers.
    pub async fn snapshot(&self) -> Result<u64, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Call::Snapshot { reply })?;
        answer.await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// Runs `read` on the state once every request made before it is answered and nothing is
    /// in flight: the state then holds every acknowledged event and no other. If the journal
    /// stopped on a failure that leaves that unknown, `read` is not run and the answer is
    /// [`Error::StateUnknown`] (see [`Persistent::state`]).
    pub async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&E) -> R + Send + 'static,
    ) -> Result<R, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Call::Read(Box::new(move |state: Result<&E, Error>| {
            let _ = reply.send(state.map(read));
        })))?;
        answer.await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// Ends the entity's task once every request made before this call is answered, and
    /// returns once the entity is dropped and its stream free to open again. Calls made
    /// after it, through any clone, fail with [`Error::Closed`].
    pub async fn close(self) {
        let (reply, closed) = oneshot::channel();
        if self.send(Call::Close(reply)).is_ok() {
            let _ = closed.await;
        }
    }

    /// The stream id.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    fn send(&self, call: Call<E>) -> Result<(), Error> {
        self.calls.unbounded_send(call).map_err(|_| self.closed())
    }

    fn closed(&self) -> Error {
        Error::Closed {
            stream: self.stream.to_string(),
        }
    }
}

impl<E, C> Persistent<E, C>
where
    E: Entity + Send + 'static,
    E::Event: Send,
    C: Codec<E> + Codec<E::Event> + Send + 'static,
{
    /// Moves the entity into a task of its own on the backend's runtime and returns a
    /// cloneable handle through which many tasks persist to it at once, their requests
    /// coalesced into group appends (see [`PersistentHandle`]).
    pub fn into_handle(self) -> PersistentHandle<E> {
        let (calls, receiver) = mpsc::unbounded();
        let stream: Arc<str> = self.stream().into();
        let runtime = Arc::clone(self.driver.backend().runtime());
        runtime.spawn(Box::pin(serve(self, receiver)));
        PersistentHandle { calls, stream }
    }
}

/// What the entity's task keeps beside the entity.
struct Book<E> {
    /// Where the answer to each request in the journal goes.
    waiting: HashMap<RequestId, Reply>,
    /// Reads waiting for a settled state.
    reads: Vec<Read<E>>,
    /// Callers of [`PersistentHandle::close`], answered once the entity is dropped.
    closers: Vec<oneshot::Sender<()>>,
    /// Whether new calls are taken (false once every handle is gone or one closed).
    open: bool,
}

/// The entity's task: accepts calls while it drives the journal, and answers each request by
/// its id as the journal reports it.
async fn serve<E, C>(mut entity: Persistent<E, C>, mut calls: mpsc::UnboundedReceiver<Call<E>>)
where
    E: Entity + Send + 'static,
    E::Event: Send,
    C: Codec<E> + Codec<E::Event> + Send + 'static,
{
    let mut book = Book {
        waiting: HashMap::new(),
        reads: Vec::new(),
        closers: Vec::new(),
        open: true,
    };
    loop {
        let Book {
            waiting,
            reads,
            closers,
            open,
        } = &mut book;
        let Persistent { driver, state } = &mut entity;
        let wait = match driver.pump(state, &mut |event| answer(waiting, event)) {
            Ok(wait) => wait,
            Err(error) => {
                for (_, reply) in waiting.drain() {
                    reply.fail(error.clone());
                }
                Wait::Idle
            }
        };
        match wait {
            Wait::Idle => {
                if !waiting.is_empty() {
                    let error = driver.unanswered();
                    for (_, reply) in waiting.drain() {
                        reply.fail(error.clone());
                    }
                }
                for read in reads.drain(..) {
                    read(driver.check_settled().map(|()| &*state));
                }
                if !*open {
                    break;
                }
                let Some(call) = calls.next().await else {
                    break;
                };
                if let Call::Close(closer) = call {
                    closers.push(closer);
                    break;
                }
                // The first request after a pause: settle and resume a journal stopped by a
                // storage failure first, as a `Persistent` does before every request.
                let first = match &call {
                    Call::Read(_) => Ok(()),
                    _ => driver.ready(state).await,
                };
                let refused = match first {
                    Ok(()) => {
                        accept(&mut entity, call, &mut book);
                        None
                    }
                    Err(error) => {
                        refuse(call, error.clone());
                        Some(error)
                    }
                };
                // Everything already sent joins this burst (and so the same append) — or, if
                // its first request was refused, gets the same answer: each was sent before its
                // caller could learn why (say, that a write reported unknown had landed, which
                // a blind retry among them would apply twice).
                while let Ok(call) = calls.try_recv() {
                    match (&refused, call) {
                        (Some(error), call @ (Call::Persist { .. } | Call::Snapshot { .. })) => {
                            refuse(call, error.clone());
                        }
                        (_, call) => accept(&mut entity, call, &mut book),
                    }
                }
            }
            Wait::Yield => {
                YieldNow::default().await;
                driver.replay(state);
            }
            Wait::Completion | Wait::Timer(_) if !*open => match wait {
                Wait::Timer(deadline) => {
                    driver
                        .backend()
                        .runtime()
                        .sleep(driver.until(deadline))
                        .await;
                    driver.fire(deadline);
                }
                _ => driver.completion().await,
            },
            Wait::Completion => {
                let next = match select(Box::pin(driver.completion()), calls.next()).await {
                    Either::Left(((), _)) => continue,
                    Either::Right((next, _)) => next,
                };
                receive(&mut entity, next, &mut book);
            }
            Wait::Timer(deadline) => {
                let sleep = driver.backend().runtime().sleep(driver.until(deadline));
                let next = match select(sleep, calls.next()).await {
                    Either::Left(((), _)) => {
                        driver.fire(deadline);
                        continue;
                    }
                    Either::Right((next, _)) => next,
                };
                receive(&mut entity, next, &mut book);
            }
        }
    }
    // Calls made after the close are dropped unanswered: their callers hear `Closed`.
    calls.close();
    while let Ok(call) = calls.try_recv() {
        if let Call::Close(closer) = call {
            book.closers.push(closer);
        }
    }
    drop(entity);
    for closer in book.closers {
        let _ = closer.send(());
    }
}

/// A call received while the journal is busy: accepted into its queue (`None`: every handle
/// is gone).
fn receive<E, C>(entity: &mut Persistent<E, C>, next: Option<Call<E>>, book: &mut Book<E>)
where
    E: Entity,
    C: Codec<E> + Codec<E::Event>,
{
    match next {
        Some(call) => accept(entity, call, book),
        None => book.open = false,
    }
}

/// Hands a call to the journal (or keeps a read for the next settled moment).
fn accept<E, C>(entity: &mut Persistent<E, C>, call: Call<E>, book: &mut Book<E>)
where
    E: Entity,
    C: Codec<E> + Codec<E::Event>,
{
    let Persistent { driver, state } = entity;
    let Book {
        waiting,
        reads,
        closers,
        open,
    } = book;
    match call {
        Call::Persist { events, reply } => match driver.enqueue_persist(events, state) {
            Ok(request) => {
                waiting.insert(request, Reply::Persist(reply));
            }
            Err(error) => drop(reply.send(Err(error))),
        },
        Call::Snapshot { reply } => match driver.enqueue_snapshot(state) {
            Ok(request) => {
                waiting.insert(request, Reply::Snapshot(reply));
            }
            Err(error) => drop(reply.send(Err(error))),
        },
        Call::Read(read) => reads.push(read),
        // Every handle is as good as gone: finish what was asked, then end.
        Call::Close(closer) => {
            closers.push(closer);
            *open = false;
        }
    }
}

/// Answers a call that cannot be made.
fn refuse<E: Entity>(call: Call<E>, error: Error) {
    match call {
        Call::Persist { reply, .. } => drop(reply.send(Err(error))),
        Call::Snapshot { reply } => drop(reply.send(Err(error))),
        Call::Read(_) | Call::Close(_) => {}
    }
}

/// Answers the request `event` reports, if any.
fn answer(waiting: &mut HashMap<RequestId, Reply>, event: JournalEvent) {
    match event {
        JournalEvent::Persisted {
            request,
            first_seq,
            last_seq,
        } => {
            if let Some(Reply::Persist(reply)) = waiting.remove(&request) {
                let _ = reply.send(Ok(first_seq..=last_seq));
            }
        }
        JournalEvent::PersistFailed { request, error } => {
            if let Some(reply) = waiting.remove(&request) {
                reply.fail(Error::Persist(error));
            }
        }
        JournalEvent::SnapshotSaved {
            request: Some(request),
            seq,
        } => {
            if let Some(Reply::Snapshot(reply)) = waiting.remove(&request) {
                let _ = reply.send(Ok(seq));
            }
        }
        JournalEvent::SnapshotFailed {
            request: Some(request),
            seq,
            reason,
        } => {
            if let Some(reply) = waiting.remove(&request) {
                reply.fail(Error::Snapshot { seq, reason });
            }
        }
        _ => {}
    }
}
