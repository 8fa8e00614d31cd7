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
