//! A durable counter as an ave-actors actor, through persevere-ave and the file journal.
//!
//! Each run starts an actor system, recovers the counter actor from DATA_DIR (default:
//! `counter-data`; the actor has its own stream there), persists ten increments of 1 and
//! prints `counter = N` last: a second run prints ten more than the first. The code is
//! ave-actors-store's API; only the imports name persevere-ave.
//!
//! Run with `cargo run --example ave_counter -- [DATA_DIR]`.
//! DATA_DIR may be a SQLite URL instead: `cargo run --example ave_counter -- sqlite://counter.db`.

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Event, Handler,
    Message, Response,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::store::{FullPersistence, PersistentActor};
use persevere_ave::{FileManager, Manager, PostgresManager, SqliteManager};
use persevere_examples::{data_dir, ExampleError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
struct Incremented(u64);

impl Event for Incremented {}

#[derive(Debug, Clone)]
enum CounterMsg {
    Increment,
    Get,
}

impl Message for CounterMsg {}

#[derive(Debug)]
struct Value(u64);

impl Response for Value {}

#[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
struct Counter {
    value: u64,
    /// Where the counter is stored (not persisted).
    #[borsh(skip)]
    manager: Option<Manager>,
}

#[async_trait]
impl Actor for Counter {
    type Message = CounterMsg;
    type Event = Incremented;
    type Response = Value;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Counter", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        let manager = self.manager.clone().ok_or_else(|| ActorError::Helper {
            name: "manager".into(),
            reason: "no manager".into(),
        })?;
        self.start_store("counter", None, ctx, manager, None).await
    }
}

#[async_trait]
impl Handler<Counter> for Counter {
    async fn handle_message(
        &mut self,
        _sender: ActorPath,
        msg: CounterMsg,
        ctx: &mut ActorContext<Self>,
    ) -> Result<Value, ActorError> {
        if let CounterMsg::Increment = msg {
            self.persist(&Incremented(1), ctx).await?;
        }
        Ok(Value(self.value))
    }
}

impl PersistentActor for Counter {
    type Persistence = FullPersistence;
    type InitParams = Manager;

    fn create_initial(manager: Manager) -> Self {
        Self {
            value: 0,
            manager: Some(manager),
        }
    }

    fn apply(&mut self, Incremented(n): &Incremented) -> Result<(), ActorError> {
        self.value = self
            .value
            .checked_add(*n)
            .ok_or_else(|| ActorError::Functional {
                description: "counter overflow".into(),
            })?;
        Ok(())
    }

    /// Keeps the manager (not persisted) when the recovered state replaces the actor's.
    fn update(&mut self, state: Self) {
        self.value = state.value;
    }
}

fn main() -> Result<(), ExampleError> {
    let data_dir = data_dir();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let value = runtime.block_on(async {
        let manager: Manager = if data_dir.starts_with("sqlite://") {
            SqliteManager::open_url(&data_dir)?.into()
        } else if persevere_examples::is_postgres_url(&data_dir) {
            PostgresManager::open_url(&data_dir)?.into()
        } else {
            FileManager::open_or_create(&data_dir)?.into()
        };
        for repair in manager.repairs() {
            eprintln!("warning: the store repaired or set aside data: {repair}");
        }
        let (system, mut runner) = ActorSystem::create(Default::default(), Default::default());
        let counter: ActorRef<Counter> = system
            .create_root_actor("counter", Counter::initial(manager))
            .await?;
        let Value(recovered) = counter.ask(CounterMsg::Get).await?;
        println!("recovered counter = {recovered} from {data_dir}");
        for _ in 0..10 {
            counter.ask(CounterMsg::Increment).await?;
        }
        let Value(value) = counter.ask(CounterMsg::Get).await?;
        system.stop_system();
        runner.run().await;
        Ok::<u64, ExampleError>(value)
    })?;
    println!("counter = {value}");
    Ok(())
}
