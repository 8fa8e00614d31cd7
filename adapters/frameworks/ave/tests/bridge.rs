//! Code written against ave-actors-store itself — its own `PersistentActor`, whose
//! `start_store` takes any `impl DbManager` — keeps its state in persevere's file journal by
//! being handed our manager, and recovers it after a restart.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Event, Handler,
    Message, Response,
};
use ave_actors_store::store::{FullPersistence, PersistentActor};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::FileManager;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
struct Added(i32);

impl Event for Added {}

#[derive(Debug, Clone)]
enum Msg {
    Add(i32),
    Get,
}

impl Message for Msg {}

#[derive(Debug, Clone, PartialEq)]
struct Value(i32);

impl Response for Value {}

/// An actor of ave-actors-store, untouched but for the manager it is given.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
struct Counter {
    value: i32,
    #[borsh(skip)]
    manager: Option<FileManager>,
}

#[async_trait]
impl Actor for Counter {
    type Message = Msg;
    type Event = Added;
    type Response = Value;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Counter", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        let manager = self.manager.clone().ok_or_else(|| ActorError::Functional {
            description: "no manager".into(),
        })?;
        self.start_store("counter", None, ctx, manager, None).await
    }
}

#[async_trait]
impl Handler<Counter> for Counter {
    async fn handle_message(
        &mut self,
        _: ActorPath,
        msg: Msg,
        ctx: &mut ActorContext<Self>,
    ) -> Result<Value, ActorError> {
        if let Msg::Add(n) = msg {
            self.persist(&Added(n), ctx).await?;
        }
        Ok(Value(self.value))
    }
}

impl PersistentActor for Counter {
    type Persistence = FullPersistence;
    type InitParams = FileManager;

    fn create_initial(manager: FileManager) -> Self {
        Self {
            value: 0,
            manager: Some(manager),
        }
    }

    fn apply(&mut self, Added(n): &Added) -> Result<(), ActorError> {
        self.value += n;
        Ok(())
    }

    fn update(&mut self, state: Self) {
        self.value = state.value;
    }
}

async fn run(manager: &FileManager, add: i32) -> i32 {
    let (system, mut runner) =
        ActorSystem::create(CancellationToken::new(), CancellationToken::new());
    let counter: ActorRef<Counter> = system
        .create_root_actor("counter", Counter::initial(manager.clone()))
        .await
        .unwrap();
    let Value(value) = counter.ask(Msg::Add(add)).await.unwrap();
    assert_eq!(counter.ask(Msg::Get).await.unwrap(), Value(value));
    system.stop_system();
    runner.run().await;
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ave_actors_store_actors_persist_through_our_file_manager() {
    let dir = tempfile::tempdir().unwrap();
    let manager = FileManager::open_or_create(dir.path()).unwrap();
    assert_eq!(run(&manager, 3).await, 3);
    assert_eq!(run(&manager, 4).await, 7);
    drop(manager);

    // As a new process would: the directory alone holds the state. It opens at once, with no
    // retry: a handle still held by the stopped system's store actors (ave drops them on their
    // own tasks after the stop returns) is shared, and one being dropped is waited for.
    let manager = FileManager::open(dir.path()).unwrap();
    assert_eq!(run(&manager, 5).await, 12);
}

/// The open-after-stop race, many times over: every round stops a system and reopens the
/// directory at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_systems_directory_reopens_at_once_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut manager = FileManager::open_or_create(dir.path()).unwrap();
    for round in 1..=40 {
        assert_eq!(run(&manager, 1).await, round, "round {round}");
        drop(manager);
        manager = FileManager::open(dir.path()).unwrap();
    }
}

/// Tells a channel when the driver's registry of open stores starts waiting for a store's
/// release (its DEBUG event), so the test lets go of the store only while the open waits.
struct OnReleaseWait(std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>);

impl tracing::Subscriber for OnReleaseWait {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        if metadata.target() == "persevere_driver::open_stores"
            && *metadata.level() == tracing::Level::DEBUG
        {
            if let Some(waiting) = self.0.lock().unwrap().take() {
                let _ = waiting.send(());
            }
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// A store that outlives its last manager (its backend kept elsewhere, as a commit thread
/// keeps it while dropping it) holds the directory's lock: an open waits until the store is
/// dropped, then opens — never a lock error — for longer than the file store's own lock retry.
#[test]
fn an_open_waits_for_a_store_outliving_its_manager() {
    let dir = tempfile::tempdir().unwrap();
    let manager = FileManager::open_or_create(dir.path()).unwrap();
    let kept = manager.manager().backend().clone();
    drop(manager);
    let (waiting, wait_started) = std::sync::mpsc::channel();
    let keeper = std::thread::spawn(move || {
        // Until the open waits (or gives up): then the store is dropped.
        let _ = wait_started.recv();
        drop(kept);
    });
    let watcher = OnReleaseWait(std::sync::Mutex::new(Some(waiting)));
    let opened = tracing::subscriber::with_default(watcher, || FileManager::open(dir.path()));
    keeper.join().unwrap();
    let manager = opened.unwrap();
    assert!(manager.manager().repairs().is_empty());
}
