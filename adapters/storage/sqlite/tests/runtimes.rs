//! The driver on the SQLite store, on each runtime: persist and recover, many entities
//! group-committed on the blocking pool, snapshots with compaction and retention, the Light
//! strategy. (The driver's own behaviour suite, with fault injection, runs on the memory store
//! in each runtime crate; these cases run the same driver over this store.)

use std::path::Path;
use std::sync::Arc;

use futures::channel::oneshot;
use persevere_core::{Entity, JournalConfig, Strategy};
use persevere_driver::{Backend, Persistent, Runtime};
use persevere_sqlite::rusqlite::Connection;
use persevere_sqlite::SqliteStore;

#[derive(Debug, Default, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter {
    value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;

    fn apply(&mut self, n: &u64) -> Result<(), String> {
        if *n == 0 {
            return Err("zero increment".into());
        }
        self.value += n;
        Ok(())
    }
}

type SharedRuntime = Arc<dyn Runtime>;

/// A backend on the store at `path`; waits while a backend dropped a moment ago still holds it
/// (its last batch finishing on the blocking pool).
fn backend(runtime: &SharedRuntime, path: &Path) -> Backend {
    let store = loop {
        match SqliteStore::open_or_create(path) {
            Err(persevere_sqlite::SqliteError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            opened => break opened.expect("the store opens"),
        }
    };
    Backend::from_parts(
        Arc::clone(runtime),
        Box::new(store),
        persevere_driver::Execution::Blocking,
    )
}

async fn open(backend: &Backend, config: JournalConfig) -> Persistent<Counter> {
    match Persistent::open(backend, config, Counter::default).await {
        Ok(entity) => entity,
        Err(error) => panic!("open failed: {error}"),
    }
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .expect("query")
}

async fn persist_then_recover(runtime: SharedRuntime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let backend = backend(&runtime, &path);
    let mut counter = open(&backend, JournalConfig::new("counter")).await;
    for i in 1..=10 {
        assert_eq!(counter.persist(1).await.ok(), Some(i..=i));
    }
    assert_eq!(counter.persist_all([2, 3]).await.ok(), Some(11..=12));
    assert_eq!(counter.snapshot().await.ok(), Some(12));
    drop(counter);
    drop(backend);
    let backend = self::backend(&runtime, &path);
    let again = open(&backend, JournalConfig::new("counter")).await;
    assert_eq!(again.state().expect("settled").value, 15);
    assert_eq!(again.last_seq(), 12);
    assert_eq!(again.journal().snapshot_seq(), Some(12));
}

async fn many_entities_are_group_committed(runtime: SharedRuntime) {
    const ENTITIES: u64 = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let backend = backend(&runtime, &path);
    let mut done = Vec::new();
    for i in 0..ENTITIES {
        let backend = backend.clone();
        let (sender, receiver) = oneshot::channel();
        done.push(receiver);
        runtime.spawn(Box::pin(async move {
            let mut counter = open(&backend, JournalConfig::new(format!("e/{i}"))).await;
            for _ in 0..5 {
                if counter.persist(i + 1).await.is_err() {
                    break;
                }
            }
            let value = counter.state().expect("settled").value;
            drop(counter);
            drop(backend);
            let _ = sender.send(value);
        }));
    }
    for (i, receiver) in (0..).zip(done) {
        assert_eq!(receiver.await.ok(), Some(5 * (i + 1)));
    }
    let stats = backend.stats();
    assert!(stats.batches < stats.commands, "no group commit: {stats:?}");
    drop(backend);
    assert_eq!(
        count(&path, "SELECT count(*) FROM persevere_events"),
        (ENTITIES * 5) as i64
    );
    let backend = self::backend(&runtime, &path);
    for i in 0..ENTITIES {
        let again = open(&backend, JournalConfig::new(format!("e/{i}"))).await;
        assert_eq!(again.state().expect("settled").value, 5 * (i + 1));
    }
}

async fn snapshots_compact_and_prune(runtime: SharedRuntime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let backend = backend(&runtime, &path);
    let config = JournalConfig::new("c")
        .snapshot_every(Some(5))
        .compact_on_snapshot(true)
        .keep_snapshots(1);
    let mut counter = open(&backend, config.clone()).await;
    for _ in 0..12 {
        counter.persist(1).await.ok();
    }
    drop(counter);
    drop(backend);
    assert_eq!(count(&path, "SELECT head FROM persevere_stream_heads"), 12);
    assert_eq!(count(&path, "SELECT count(*) FROM persevere_snapshots"), 1);
    assert_eq!(count(&path, "SELECT max(seq) FROM persevere_snapshots"), 10);
    assert_eq!(count(&path, "SELECT min(seq) FROM persevere_events"), 11);
    let backend = self::backend(&runtime, &path);
    let again = open(&backend, config).await;
    assert_eq!(again.state().expect("settled").value, 12);
}

async fn light_strategy_recovers_from_the_snapshot(runtime: SharedRuntime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let backend = backend(&runtime, &path);
    let config = JournalConfig::new("c").strategy(Strategy::Light);
    let mut counter = open(&backend, config.clone()).await;
    for _ in 0..3 {
        counter.persist(2).await.ok();
    }
    assert_eq!(counter.persist(0).await.ok(), None, "apply refuses zero");
    drop(counter);
    drop(backend);
    assert_eq!(count(&path, "SELECT count(*) FROM persevere_snapshots"), 3);
    let backend = self::backend(&runtime, &path);
    let again = open(&backend, config).await;
    assert_eq!(again.state().expect("settled").value, 6);
    assert_eq!(again.journal().snapshot_seq(), Some(3));
}

macro_rules! cases {
    ($block_on:expr, $runtime:expr) => {
        cases!(@each $block_on, $runtime;
            persist_then_recover,
            many_entities_are_group_committed,
            snapshots_compact_and_prune,
            light_strategy_recovers_from_the_snapshot
        );
    };
    (@each $block_on:expr, $runtime:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let block_on = $block_on;
                block_on(async {
                    let runtime: crate::SharedRuntime = ::std::sync::Arc::new($runtime);
                    crate::$case(runtime).await
                })
            }
        )*
    };
}

mod tokio_multi_thread {
    cases!(
        |future| tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(future),
        persevere_tokio::Tokio::current()
    );
}

mod tokio_current_thread {
    cases!(
        |future| tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(future),
        persevere_tokio::Tokio::current()
    );
}

mod smol_runtime {
    cases!(smol::block_on, persevere_smol::Smol);
}

mod async_std_runtime {
    cases!(async_std::task::block_on, persevere_async_std::AsyncStd);
}
