//! Schema evolution: events written by an older version of an actor are read through its
//! upcaster; without one, recovery fails with a typed error.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Event, Handler,
    Message, Response,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::store::UpcastError;
use persevere_ave::store::{FullPersistence, PersistentActor};
use persevere_ave::MemoryManager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
struct Add(u64);
impl Message for Add {}

#[derive(Debug, PartialEq)]
struct Total(u64);
impl Response for Total {}

/// Version 1 stored amounts as bare `u32`s.
#[derive(Debug, Clone, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
struct AddedV1(u32);
impl Event for AddedV1 {}

/// Version 2 widened them and added a note.
#[derive(Debug, Clone, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
struct AddedV2 {
    amount: u64,
    note: String,
}
impl Event for AddedV2 {}

macro_rules! tally {
    ($name:ident, $event:ty, $make:expr) => {
        #[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
        struct $name {
            total: u64,
            #[borsh(skip)]
            manager: Option<MemoryManager>,
        }

        #[async_trait]
        impl Actor for $name {
            type Message = Add;
            type Event = $event;
            type Response = Total;

            fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
                tracing::info_span!("Tally", id)
            }

            async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
                let manager = self.manager.clone().unwrap();
                self.start_store("tally", None, ctx, manager, None).await
            }
        }

        #[async_trait]
        impl Handler<$name> for $name {
            async fn handle_message(
                &mut self,
                _: ActorPath,
                Add(n): Add,
                ctx: &mut ActorContext<Self>,
            ) -> Result<Total, ActorError> {
                if n > 0 {
                    let make: fn(u64) -> $event = $make;
                    self.persist(&make(n), ctx).await?;
                }
                Ok(Total(self.total))
            }
        }
    };
}

tally!(TallyV1, AddedV1, |n| AddedV1(n as u32));
tally!(TallyV2, AddedV2, |n| AddedV2 {
    amount: n,
    note: String::new()
});

impl PersistentActor for TallyV1 {
    type Persistence = FullPersistence;
    type InitParams = MemoryManager;

    fn create_initial(manager: MemoryManager) -> Self {
        Self {
            total: 0,
            manager: Some(manager),
        }
    }

    fn apply(&mut self, AddedV1(n): &AddedV1) -> Result<(), ActorError> {
        self.total += u64::from(*n);
        Ok(())
    }

    fn snapshot_every() -> Option<u64> {
        None
    }
}

impl PersistentActor for TallyV2 {
    type Persistence = FullPersistence;
    type InitParams = MemoryManager;
    const EVENT_VERSION: u32 = 2;

    fn create_initial(manager: MemoryManager) -> Self {
        Self {
            total: 0,
            manager: Some(manager),
        }
    }

    fn apply(&mut self, event: &AddedV2) -> Result<(), ActorError> {
        self.total += event.amount;
        Ok(())
    }

    fn upcast_event(version: u32, payload: &[u8]) -> Result<AddedV2, UpcastError> {
        match version {
            1 => borsh::from_slice::<AddedV1>(payload)
                .map(|AddedV1(n)| AddedV2 {
                    amount: n.into(),
                    note: String::new(),
                })
                .map_err(|e| UpcastError::Invalid {
                    version,
                    reason: e.to_string(),
                }),
            _ => Err(UpcastError::UnknownVersion(version)),
        }
    }

    fn update(&mut self, state: Self) {
        self.total = state.total;
    }

    fn snapshot_every() -> Option<u64> {
        None
    }
}

#[tokio::test]
async fn old_events_are_read_through_the_upcaster() {
    let manager = MemoryManager::default();
    let (system, mut runner) = ActorSystem::create(Default::default(), Default::default());
    let v1: ActorRef<TallyV1> = system
        .create_root_actor("tally", TallyV1::initial(manager.clone()))
        .await
        .unwrap();
    v1.ask(Add(3)).await.unwrap();
    assert_eq!(v1.ask(Add(4)).await.unwrap(), Total(7));
    system.stop_system();
    runner.run().await;

    let (system, mut runner) = ActorSystem::create(Default::default(), Default::default());
    let v2: ActorRef<TallyV2> = system
        .create_root_actor("tally", TallyV2::initial(manager.clone()))
        .await
        .unwrap();
    assert_eq!(v2.ask(Add(0)).await.unwrap(), Total(7));
    assert_eq!(v2.ask(Add(10)).await.unwrap(), Total(17));
    system.stop_system();
    runner.run().await;

    // Version 1 cannot read version 2's event: it refuses to start instead of guessing. (The
    // snapshots the stops wrote are set aside, so the start replays the events.)
    manager.memory().with_store(|store| {
        store.stream_mut("/user/tally/tally").snapshots.clear();
    });
    let (system, mut runner) = ActorSystem::create(Default::default(), Default::default());
    assert!(system
        .create_root_actor::<TallyV1, _>("tally", TallyV1::initial(manager))
        .await
        .is_err());
    system.stop_system();
    runner.run().await;
}
