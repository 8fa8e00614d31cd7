//! kameo-persistence 0.1's public API against persevere-kameo: code written for
//! kameo-persistence, with its `kameo_persistence` imports replaced by `persevere_kameo`,
//! compiles and runs.
//!
//! - the README's quick start (its `on_start` written as a loop: the README's `filter_map`
//!   awaits inside a closure, which does not compile against kameo-persistence either);
//! - every public item at its path: the trait and its methods with their exact signatures
//!   (`anyhow::Result`), the derive with and without `#[snapshot(..)]`, `BiHashMap` and the
//!   `bi_hash_map` / `persistent_actor` modules;
//! - a hand-written impl keeping its own registry in a `BiHashMap`, as kameo-persistence's docs
//!   recommend;
//! - the example's shape: a manager that nests its sub-actors' keys under its own with
//!   `Url::join`, and falls back to a plain actor when it is not persistent.

#![allow(missing_docs)] // the quick start's items, as the README writes them

use std::collections::HashMap;
use std::future::Future;
use std::sync::{LazyLock, RwLock};

use kameo::prelude::*;
use persevere_kameo::bi_hash_map::BiHashMap;
use persevere_kameo::PersistentActor;
use serde::{Deserialize, Serialize};
use url::Url;

// ---- The README's quick start -------------------------------------------------------------

#[derive(Debug, Clone, PersistentActor)]
pub struct ManagerActor {
    pub data: String,
    pub sub_actors: HashMap<String, ActorRef<SubActor>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagerActorArgs {
    pub data: String,
    pub sub_actors: HashMap<String, Url>,
}

impl From<&ManagerActor> for ManagerActorArgs {
    fn from(actor: &ManagerActor) -> Self {
        Self {
            data: actor.data.clone(),
            sub_actors: actor
                .sub_actors
                .iter()
                .filter_map(|(name, actor_ref)| {
                    PersistentActor::persistence_key(actor_ref).map(|url| (name.clone(), url))
                })
                .collect(),
        }
    }
}

impl Actor for ManagerActor {
    type Args = ManagerActorArgs;
    type Error = anyhow::Error;

    async fn on_start(args: Self::Args, _actor_ref: ActorRef<Self>) -> Result<Self, Self::Error> {
        let mut sub_actors = HashMap::new();
        for (name, url) in args.sub_actors {
            if let Ok(actor_ref) = SubActor::respawn_persistent(url).await {
                sub_actors.insert(name, actor_ref);
            }
        }
        Ok(Self {
            data: args.data,
            sub_actors,
        })
    }
}

#[derive(Debug, Clone, Actor, Serialize, Deserialize, PersistentActor)]
pub struct SubActor {
    pub config: String,
}

impl From<&SubActor> for SubActor {
    fn from(actor: &SubActor) -> Self {
        actor.clone()
    }
}

// ---- Messages in the example's shape ------------------------------------------------------

/// Adds a sub-actor under a key nested in the manager's, or a plain one when the manager has
/// no key; saves the manager.
pub struct AddSubActor {
    pub name: String,
    pub config: String,
}

impl Message<AddSubActor> for ManagerActor {
    type Reply = anyhow::Result<ActorRef<SubActor>>;

    async fn handle(
        &mut self,
        msg: AddSubActor,
        ctx: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        let Some(key) = PersistentActor::persistence_key(ctx.actor_ref()) else {
            return Ok(SubActor::spawn(SubActor { config: msg.config }));
        };
        let sub_key = key.join("sub-actors/")?.join(&msg.name)?;
        let sub = SubActor::spawn_persistent(sub_key, SubActor { config: msg.config }).await?;
        self.sub_actors.insert(msg.name, sub.clone());
        self.save_snapshot(ctx.actor_ref()).await?;
        Ok(sub)
    }
}

pub struct GetData;

impl Message<GetData> for ManagerActor {
    type Reply = (String, Vec<String>);

    async fn handle(&mut self, _: GetData, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let mut names: Vec<_> = self.sub_actors.keys().cloned().collect();
        names.sort();
        (self.data.clone(), names)
    }
}

pub struct GetConfig;

impl Message<GetConfig> for SubActor {
    type Reply = String;

    async fn handle(&mut self, _: GetConfig, _: &mut Context<Self, Self::Reply>) -> String {
        self.config.clone()
    }
}

// ---- A custom snapshot type ---------------------------------------------------------------

#[derive(Debug, Clone, PersistentActor)]
#[snapshot(CounterSnapshot)]
pub struct Counter {
    pub count: u64,
    pub scratch: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    pub count: u64,
}

impl From<&Counter> for CounterSnapshot {
    fn from(actor: &Counter) -> Self {
        Self { count: actor.count }
    }
}

#[allow(clippy::from_over_into)] // kameo-persistence's own tests write `Into`
impl Into<u64> for CounterSnapshot {
    fn into(self) -> u64 {
        self.count
    }
}

impl Actor for Counter {
    type Args = u64;
    type Error = anyhow::Error;

    async fn on_start(count: u64, _: ActorRef<Self>) -> anyhow::Result<Self> {
        Ok(Self {
            count,
            scratch: Vec::new(),
        })
    }
}

// ---- A hand-written impl with its own registry, as kameo-persistence recommends ------------

#[derive(Debug, Clone, Actor, Serialize, Deserialize)]
pub struct Manual {
    pub value: String,
}

impl From<&Manual> for Manual {
    fn from(actor: &Manual) -> Self {
        actor.clone()
    }
}

static MANUAL_REGISTRY: LazyLock<RwLock<BiHashMap<Url, WeakActorRef<Manual>>>> =
    LazyLock::new(|| RwLock::new(BiHashMap::new()));

impl persevere_kameo::persistent_actor::PersistentActor for Manual {
    type Snapshot = Manual;

    fn register_persistent(persistence_key: Url, actor_ref: &ActorRef<Self>) -> anyhow::Result<()> {
        let Ok(mut registry) = MANUAL_REGISTRY.write() else {
            anyhow::bail!("Failed to acquire write lock on registry");
        };
        registry.insert(persistence_key, actor_ref.downgrade());
        Ok(())
    }

    fn persistence_key(actor_ref: &ActorRef<Self>) -> Option<Url> {
        let registry = MANUAL_REGISTRY.read().ok()?;
        registry.get_left(&actor_ref.downgrade()).cloned()
    }

    fn lookup_persistent(persistence_key: &Url) -> Option<ActorRef<Self>> {
        let registry = MANUAL_REGISTRY.read().ok()?;
        registry
            .get_right(persistence_key)
            .and_then(|weak_ref| weak_ref.upgrade())
    }
}

pub struct SetValue(pub String);

impl Message<SetValue> for Manual {
    type Reply = anyhow::Result<()>;

    async fn handle(
        &mut self,
        SetValue(value): SetValue,
        ctx: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        self.value = value;
        self.save_snapshot(ctx.actor_ref()).await
    }
}

pub struct GetValue;

impl Message<GetValue> for Manual {
    type Reply = String;

    async fn handle(&mut self, _: GetValue, _: &mut Context<Self, Self::Reply>) -> String {
        self.value.clone()
    }
}

// ---- The trait's signatures, exactly as kameo-persistence declares them -------------------

fn spawn_signature<A: PersistentActor>(
    key: Url,
    args: A::Args,
) -> impl Future<Output = anyhow::Result<ActorRef<A>>> {
    A::spawn_persistent(key, args)
}

fn respawn_signature<A: PersistentActor>(
    key: Url,
) -> impl Future<Output = anyhow::Result<ActorRef<A>>> {
    A::respawn_persistent(key)
}

fn try_respawn_signature<A: PersistentActor>(
    key: Url,
    args: A::Args,
) -> impl Future<Output = anyhow::Result<ActorRef<A>>> {
    A::try_respawn_persistent(key, args)
}

fn read_signature<A: PersistentActor>(
    key: &Url,
) -> impl Future<Output = anyhow::Result<Vec<u8>>> + '_ {
    A::try_read(key)
}

fn write_signature<A: PersistentActor>(
    key: &Url,
    snapshot: A::Snapshot,
) -> impl Future<Output = anyhow::Result<()>> + '_ {
    A::try_write(key, snapshot)
}

#[test]
fn the_synchronous_methods_have_kameo_persistence_signatures() {
    let _: fn(Url, &ActorRef<SubActor>) -> anyhow::Result<()> = SubActor::register_persistent;
    let _: fn(&ActorRef<SubActor>) -> Option<Url> = SubActor::persistence_key;
    let _: fn(&Url) -> Option<ActorRef<SubActor>> = SubActor::lookup_persistent;
    let _ = persevere_kameo::BiHashMap::<Url, u8>::default();
}

fn dir_key(dir: &std::path::Path, name: &str) -> Url {
    Url::from_directory_path(dir.join(name)).expect("an absolute directory")
}

async fn stop<A: Actor>(actor: &ActorRef<A>) {
    actor.stop_gracefully().await.expect("stop");
    actor.wait_for_shutdown_with_result(|_| ()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_runs_across_restarts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = dir_key(dir.path(), "manager");
    let args = || ManagerActorArgs {
        data: "manager".into(),
        sub_actors: HashMap::new(),
    };
    let manager = ManagerActor::try_respawn_persistent(key.clone(), args()).await?;
    for name in ["one", "two"] {
        let sub = manager
            .ask(AddSubActor {
                name: name.into(),
                config: format!("config of {name}"),
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // The sub-actor's key is nested in the manager's directory, a key of its own.
        let sub_key = SubActor::persistence_key(&sub).expect("persistent");
        assert!(sub_key.as_str().starts_with(key.as_str()), "{sub_key}");
        stop(&sub).await;
    }
    stop(&manager).await;

    let manager = ManagerActor::try_respawn_persistent(key.clone(), args()).await?;
    let (data, names) = manager.ask(GetData).await?;
    assert_eq!(
        (data.as_str(), names),
        ("manager", vec!["one".to_owned(), "two".to_owned()])
    );
    let manager_again = ManagerActor::respawn_persistent(key.clone()).await?;
    assert_eq!(manager_again.id(), manager.id(), "one live actor per key");
    assert_eq!(
        ManagerActor::lookup_persistent(&key).map(|r| r.id()),
        Some(manager.id())
    );
    stop(&manager).await;

    // Not persistent: a plain sub-actor, and save_snapshot skips, as in kameo-persistence.
    let plain = ManagerActor::spawn(args());
    let sub = plain
        .ask(AddSubActor {
            name: "plain".into(),
            config: "c".into(),
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(SubActor::persistence_key(&sub), None);
    assert_eq!(sub.ask(GetConfig).await?, "c");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_write_register_and_lookup() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = dir_key(dir.path(), "counter");

    // try_write / try_read: the snapshot in kameo-persistence's encoding (postcard).
    write_signature::<Counter>(&key, CounterSnapshot { count: 7 }).await?;
    let bytes = read_signature::<Counter>(&key).await?;
    assert_eq!(
        postcard::from_bytes::<CounterSnapshot>(&bytes)?,
        CounterSnapshot { count: 7 }
    );
    let counter = respawn_signature::<Counter>(key.clone()).await?;
    // While the actor lives, writes go through its journal and reads see them.
    write_signature::<Counter>(&key, CounterSnapshot { count: 9 }).await?;
    let bytes = read_signature::<Counter>(&key).await?;
    assert_eq!(
        postcard::from_bytes::<CounterSnapshot>(&bytes)?,
        CounterSnapshot { count: 9 }
    );
    stop(&counter).await;
    let counter = try_respawn_signature::<Counter>(key.clone(), 0).await?;
    assert_eq!(Counter::persistence_key(&counter), Some(key.clone()));
    stop(&counter).await;

    // register_persistent: a plain actor gets a key; its saves go there.
    let sub_key = dir_key(dir.path(), "registered");
    let sub = SubActor::spawn(SubActor {
        config: "registered".into(),
    });
    SubActor::register_persistent(sub_key.clone(), &sub)?;
    assert_eq!(SubActor::persistence_key(&sub), Some(sub_key.clone()));
    assert_eq!(
        SubActor::lookup_persistent(&sub_key).map(|r| r.id()),
        Some(sub.id())
    );
    // A second live actor cannot take the key.
    let other = SubActor::spawn(SubActor { config: "x".into() });
    assert!(SubActor::register_persistent(sub_key.clone(), &other).is_err());
    sub.ask(persevere_kameo::SaveSnapshot).await?;
    stop(&sub).await;
    assert!(SubActor::lookup_persistent(&sub_key).is_none());
    let again = SubActor::respawn_persistent(sub_key).await?;
    assert_eq!(again.ask(GetConfig).await?, "registered");
    stop(&again).await;

    let fresh = spawn_signature::<SubActor>(
        dir_key(dir.path(), "fresh"),
        SubActor { config: "f".into() },
    )
    .await?;
    stop(&fresh).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_written_impl_with_its_own_registry() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = dir_key(dir.path(), "manual");
    let manual = Manual::spawn_persistent(key.clone(), Manual { value: "a".into() }).await?;
    // spawn_persistent registered it in the impl's own registry, as kameo-persistence does.
    assert_eq!(Manual::persistence_key(&manual), Some(key.clone()));
    assert_eq!(
        Manual::lookup_persistent(&key).map(|r| r.id()),
        Some(manual.id())
    );
    manual
        .ask(SetValue("b".into()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    stop(&manual).await;
    let again = Manual::respawn_persistent(key).await?;
    assert_eq!(again.ask(GetValue).await?, "b");
    stop(&again).await;
    Ok(())
}
