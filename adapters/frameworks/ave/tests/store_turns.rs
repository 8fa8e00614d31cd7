//! The store is shared by the actor and its `store` child: a command of the child is served
//! between two persists of the actor, even while the actor persists in a loop that never
//! waits (the in-memory store answers at once).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Event, Handler,
    Message, Response,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::memory::MemoryManager;
use persevere_ave::store::{FullPersistence, PersistentActor, Store, StoreCommand, StoreResponse};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The most persists the loop makes before it gives up waiting for the child's answer.
const BOUND: u64 = 1_000_000;

#[derive(Debug, Clone, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
struct Ticked;
impl Event for Ticked {}

/// Persists until `answered` is set (or [`BOUND`] persists); `started` is set at the first.
#[derive(Debug, Clone)]
struct TickUntil {
    started: Arc<AtomicBool>,
    answered: Arc<AtomicBool>,
}
impl Message for TickUntil {}

#[derive(Debug, Clone, PartialEq)]
struct Ticks(u64);
impl Response for Ticks {}

#[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
struct Ticker {
    ticks: u64,
}

#[async_trait]
impl Actor for Ticker {
    type Message = TickUntil;
    type Event = Ticked;
    type Response = Ticks;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Ticker", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        self.start_store("ticks", None, ctx, MemoryManager::default(), None)
            .await
    }
}

#[async_trait]
impl Handler<Ticker> for Ticker {
    async fn handle_message(
        &mut self,
        _: ActorPath,
        msg: TickUntil,
        ctx: &mut ActorContext<Self>,
    ) -> Result<Ticks, ActorError> {
        for _ in 0..BOUND {
            self.persist(&Ticked, ctx).await?;
            msg.started.store(true, Ordering::Release);
            if msg.answered.load(Ordering::Acquire) {
                break;
            }
        }
        Ok(Ticks(self.ticks))
    }
}

impl PersistentActor for Ticker {
    type Persistence = FullPersistence;
    type InitParams = ();

    fn create_initial(_: ()) -> Self {
        Self::default()
    }

    fn apply(&mut self, _: &Ticked) -> Result<(), ActorError> {
        self.ticks += 1;
        Ok(())
    }

    fn snapshot_every() -> Option<u64> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_child_is_served_while_the_actor_persists_in_a_loop() {
    let (system, mut runner) =
        ActorSystem::create(CancellationToken::new(), CancellationToken::new());
    let ticker: ActorRef<Ticker> = system
        .create_root_actor("ticker", Ticker::initial(()))
        .await
        .unwrap();
    let store: ActorRef<Store<Ticker>> = system
        .get_actor(&ActorPath::from("/user/ticker/store"))
        .await
        .unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicBool::new(false));
    // Asked from a thread of its own: a task spawned on the runtime could wait in the queue
    // of the worker that runs the loop, which never yields to it.
    let asking = {
        let (started, answered) = (Arc::clone(&started), Arc::clone(&answered));
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            while !started.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let answer = runtime.block_on(store.ask(StoreCommand::LastEventNumber));
            answered.store(true, Ordering::Release);
            answer
        })
    };
    // A generous bound on a wait that takes milliseconds: a lost wake-up fails, not hangs.
    let ticking = ticker.ask(TickUntil { started, answered });
    let Ticks(ticks) = tokio::time::timeout(Duration::from_secs(120), ticking)
        .await
        .expect("the actor and its child waited for each other")
        .unwrap();
    let Ok(StoreResponse::LastEventNumber(seen)) = asking.join().unwrap() else {
        panic!("the store child did not answer");
    };
    assert!(
        ticks < BOUND,
        "the child was answered only after the loop's {BOUND} persists"
    );
    assert!(
        (1..=ticks).contains(&seen),
        "the child saw {seen} events of {ticks}"
    );
    system.stop_system();
    runner.run().await;
}
