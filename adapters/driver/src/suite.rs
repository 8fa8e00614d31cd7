//! The behaviour suite: the same checks on every executor.
//!
//! Each runtime adapter runs it on its real executor with [`behaviour_suite!`](crate::behaviour_suite):
//!
//! ```ignore
//! persevere_driver::behaviour_suite!(|f| my_executor::block_on(f), MyRuntime::new());
//! ```
//!
//! The first argument runs a future to completion on the executor; the second builds the
//! [`Runtime`], inside that executor. Every case becomes one `#[test]` whose
//! name is the case's; invoke the macro inside a `mod suite`. The cases use [`persevere_memory::Memory`] with its fault
//! injection, and never wait on the wall clock for their verdict.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use futures::channel::oneshot;
use futures::FutureExt;
use persevere_core::{
    Command, CommandResult, Entity, JournalConfig, PersistError, Rejection, Store, Strategy,
    StreamCommand,
};
use persevere_memory::{Fault, Memory};

use crate::{Backend, Error, Execution, Persistent, Runtime};

/// The entity the suite persists: a counter that refuses increments of zero.
#[derive(Debug, Default, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Counter {
    /// The sum of every increment.
    pub value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;

    fn apply(&mut self, n: &u64) -> Result<(), String> {
        if *n == 0 {
            return Err("zero increment".into());
        }
        self.value = self.value.checked_add(*n).ok_or("overflow")?;
        Ok(())
    }
}

/// A shared runtime, as the cases take it.
pub type SharedRuntime = Arc<dyn Runtime>;

fn inline(runtime: &SharedRuntime, memory: &Memory) -> Backend {
    Backend::from_parts(
        Arc::clone(runtime),
        Box::new(memory.clone()),
        Execution::Inline,
    )
}

fn pooled(runtime: &SharedRuntime, store: impl Store) -> Backend {
    Backend::from_parts(Arc::clone(runtime), Box::new(store), Execution::Blocking)
}

async fn open(backend: &Backend, stream: &str) -> Persistent<Counter> {
    open_with(backend, JournalConfig::new(stream)).await
}

async fn open_with(backend: &Backend, config: JournalConfig) -> Persistent<Counter> {
    match Persistent::open(backend, config, Counter::default).await {
        Ok(entity) => entity,
        Err(error) => panic!("open failed: {error}"),
    }
}

/// A store that holds every batch until the gate opens, and records where it ran.
#[derive(Clone, Default)]
struct Gated {
    memory: Memory,
    /// How many batches may pass: 0 closed, `usize::MAX` open.
    gate: Arc<(Mutex<usize>, Condvar)>,
    threads: Arc<Mutex<Vec<ThreadId>>>,
    held: Arc<AtomicUsize>,
    /// Batches that reached the gate.
    arrivals: Arc<AtomicUsize>,
    /// The events appended by each batch that reached the gate, in order.
    appended: Arc<Mutex<Vec<usize>>>,
}

impl Gated {
    fn closed(memory: &Memory) -> Self {
        Self {
            memory: memory.clone(),
            ..Self::default()
        }
    }

    fn open_gate(&self) {
        let (passes, changed) = &*self.gate;
        *passes.lock().unwrap_or_else(|e| e.into_inner()) = usize::MAX;
        changed.notify_all();
    }

    /// Closes the gate and counts arrivals from zero again.
    fn close_gate(&self) {
        let (passes, _) = &*self.gate;
        *passes.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        self.arrivals.store(0, Ordering::SeqCst);
    }

    /// Lets one more batch through a closed gate.
    fn let_one_through(&self) {
        let (passes, changed) = &*self.gate;
        let mut passes = passes.lock().unwrap_or_else(|e| e.into_inner());
        *passes = passes.saturating_add(1);
        changed.notify_all();
    }

    /// The events the batch that reached the gate `nth` (from 1, counted since the gate was
    /// last closed) appends.
    fn appended_by(&self, nth: usize) -> usize {
        let appended = self.appended.lock().unwrap_or_else(|e| e.into_inner());
        let skipped = appended.len().saturating_sub(self.arrivals());
        appended.get(skipped + nth - 1).copied().unwrap_or(0)
    }

    /// Batches that reached the gate so far.
    fn arrivals(&self) -> usize {
        self.arrivals.load(Ordering::SeqCst)
    }

    /// Commands of the batch waiting at the gate (the last one, once it opened).
    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    fn threads(&self) -> Vec<ThreadId> {
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Store for Gated {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        let (passes, changed) = &*self.gate;
        let mut guard = passes.lock().unwrap_or_else(|e| e.into_inner());
        self.held.store(batch.len(), Ordering::SeqCst);
        let events = batch
            .iter()
            .map(|c| match &c.command {
                Command::Append { events, .. } => events.len(),
                _ => 0,
            })
            .sum();
        self.appended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(events);
        self.arrivals.fetch_add(1, Ordering::SeqCst);
        while *guard == 0 {
            guard = changed.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        if *guard != usize::MAX {
            *guard -= 1;
        }
        drop(guard);
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(std::thread::current().id());
        self.memory.execute(batch)
    }
}

/// Persist, persist_all and snapshot, then recover the same state from the store.
pub async fn persist_then_recover(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let mut counter = open(&backend, "counter").await;
    for i in 1..=10 {
        assert_eq!(counter.persist(1).await, Ok(i..=i));
    }
    assert_eq!(counter.persist_all([2, 3]).await, Ok(11..=12));
    assert_eq!(counter.snapshot().await, Ok(12));
    assert_eq!(counter.state().expect("settled").value, 15);
    drop(counter);
    let again = open(&backend, "counter").await;
    assert_eq!(again.state().expect("settled").value, 15);
    assert_eq!(again.last_seq(), 12);
    assert_eq!(again.journal().snapshot_seq(), Some(12));
}

/// An encrypted entity recovers with its keys; a wrong key is an authentication error, never
/// an empty state.
pub async fn encrypted_entities_recover_and_refuse_a_wrong_key(runtime: SharedRuntime) {
    use persevere_core::seal::{Key, KeyId, KeyRing, SealError};
    use persevere_core::RecoveryError;

    let keys = Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([7; 32])));
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let config = || JournalConfig::new("secret").snapshot_every(Some(3));
    let open = |keys: Arc<KeyRing>| {
        Persistent::<Counter>::open_encrypted(&backend, config(), Counter::default, keys)
    };
    let mut counter = open(Arc::clone(&keys)).await.expect("opens");
    for i in 1..=4 {
        assert_eq!(counter.persist(i).await, Ok(i..=i));
    }
    drop(counter);
    let again = open(Arc::clone(&keys)).await.expect("reopens");
    assert_eq!(again.state().expect("settled").value, 10);
    drop(again);
    let wrong = Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([8; 32])));
    match open(wrong).await {
        Err(Error::Recovery(RecoveryError::Open {
            source: SealError::Authentication { .. },
            ..
        })) => {}
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

/// The driver persists into state the caller owns (as actor adapters use it).
pub async fn driver_persists_into_state_the_caller_owns(runtime: SharedRuntime) {
    use crate::Driver;
    use persevere_core::Journal;

    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let mut state = Counter::default();
    let journal = Journal::new(JournalConfig::new("owned"), Counter::default);
    let mut driver = Driver::<Counter>::open(&backend, journal, &mut state)
        .await
        .expect("opens");
    assert_eq!(driver.persist(5, &mut state).await, Ok(1..=1));
    assert!(matches!(
        driver.persist(0, &mut state).await,
        Err(Error::Persist(PersistError::Rejected(Rejection::Refused(
            _
        ))))
    ));
    assert_eq!(driver.persist_all([1, 2], &mut state).await, Ok(2..=3));
    assert_eq!(driver.snapshot(&mut state).await, Ok(3));
    assert_eq!(state.value, 8);
    drop(driver);
    let mut again = Counter::default();
    let journal = Journal::new(JournalConfig::new("owned"), Counter::default);
    Driver::<Counter>::open(&backend, journal, &mut again)
        .await
        .expect("reopens");
    assert_eq!(again, state);
}

/// The same through the blocking pool, which never runs on the calling thread.
pub async fn blocking_pool_runs_the_store_off_the_caller_thread(runtime: SharedRuntime) {
    let memory = Memory::new();
    let store = Gated::closed(&memory);
    store.open_gate();
    let backend = pooled(&runtime, store.clone());
    let mut counter = open(&backend, "counter").await;
    for i in 1..=5 {
        assert_eq!(counter.persist(i).await, Ok(i..=i));
    }
    drop(counter);
    let again = open(&backend, "counter").await;
    assert_eq!(again.state().expect("settled").value, 15);
    let caller = std::thread::current().id();
    assert!(!store.threads().is_empty());
    assert!(store.threads().iter().all(|&t| t != caller));
}

/// Appends waiting while a batch runs are committed together, in one store call.
pub async fn group_commit_batches_waiting_appends(runtime: SharedRuntime) {
    const ENTITIES: usize = 20;
    let memory = Memory::new();
    let store = Gated::closed(&memory);
    let backend = pooled(&runtime, store.clone());
    let mut done = Vec::new();
    for i in 0..ENTITIES {
        let backend = backend.clone();
        let (sender, receiver) = oneshot::channel();
        done.push(receiver);
        runtime.spawn(Box::pin(async move {
            let mut counter = open(&backend, &format!("counter/{i}")).await;
            let result = counter.persist_all([1, 2, 3]).await;
            let _ = sender.send(result);
        }));
    }
    // The first batch of recovery reads is held at the gate; the other reads queue up.
    while store.held() + backend.queued() < ENTITIES {
        runtime.sleep(Duration::from_millis(1)).await;
    }
    store.open_gate();
    for receiver in done {
        assert_eq!(receiver.await.ok(), Some(Ok(1..=3)));
    }
    let stats = backend.stats();
    assert!(stats.largest >= (ENTITIES / 2) as u64, "{stats:?}");
    assert!(stats.batches < stats.commands, "{stats:?}");
    for i in 0..ENTITIES {
        assert_eq!(memory.head(&format!("counter/{i}")), 3);
    }
}

/// Many entities on spawned tasks share one backend; none sees another's events.
pub async fn concurrent_entities_stay_apart(runtime: SharedRuntime) {
    const ENTITIES: u64 = 50;
    let memory = Memory::new();
    let direct = Backend::from_parts(
        Arc::clone(&runtime),
        Box::new(memory.clone()),
        Execution::Direct,
    );
    for backend in [
        inline(&runtime, &memory),
        pooled(&runtime, memory.clone()),
        direct,
    ] {
        let mut done = Vec::new();
        for i in 0..ENTITIES {
            let backend = backend.clone();
            let (sender, receiver) = oneshot::channel();
            done.push(receiver);
            runtime.spawn(Box::pin(async move {
                let mut counter = open(&backend, &format!("e{i}")).await;
                for _ in 0..10 {
                    if counter.persist(i + 1).await.is_err() {
                        break;
                    }
                }
                let _ = sender.send(counter.state().expect("settled").value);
            }));
        }
        for receiver in done {
            assert!(receiver.await.is_ok());
        }
    }
    let mut values = BTreeMap::new();
    let backend = inline(&runtime, &memory);
    for i in 0..ENTITIES {
        values.insert(
            i,
            open(&backend, &format!("e{i}"))
                .await
                .state()
                .expect("settled")
                .value,
        );
        assert_eq!(memory.head(&format!("e{i}")), 30);
    }
    assert!(values.iter().all(|(&i, &v)| v == 30 * (i + 1)));
}

/// A write that failed without landing is rolled back; the next one succeeds.
pub async fn failed_write_that_did_not_land_rolls_back(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let mut counter = open(&backend, "c").await;
    counter.persist(5).await.ok();
    memory.inject(Fault::FailBeforeWrite);
    let error = counter.persist(7).await;
    assert!(
        matches!(
            error,
            Err(Error::Persist(PersistError::Failed {
                landed: Some(false),
                ..
            }))
        ),
        "{error:?}"
    );
    assert_eq!(counter.state().expect("settled").value, 5);
    assert_eq!(counter.persist(1).await, Ok(2..=2));
    assert_eq!(counter.state().expect("settled").value, 6);
}

/// A write reported failed that had landed is reported persisted, applied once.
pub async fn failed_write_that_landed_is_persisted_once(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = pooled(&runtime, memory.clone());
    let mut counter = open(&backend, "c").await;
    memory.inject(Fault::FailAfterWrite);
    assert_eq!(counter.persist(4).await, Ok(1..=1));
    assert_eq!(counter.state().expect("settled").value, 4);
    drop(counter);
    assert_eq!(open(&backend, "c").await.state().expect("settled").value, 4);
}

/// Another writer: the persist fails with `Conflict`, and the journal stops.
pub async fn conflict_stops_the_journal(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let mut counter = open(&backend, "c").await;
    counter.persist(1).await.ok();
    memory.inject(Fault::Conflict);
    let error = counter.persist(1).await;
    assert!(
        matches!(
            error,
            Err(Error::Persist(PersistError::Conflict {
                expected: 1,
                actual: 2
            }))
        ),
        "{error:?}"
    );
    assert_eq!(counter.state().expect("settled").value, 1);
    let after = counter.persist(1).await;
    assert!(
        matches!(
            after,
            Err(Error::Persist(PersistError::Rejected(Rejection::Stopped(
                _
            ))))
        ),
        "{after:?}"
    );
}

/// Rejections (by the store or by `apply`) write nothing and keep the state.
pub async fn rejections_keep_the_state(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let mut counter = open(&backend, "c").await;
    counter.persist(3).await.ok();
    memory.inject(Fault::Reject);
    let stored = counter.persist(1).await;
    assert!(
        matches!(
            stored,
            Err(Error::Persist(PersistError::Rejected(Rejection::Storage(
                _
            ))))
        ),
        "{stored:?}"
    );
    let refused = counter.persist_all([2, 0]).await;
    assert!(
        matches!(
            refused,
            Err(Error::Persist(PersistError::Rejected(Rejection::Refused(
                _
            ))))
        ),
        "{refused:?}"
    );
    assert_eq!(counter.state().expect("settled").value, 3);
    assert_eq!(memory.head("c"), 1);
    assert_eq!(counter.persist(1).await, Ok(2..=2));
}

/// After a failed write, failed re-reads are retried on the runtime's timer.
pub async fn rereads_are_retried_on_the_timer(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let config = JournalConfig::new("c").reread(5, Duration::from_millis(1));
    let mut counter = open_with(&backend, config).await;
    memory.inject(Fault::FailBeforeWrite);
    memory.inject(Fault::FailRead);
    memory.inject(Fault::FailRead);
    let error = counter.persist(1).await;
    assert!(
        matches!(
            error,
            Err(Error::Persist(PersistError::Failed {
                landed: Some(false),
                ..
            }))
        ),
        "{error:?}"
    );
    assert_eq!(counter.persist(2).await, Ok(1..=1));
}

/// A store fenced by a failed write is reopened by the backend (here after two failed
/// attempts) and the journal's re-reads on the timer learn the write did not land; when the
/// store stays fenced past every re-read, the journal stops and the next call recovers it.
pub async fn a_fenced_store_is_reopened_and_persisting_goes_on(runtime: SharedRuntime) {
    let memory = Memory::new();
    let instant = crate::ReopenBackoff::new(Duration::ZERO, Duration::ZERO);
    for backend in [inline(&runtime, &memory), pooled(&runtime, memory.clone())] {
        let backend = backend.with_reopen_backoff(instant);
        let stream = format!("c-{:?}", backend.execution());
        let config = JournalConfig::new(stream).reread(5, Duration::from_millis(1));
        let mut counter = open_with(&backend, config).await;
        assert_eq!(counter.persist(1).await, Ok(1..=1));
        let reopens = memory.reopens();

        memory.inject(Fault::Fence);
        memory.fail_reopens(2);
        let error = counter.persist(1).await;
        assert!(
            matches!(
                error,
                Err(Error::Persist(PersistError::Failed {
                    landed: Some(false),
                    ..
                }))
            ),
            "{error:?}"
        );
        assert_eq!(memory.reopens(), reopens + 1);
        assert_eq!(backend.health(), crate::StoreHealth::Open);
        assert_eq!(counter.persist(2).await, Ok(2..=2));

        // Fenced past every re-read: the journal stops, and recovers on the next call once
        // the store can be reopened.
        memory.inject(Fault::Fence);
        memory.fail_reopens(20);
        assert!(counter.persist(1).await.is_err());
        assert_eq!(counter.phase(), persevere_core::Phase::Stopped);
        let mut refused = 0;
        let range = loop {
            // Each refused call spends at least one failing reopen: this ends.
            match counter.persist(4).await {
                Ok(range) => break range,
                Err(_) => refused += 1,
            }
            assert!(refused <= 20, "the store was never reopened");
        };
        assert_eq!(range, 3..=3);
        assert_eq!(memory.reopens(), reopens + 2);
        assert_eq!(counter.state().expect("settled").value, 7);
    }
}

/// Unreadable stored data is a typed recovery error, never an empty state.
pub async fn recovery_failure_is_typed(runtime: SharedRuntime) {
    let memory = Memory::new();
    memory.with_store(|store| {
        let stream = store.stream_mut("c");
        stream.events.insert(1, b"not a record".to_vec().into());
        stream.head = 1;
    });
    let backend = inline(&runtime, &memory);
    let opened =
        Persistent::<Counter>::open(&backend, JournalConfig::new("c"), Counter::default).await;
    assert!(matches!(opened, Err(Error::Recovery(_))), "{opened:?}");
}

/// A persist whose future is dropped mid-flight is finished by the next call.
pub async fn dropped_persist_is_finished_by_the_next_call(runtime: SharedRuntime) {
    let memory = Memory::new();
    let store = Gated::closed(&memory);
    store.open_gate();
    let backend = pooled(&runtime, store.clone());
    let mut counter = open(&backend, "c").await;
    store.close_gate();
    // The append is held at the gate on the blocking pool: the call is pending, then dropped.
    assert!(counter.persist(1).now_or_never().is_none());
    store.open_gate();
    assert_eq!(counter.persist(2).await, Ok(2..=2));
    assert_eq!(counter.state().expect("settled").value, 3);
    drop(counter);
    assert_eq!(open(&backend, "c").await.state().expect("settled").value, 3);
}

/// A runtime that drops the blocking works it is told to without running them, as tokio does
/// while a runtime shuts down, and runs the rest on `inner`.
struct DropsBlockingWork {
    inner: SharedRuntime,
    drop_next: AtomicUsize,
}

impl Runtime for DropsBlockingWork {
    fn spawn(&self, task: crate::Task) {
        self.inner.spawn(task);
    }

    fn spawn_blocking(&self, work: crate::BlockingWork) {
        let dropped = self
            .drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if dropped {
            drop(work);
        } else {
            self.inner.spawn_blocking(work);
        }
    }

    fn sleep(&self, duration: Duration) -> crate::Task {
        self.inner.sleep(duration)
    }
}

/// A commit task the runtime drops unrun fails its commands (an unknown outcome, rolled back
/// once the log is read) instead of leaving the backend committing forever; the next command
/// on the backend starts a new task and succeeds.
pub async fn a_commit_task_dropped_unrun_fails_its_commands(runtime: SharedRuntime) {
    let memory = Memory::new();
    let dropping = Arc::new(DropsBlockingWork {
        inner: runtime,
        drop_next: AtomicUsize::new(0),
    });
    let shared: SharedRuntime = dropping.clone();
    let backend = Backend::from_parts(shared, Box::new(memory.clone()), Execution::Blocking);
    let mut counter = open(&backend, "c").await;
    assert_eq!(counter.persist(1).await, Ok(1..=1));
    dropping.drop_next.store(1, Ordering::SeqCst);
    let outcome = backend
        .execute(
            "other".into(),
            persevere_core::Command::ReadEvents {
                id: persevere_core::CommandId(1),
                from: 1,
                limit: 1,
            },
        )
        .await;
    match outcome {
        Err(persevere_core::StorageError::Failed(reason)) => {
            assert!(reason.contains("commit task"), "{reason}")
        }
        other => panic!("expected a failed command, got {other:?}"),
    }
    // The backend is not left committing: the next commands run.
    assert_eq!(counter.persist(2).await, Ok(2..=2));
    assert_eq!(counter.state().expect("settled").value, 3);
    // A persist whose append is lost with its task is an unknown outcome, resolved by a read.
    dropping.drop_next.store(1, Ordering::SeqCst);
    match counter.persist(4).await {
        Err(Error::Persist(PersistError::Failed { .. })) => {}
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
    assert_eq!(counter.state().expect("settled").value, 3);
    assert_eq!(counter.persist(5).await, Ok(3..=3));
    assert_eq!(counter.state().expect("settled").value, 8);
}

/// A persist whose future is dropped mid-flight leaves no state that includes its
/// unacknowledged event visible: `state()` refuses until the request is settled, and
/// settling shows the event only once it is durable; an append that fails after the drop
/// leaves the event out.
pub async fn a_dropped_persist_shows_no_unacknowledged_state(runtime: SharedRuntime) {
    let memory = Memory::new();
    let store = Gated::closed(&memory);
    store.open_gate();
    let backend = pooled(&runtime, store.clone());
    let mut counter = open(&backend, "c").await;
    assert_eq!(counter.persist(1).await, Ok(1..=1));
    store.close_gate();
    assert!(counter.persist(10).now_or_never().is_none());
    // The append is held at the gate: nothing of it is acknowledged.
    assert!(!counter.is_settled());
    match counter.state() {
        Err(Error::Unsettled { stream }) => assert_eq!(stream, "c"),
        other => panic!("expected an unsettled state, got {other:?}"),
    }
    store.open_gate();
    assert_eq!(counter.settle().await.map(|c| c.value), Ok(11));
    assert_eq!(counter.state().map(|c| c.value), Ok(11));
    assert_eq!(counter.last_seq(), 2);

    // The same when the dropped append then fails: settling rolls the event back.
    store.close_gate();
    memory.inject(Fault::FailBeforeWrite);
    assert!(counter.persist(100).now_or_never().is_none());
    assert!(counter.state().is_err());
    store.open_gate();
    assert_eq!(counter.settle().await.map(|c| c.value), Ok(11));
    assert_eq!(counter.last_seq(), 2);
}

/// Two entities on one stream of a backend never both open for writing: the second open is
/// refused naming the stream; a take-over supersedes the first, whose next write is refused.
pub async fn one_writer_per_stream(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let mut first = open(&backend, "c").await;
    assert_eq!(first.persist(1).await, Ok(1..=1));
    let second =
        Persistent::<Counter>::open(&backend, JournalConfig::new("c"), Counter::default).await;
    assert_eq!(second.err(), Some(Error::Owned { stream: "c".into() }));
    // Another stream, and a clone of the backend, share the one rule.
    let other = open(&backend.clone(), "d").await;
    let recipe = || {
        Ok(persevere_core::Journal::<Counter>::new(
            JournalConfig::new("c"),
            Counter::default,
        ))
    };
    let mut third = Persistent::<Counter>::open_claiming(
        &backend.clone(),
        recipe,
        Counter::default(),
        crate::Claim::TakeOver,
    )
    .await
    .expect("takes over");
    assert!(!first.owns_stream() && third.owns_stream() && other.owns_stream());
    assert_eq!(
        first.persist(1).await,
        Err(Error::Superseded { stream: "c".into() })
    );
    assert_eq!(third.persist(2).await, Ok(2..=2));
    drop(first);
    // The superseded owner going away frees nothing; the current one does.
    assert!(
        Persistent::<Counter>::open(&backend, JournalConfig::new("c"), Counter::default)
            .await
            .is_err()
    );
    drop(third);
    assert_eq!(open(&backend, "c").await.state().map(|c| c.value), Ok(3));
}

/// Snapshot every N with compaction and retention.
pub async fn snapshots_compact_and_prune(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let config = JournalConfig::new("c")
        .snapshot_every(Some(5))
        .compact_on_snapshot(true)
        .keep_snapshots(1);
    let mut counter = open_with(&backend, config.clone()).await;
    for _ in 0..12 {
        counter.persist(1).await.ok();
    }
    let stream = memory.stream("c").unwrap_or_default();
    assert_eq!(stream.head, 12);
    assert_eq!(stream.snapshots.keys().copied().collect::<Vec<_>>(), [10]);
    assert_eq!(stream.events.keys().copied().collect::<Vec<_>>(), [11, 12]);
    drop(counter);
    let again = open_with(&backend, config).await;
    assert_eq!(again.state().expect("settled").value, 12);
}

/// The Light strategy writes a snapshot with every append; recovery replays nothing.
pub async fn light_strategy_recovers_from_the_snapshot(runtime: SharedRuntime) {
    let memory = Memory::new();
    let backend = inline(&runtime, &memory);
    let config = JournalConfig::new("c").strategy(Strategy::Light);
    let mut counter = open_with(&backend, config.clone()).await;
    for _ in 0..3 {
        counter.persist(2).await.ok();
    }
    assert_eq!(memory.stream("c").map(|s| s.snapshots.len()), Some(3));
    drop(counter);
    let again = open_with(&backend, config).await;
    assert_eq!(again.state().expect("settled").value, 6);
    assert_eq!(again.journal().snapshot_seq(), Some(3));
}

/// Waits (on the runtime's timer, never for a verdict) until `arrived` batches reached the gate.
async fn until_arrived(runtime: &SharedRuntime, store: &Gated, arrived: usize) {
    while store.arrivals() < arrived {
        runtime.sleep(Duration::from_millis(1)).await;
    }
}

/// Opens "c" on a gated pooled backend and hands it to its own task; the gate is closed.
async fn shared_counter(
    runtime: &SharedRuntime,
    memory: &Memory,
) -> (Gated, Backend, crate::PersistentHandle<Counter>) {
    let store = Gated::closed(memory);
    store.open_gate();
    let backend = pooled(runtime, store.clone());
    let counter = open(&backend, "c").await.into_handle();
    store.close_gate();
    (store, backend, counter)
}

/// Many callers of one entity at once: requests queued behind an append are coalesced into
/// the next one, and every caller is answered with its own seq, in the order it asked.
pub async fn concurrent_callers_are_acknowledged_in_order(runtime: SharedRuntime) {
    const CALLERS: u64 = 16;
    let memory = Memory::new();
    let (store, backend, counter) = shared_counter(&runtime, &memory).await;
    let before = backend.stats().commands;
    // The first append is held at the gate; every other call is made while it is.
    let first = counter.persist(1);
    let mut first = Box::pin(first);
    assert!((&mut first).now_or_never().is_none());
    until_arrived(&runtime, &store, 1).await;
    let rest: Vec<_> = (2..=CALLERS).map(|n| counter.persist(n)).collect();
    let rest = futures::future::join_all(rest);
    let opener = async {
        runtime.sleep(Duration::from_millis(1)).await;
        store.open_gate();
    };
    let (first, rest, ()) = futures::future::join3(first, rest, opener).await;
    assert_eq!(first, Ok(1..=1));
    for (n, result) in (2..=CALLERS).zip(rest) {
        assert_eq!(result, Ok(n..=n), "caller {n}");
    }
    // One append for the first call, and the others coalesced into as few as arrived apart.
    let appends = backend.stats().commands - before;
    assert!(appends < CALLERS, "{appends} appends for {CALLERS} calls");
    assert_eq!(memory.head("c"), CALLERS);
    assert_eq!(
        counter.read(|c| c.value).await,
        Ok(CALLERS * (CALLERS + 1) / 2)
    );

    // Callers on tasks of their own, each persisting in turn: each sees its seqs in order,
    // no seq is given twice, and the state holds every acknowledged event once.
    const TASKS: u64 = 32;
    const EACH: u64 = 5;
    let mut done = Vec::new();
    for task in 0..TASKS {
        let counter = counter.clone();
        let (sender, receiver) = oneshot::channel();
        done.push(receiver);
        runtime.spawn(Box::pin(async move {
            let mut seqs = Vec::new();
            for _ in 0..EACH {
                match counter.persist(task + 1).await {
                    Ok(range) => seqs.push(*range.start()),
                    Err(error) => panic!("task {task}: {error}"),
                }
            }
            let _ = sender.send(seqs);
        }));
    }
    let mut all = Vec::new();
    for receiver in done {
        let seqs = receiver
            .await
            .expect("a caller task ended without answering");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        all.extend(seqs);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (CALLERS + 1..=CALLERS + TASKS * EACH).collect();
    assert_eq!(all, expected);
    let sum = CALLERS * (CALLERS + 1) / 2 + EACH * TASKS * (TASKS + 1) / 2;
    assert_eq!(counter.read(|c| c.value).await, Ok(sum));
    counter.close().await;
    assert_eq!(
        open(&backend, "c").await.state().expect("settled").value,
        sum
    );
}

/// A call `apply` refuses fails alone, with the entity's own error; the calls coalesced with
/// it are persisted.
pub async fn a_refusal_fails_only_its_caller(runtime: SharedRuntime) {
    let memory = Memory::new();
    let (store, _backend, counter) = shared_counter(&runtime, &memory).await;
    let mut first = Box::pin(counter.persist(1));
    assert!((&mut first).now_or_never().is_none());
    until_arrived(&runtime, &store, 1).await;
    let calls = futures::future::join3(counter.persist(2), counter.persist(0), counter.persist(3));
    let opener = async {
        runtime.sleep(Duration::from_millis(1)).await;
        store.open_gate();
    };
    let (first, (two, zero, three), ()) = futures::future::join3(first, calls, opener).await;
    assert_eq!(first, Ok(1..=1));
    assert_eq!(two, Ok(2..=2));
    match zero {
        Err(Error::Persist(PersistError::Rejected(Rejection::Refused(refusal)))) => {
            assert_eq!(
                refusal.downcast_ref::<String>().map(String::as_str),
                Some("zero increment")
            );
        }
        other => panic!("the zero increment was not refused: {other:?}"),
    }
    assert_eq!(three, Ok(3..=3));
    assert_eq!(counter.read(|c| c.value).await, Ok(6));
    assert_eq!(memory.head("c"), 3);
}

/// A store failure on a coalesced append: a write that did not land fails every request it
/// carried and is rolled back; a write that landed is acknowledged once. No caller is told
/// `Ok` for an event that is not durable.
pub async fn a_failed_coalesced_append_acknowledges_nothing_not_durable(runtime: SharedRuntime) {
    for (fault, lands) in [
        (Fault::FailBeforeWrite, false),
        (Fault::FailAfterWrite, true),
    ] {
        let memory = Memory::new();
        let (store, _backend, counter) = shared_counter(&runtime, &memory).await;
        let mut first = Box::pin(counter.persist(1));
        assert!((&mut first).now_or_never().is_none());
        until_arrived(&runtime, &store, 1).await;
        // Three calls queue behind the held append, then the gate lets it through alone; the
        // three go as one append, which meets the fault.
        let calls =
            futures::future::join3(counter.persist(2), counter.persist(3), counter.persist(4));
        let gate = async {
            runtime.sleep(Duration::from_millis(1)).await;
            store.let_one_through();
            until_arrived(&runtime, &store, 2).await;
            memory.inject(fault);
            store.open_gate();
        };
        let (first, (a, b, c), ()) = futures::future::join3(first, calls, gate).await;
        assert_eq!(first, Ok(1..=1), "{fault:?}");
        // The append that met the fault holds the three calls — unless one reached the entity
        // late (a loaded machine), and went in a later append, which no fault meets.
        let faulted = store.appended_by(2);
        assert!((1..=3).contains(&faulted), "{fault:?}: {faulted} events");
        let durable = memory.head("c");
        let mut value = 1;
        for (i, (n, result)) in [(2, &a), (3, &b), (4, &c)].into_iter().enumerate() {
            let fails = !lands && i < faulted;
            match result {
                Ok(range) => {
                    assert!(!fails, "{fault:?}: call {n} acknowledged");
                    assert!(
                        *range.end() <= durable,
                        "{fault:?}: {range:?} acknowledged past {durable}"
                    );
                    value += n;
                }
                Err(Error::Persist(PersistError::Failed {
                    landed: Some(false),
                    ..
                })) => assert!(fails, "{fault:?}: call {n} failed"),
                Err(other) => panic!("{fault:?}: {other}"),
            }
        }
        if lands {
            assert_eq!((a, b, c), (Ok(2..=2), Ok(3..=3), Ok(4..=4)));
        }
        let expected = if lands { 4 } else { 4 - faulted as u64 };
        assert_eq!(durable, expected, "{fault:?}");
        assert_eq!(counter.read(|c| c.value).await, Ok(value));
        // The entity goes on.
        assert_eq!(counter.persist(5).await, Ok(durable + 1..=durable + 1));
        assert_eq!(counter.read(|c| c.value).await, Ok(value + 5));
    }
}

/// A caller whose future is dropped after it asked: the others are answered, and the state
/// holds exactly the durable events (its request is not withdrawn).
pub async fn a_cancelled_caller_leaves_the_others_answered(runtime: SharedRuntime) {
    let memory = Memory::new();
    let (store, backend, counter) = shared_counter(&runtime, &memory).await;
    let mut first = Box::pin(counter.persist(1));
    assert!((&mut first).now_or_never().is_none());
    until_arrived(&runtime, &store, 1).await;
    // Asked, then dropped before any answer.
    assert!(counter.persist(10).now_or_never().is_none());
    let opener = async {
        runtime.sleep(Duration::from_millis(1)).await;
        store.open_gate();
    };
    let (first, third, ()) = futures::future::join3(first, counter.persist(100), opener).await;
    assert_eq!(first, Ok(1..=1));
    assert_eq!(third, Ok(3..=3));
    assert_eq!(memory.head("c"), 3);
    assert_eq!(counter.read(|c| c.value).await, Ok(111));
    counter.close().await;
    assert_eq!(
        open(&backend, "c").await.state().expect("settled").value,
        111
    );
}

/// [`Execution::Direct`]: a command that finds the backend idle runs in the submitting
/// thread; one submitted while it runs is group-committed on the blocking pool afterwards.
pub async fn direct_execution_runs_an_idle_command_in_place(runtime: SharedRuntime) {
    let memory = Memory::new();
    let store = Gated::closed(&memory);
    store.open_gate();
    let backend = Backend::from_parts(
        Arc::clone(&runtime),
        Box::new(store.clone()),
        Execution::Direct,
    );
    let mut a = open(&backend, "a").await;
    let mut b = open(&backend, "b").await;
    store.close_gate();
    // Each writer on a thread of its own: the first blocks its thread at the gate.
    let (a_done, a_result) = oneshot::channel();
    let a_thread = std::thread::spawn(move || {
        let result = futures::executor::block_on(a.persist(1));
        let _ = a_done.send((result, std::thread::current().id()));
    });
    until_arrived(&runtime, &store, 1).await;
    let (b_done, b_result) = oneshot::channel();
    let b_thread = std::thread::spawn(move || {
        let result = futures::executor::block_on(b.persist(2));
        let _ = b_done.send((result, std::thread::current().id()));
    });
    while backend.queued() < 1 {
        runtime.sleep(Duration::from_millis(1)).await;
    }
    store.open_gate();
    let (a_result, a_id) = a_result.await.expect("writer a answered");
    let (b_result, b_id) = b_result.await.expect("writer b answered");
    let _ = (a_thread.join(), b_thread.join());
    assert_eq!((a_result, b_result), (Ok(1..=1), Ok(1..=1)));
    let threads = store.threads();
    let appends = &threads[threads.len() - 2..];
    assert_eq!(
        appends[0], a_id,
        "the idle backend's command ran in its submitting thread"
    );
    assert_ne!(
        appends[1], b_id,
        "a command queued behind it ran on the blocking pool"
    );
    assert_eq!((memory.head("a"), memory.head("b")), (1, 1));
    assert_eq!(backend.health(), crate::StoreHealth::Open);
    // Idle again: the next command runs in place again.
    let mut c = open(&backend, "c").await;
    assert_eq!(c.persist(3).await, Ok(1..=1));
    assert_eq!(store.threads().last(), Some(&std::thread::current().id()));
}

/// [`Execution::InPlace`] (the default): an idle backend's command runs on the submitting
/// thread where the runtime can let it block without holding up its other tasks, else on the
/// blocking pool — and either way the executor's other tasks go on while it blocks, even with
/// more blocked writers than the executor has workers.
pub async fn in_place_execution_never_holds_up_other_tasks(runtime: SharedRuntime) {
    /// More than any suite runtime has workers.
    const WRITERS: usize = 4;
    let memory = Memory::new();
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let store = Gated::closed(&memory);
        store.open_gate();
        let backend = Backend::from_parts(
            Arc::clone(&runtime),
            Box::new(store.clone()),
            Execution::InPlace,
        );
        let mut entity = open(&backend, &format!("w{i}")).await;
        store.close_gate();
        let (done, answer) = oneshot::channel();
        let probe = Arc::clone(&runtime);
        runtime.spawn(Box::pin(async move {
            // Whether this executor blocks in place on the thread this task runs on.
            let in_place = probe.block_in_place(&mut || ());
            let result = entity.persist(1).await;
            let _ = done.send((result, in_place, std::thread::current().id()));
            drop(backend);
        }));
        writers.push((store, answer));
    }
    let mut stuck = None;
    for (store, _) in &writers {
        if within(until_arrived(&runtime, store, 1)).await.is_none() {
            stuck = Some("a writer never reached its gate");
            break;
        }
    }
    if stuck.is_none() {
        // Every writer blocks its thread; another task still runs.
        let (ran, other) = oneshot::channel();
        runtime.spawn(Box::pin(async move {
            let _ = ran.send(());
        }));
        if within(other).await.is_none() {
            stuck = Some("a task spawned while every writer blocks never ran");
        }
    }
    // Opened even when stuck, so that the executor can shut down after the verdict.
    for (store, _) in &writers {
        store.open_gate();
    }
    if let Some(what) = stuck {
        panic!("stuck: {what}");
    }
    for (i, (store, answer)) in writers.into_iter().enumerate() {
        let (result, in_place, resumed_on) = answer.await.expect("the writer answered");
        assert_eq!(result, Ok(1..=1), "writer {i}");
        let ran_on = store.threads().last().copied();
        if in_place {
            assert_eq!(ran_on, Some(resumed_on), "writer {i} ran in place");
        } else {
            assert_ne!(
                ran_on,
                Some(resumed_on),
                "writer {i} ran on the blocking pool"
            );
        }
        assert_eq!(memory.head(&format!("w{i}")), 1);
    }
}

/// `future`'s output, or `None` after a minute: a hang guard, never a verdict on speed. Its
/// timer is a thread of its own, so it fires even when every worker of the executor (and its
/// timer) is blocked.
async fn within<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    let (expired, timer) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        let _ = expired.send(());
    });
    let future = std::pin::pin!(future);
    match futures::future::select(future, timer).await {
        futures::future::Either::Left((output, _)) => Some(output),
        futures::future::Either::Right(_) => None,
    }
}

/// Generates one `#[test]` per behaviour-suite case, run on a real executor.
///
/// `$block_on` runs a future to completion (`|future| runtime.block_on(future)`); `$runtime`
/// builds the [`Runtime`](crate::Runtime), evaluated inside the executor.
#[macro_export]
macro_rules! behaviour_suite {
    ($block_on:expr, $runtime:expr) => {
        $crate::behaviour_suite!(@cases $block_on, $runtime;
            persist_then_recover,
            blocking_pool_runs_the_store_off_the_caller_thread,
            group_commit_batches_waiting_appends,
            concurrent_entities_stay_apart,
            failed_write_that_did_not_land_rolls_back,
            failed_write_that_landed_is_persisted_once,
            conflict_stops_the_journal,
            rejections_keep_the_state,
            rereads_are_retried_on_the_timer,
            a_fenced_store_is_reopened_and_persisting_goes_on,
            recovery_failure_is_typed,
            dropped_persist_is_finished_by_the_next_call,
            snapshots_compact_and_prune,
            light_strategy_recovers_from_the_snapshot,
            encrypted_entities_recover_and_refuse_a_wrong_key,
            driver_persists_into_state_the_caller_owns,
            a_commit_task_dropped_unrun_fails_its_commands,
            a_dropped_persist_shows_no_unacknowledged_state,
            one_writer_per_stream,
            concurrent_callers_are_acknowledged_in_order,
            a_refusal_fails_only_its_caller,
            a_failed_coalesced_append_acknowledges_nothing_not_durable,
            a_cancelled_caller_leaves_the_others_answered,
            direct_execution_runs_an_idle_command_in_place,
            in_place_execution_never_holds_up_other_tasks
        );
    };
    (@cases $block_on:expr, $runtime:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let block_on = $block_on;
                block_on(async {
                    let runtime: $crate::suite::SharedRuntime = ::std::sync::Arc::new($runtime);
                    $crate::suite::$case(runtime).await
                })
            }
        )*
    };
}
