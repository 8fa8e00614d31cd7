//! The kameo-persistence API: spawn, respawn, try_respawn, save_snapshot, persistence_key.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use kameo::prelude::*;
use persevere_kameo::{Error, PersistentActor, SaveSnapshot, Url};
use serde::{Deserialize, Serialize};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_snapshots_survive_a_stop_and_a_respawn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = file_key(dir.path(), "alice");
    let alice = Profile::spawn_persistent(key.clone(), profile("alice"))
        .await
        .expect("spawn");
    assert_eq!(Profile::persistence_key(&alice), Some(key.clone()));
    for n in 1..=3 {
        assert_eq!(alice.ask(Visit).await.expect("visit"), n);
    }
    stop(&alice).await;

    let again = Profile::respawn_persistent(key.clone())
        .await
        .expect("respawn");
    assert_ne!(again.id(), alice.id());
    assert_eq!(again.ask(Visits).await.expect("visits"), 3);
    assert_eq!(Profile::persistence_key(&again), Some(key));
    stop(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_respawn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = file_key(dir.path(), "bob");
    let bob = Profile::spawn_persistent(key.clone(), profile("bob"))
        .await
        .expect("spawn");
    bob.ask(Visit).await.expect("visit");
    bob.kill();
    gone(&bob).await;

    let again = Profile::respawn_persistent(key).await.expect("respawn");
    assert_eq!(again.ask(Visits).await.expect("visits"), 1);
    stop(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_actor_is_stored_at_once() {
    let key = key("memory://spawned/carol");
    let carol = Profile::spawn_persistent(key.clone(), profile("carol"))
        .await
        .expect("spawn");
    stop(&carol).await;
    let again = Profile::respawn_persistent(key).await.expect("respawn");
    assert_eq!(again.ask(Visits).await.expect("visits"), 0);
    stop(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_respawn_starts_fresh_only_when_nothing_is_stored() {
    let key = key("memory://fresh/dave");
    assert!(matches!(
        typed(Profile::respawn_persistent(key.clone()).await),
        Error::NotFound(_)
    ));
    let dave = Profile::try_respawn_persistent(key.clone(), profile("dave"))
        .await
        .expect("fresh");
    dave.ask(Visit).await.expect("visit");
    stop(&dave).await;

    let again = Profile::try_respawn_persistent(key, profile("ignored"))
        .await
        .expect("restored");
    assert_eq!(again.ask(Visits).await.expect("visits"), 1);
    stop(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_never_has_two_live_actors() {
    let key = key("memory://single/erin");
    let erin = Profile::spawn_persistent(key.clone(), profile("erin"))
        .await
        .expect("spawn");
    assert!(matches!(
        typed(Profile::spawn_persistent(key.clone(), profile("erin")).await),
        Error::KeyInUse(_)
    ));
    let again = Profile::respawn_persistent(key.clone())
        .await
        .expect("respawn");
    assert_eq!(again.id(), erin.id());
    // Another spelling of the same stream finds the same actor, never a second one.
    let fragment = self::key("memory://single/erin#again");
    assert!(matches!(
        typed(Profile::spawn_persistent(fragment.clone(), profile("erin")).await),
        Error::KeyInUse(_)
    ));
    let same = Profile::respawn_persistent(fragment)
        .await
        .expect("respawn");
    assert_eq!(same.id(), erin.id());
    stop(&erin).await;

    // Concurrent respawns of a stopped key start one actor between them.
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (key, barrier) = (key.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                Profile::respawn_persistent(key).await.expect("respawn")
            })
        })
        .collect();
    // Every reference is kept until all are compared (an actor whose references are all
    // dropped stops).
    let mut refs = Vec::new();
    for task in tasks {
        refs.push(task.await.expect("task"));
    }
    let mut ids: Vec<_> = refs.iter().map(|r| r.id()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_ne!(ids[0], erin.id());
    let live = Profile::respawn_persistent(key).await.expect("respawn");
    stop(&live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_snapshot_is_an_error_and_is_left_untouched() {
    let memory = tamper_scheme("tamper-persistent");
    let key = key("tamper-persistent://store/frank");
    let frank = Profile::spawn_persistent(key.clone(), profile("frank"))
        .await
        .expect("spawn");
    frank.ask(Visit).await.expect("visit");
    stop(&frank).await;

    // A damaged newest snapshot alone is no loss: the save before it (snapshot and event,
    // kept until the next cleanup) and the newest save's event rebuild the state...
    memory.with_store(|store| {
        let stream = store.stream_mut("frank");
        assert_eq!(
            stream.snapshots.len(),
            2,
            "the spawn's save and the visit's"
        );
        let (_, bytes) = stream.snapshots.iter_mut().next_back().expect("snapshot");
        let middle = bytes.len() / 2;
        bytes.make_mut()[middle] ^= 0x20;
    });
    let again = Profile::respawn_persistent(key.clone())
        .await
        .expect("respawn");
    assert_eq!(again.ask(Visits).await.expect("visits"), 1);
    again.kill();
    gone(&again).await;

    // ...but when nothing readable is left, every way of starting the key fails, and the
    // store is left as it was.
    let stored = memory.with_store(|store| {
        let stream = store.stream_mut("frank");
        for bytes in stream
            .snapshots
            .values_mut()
            .chain(stream.events.values_mut())
        {
            let third = bytes.len() / 3;
            bytes.make_mut()[third] ^= 0x20;
        }
        stream.clone()
    });

    let error = typed(Profile::respawn_persistent(key.clone()).await);
    assert!(error.is_recovery(), "{error}");
    let error = typed(Profile::try_respawn_persistent(key.clone(), profile("frank")).await);
    assert!(error.is_recovery(), "{error}");
    assert!(Profile::spawn_persistent(key, profile("frank"))
        .await
        .is_err());
    memory.with_store(|store| assert_eq!(store.stream("frank"), Some(&stored)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = file_key(dir.path(), "grace");
    let grace = Profile::spawn_persistent(key.clone(), profile("grace"))
        .await
        .expect("spawn");
    grace.ask(Visit).await.expect("visit");
    stop(&grace).await;
    // The key's store closes once its actor is gone: its files are then left alone.
    assert!(persevere_kameo::persistent_actor::wait_key_closed(&key)
        .await
        .expect("key"));

    // Damage every byte of the stored snapshot's payload, wherever the store keeps it (in the
    // key's own directory).
    let mut damaged = 0;
    for entry in std::fs::read_dir(dir.path().join("grace")).expect("dir") {
        let path = entry.expect("entry").path();
        let Ok(mut bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Some(at) = find(&bytes, b"\"grace\"") {
            bytes[at + 1] ^= 0x01;
            std::fs::write(&path, &bytes).expect("write");
            damaged += 1;
        }
    }
    assert!(damaged > 0, "the snapshot was found on disk");
    let error = typed(Profile::try_respawn_persistent(key, profile("grace")).await);
    assert!(
        error.is_recovery() || matches!(error, Error::Storage { .. }),
        "{error}"
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_snapshot_needs_a_persistent_actor() {
    let plain = Profile::spawn(profile("plain"));
    assert_eq!(Profile::persistence_key(&plain), None);
    assert!(matches!(
        plain.ask(SaveSnapshot).await,
        Err(SendError::HandlerError(Error::NotPersistent(_)))
    ));
    stop(&plain).await;
}

// ---- The quick start's shape: a manager restoring its sub-actors from their keys -----------

#[derive(Debug, Clone, PersistentActor)]
#[snapshot(ManagerSnapshot)]
struct Manager {
    data: String,
    subs: HashMap<String, ActorRef<Profile>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManagerSnapshot {
    data: String,
    subs: HashMap<String, Url>,
}

impl From<&Manager> for ManagerSnapshot {
    fn from(manager: &Manager) -> Self {
        Self {
            data: manager.data.clone(),
            subs: manager
                .subs
                .iter()
                .filter_map(|(name, sub)| {
                    PersistentActor::persistence_key(sub).map(|key| (name.clone(), key))
                })
                .collect(),
        }
    }
}

impl Actor for Manager {
    type Args = ManagerSnapshot;
    type Error = anyhow::Error;

    async fn on_start(args: ManagerSnapshot, _: ActorRef<Self>) -> anyhow::Result<Self> {
        let mut subs = HashMap::new();
        for (name, key) in args.subs {
            subs.insert(name, Profile::respawn_persistent(key).await?);
        }
        Ok(Self {
            data: args.data,
            subs,
        })
    }
}

struct AddSub(String, Url);

impl Message<AddSub> for Manager {
    type Reply = anyhow::Result<()>;
    async fn handle(&mut self, msg: AddSub, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let sub = Profile::spawn_persistent(msg.1, profile(&msg.0)).await?;
        self.subs.insert(msg.0, sub);
        self.save_snapshot(ctx.actor_ref()).await
    }
}

struct Sub(&'static str);

impl Message<Sub> for Manager {
    type Reply = Option<ActorRef<Profile>>;
    async fn handle(&mut self, Sub(name): Sub, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.subs.get(name).cloned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_restores_its_sub_actors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manager_key = file_key(dir.path(), "manager");
    let manager = Manager::spawn_persistent(
        manager_key.clone(),
        ManagerSnapshot {
            data: "config".into(),
            subs: HashMap::new(),
        },
    )
    .await
    .expect("spawn");
    for name in ["one", "two"] {
        let key = file_key(dir.path(), name);
        manager.ask(AddSub(name.into(), key)).await.expect("add");
    }
    let one = manager.ask(Sub("one")).await.expect("ask").expect("one");
    one.ask(Visit).await.expect("visit");
    for name in ["one", "two"] {
        let sub = manager.ask(Sub(name)).await.expect("ask").expect("sub");
        stop(&sub).await;
    }
    stop(&manager).await;

    let manager = Manager::respawn_persistent(manager_key)
        .await
        .expect("respawn");
    let one = manager.ask(Sub("one")).await.expect("ask").expect("one");
    assert_eq!(one.ask(Visits).await.expect("visits"), 1);
    assert!(manager.ask(Sub("two")).await.expect("ask").is_some());
    stop(&manager).await;
}

/// An actor that reads and rewrites its own key from its `on_stop`, through the static API.
#[derive(Debug, Clone, Serialize, Deserialize, PersistentActor)]
struct Farewell {
    key: Url,
    words: Vec<String>,
}

impl From<&Farewell> for Farewell {
    fn from(actor: &Farewell) -> Self {
        actor.clone()
    }
}

impl Actor for Farewell {
    type Args = Self;
    type Error = anyhow::Error;

    async fn on_start(args: Self, _: ActorRef<Self>) -> anyhow::Result<Self> {
        Ok(args)
    }

    async fn on_stop(&mut self, _: WeakActorRef<Self>, _: ActorStopReason) -> anyhow::Result<()> {
        let bytes = Self::try_read(&self.key).await?;
        let mut stored: Farewell = postcard::from_bytes(&bytes)?;
        stored.words.push("goodbye".into());
        Self::try_write(&self.key, stored).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_reads_and_writes_its_own_key_while_it_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = file_key(dir.path(), "farewell");
    let actor = Farewell::spawn_persistent(
        key.clone(),
        Farewell {
            key: key.clone(),
            words: vec!["hello".into()],
        },
    )
    .await
    .expect("spawn");
    // A bound on a hang, not a speed limit: an on_stop waiting for its own actor to be gone
    // never finishes.
    tokio::time::timeout(std::time::Duration::from_secs(60), stop(&actor))
        .await
        .expect("on_stop waited for its own actor to stop");
    let stored: Farewell =
        postcard::from_bytes(&Farewell::try_read(&key).await.expect("read")).expect("decode");
    assert_eq!(stored.words, ["hello", "goodbye"]);
}
