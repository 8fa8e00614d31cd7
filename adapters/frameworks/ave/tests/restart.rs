//! A supervised restart runs `pre_start` again on the same actor value, which already holds
//! the state its store recovered and its persists built: the store started again recovers from
//! the state the actor first started from, never replaying events onto what they built.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Event, Handler,
    Message, NoIntervalStrategy, Response, Strategy, SupervisionStrategy,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::store::{FullPersistence, PersistentActor};
use persevere_ave::MemoryManager;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, BorshSerialize, BorshDeserialize)]
struct Added(u64);
impl Event for Added {}

#[derive(Debug, Clone)]
struct Get;
impl Message for Get {}

#[derive(Debug, Clone, PartialEq)]
struct Value(u64);
impl Response for Value {}

/// The store and whether the next `pre_start` fails once it has persisted (not persisted).
#[derive(Clone)]
struct Setup {
    manager: MemoryManager,
    fail_once: Arc<AtomicBool>,
}

/// A counter whose first start persists an event of its own, then (once) fails.
#[derive(Clone, BorshSerialize, BorshDeserialize)]
struct Counter {
    value: u64,
    #[borsh(skip)]
    setup: Option<Setup>,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.value)
            .finish()
    }
}

#[async_trait]
impl Actor for Counter {
    type Message = Get;
    type Event = Added;
    type Response = Value;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Counter", id)
    }

    fn supervision_strategy() -> SupervisionStrategy {
        SupervisionStrategy::Retry(Strategy::NoInterval(NoIntervalStrategy::new(2)))
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        let Some(setup) = self.setup.clone() else {
            return Err(ActorError::Functional {
                description: "no setup".into(),
            });
        };
        self.start_store("counter", None, ctx, setup.manager.clone(), None)
            .await?;
        if self.value == 0 {
            self.persist(&Added(1), ctx).await?;
        }
        if setup.fail_once.swap(false, Ordering::SeqCst) {
            return Err(ActorError::Functional {
                description: "failing once after persisting".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Handler<Counter> for Counter {
    async fn handle_message(
        &mut self,
        _: ActorPath,
        _: Get,
        _: &mut ActorContext<Self>,
    ) -> Result<Value, ActorError> {
        Ok(Value(self.value))
    }
}

impl PersistentActor for Counter {
    type Persistence = FullPersistence;
    type InitParams = Setup;

    fn create_initial(setup: Setup) -> Self {
        Self {
            value: 0,
            setup: Some(setup),
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

/// Starts the counter on `manager` (failing its first start once if `fail_once`), reads its
/// value, and stops the system.
async fn life(manager: &MemoryManager, fail_once: bool) -> u64 {
    let (system, mut runner) =
        ActorSystem::create(CancellationToken::new(), CancellationToken::new());
    let setup = Setup {
        manager: manager.clone(),
        fail_once: Arc::new(AtomicBool::new(fail_once)),
    };
    let counter: ActorRef<Counter> = system
        .create_root_actor("counter", Counter::initial(setup))
        .await
        .unwrap();
    let Value(value) = counter.ask(Get).await.unwrap();
    system.stop_system();
    runner.run().await;
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_actor_recovers_from_its_first_state_never_replaying_onto_its_own() {
    let manager = MemoryManager::default();
    // The first start persists 1, then fails; the retry starts the store again on the same
    // actor value (which holds 1) and persists nothing more.
    assert_eq!(life(&manager, true).await, 1);
    // What is durable is 1, not a replay of it onto itself.
    assert_eq!(life(&manager, false).await, 1);
}
