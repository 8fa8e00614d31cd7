//! Event-sourced kameo actors: recovery in `on_start`, persistence from handlers, snapshots,
//! kill, supervised restarts, corrupt stores, encryption.

mod common;

use common::*;
use kameo::prelude::*;
use kameo::supervision::RestartPolicy;
use std::sync::Arc;

use persevere_core::seal::{Key, KeyId, KeyRing};
use persevere_kameo::{Error, Journaled};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_respawn_recovers_every_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = CounterArgs::new(file_key(dir.path(), "counter"));
    let counter = Counter::spawn(args.clone());
    for n in 1..=5 {
        assert_eq!(counter.ask(Add(1)).await.expect("add"), n);
    }
    counter.kill();
    gone(&counter).await;

    let again = Counter::spawn(args.clone());
    assert_eq!(again.ask(Get).await.expect("get").0, 5);
    assert_eq!(again.ask(Add(1)).await.expect("add"), 6);
    stop(&again).await;
    assert_eq!(args.starts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_writes_a_final_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = CounterArgs::new(file_key(dir.path(), "counter"));
    let counter = Counter::spawn(args.clone());
    for _ in 0..3 {
        counter.ask(Add(2)).await.expect("add");
    }
    assert_eq!(counter.ask(Get).await.expect("get"), (6, None));
    stop(&counter).await;

    let again = Counter::spawn(args);
    assert_eq!(again.ask(Get).await.expect("get"), (6, Some(3)));
    stop(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_written_every_n_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = CounterArgs::new(file_key(dir.path(), "counter"));
    args.snapshot_every = Some(4);
    let counter = Counter::spawn(args);
    for _ in 0..10 {
        counter.ask(Add(1)).await.expect("add");
    }
    assert_eq!(counter.ask(Get).await.expect("get"), (10, Some(8)));
    counter.kill();
    gone(&counter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_restart_recovers_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = CounterArgs::new(file_key(dir.path(), "counter"));
    let root = Root::spawn(Root);
    let counter = Counter::supervise(&root, args.clone())
        .restart_policy(RestartPolicy::Permanent)
        .spawn()
        .await;
    for _ in 0..3 {
        counter.ask(Add(1)).await.expect("add");
    }
    assert!(counter.ask(Panic).await.is_err());

    // The same reference reaches the restarted instance, which recovered from the journal.
    let state = loop {
        match counter.ask(Get).await {
            Ok(state) if args.starts() == 2 => break state,
            _ => tokio::task::yield_now().await,
        }
    };
    assert_eq!(state.0, 3);
    assert_eq!(counter.ask(Add(1)).await.expect("add"), 4);
    stop(&root).await;

    // The panicked instance wrote no snapshot of its possibly half-changed state, and the
    // restarted one owns the key.
    let again = Counter::spawn(CounterArgs::new(args.key.clone()));
    assert_eq!(again.ask(Get).await.expect("get").0, 4);
    stop(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_store_fails_on_start_instead_of_starting_fresh() {
    let memory = tamper_scheme("tamper-journaled");
    let key = key("tamper-journaled://store/counter");
    let counter = Counter::spawn(CounterArgs::new(key.clone()));
    for _ in 0..3 {
        counter.ask(Add(1)).await.expect("add");
    }
    stop(&counter).await;

    // A damaged snapshot alone is skipped (the events rebuild the state)...
    memory.with_store(|store| {
        let stream = store.stream_mut("counter");
        for bytes in stream.snapshots.values_mut() {
            let middle = bytes.len() / 2;
            bytes.make_mut()[middle] ^= 0x40;
        }
    });
    let again = Counter::spawn(CounterArgs::new(key.clone()));
    assert_eq!(start_error(&again).await, None);
    assert_eq!(again.ask(Get).await.expect("get").0, 3);
    again.kill();
    gone(&again).await;

    // ...but when what is left cannot be read, on_start fails.
    memory.with_store(|store| {
        let stream = store.stream_mut("counter");
        for bytes in stream.snapshots.values_mut() {
            let middle = bytes.len() / 2;
            bytes.make_mut()[middle] ^= 0x40;
        }
        let event = stream.events.get_mut(&2).expect("event 2");
        let last = event.len() - 1;
        event.make_mut()[last] ^= 0x01;
    });
    let broken = Counter::spawn(CounterArgs::new(key));
    let error = start_error(&broken).await.expect("on_start fails");
    assert!(error.is_recovery(), "{error}");
    gone(&broken).await;
    assert!(!broken.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_journal_of_a_key_owns_it() {
    let key = key("memory://owners/counter");
    let mut old = Journaled::<Count>::open(&key, Count::default)
        .await
        .expect("open");
    old.persist(1).await.expect("persist");
    let mut new = Journaled::<Count>::open(&key, Count::default)
        .await
        .expect("open");
    assert_eq!(new.state().expect("settled").0, 1);
    assert!(matches!(old.persist(1).await, Err(Error::Superseded(_))));
    assert!(!old.owns_key());
    let stopped = ActorStopReason::Normal;
    assert_eq!(old.snapshot_on_stop(&stopped).await, Ok(None));
    new.persist(1).await.expect("persist");
    assert_eq!(new.snapshot_on_stop(&stopped).await, Ok(Some(2)));
    drop(old);
    assert!(new.owns_key());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_schemes_and_bad_keys_are_errors() {
    let unknown = Counter::spawn(CounterArgs::new(key("nosuch://store/counter")));
    assert!(matches!(
        start_error(&unknown).await,
        Some(Error::UnknownScheme { .. })
    ));
    let bad = Counter::spawn(CounterArgs::new(key("memory://no-stream")));
    assert!(matches!(start_error(&bad).await, Some(Error::Key { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_journal_recovers_with_its_key_and_refuses_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sealed = |byte| {
        let mut args = CounterArgs::new(file_key(dir.path(), "secret"));
        args.snapshot_every = Some(2);
        args.keys = Some(Arc::new(KeyRing::new(
            KeyId(1),
            Key::from_bytes([byte; 32]),
        )));
        args
    };
    let counter = Counter::spawn(sealed(7));
    for _ in 0..3 {
        counter.ask(Add(1)).await.expect("add");
    }
    stop(&counter).await;

    let again = Counter::spawn(sealed(7));
    assert_eq!(again.ask(Get).await.expect("get").0, 3);
    stop(&again).await;

    // Another key: on_start fails; the actor never starts from an empty state.
    let wrong = Counter::spawn(sealed(8));
    let error = start_error(&wrong).await.expect("on_start fails");
    assert!(error.is_recovery(), "{error}");
    gone(&wrong).await;
    // Nor does a plaintext journal read the sealed records.
    let plain = Counter::spawn(CounterArgs::new(file_key(dir.path(), "secret")));
    let error = start_error(&plain).await.expect("on_start fails");
    assert!(error.is_recovery(), "{error}");
    gone(&plain).await;
}

/// A store opened in one runtime keeps working in the next (tests and applications that build
/// a runtime after dropping another): its work runs on the runtime current when it is used.
#[test]
fn a_store_outlives_the_runtime_that_opened_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = file_key(dir.path(), "runtimes");
    for expected in 1..=2 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            let counter = Counter::spawn(CounterArgs::new(key.clone()));
            assert_eq!(counter.ask(Add(1)).await.expect("add"), expected);
            stop(&counter).await;
        });
    }
}

/// Keys are normalised or refused, never reinterpreted: a memory key with a query (which
/// would share the stream of the key without it), a file key with a host, and text a URL
/// parser rewrites are refused; two journals of one stream never both write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_normalised_or_refused_and_one_stream_has_one_writer() {
    let opened = Journaled::<Count>::open(&key("memory://normal/c?x"), Count::default).await;
    assert!(matches!(opened, Err(Error::Key { .. })), "{opened:?}");
    let opened = Journaled::<Count>::open(&key("file://relative/x"), Count::default).await;
    assert!(matches!(opened, Err(Error::Key { .. })), "{opened:?}");
    assert!(matches!(
        persevere_kameo::parse_key("file:relative/x"),
        Err(Error::Key { .. })
    ));
    let mut old = Journaled::<Count>::open(&key("memory://normal/c"), Count::default)
        .await
        .expect("open");
    let mut new = Journaled::<Count>::open(&key("memory://normal/c#again"), Count::default)
        .await
        .expect("open");
    assert!(new.owns_key() && !old.owns_key());
    assert!(matches!(old.persist(1).await, Err(Error::Superseded(_))));
    new.persist(1).await.expect("persist");
}

/// A store that holds every batch until its gate opens.
#[derive(Clone, Default)]
struct Gated {
    memory: persevere_memory::Memory,
    open: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Gated {
    fn set(&self, open: bool) {
        *self.open.0.lock().expect("gate") = open;
        self.open.1.notify_all();
    }
}

impl persevere_core::Store for Gated {
    fn execute(
        &mut self,
        batch: Vec<persevere_core::StreamCommand>,
    ) -> Vec<persevere_core::CommandResult> {
        let (lock, ready) = &*self.open;
        let mut open = lock.lock().expect("gate");
        while !*open {
            open = ready.wait(open).expect("gate");
        }
        drop(open);
        persevere_core::Store::execute(&mut self.memory, batch)
    }
}

/// A persist dropped mid-flight (a `timeout`, a `select!`) never leaves its unacknowledged
/// event visible: the state is refused until the request is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_persist_shows_no_unacknowledged_state() {
    let gated = Gated::default();
    gated.set(true);
    let store = gated.clone();
    persevere_kameo::register_scheme("gated", move |_, runtime| {
        Ok(persevere_driver::Backend::new(
            runtime.clone(),
            store.clone(),
        ))
    });
    let mut count = Journaled::<Count>::open(&key("gated://s/c"), Count::default)
        .await
        .expect("open");
    count.persist(1).await.expect("persist");
    gated.set(false);
    // Polled once, then dropped: its append waits at the gate.
    let dropped = tokio::time::timeout(std::time::Duration::ZERO, count.persist(10)).await;
    assert!(dropped.is_err());
    let settled = count.is_settled();
    let refused = matches!(
        count.state(),
        Err(Error::Journal { source, .. })
            if matches!(*source, persevere_driver::Error::Unsettled { .. })
    );
    let shown = count.state().map(|c| c.0).ok();
    // The gate opens before any verdict, so that a failure never leaves the store waiting.
    gated.set(true);
    assert!(
        !settled && refused,
        "the state was shown unsettled: {shown:?}"
    );
    assert_eq!(count.settle().await.map(|c| c.0), Ok(11));
    assert_eq!(count.state().map(|c| c.0), Ok(11));
}
