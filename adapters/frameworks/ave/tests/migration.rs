//! Data written by ave-actors-store itself — its real `PersistentActor`, through
//! ave-actors-sqlite's manager and its own memory manager — is migrated into persevere-ave's
//! stream on the first start of the same actor, with the same state; it is never replaced by a
//! fresh state, and data that cannot be read fails the start.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, EncryptedKey, Error as ActorError,
    Event, Handler, Message, Response,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::database::{Collection, DbManager};
use persevere_ave::store::{Store, StoreCommand, StoreResponse};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
struct Added(i64);
impl Event for Added {}

#[derive(Debug, Clone)]
enum Msg {
    Add(i64),
    Get,
}
impl Message for Msg {}

#[derive(Debug, Clone, PartialEq)]
struct Value(i64, Vec<i64>);
impl Response for Value {}

/// What a counter starts its store on (not persisted).
#[derive(Clone)]
enum Backing {
    Sqlite(ave_actors_sqlite::SqliteManager),
    Memory(ave_actors_store::memory::MemoryManager),
}

#[derive(Clone, Default)]
struct Setup {
    backing: Option<Backing>,
    key: Option<[u8; 32]>,
}

/// One counter type per crate and strategy, with the same persisted layout: the sum and the
/// history of additions.
macro_rules! counter {
    ($name:ident, $trait:path, $persistence:ty, $compact:expr) => {
        #[derive(Clone, BorshSerialize, BorshDeserialize)]
        struct $name {
            value: i64,
            history: Vec<i64>,
            #[borsh(skip)]
            setup: Setup,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} {:?}", self.value, self.history)
            }
        }

        #[async_trait]
        impl Actor for $name {
            type Message = Msg;
            type Event = Added;
            type Response = Value;

            fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
                tracing::info_span!("counter", id)
            }

            async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
                use $trait as _;
                let key = self.setup.key.map(|k| EncryptedKey::new(&k).unwrap());
                match self.setup.backing.clone() {
                    Some(Backing::Sqlite(m)) => {
                        self.start_store("counter", None, ctx, m, key).await
                    }
                    Some(Backing::Memory(m)) => {
                        self.start_store("counter", None, ctx, m, key).await
                    }
                    None => Err(ActorError::Functional {
                        description: "no manager".into(),
                    }),
                }
            }
        }

        #[async_trait]
        impl Handler<$name> for $name {
            async fn handle_message(
                &mut self,
                _: ActorPath,
                msg: Msg,
                ctx: &mut ActorContext<Self>,
            ) -> Result<Value, ActorError> {
                use $trait as _;
                if let Msg::Add(n) = msg {
                    self.persist(&Added(n), ctx).await?;
                }
                Ok(Value(self.value, self.history.clone()))
            }
        }

        impl $trait for $name {
            type Persistence = $persistence;
            type InitParams = Setup;

            fn create_initial(setup: Setup) -> Self {
                Self {
                    value: 0,
                    history: Vec::new(),
                    setup,
                }
            }

            fn apply(&mut self, Added(n): &Added) -> Result<(), ActorError> {
                self.value += n;
                self.history.push(*n);
                Ok(())
            }

            fn update(&mut self, state: Self) {
                self.value = state.value;
                self.history = state.history;
            }

            fn snapshot_every() -> Option<u64> {
                Some(3)
            }

            fn compact_on_snapshot() -> bool {
                $compact
            }
        }
    };
}

counter!(
    AveFull,
    ave_actors_store::store::PersistentActor,
    ave_actors_store::store::FullPersistence,
    false
);
counter!(
    AveCompacted,
    ave_actors_store::store::PersistentActor,
    ave_actors_store::store::FullPersistence,
    true
);
counter!(
    AveLight,
    ave_actors_store::store::PersistentActor,
    ave_actors_store::store::LightPersistence,
    false
);
counter!(
    OurFull,
    persevere_ave::store::PersistentActor,
    persevere_ave::store::FullPersistence,
    false
);
counter!(
    OurCompacted,
    persevere_ave::store::PersistentActor,
    persevere_ave::store::FullPersistence,
    true
);
counter!(
    OurLight,
    persevere_ave::store::PersistentActor,
    persevere_ave::store::LightPersistence,
    false
);

/// One life of an actor system: start the counter from `actor`, add `adds`, stop. The value
/// after the start and at the end, or the start's error.
async fn life<A>(
    actor: impl ave_actors_actor::IntoActor<A>,
    adds: &[i64],
) -> Result<(Value, Value), ActorError>
where
    A: Actor<Message = Msg, Response = Value> + Handler<A>,
{
    let (system, mut runner) =
        ActorSystem::create(CancellationToken::new(), CancellationToken::new());
    let started: Result<ActorRef<A>, _> = system.create_root_actor("counter", actor).await;
    let result = match started {
        Ok(counter) => {
            let first = counter.ask(Msg::Get).await.unwrap();
            let mut last = first.clone();
            for &n in adds {
                last = counter.ask(Msg::Add(n)).await.unwrap();
            }
            Ok((first, last))
        }
        Err(e) => Err(e),
    };
    system.stop_system();
    runner.run().await;
    result
}

/// Writes with ave-actors-store (`Ave`), then starts persevere-ave's counter (`Ours`) on the
/// same data: same state, then it goes on persisting, and restarts keep everything.
async fn migrates<Ave, Ours>(setup: impl Fn() -> Setup, events: &[i64])
where
    Ave: ave_actors_store::store::PersistentActor<InitParams = Setup>
        + Actor<Message = Msg, Response = Value, Event = Added>
        + Handler<Ave>,
    Ours: persevere_ave::store::PersistentActor<InitParams = Setup>
        + Actor<Message = Msg, Response = Value, Event = Added>
        + Handler<Ours>,
{
    let (_, written) = life(Ave::initial(setup()), events).await.unwrap();
    assert_eq!(written.1, events);
    // ave itself recovers it.
    let (recovered, _) = life(Ave::initial(setup()), &[]).await.unwrap();
    assert_eq!(recovered, written);

    let (migrated, after) = life(Ours::initial(setup()), &[100]).await.unwrap();
    assert_eq!(migrated, written, "the migrated state is ave's");
    assert_eq!(after.0, written.0 + 100);
    let (again, _) = life(Ours::initial(setup()), &[]).await.unwrap();
    assert_eq!(
        again, after,
        "a second start reads persevere's stream, not ave's tables"
    );
}

fn sqlite(dir: &std::path::Path, key: Option<[u8; 32]>) -> Setup {
    Setup {
        backing: Some(Backing::Sqlite(
            ave_actors_sqlite::SqliteManager::new(&dir.to_path_buf(), true, None).unwrap(),
        )),
        key,
    }
}

const EVENTS: [i64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_written_by_ave_through_sqlite_is_migrated_whole() {
    let dir = tempfile::tempdir().unwrap();
    migrates::<AveFull, OurFull>(|| sqlite(dir.path(), None), &EVENTS).await;
    // The whole log came over: every event is readable through the store actor.
    let (system, mut runner) =
        ActorSystem::create(CancellationToken::new(), CancellationToken::new());
    let _counter: ActorRef<OurFull> = system
        .create_root_actor(
            "counter",
            <OurFull as persevere_ave::store::PersistentActor>::initial(sqlite(dir.path(), None)),
        )
        .await
        .unwrap();
    let store: ActorRef<Store<OurFull>> = system
        .get_actor(&ActorPath::from("/user/counter/store"))
        .await
        .unwrap();
    match store
        .ask(StoreCommand::GetEvents { from: 0, to: 99 })
        .await
        .unwrap()
    {
        StoreResponse::Events(events) => {
            let numbers: Vec<i64> = events.iter().map(|Added(n)| *n).collect();
            assert_eq!(numbers, [&EVENTS[..], &[100]].concat());
        }
        other => panic!("not events: {other:?}"),
    }
    system.stop_system();
    runner.run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_log_written_by_ave_is_migrated_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    migrates::<AveCompacted, OurCompacted>(|| sqlite(dir.path(), None), &EVENTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_light_store_written_by_ave_is_migrated_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    migrates::<AveLight, OurLight>(|| sqlite(dir.path(), Some([5; 32])), &EVENTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ave_memory_manager_data_is_migrated() {
    let memory = ave_actors_store::memory::MemoryManager::default();
    let setup = || Setup {
        backing: Some(Backing::Memory(memory.clone())),
        key: None,
    };
    migrates::<AveFull, OurFull>(setup, &EVENTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ave_data_that_cannot_be_read_fails_the_start_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (_, written) = life(
        <AveLight as ave_actors_store::store::PersistentActor>::initial(sqlite(
            dir.path(),
            Some([5; 32]),
        )),
        &EVENTS,
    )
    .await
    .unwrap();
    // The wrong key: no fresh state, an error naming ave's tables.
    let refused = life(
        <OurLight as persevere_ave::store::PersistentActor>::initial(sqlite(
            dir.path(),
            Some([6; 32]),
        )),
        &[],
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    // ave's data is untouched, and the right key still migrates it.
    let (recovered, _) = life(
        <AveLight as ave_actors_store::store::PersistentActor>::initial(sqlite(
            dir.path(),
            Some([5; 32]),
        )),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(recovered, written);
    let (migrated, _) = life(
        <OurLight as persevere_ave::store::PersistentActor>::initial(sqlite(
            dir.path(),
            Some([5; 32]),
        )),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(migrated, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_compacted_log_is_migrated_and_sealed_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    migrates::<AveCompacted, OurCompacted>(|| sqlite(dir.path(), Some([8; 32])), &EVENTS).await;
    // The migrated snapshot is sealed: another key cannot open it.
    let refused = life(
        <OurCompacted as persevere_ave::store::PersistentActor>::initial(sqlite(
            dir.path(),
            Some([9; 32]),
        )),
        &[],
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
}

/// Starts ave's counter, adds `adds`, and leaves the system running as a killed process would
/// leave its database: no stop, so no snapshot at stop.
async fn crash<A>(actor: impl ave_actors_actor::IntoActor<A>, adds: &[i64]) -> Value
where
    A: Actor<Message = Msg, Response = Value> + Handler<A>,
{
    let (system, runner) = ActorSystem::create(CancellationToken::new(), CancellationToken::new());
    let counter: ActorRef<A> = system.create_root_actor("counter", actor).await.unwrap();
    let mut last = counter.ask(Msg::Get).await.unwrap();
    for &n in adds {
        last = counter.ask(Msg::Add(n)).await.unwrap();
    }
    std::mem::forget((system, runner, counter));
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_after_aves_last_snapshot_are_migrated_after_it() {
    for compacted in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let setup = || sqlite(dir.path(), None);
        // Snapshots every 3 events: after 8, ave's snapshot covers 6 and events 6 and 7
        // follow it (and, compacted, events 0 to 5 are gone).
        let written = if compacted {
            crash(
                <AveCompacted as ave_actors_store::store::PersistentActor>::initial(setup()),
                &EVENTS,
            )
            .await
        } else {
            crash(
                <AveFull as ave_actors_store::store::PersistentActor>::initial(setup()),
                &EVENTS,
            )
            .await
        };
        let (migrated, after) = if compacted {
            life(
                <OurCompacted as persevere_ave::store::PersistentActor>::initial(setup()),
                &[100],
            )
            .await
        } else {
            life(
                <OurFull as persevere_ave::store::PersistentActor>::initial(setup()),
                &[100],
            )
            .await
        }
        .unwrap();
        assert_eq!(migrated, written, "compacted: {compacted}");
        assert_eq!(after.0, written.0 + 100);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_cut_short_is_migrated_from_the_snapshot_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_, written) = life(
        <AveFull as ave_actors_store::store::PersistentActor>::initial(sqlite(dir.path(), None)),
        &EVENTS,
    )
    .await
    .unwrap();
    // As if ave's compaction had stopped after deleting events 0 to 2: the log no longer
    // starts at 0, and the snapshot (covering all 8) alone holds the state.
    let manager =
        ave_actors_sqlite::SqliteManager::new(&dir.path().to_path_buf(), true, None).unwrap();
    let mut events = manager
        .create_collection("counter_events", "counter")
        .unwrap();
    for n in 0..3u64 {
        Collection::del(&mut events, &format!("{n:020}")).unwrap();
    }
    drop(events);
    let (migrated, _) = life(
        <OurFull as persevere_ave::store::PersistentActor>::initial(sqlite(dir.path(), None)),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(migrated, written);
}

/// The committed fixtures: databases ave-actors-store 0.5 wrote through ave-actors-sqlite 0.6
/// (regenerate with `cargo test -p persevere-ave --test migration -- --ignored`).
fn fixture_dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ave-actors-store-0.5")
        .join(name)
}

const FIXTURE_KEY: [u8; 32] = [5; 32];

/// A copy of fixture `name` in a temporary directory.
fn fixture_copy(name: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the committed fixtures with the real ave-actors-store"]
async fn write_fixtures() {
    for name in ["full", "compacted", "light-encrypted"] {
        let dir = fixture_dir(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let setup = || sqlite(&dir, (name == "light-encrypted").then_some(FIXTURE_KEY));
        let written =
            match name {
                "full" => {
                    life(
                        <AveFull as ave_actors_store::store::PersistentActor>::initial(setup()),
                        &EVENTS,
                    )
                    .await
                }
                "compacted" => life(
                    <AveCompacted as ave_actors_store::store::PersistentActor>::initial(setup()),
                    &EVENTS,
                )
                .await,
                _ => {
                    life(
                        <AveLight as ave_actors_store::store::PersistentActor>::initial(setup()),
                        &EVENTS,
                    )
                    .await
                }
            }
            .unwrap()
            .1;
        assert_eq!(written, Value(36, EVENTS.to_vec()));
        // Everything into the database file itself.
        let mut manager = ave_actors_sqlite::SqliteManager::new(&dir, true, None).unwrap();
        manager.stop().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_written_by_ave_actors_store_are_recovered_with_the_same_state() {
    let expected = Value(36, EVENTS.to_vec());
    for name in ["full", "compacted", "light-encrypted"] {
        // ave itself reads its fixture so.
        let theirs = fixture_copy(name);
        let key = (name == "light-encrypted").then_some(FIXTURE_KEY);
        let setup = || sqlite(theirs.path(), key);
        let recovered =
            match name {
                "full" => {
                    life(
                        <AveFull as ave_actors_store::store::PersistentActor>::initial(setup()),
                        &[],
                    )
                    .await
                }
                "compacted" => life(
                    <AveCompacted as ave_actors_store::store::PersistentActor>::initial(setup()),
                    &[],
                )
                .await,
                _ => {
                    life(
                        <AveLight as ave_actors_store::store::PersistentActor>::initial(setup()),
                        &[],
                    )
                    .await
                }
            }
            .unwrap()
            .0;
        assert_eq!(recovered, expected, "{name}: ave");
        // And persevere-ave, twice (migrated, then its own stream).
        let ours = fixture_copy(name);
        let setup = || sqlite(ours.path(), key);
        for round in 0..2 {
            let migrated = match name {
                "full" => {
                    life(
                        <OurFull as persevere_ave::store::PersistentActor>::initial(setup()),
                        &[],
                    )
                    .await
                }
                "compacted" => {
                    life(
                        <OurCompacted as persevere_ave::store::PersistentActor>::initial(setup()),
                        &[],
                    )
                    .await
                }
                _ => {
                    life(
                        <OurLight as persevere_ave::store::PersistentActor>::initial(setup()),
                        &[],
                    )
                    .await
                }
            }
            .unwrap()
            .0;
            assert_eq!(migrated, expected, "{name}: persevere-ave, round {round}");
        }
    }
}
