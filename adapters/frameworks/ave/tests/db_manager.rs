//! `start_store` over ave `DbManager`s that are not ours: an application's own backend (written
//! here against `persevere_ave::Error`, imports changed, nothing else), ave-actors-store's memory
//! manager and ave-actors-sqlite's manager, each driving a persevere-ave actor across restarts
//! (a new actor system over the same storage; for SQLite, a new manager over the same file).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Event, Handler,
    Message, Response,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::database::{Collection, DbManager, DbStore, State};
use persevere_ave::store::{FullPersistence, PersistentActor, Store, StoreCommand, StoreResponse};
use persevere_ave::Error;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

// --- An application's own backend, as ave-actors-store's README shows how to write one. ---

type Tables = Arc<RwLock<BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>>>;

#[derive(Clone, Default)]
struct MyManager {
    tables: Tables,
}

struct MyStore {
    name: String,
    table: (String, String),
    tables: Tables,
}

impl DbManager<MyStore, MyStore> for MyManager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<MyStore, Error> {
        Ok(MyStore {
            name: name.into(),
            table: (name.into(), prefix.into()),
            tables: Arc::clone(&self.tables),
        })
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<MyStore, Error> {
        self.create_collection(name, prefix)
    }
}

impl MyStore {
    /// ave's convention: `name.key` for a collection entry, `name` for a state.
    fn not_found(&self, key: &str) -> Error {
        let key = if key.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{key}", self.name)
        };
        Error::EntryNotFound { key }
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> T) -> T {
        let mut tables = self.tables.write().unwrap();
        f(tables.entry(self.table.clone()).or_default())
    }
}

impl Collection for MyStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        self.with(|t| t.get(key).cloned())
            .ok_or_else(|| self.not_found(key))
    }

    fn put(&mut self, key: &str, data: &[u8]) -> Result<(), Error> {
        self.with(|t| t.insert(key.into(), data.to_vec()));
        Ok(())
    }

    fn del(&mut self, key: &str) -> Result<(), Error> {
        self.with(|t| t.remove(key))
            .map(drop)
            .ok_or_else(|| self.not_found(key))
    }

    fn last(&self) -> Result<Option<(String, Vec<u8>)>, Error> {
        Ok(self.with(|t| t.last_key_value().map(|(k, v)| (k.clone(), v.clone()))))
    }

    fn purge(&mut self) -> Result<(), Error> {
        self.with(BTreeMap::clear);
        Ok(())
    }

    fn iter<'a>(
        &'a self,
        reverse: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<(String, Vec<u8>), Error>> + 'a>, Error> {
        let items: Vec<_> = self.with(|t| t.clone().into_iter().map(Ok).collect());
        Ok(if reverse {
            Box::new(items.into_iter().rev())
        } else {
            Box::new(items.into_iter())
        })
    }
}

impl State for MyStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self) -> Result<Vec<u8>, Error> {
        Collection::get(self, "")
    }

    fn put(&mut self, data: &[u8]) -> Result<(), Error> {
        Collection::put(self, "", data)
    }

    fn del(&mut self) -> Result<(), Error> {
        Collection::del(self, "")
    }

    fn purge(&mut self) -> Result<(), Error> {
        Collection::purge(self)
    }
}

persevere_ave::test_store_trait! { my_manager_contract: MyManager: MyStore }

#[test]
fn persevere_storage_contract_over_foreign_managers() {
    persevere_conformance::run_reopenable(
        "DbStore over an application's DbManager",
        MyManager::default,
        |m| DbStore::new(m.clone()),
    );
    persevere_conformance::run_reopenable(
        "DbStore over ave-actors-store's MemoryManager",
        ave_actors_store::memory::MemoryManager::default,
        |m| DbStore::new(m.clone()),
    );
}

// --- A persevere-ave actor over any of them. ---

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
struct Value(i64);
impl Response for Value {}

/// Which manager the counter starts its store on (not persisted).
#[derive(Clone)]
enum Backing {
    Mine(MyManager),
    AveMemory(ave_actors_store::memory::MemoryManager),
    AveSqlite(ave_actors_sqlite::SqliteManager),
    /// A store name ave-actors-sqlite refuses as a table name of its own (`my-counter_events`).
    AveSqliteDashed(ave_actors_sqlite::SqliteManager),
}

#[derive(Clone, BorshSerialize, BorshDeserialize)]
struct Counter {
    value: i64,
    #[borsh(skip)]
    backing: Option<Backing>,
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
    type Message = Msg;
    type Event = Added;
    type Response = Value;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Counter", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        match self.backing.clone() {
            Some(Backing::Mine(m)) => self.start_store("counter", None, ctx, m, None).await,
            Some(Backing::AveMemory(m)) => self.start_store("counter", None, ctx, m, None).await,
            Some(Backing::AveSqlite(m)) => self.start_store("counter", None, ctx, m, None).await,
            Some(Backing::AveSqliteDashed(m)) => {
                self.start_store("my-counter", None, ctx, m, None).await
            }
            None => Err(ActorError::Functional {
                description: "no manager".into(),
            }),
        }
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
    type InitParams = Backing;

    fn create_initial(backing: Backing) -> Self {
        Self {
            value: 0,
            backing: Some(backing),
        }
    }

    fn apply(&mut self, Added(n): &Added) -> Result<(), ActorError> {
        self.value += n;
        Ok(())
    }

    fn snapshot_every() -> Option<u64> {
        Some(4)
    }

    fn update(&mut self, state: Self) {
        self.value = state.value;
    }
}

/// One life of the actor system: start the counter, add `adds`, read the store's event log
/// through the store actor, stop. Returns the value and the events read back.
async fn life(backing: Backing, adds: &[i64]) -> (i64, Vec<Added>, u64) {
    let (system, mut runner) =
        ActorSystem::create(CancellationToken::new(), CancellationToken::new());
    let counter: ActorRef<Counter> = system
        .create_root_actor("counter", Counter::initial(backing))
        .await
        .unwrap();
    let mut value = counter.ask(Msg::Get).await.unwrap().0;
    for &n in adds {
        value = counter.ask(Msg::Add(n)).await.unwrap().0;
    }
    let store: ActorRef<Store<Counter>> = system
        .get_actor(&ActorPath::from("/user/counter/store"))
        .await
        .unwrap();
    let StoreResponse::Events(events) = store
        .ask(StoreCommand::GetEvents { from: 0, to: 1000 })
        .await
        .unwrap()
    else {
        panic!("not an event list");
    };
    let StoreResponse::LastEventNumber(count) =
        store.ask(StoreCommand::LastEventNumber).await.unwrap()
    else {
        panic!("not a count");
    };
    system.stop_system();
    runner.run().await;
    (value, events, count)
}

async fn three_lives(backing: impl Fn() -> Backing) {
    let (value, events, count) = life(backing(), &[1, 2, 3]).await;
    assert_eq!((value, events.len(), count), (6, 3, 3));
    let (value, _, count) = life(backing(), &[4, 5]).await;
    assert_eq!((value, count), (15, 5));
    let (value, events, count) = life(backing(), &[]).await;
    assert_eq!((value, count), (15, 5));
    let sum: i64 = events.iter().map(|Added(n)| n).sum();
    assert_eq!(
        sum, 15,
        "every event is readable back, in order: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applications_own_db_manager_keeps_the_actor_across_restarts() {
    let mine = MyManager::default();
    three_lives(|| Backing::Mine(mine.clone())).await;
    // The data is in the application's tables, in persevere's layout.
    let tables = mine.tables.read().unwrap();
    assert!(tables
        .keys()
        .any(|(name, prefix)| name == persevere_ave::database::EVENTS
            && prefix == "/user/counter/counter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ave_actors_stores_memory_manager_keeps_the_actor_across_restarts() {
    let theirs = ave_actors_store::memory::MemoryManager::default();
    three_lives(|| Backing::AveMemory(theirs.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ave_actors_sqlites_manager_keeps_the_actor_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // A new manager (new connections) over the same database file for every life.
    three_lives(|| {
        Backing::AveSqlite(ave_actors_sqlite::SqliteManager::new(&path, true, None).unwrap())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_name_ave_sqlite_could_not_have_used_starts_on_its_manager() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    three_lives(|| {
        Backing::AveSqliteDashed(ave_actors_sqlite::SqliteManager::new(&path, true, None).unwrap())
    })
    .await;
}

/// Set in the child processes of [`ave_actors_sqlite_across_killed_processes`]: the database
/// directory, and what to add.
const CHILD_DIR: &str = "PERSEVERE_AVE_SQLITE_CHILD_DIR";
const CHILD_ADD: &str = "PERSEVERE_AVE_SQLITE_CHILD_ADD";

/// Real processes over ave-actors-sqlite: each child starts the counter, adds, prints the
/// value and exits at once (no stop, no destructor: as a killed process leaves its database);
/// the next child recovers it.
#[test]
fn ave_actors_sqlite_across_killed_processes() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let (Some(dir), Some(add)) = (std::env::var_os(CHILD_DIR), std::env::var_os(CHILD_ADD)) {
        let add: i64 = add.to_str().unwrap().parse().unwrap();
        let value = runtime.block_on(async {
            let manager = ave_actors_sqlite::SqliteManager::new(&dir.into(), true, None).unwrap();
            let (system, _runner) =
                ActorSystem::create(CancellationToken::new(), CancellationToken::new());
            let counter: ActorRef<Counter> = system
                .create_root_actor("counter", Counter::initial(Backing::AveSqlite(manager)))
                .await
                .unwrap();
            let mut value = counter.ask(Msg::Get).await.unwrap().0;
            for n in 0..add {
                value = counter.ask(Msg::Add(n + 1)).await.unwrap().0;
            }
            value
        });
        println!("value={value}");
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut expected = 0;
    for add in [3, 5, 0, 2] {
        expected += (1..=add).sum::<i64>();
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "ave_actors_sqlite_across_killed_processes",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ADD, add.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("value={expected}")),
            "child adding {add}: {}\n{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
