//! A store fenced by a failed write recovers without a restart: the backend reopens it with
//! backoff, journals re-read and go on, and every repair the store reports reaches the
//! application. Run against a store that fails and recovers on command.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use persevere_core::memory::MemoryStore;
use persevere_core::{
    Command, CommandResult, Entity, Journal, JournalConfig, PersistError, Phase, Repair,
    StopReason, StorageError, Store, StreamCommand,
};
use persevere_driver::{
    Backend, BlockingWork, Claim, Error, Persistent, ReopenBackoff, Resume, Runtime, StoreHealth,
    Task,
};

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

/// Threads whose blocking work can be held back: while held, it waits in a queue, so a test
/// can act while a command is known to be in flight.
#[derive(Clone, Default)]
struct Gated(Arc<Mutex<Option<Vec<BlockingWork>>>>);

impl Gated {
    fn hold(&self) {
        *self.0.lock().unwrap() = Some(Vec::new());
    }
    fn release(&self) {
        let held = self.0.lock().unwrap().take();
        for work in held.into_iter().flatten() {
            std::thread::spawn(work);
        }
    }
}

impl Runtime for Gated {
    fn spawn(&self, task: Task) {
        std::thread::spawn(move || futures::executor::block_on(task));
    }
    fn spawn_blocking(&self, work: BlockingWork) {
        let mut held = self.0.lock().unwrap();
        match held.as_mut() {
            Some(queue) => queue.push(work),
            None => {
                drop(held);
                std::thread::spawn(work);
            }
        }
    }
    fn sleep(&self, duration: Duration) -> Task {
        Box::pin(async move { std::thread::sleep(duration) })
    }
}

#[derive(Default, Debug, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter {
    value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.value += n;
        Ok(())
    }
}

/// What the disk under the test store does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disk {
    /// Writes succeed.
    Space,
    /// Writes fail before anything lands; reads and reopening work.
    Full,
    /// Writes land but their sync fails (the outcome is unknown to the writer).
    SyncFails,
    /// Nothing works, reopening included.
    Gone,
    /// The next write lands, its sync fails, and then the device is gone.
    LandsThenGone,
}

#[derive(Debug)]
struct Control {
    disk: Disk,
    fenced: Option<String>,
    reopens: u32,
    /// Repairs to report at the next reopen.
    repair_at_reopen: Option<Repair>,
    /// The next reopen finds an empty store (acknowledged events lost underneath).
    lose_everything: bool,
    /// The seq of every snapshot the store was asked to save.
    snapshots: Vec<u64>,
}

#[derive(Clone)]
struct Handle(Arc<Mutex<Control>>);

impl Handle {
    fn get(&self) -> MutexGuard<'_, Control> {
        self.0.lock().unwrap()
    }
    fn set(&self, disk: Disk) {
        self.get().disk = disk;
    }
}

/// A memory store that fences itself when a write fails, like the file journal.
struct Flaky {
    inner: MemoryStore,
    control: Handle,
    repairs: Vec<Repair>,
}

fn flaky(repairs: Vec<Repair>) -> (Flaky, Handle) {
    let control = Handle(Arc::new(Mutex::new(Control {
        disk: Disk::Space,
        fenced: None,
        reopens: 0,
        repair_at_reopen: None,
        lose_everything: false,
        snapshots: Vec::new(),
    })));
    let store = Flaky {
        inner: MemoryStore::new(),
        control: control.clone(),
        repairs,
    };
    (store, control)
}

fn writes(batch: &[StreamCommand]) -> bool {
    batch.iter().any(|c| {
        !matches!(
            c.command,
            Command::LoadSnapshot { .. } | Command::ReadEvents { .. }
        )
    })
}

fn fail_all(batch: &[StreamCommand], reason: &str) -> Vec<CommandResult> {
    batch
        .iter()
        .map(|c| (c.command.id(), Err(StorageError::Failed(reason.into()))))
        .collect()
}

impl Store for Flaky {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        let mut control = self.control.get();
        for c in &batch {
            if let Command::SaveSnapshot { snapshot, .. } = &c.command {
                control.snapshots.push(snapshot.seq);
            }
        }
        if let Some(reason) = &control.fenced {
            return fail_all(&batch, &format!("fenced: {reason}"));
        }
        match control.disk {
            Disk::Gone => {
                control.fenced = Some("device gone".into());
                fail_all(&batch, "device gone")
            }
            Disk::Full if writes(&batch) => {
                control.fenced = Some("no space left on device".into());
                fail_all(&batch, "no space left on device")
            }
            Disk::SyncFails | Disk::LandsThenGone if writes(&batch) => {
                drop(Store::execute(&mut self.inner, batch.clone()));
                control.fenced = Some("fsync failed".into());
                if control.disk == Disk::LandsThenGone {
                    control.disk = Disk::Gone;
                }
                fail_all(&batch, "fsync failed")
            }
            _ => Store::execute(&mut self.inner, batch),
        }
    }

    fn repairs(&self) -> &[Repair] {
        &self.repairs
    }

    fn fenced(&self) -> Option<String> {
        self.control.get().fenced.clone()
    }

    fn reopen(&mut self) -> Result<(), StorageError> {
        let mut control = self.control.get();
        control.reopens += 1;
        if control.disk == Disk::Gone {
            return Err(StorageError::Failed("device gone".into()));
        }
        control.fenced = None;
        if std::mem::take(&mut control.lose_everything) {
            self.inner = MemoryStore::new();
        }
        if let Some(repair) = control.repair_at_reopen.take() {
            self.repairs.push(repair);
        }
        Ok(())
    }
}

/// One store behind several backends (as if in several processes).
#[derive(Clone)]
struct SharedStore(Arc<Mutex<Flaky>>);

impl Store for SharedStore {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .execute(batch)
    }
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    futures::executor::block_on(future)
}

fn config(stream: &str) -> JournalConfig {
    JournalConfig::new(stream).reread(3, Duration::from_millis(1))
}

fn open(backend: &Backend, stream: &str) -> Persistent<Counter> {
    run(Persistent::open(backend, config(stream), Counter::default)).unwrap()
}

fn instant_reopen(store: Flaky) -> Backend {
    instant_reopen_on(Threads, store)
}

fn instant_reopen_on(runtime: impl Runtime, store: Flaky) -> Backend {
    Backend::new(runtime, store)
        .with_reopen_backoff(ReopenBackoff::new(Duration::ZERO, Duration::ZERO))
}

/// A journal on `backend` whose second write (of 10, after an acknowledged 1) landed but was
/// reported failed, then stopped unresolved; the store is back.
fn landed_unresolved(backend: &Backend, disk: &Handle) -> Persistent<Counter> {
    let mut counter = open(backend, "c");
    run(counter.persist(1)).unwrap();
    disk.set(Disk::LandsThenGone);
    assert!(run(counter.persist(10)).is_err());
    assert!(matches!(
        counter.journal().stop_reason(),
        Some(StopReason::Unresolved { .. })
    ));
    disk.set(Disk::Space);
    counter
}

/// The durable truth, read by a fresh journal that takes the stream over from the test's
/// writer (one writer per stream: the old one writes nothing more).
fn durable(backend: &Backend, stream: &str) -> (u64, u64) {
    let config = config(stream);
    let recipe = move || Ok(Journal::<Counter>::new(config.clone(), Counter::default));
    let fresh = run(Persistent::open_claiming(
        backend,
        recipe,
        Counter::default(),
        Claim::TakeOver,
    ))
    .unwrap();
    (fresh.state().expect("settled").value, fresh.last_seq())
}

#[test]
fn a_full_disk_fails_persists_clearly_and_persisting_goes_on_once_it_has_space() {
    let (store, disk) = flaky(Vec::new());
    let backend = instant_reopen(store);
    let mut counter = open(&backend, "c");
    for _ in 0..3 {
        run(counter.persist(1)).unwrap();
    }
    disk.set(Disk::Full);
    for _ in 0..3 {
        let error = run(counter.persist(1)).unwrap_err();
        assert!(
            matches!(
                &error,
                Error::Persist(PersistError::Failed { reason, landed: Some(false) })
                    if reason.contains("no space left")
            ),
            "{error:?}"
        );
        assert_eq!(
            (counter.state().expect("settled").value, counter.last_seq()),
            (3, 3)
        );
    }
    assert!(disk.get().reopens >= 3, "{:?}", disk.get());
    disk.set(Disk::Space);
    assert_eq!(run(counter.persist(1)).unwrap(), 4..=4);
    assert_eq!(counter.state().expect("settled").value, 4);
    assert_eq!(backend.health(), StoreHealth::Open);
    assert_eq!(durable(&backend, "c"), (4, 4));
}

#[test]
fn a_write_that_landed_before_its_sync_failed_is_acknowledged_once() {
    let (store, disk) = flaky(Vec::new());
    let backend = instant_reopen(store);
    let mut counter = open(&backend, "c");
    run(counter.persist(1)).unwrap();
    disk.set(Disk::SyncFails);
    // The journal re-reads after the failure, finds its own write and acknowledges it.
    assert_eq!(run(counter.persist(10)).unwrap(), 2..=2);
    disk.set(Disk::Space);
    run(counter.persist(100)).unwrap();
    assert_eq!(
        (counter.state().expect("settled").value, counter.last_seq()),
        (111, 3)
    );
    assert_eq!(durable(&backend, "c"), (111, 3));
}

#[test]
fn a_journal_stopped_unresolved_recovers_on_its_next_use() {
    let (store, disk) = flaky(Vec::new());
    let backend = instant_reopen(store);
    let mut counter = open(&backend, "c");
    run(counter.persist(1)).unwrap();
    disk.set(Disk::Gone);
    let error = run(counter.persist(1)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Persist(PersistError::Failed { landed: None, .. })
        ),
        "{error:?}"
    );
    assert_eq!(counter.phase(), Phase::Stopped);
    assert!(matches!(
        counter.journal().stop_reason(),
        Some(StopReason::Unresolved { .. })
    ));
    // The state holds the unacknowledged event (the durable value is 1): it is not shown.
    let unknown =
        |error: Error| matches!(error, Error::StateUnknown { stream, .. } if stream == "c");
    assert!(unknown(counter.state().unwrap_err()));
    assert!(!counter.is_settled());
    assert!(unknown(run(counter.settle()).unwrap_err()));
    // Still gone: recovery fails, and the next call tries again.
    assert!(run(counter.persist(1)).is_err());
    assert!(run(counter.persist(1)).is_err());
    disk.set(Disk::Space);
    assert_eq!(run(counter.persist(5)).unwrap(), 2..=2);
    assert_eq!(
        (counter.state().expect("settled").value, counter.phase()),
        (6, Phase::Ready)
    );
    assert_eq!(durable(&backend, "c"), (6, 2));
}

#[test]
fn a_write_that_landed_unresolved_is_never_applied_twice_by_a_blind_retry() {
    let (store, disk) = flaky(Vec::new());
    let backend = instant_reopen(store);
    let mut counter = open(&backend, "c");
    run(counter.persist(1)).unwrap();
    disk.set(Disk::LandsThenGone);
    let error = run(counter.persist(10)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Persist(PersistError::Failed { landed: None, .. })
        ),
        "{error:?}"
    );
    assert_eq!(counter.phase(), Phase::Stopped);
    disk.set(Disk::Space);
    // The blind retry is refused once; the state now shows the write that landed.
    assert_eq!(
        run(counter.persist(10)).unwrap_err(),
        Error::Landed {
            acknowledged: 1,
            last_seq: 2
        }
    );
    assert_eq!(
        (counter.state().expect("settled").value, counter.last_seq()),
        (11, 2)
    );
    assert_eq!(run(counter.persist(100)).unwrap(), 3..=3);
    assert_eq!(durable(&backend, "c"), (111, 3));
}

#[test]
fn a_journal_that_finds_acknowledged_events_missing_refuses_for_good() {
    let (store, disk) = flaky(Vec::new());
    let backend = instant_reopen(store);
    let mut counter = open(&backend, "c");
    run(counter.persist(1)).unwrap();
    run(counter.persist(1)).unwrap();
    disk.set(Disk::Gone);
    assert!(run(counter.persist(1)).is_err());
    assert_eq!(counter.phase(), Phase::Stopped);
    disk.get().lose_everything = true;
    disk.set(Disk::Space);
    let missing = Error::Recovery(persevere_core::RecoveryError::MissingTail { last: 0, head: 2 });
    assert_eq!(run(counter.persist(1)).unwrap_err(), missing);
    // Never written on top of: the next calls are refused too.
    assert_eq!(run(counter.persist(1)).unwrap_err(), missing);
    assert_eq!(run(counter.resume()).unwrap_err(), missing);
    assert_eq!(durable(&backend, "c"), (0, 0));
}

#[test]
fn a_stopped_journal_resumes_only_after_a_storage_failure() {
    // Another writer is never overwritten: a conflict stays final.
    // Two backends on one store stand for two processes: within one, the second writer
    // would be refused at open ([`Error::Owned`]).
    let (store, _disk) = flaky(Vec::new());
    let store = SharedStore(Arc::new(Mutex::new(store)));
    let backend = Backend::new(Threads, store.clone());
    let other_process = Backend::new(Threads, store);
    let mut first = open(&backend, "c");
    assert_eq!(
        run(Persistent::<Counter>::open(
            &backend,
            config("c"),
            Counter::default
        ))
        .err(),
        Some(Error::Owned { stream: "c".into() })
    );
    let mut second = open(&other_process, "c");
    run(first.persist(1)).unwrap();
    assert!(matches!(
        run(second.persist(1)),
        Err(Error::Persist(PersistError::Conflict { .. }))
    ));
    assert_eq!(run(second.resume()).unwrap(), Resume::Unchanged);
    assert!(run(second.persist(1)).is_err());
    assert_eq!(durable(&backend, "c"), (1, 1));
}

#[test]
fn while_the_reopen_backoff_runs_commands_fail_at_once_without_touching_the_store() {
    let (store, disk) = flaky(Vec::new());
    let backend = Backend::new(Threads, store).with_reopen_backoff(ReopenBackoff::new(
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    ));
    let mut counter = open(&backend, "c");
    run(counter.persist(1)).unwrap();
    disk.set(Disk::Gone);
    let error = run(counter.persist(1)).unwrap_err();
    // One reopen attempt (the first batch after the fence); the journal's re-reads and every
    // later command are refused without calling the store.
    assert_eq!(disk.get().reopens, 1);
    assert!(matches!(
        backend.health(),
        StoreHealth::Fenced {
            failed_reopens: 1,
            ..
        }
    ));
    let refused = run(counter.persist(1)).unwrap_err().to_string();
    assert!(refused.contains("device gone"), "{error}; {refused}");
    assert!(refused.contains("next reopen attempt in"), "{refused}");
    for _ in 0..10 {
        assert!(run(counter.persist(1)).is_err());
    }
    assert_eq!(disk.get().reopens, 1);
}

#[test]
fn repairs_reach_the_backend_and_the_streams_they_involve() {
    let torn = Repair::new(
        "cut a torn tail",
        Some("quarantine/1".into()),
        vec!["a".into()],
    );
    let unknown = Repair::new("set aside a stray file", None, Vec::new());
    let (store, disk) = flaky(vec![torn.clone(), unknown.clone()]);
    let backend = instant_reopen(store);
    assert_eq!(backend.repairs(), vec![torn.clone(), unknown.clone()]);
    let a = open(&backend, "a");
    let b = open(&backend, "b");
    assert_eq!(a.repairs(), vec![torn.clone(), unknown.clone()]);
    assert_eq!(b.repairs(), vec![unknown.clone()]);

    // A repair made at a reopen is added to the others.
    let later = Repair::new("cut a torn tail at reopen", None, vec!["b".into()]);
    disk.get().repair_at_reopen = Some(later.clone());
    let mut b = b;
    disk.set(Disk::Full);
    assert!(run(b.persist(1)).is_err());
    disk.set(Disk::Space);
    run(b.persist(1)).unwrap();
    assert_eq!(
        backend.repairs(),
        vec![torn, unknown.clone(), later.clone()]
    );
    assert_eq!(b.repairs(), vec![unknown, later]);
}

#[test]
fn a_resume_cut_short_still_refuses_the_blind_retry_once() {
    let (store, disk) = flaky(Vec::new());
    let gate = Gated::default();
    let backend = instant_reopen_on(gate.clone(), store);
    let mut counter = landed_unresolved(&backend, &disk);
    // The retry's call is dropped while the resume's recovery waits for the store.
    gate.hold();
    assert!(counter.persist(10).now_or_never().is_none());
    gate.release();
    // Whatever settles the recovery, the retry is still refused once.
    assert_eq!(run(counter.settle()).unwrap().value, 11);
    assert_eq!(
        run(counter.persist(10)).unwrap_err(),
        Error::Landed {
            acknowledged: 1,
            last_seq: 2
        }
    );
    assert_eq!(run(counter.persist(100)).unwrap(), 3..=3);
    assert_eq!(durable(&backend, "c"), (111, 3));
}

#[test]
fn a_handle_refuses_every_request_of_the_burst_that_finds_a_write_landed() {
    let (store, disk) = flaky(Vec::new());
    let gate = Gated::default();
    let backend = instant_reopen_on(gate.clone(), store);
    let handle = landed_unresolved(&backend, &disk).into_handle();
    // The first request makes the entity's task resume the journal, which waits for the
    // store; a blind retry of the write that landed is sent meanwhile.
    gate.hold();
    let mut first = Box::pin(handle.persist(5));
    let mut retry = Box::pin(handle.persist(10));
    assert!((&mut first).now_or_never().is_none());
    assert!((&mut retry).now_or_never().is_none());
    gate.release();
    let landed = Error::Landed {
        acknowledged: 1,
        last_seq: 2,
    };
    assert_eq!(run(first).unwrap_err(), landed);
    assert_eq!(run(retry).unwrap_err(), landed);
    assert_eq!(run(handle.read(|c| c.value)), Ok(11));
    assert_eq!(run(handle.persist(100)), Ok(3..=3));
    run(handle.close());
    assert_eq!(durable(&backend, "c"), (111, 3));
}

#[test]
fn a_handle_does_not_read_a_state_left_unknown() {
    let (store, disk) = flaky(Vec::new());
    let backend = instant_reopen(store);
    let mut counter = open(&backend, "c");
    run(counter.persist(1)).unwrap();
    disk.set(Disk::Gone);
    assert!(run(counter.persist(1)).is_err());
    let handle = counter.into_handle();
    assert!(matches!(
        run(handle.read(|c| c.value)),
        Err(Error::StateUnknown { .. })
    ));
    disk.set(Disk::Space);
    assert_eq!(run(handle.persist(5)), Ok(2..=2));
    assert_eq!(run(handle.read(|c| c.value)), Ok(6));
}

#[test]
fn a_writer_taken_over_sends_nothing_more() {
    let (store, disk) = flaky(Vec::new());
    let gate = Gated::default();
    let backend = instant_reopen_on(gate.clone(), store);
    let config = || config("c").snapshot_every(Some(2));
    let recipe = move || Ok(Journal::<Counter>::new(config(), Counter::default));
    let mut old = run(Persistent::open_with(&backend, recipe, Counter::default())).unwrap();
    run(old.persist(1)).unwrap();
    // Its second write is in flight (the call dropped) when a newer writer takes over.
    gate.hold();
    assert!(old.persist(2).now_or_never().is_none());
    let newer = std::thread::spawn({
        let backend = backend.clone();
        move || {
            run(Persistent::open_claiming(
                &backend,
                recipe,
                Counter::default(),
                Claim::TakeOver,
            ))
        }
    });
    while old.owns_stream() {
        std::thread::yield_now();
    }
    gate.release();
    let mut newer = newer.join().unwrap().unwrap();
    // Settling the old writer takes its write's answer: the snapshot every second event would
    // then be due, and is never sent.
    assert_eq!(run(old.settle()).unwrap().value, 3);
    assert!(matches!(run(old.persist(4)), Err(Error::Superseded { .. })));
    assert_eq!(run(newer.persist(10)).unwrap(), 3..=3);
    run(newer.snapshot()).unwrap();
    // The newer writer's own snapshot, due at its first write; none from the old one.
    assert_eq!(disk.get().snapshots, vec![3]);
}

/// A driver of `Counter` on `backend`, stream `c`, with a recipe (so it can recover).
fn driver(backend: &Backend, state: &mut Counter) -> persevere_driver::Driver<Counter> {
    let config = config("c");
    let recipe = move || Ok(Journal::<Counter>::new(config.clone(), Counter::default));
    run(persevere_driver::Driver::open_with(
        backend,
        Box::new(recipe),
        state,
    ))
    .unwrap()
}

#[test]
fn recover_rebuilds_a_state_that_came_apart_from_the_log_and_keeps_the_stream() {
    let (store, _disk) = flaky(Vec::new());
    let backend = instant_reopen(store);
    let mut state = Counter::default();
    let mut driver = driver(&backend, &mut state);
    run(driver.persist(1, &mut state)).unwrap();
    run(driver.persist(2, &mut state)).unwrap();
    state.value = 999;
    assert_eq!(
        run(driver.recover(&mut state)).unwrap(),
        Resume::Recovered { last_seq: 2 }
    );
    assert_eq!(state.value, 3);
    assert!(driver.owns_stream());
    assert_eq!(run(driver.persist(4, &mut state)).unwrap(), 3..=3);
    assert_eq!(durable(&backend, "c"), (7, 3));
}

#[test]
fn recover_after_a_write_that_landed_unresolved_reports_it_landed_once() {
    let (store, disk) = flaky(Vec::new());
    let backend = instant_reopen(store);
    let mut state = Counter::default();
    let mut driver = driver(&backend, &mut state);
    run(driver.persist(1, &mut state)).unwrap();
    disk.set(Disk::LandsThenGone);
    assert!(run(driver.persist(10, &mut state)).is_err());
    disk.set(Disk::Space);
    let mut aside = Counter::default();
    assert_eq!(
        run(driver.recover(&mut aside)).unwrap(),
        Resume::Landed {
            acknowledged: 1,
            last_seq: 2
        }
    );
    assert_eq!(aside.value, 11);
    // Reported once: the driver goes on from the log.
    assert_eq!(
        run(driver.recover(&mut state)).unwrap(),
        Resume::Recovered { last_seq: 2 }
    );
    assert_eq!(run(driver.persist(100, &mut state)).unwrap(), 3..=3);
    assert_eq!(durable(&backend, "c"), (111, 3));
}

/// A caller that polls each call once and drops it if it waits (`now_or_never`, a `select!`
/// that loses at once) while a long replay is paused between slices: every call still takes
/// the recovery one slice further, so a call gets through after a bounded number of tries.
#[test]
fn calls_dropped_at_their_first_wait_still_take_a_replay_forward() {
    let (store, disk) = flaky(Vec::new());
    let backend = Backend::inline(Threads, store)
        .with_reopen_backoff(ReopenBackoff::new(Duration::ZERO, Duration::ZERO));
    // No snapshot: the recovery replays every event, in pages of several slices.
    let config = config("c").snapshot_every(None);
    let mut counter: Persistent<Counter> =
        run(Persistent::open(&backend, config, Counter::default)).unwrap();
    let events = 5 * persevere_driver::REPLAY_SLICE as u64;
    run(counter.persist_all(vec![1; events as usize])).unwrap();
    disk.set(Disk::Gone);
    assert!(run(counter.persist(1)).is_err());
    disk.set(Disk::Space);
    let tries = (1..=50)
        .find(|_| counter.persist(1).now_or_never().is_some())
        .expect("no call got through in 50 tries");
    assert!(tries > 1, "the recovery never yielded");
    assert_eq!(counter.state().expect("settled").value, events + 1);
    assert_eq!(durable(&backend, "c"), (events + 1, events + 1));
}
