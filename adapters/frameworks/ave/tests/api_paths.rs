//! ave-actors-store's public items at the same paths of persevere-ave: code written against
//! them compiles with `ave_actors_store::` replaced by `persevere_ave::`, and the seed README's
//! encryption snippet (ave's own `EncryptedKey`) runs.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, EncryptedKey, Error as ActorError,
    Event, Handler, Message, Response,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::config::{resolve_spec, MachineProfile, MachineSpec};
use persevere_ave::database::{Collection, CollectionEntry, CollectionIter, DbManager, State};
use persevere_ave::error::{Error, StoreOperation};
use persevere_ave::memory::{MemoryManager, MemoryStore};
use persevere_ave::store::{
    FullPersistence, LightPersistence, Persistence, PersistenceType, PersistentActor, Store,
    StoreCommand, StoreEvent, StoreResponse,
};
use persevere_ave::InitializedActor;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// An exhaustive match, as ave code writes it.
fn describe(persistence: PersistenceType) -> &'static str {
    match persistence {
        PersistenceType::Light => "light",
        PersistenceType::Full => "full",
    }
}

#[test]
fn items_are_at_ave_actors_stores_paths() {
    assert_eq!(describe(LightPersistence::get_persistence()), "light");
    assert_eq!(describe(FullPersistence::get_persistence()), "full");
    // The root's StoreOperation and Error are ave's own.
    let operation: ave_actors_store::StoreOperation = persevere_ave::StoreOperation::Purge;
    assert_eq!(operation.to_string(), "purge");
    let error: ave_actors_store::Error = Error::Store {
        operation: StoreOperation::Persist,
        reason: "x".into(),
    };
    let _: persevere_ave::Error = error;
    assert_eq!(
        resolve_spec(Some(MachineSpec::Profile(MachineProfile::Small))).ram_mb,
        2048
    );
    let manager = MemoryManager::default();
    let mut table: MemoryStore = manager.create_collection("events", "a").unwrap();
    Collection::put(&mut table, "k", b"v").unwrap();
    let entries: CollectionIter<'_> = table.iter(false).unwrap();
    let entries: Vec<CollectionEntry> = entries.map(Result::unwrap).collect();
    assert_eq!(entries, vec![("k".to_owned(), b"v".to_vec())]);
    let mut state: MemoryStore = manager.create_state("state", "a").unwrap();
    State::put(&mut state, b"s").unwrap();
    let _ = StoreEvent::Persisted;
}

persevere_ave::test_store_trait! { our_memory_manager: MemoryManager: MemoryStore }

#[derive(Debug, Clone, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
struct Added(i64);
impl Event for Added {}

#[derive(Debug, Clone)]
struct Add(i64);
impl Message for Add {}

#[derive(Debug, Clone, PartialEq)]
struct Total(i64);
impl Response for Total {}

#[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
struct Secret {
    total: i64,
}

#[async_trait]
impl Actor for Secret {
    type Message = Add;
    type Event = Added;
    type Response = Total;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Secret", id)
    }

    // The seed README's encryption snippet, imports changed.
    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        let raw_key: [u8; 32] = [42; 32];
        let key = EncryptedKey::new(&raw_key).map_err(|e| ActorError::Helper {
            name: "key".into(),
            reason: e.to_string(),
        })?;
        self.start_store("my-actor", None, ctx, MemoryManager::default(), Some(key))
            .await
    }
}

#[async_trait]
impl Handler<Secret> for Secret {
    async fn handle_message(
        &mut self,
        _: ActorPath,
        Add(n): Add,
        ctx: &mut ActorContext<Self>,
    ) -> Result<Total, ActorError> {
        self.persist(&Added(n), ctx).await?;
        // The store child, as ave code reaches it.
        let store = ctx.get_child::<Store<Self>>("store").await?;
        let StoreResponse::LastEventNumber(count) =
            store.ask(StoreCommand::LastEventNumber).await?
        else {
            return Err(ActorError::Functional {
                description: "unexpected answer".into(),
            });
        };
        Ok(Total(self.total * 1000 + count as i64))
    }
}

impl PersistentActor for Secret {
    type Persistence = LightPersistence;
    type InitParams = ();

    fn create_initial(_: ()) -> Self {
        Self::default()
    }

    fn apply(&mut self, Added(n): &Added) -> Result<(), ActorError> {
        self.total += n;
        Ok(())
    }
}

#[tokio::test]
async fn the_readmes_encryption_snippet_runs() {
    let (system, mut runner) =
        ActorSystem::create(CancellationToken::new(), CancellationToken::new());
    let initial: InitializedActor<Secret> = Secret::initial(());
    let secret: ActorRef<Secret> = system.create_root_actor("secret", initial).await.unwrap();
    assert_eq!(secret.ask(Add(2)).await.unwrap(), Total(2001));
    assert_eq!(secret.ask(Add(3)).await.unwrap(), Total(5002));
    // Range reads of an encrypted store open each event with the tag of the one before it.
    let store: ActorRef<Store<Secret>> = system
        .get_actor(&ActorPath::from("/user/secret/store"))
        .await
        .unwrap();
    let events = |from, to| {
        let store = store.clone();
        async move {
            match store.ask(StoreCommand::GetEvents { from, to }).await {
                Ok(StoreResponse::Events(events)) => {
                    events.into_iter().map(|Added(n)| n).collect::<Vec<_>>()
                }
                other => panic!("events {from}..={to}: {other:?}"),
            }
        }
    };
    assert_eq!(events(0, 9).await, [2, 3]);
    // From the second event: the first is read for its tag only.
    assert_eq!(events(1, 1).await, [3]);
    assert!(matches!(
        store.ask(StoreCommand::LastEvent).await,
        Ok(StoreResponse::LastEvent(Some(Added(3))))
    ));
    // After a compaction the first event left takes its chain from the snapshot before it.
    assert!(matches!(
        store.ask(StoreCommand::Compact).await,
        Ok(StoreResponse::Compacted)
    ));
    assert_eq!(secret.ask(Add(4)).await.unwrap(), Total(9003));
    assert_eq!(events(0, 9).await, [4]);
    assert_eq!(events(2, 2).await, [4]);
    system.stop_system();
    runner.run().await;
}
