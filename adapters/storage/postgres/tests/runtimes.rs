//! The store through the driver on every executor: tokio (both flavours), smol, async-std and
//! plain threads; and dropped on a tokio worker.

mod common;

use std::time::Duration;

use persevere_core::{Entity, JournalConfig};
use persevere_driver::{Backend, BlockingWork, Persistent, Runtime, Task};
use persevere_postgres::PostgresStore;

#[derive(Debug, Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter(u64);

impl Entity for Counter {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.0 = self.0.checked_add(*n).ok_or("overflow")?;
        Ok(())
    }
}

/// Twenty entities persisting at once, then recovered by a second backend.
async fn persist_and_recover(open: impl Fn() -> Backend) {
    let backend = open();
    let mut entities = Vec::new();
    for e in 0..20 {
        let config = JournalConfig::new(format!("counter-{e}"));
        entities.push(
            Persistent::<Counter>::open(&backend, config, Counter::default)
                .await
                .expect("opens"),
        );
    }
    let persists = entities.iter_mut().map(|c| async move {
        for n in 1..=5 {
            c.persist(n).await.expect("persists");
        }
    });
    futures::future::join_all(persists).await;
    drop(entities);
    drop(backend);
    let backend = open();
    for e in 0..20 {
        let config = JournalConfig::new(format!("counter-{e}"));
        let counter = Persistent::<Counter>::open(&backend, config, Counter::default)
            .await
            .expect("recovers");
        assert_eq!(counter.state().expect("settled").0, 15);
    }
}

#[test]
fn on_tokio_current_thread_and_multi_thread() {
    let Some(server) = common::server() else {
        return;
    };
    for multi in [false, true] {
        let schema = common::Schema::new(&server, "tokio");
        let mut builder = if multi {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let runtime = builder.enable_all().build().expect("a runtime");
        runtime.block_on(persist_and_recover(|| {
            Backend::new(persevere_tokio::Tokio::current(), schema.open())
        }));
    }
}

#[test]
fn on_smol() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "smol");
    smol::block_on(persist_and_recover(|| {
        Backend::new(persevere_smol::Smol, schema.open())
    }));
}

#[test]
fn on_async_std() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "asyncstd");
    async_std::task::block_on(persist_and_recover(|| {
        Backend::new(persevere_async_std::AsyncStd, schema.open())
    }));
}

/// A runtime of plain threads.
struct Threads;

impl Runtime for Threads {
    fn spawn(&self, task: Task) {
        std::thread::spawn(move || futures::executor::block_on(task));
    }
    fn spawn_blocking(&self, work: BlockingWork) {
        std::thread::spawn(work);
    }
    fn sleep(&self, d: Duration) -> Task {
        Box::pin(async move { std::thread::sleep(d) })
    }
}

#[test]
fn on_plain_threads() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "threads");
    futures::executor::block_on(persist_and_recover(|| Backend::new(Threads, schema.open())));
}

#[test]
fn the_store_can_be_used_and_dropped_on_a_tokio_worker() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "worker");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let config = schema.config.clone();
    runtime.block_on(async move {
        let task = tokio::spawn(async move {
            // Opened, used and dropped on the worker itself: no runtime inside to panic.
            let mut store = PostgresStore::open_config(config).expect("opens");
            let result = common::one(&mut store, common::append("s", 1, 0, b"one"));
            drop(store);
            result
        });
        assert!(task.await.expect("the task").is_ok());
    });
}
