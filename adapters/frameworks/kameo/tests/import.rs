//! Data written by kameo-persistence 0.1 is recovered: the fixtures in
//! `tests/fixtures/kameo-persistence` were written by the real crate (`tests/fixtures/make`),
//! and are read here with the same types.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kameo::prelude::*;
use persevere_kameo::{Error, PersistentActor};
use serde::{Deserialize, Serialize};
use url::Url;

// ---- The fixtures' types, as `tests/fixtures/make` declares them ----------------------------

#[derive(Debug, Clone, PartialEq, Actor, Serialize, Deserialize, PersistentActor)]
struct Profile {
    name: String,
    visits: u64,
    tags: Vec<String>,
}

impl From<&Profile> for Profile {
    fn from(actor: &Profile) -> Self {
        actor.clone()
    }
}

#[derive(Debug, Clone, PersistentActor)]
#[snapshot(ManagerSnapshot)]
struct Manager {
    label: String,
    limits: BTreeMap<String, u32>,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ManagerSnapshot {
    label: String,
    limits: BTreeMap<String, u32>,
    note: Option<String>,
}

impl From<&Manager> for ManagerSnapshot {
    fn from(actor: &Manager) -> Self {
        Self {
            label: actor.label.clone(),
            limits: actor.limits.clone(),
            note: actor.note.clone(),
        }
    }
}

impl Actor for Manager {
    type Args = ManagerSnapshot;
    type Error = anyhow::Error;

    async fn on_start(args: ManagerSnapshot, _: ActorRef<Self>) -> anyhow::Result<Self> {
        Ok(Self {
            label: args.label,
            limits: args.limits,
            note: args.note,
        })
    }
}

/// What an actor holds, as text.
struct Show;

impl Message<Show> for Profile {
    type Reply = String;
    async fn handle(&mut self, _: Show, _: &mut Context<Self, Self::Reply>) -> String {
        format!("{self:?}")
    }
}

impl Message<Show> for Manager {
    type Reply = String;
    async fn handle(&mut self, _: Show, _: &mut Context<Self, Self::Reply>) -> String {
        format!("{:?}", ManagerSnapshot::from(&*self))
    }
}

/// Counts a visit and saves.
struct Visit;

impl Message<Visit> for Profile {
    type Reply = anyhow::Result<u64>;
    async fn handle(&mut self, _: Visit, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.visits += 1;
        self.save_snapshot(ctx.actor_ref()).await?;
        Ok(self.visits)
    }
}

// ---- What the fixtures hold (the values `tests/fixtures/make` wrote) -------------------------

fn alice() -> Profile {
    Profile {
        name: "alice".into(),
        visits: 3,
        tags: vec!["first".into(), "second".into(), "third".into()],
    }
}

fn bob() -> Profile {
    Profile {
        name: "bob".into(),
        visits: 1,
        tags: vec!["worker".into(), "night".into()],
    }
}

fn manager() -> ManagerSnapshot {
    ManagerSnapshot {
        label: "fleet".into(),
        limits: [("queue".to_owned(), 256), ("workers".to_owned(), 4)].into(),
        note: Some("made by kameo-persistence 0.1".into()),
    }
}

// ---- Helpers --------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kameo-persistence")
}

/// A copy of the fixtures in a fresh temporary directory.
fn copy_fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures(), dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixtures") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The key of a fixture directory, as kameo-persistence spelled it (`manager` with a trailing
/// `/`).
fn key(root: &Path, relative: &str) -> Url {
    let root = Url::from_directory_path(root).expect("absolute");
    root.join(relative).expect("a key")
}

fn typed<T>(result: anyhow::Result<T>) -> Error {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => match error.downcast::<Error>() {
            Ok(error) => error,
            Err(other) => panic!("not a persevere_kameo::Error: {other:#}"),
        },
    }
}

async fn stop<A: Actor>(actor: &ActorRef<A>) {
    actor.stop_gracefully().await.expect("stop");
    actor.wait_for_shutdown_with_result(|_| ()).await;
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

// ---- Tests ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kameo_persistence_snapshots_are_recovered_with_the_same_state() {
    let dir = copy_fixtures();
    let root = dir.path();
    let alice_key = key(root, "alice");
    let manager_key = key(root, "manager/");
    let bob_key = key(root, "manager/workers/bob");

    // try_read gives what kameo-persistence's gives: the snapshot's postcard bytes, here
    // those kameo-persistence wrote.
    let fixture = |relative: &str| read(&fixtures().join(relative).join("index.bin"));
    let bytes = Profile::try_read(&alice_key).await.expect("read");
    assert_eq!(Some(bytes), fixture("alice"));
    let restored = Profile::respawn_persistent(alice_key.clone())
        .await
        .expect("alice");
    assert_eq!(
        restored.ask(Show).await.expect("show"),
        format!("{:?}", alice())
    );
    let restored_manager = Manager::respawn_persistent(manager_key.clone())
        .await
        .expect("manager");
    assert_eq!(
        restored_manager.ask(Show).await.expect("show"),
        format!("{:?}", manager())
    );
    // try_respawn restores too: it never starts fresh beside a kameo-persistence snapshot.
    let fresh = Profile {
        name: "fresh".into(),
        visits: 0,
        tags: Vec::new(),
    };
    let restored_bob = Profile::try_respawn_persistent(bob_key.clone(), fresh)
        .await
        .expect("bob");
    assert_eq!(
        restored_bob.ask(Show).await.expect("show"),
        format!("{:?}", bob())
    );

    // Each snapshot moved into the key's journal; kameo-persistence's bytes are kept aside.
    for (relative, fixture) in [
        ("alice", "alice"),
        ("manager", "manager"),
        ("manager/workers/bob", "manager/workers/bob"),
    ] {
        let dir = root.join(relative);
        assert_eq!(read(&dir.join("index.bin")), None, "{relative}");
        assert_eq!(
            read(&dir.join("index.bin.imported")),
            read(&fixtures().join(fixture).join("index.bin")),
            "{relative}"
        );
        assert!(dir.join("STORE").exists(), "{relative} holds its own store");
    }

    // The imported state goes on: saved, and recovered from the journal after the stores are
    // reopened.
    assert_eq!(restored.ask(Visit).await.expect("visit"), 4);
    stop(&restored).await;
    stop(&restored_manager).await;
    stop(&restored_bob).await;
    for key in [&alice_key, &manager_key, &bob_key] {
        // Each key's store closes once its actor is gone; the next use opens it again.
        assert!(persevere_kameo::persistent_actor::wait_key_closed(key)
            .await
            .expect("key"));
    }
    let again = Profile::respawn_persistent(alice_key).await.expect("alice");
    let mut expected = alice();
    expected.visits = 4;
    assert_eq!(
        again.ask(Show).await.expect("show"),
        format!("{expected:?}")
    );
    stop(&again).await;
    let bytes = Manager::try_read(&manager_key).await.expect("read");
    assert_eq!(
        postcard::from_bytes::<ManagerSnapshot>(&bytes).expect("decode"),
        manager()
    );
    assert_eq!(Some(bytes), fixture("manager"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_kameo_persistence_snapshot_never_gives_a_fresh_actor() {
    let dir = copy_fixtures();
    let alice_key = key(dir.path(), "alice");
    let file = dir.path().join("alice/index.bin");
    let bytes = read(&file).expect("fixture");
    let cut = &bytes[..bytes.len() / 2];
    std::fs::write(&file, cut).expect("cut");

    let fresh = Profile {
        name: "fresh".into(),
        visits: 0,
        tags: Vec::new(),
    };
    let error = typed(Profile::try_respawn_persistent(alice_key.clone(), fresh.clone()).await);
    assert!(matches!(error, Error::Import { .. }), "{error}");
    let error = typed(Profile::respawn_persistent(alice_key.clone()).await);
    assert!(matches!(error, Error::Import { .. }), "{error}");
    let error = typed(Profile::spawn_persistent(alice_key.clone(), fresh).await);
    assert!(matches!(error, Error::Import { .. }), "{error}");
    assert!(Profile::lookup_persistent(&alice_key).is_none());
    // Left as it was, and nothing was saved under the key.
    assert_eq!(read(&file).as_deref(), Some(cut));
    assert_eq!(read(&dir.path().join("alice/index.bin.imported")), None);
    let error = typed(Profile::try_read(&alice_key).await);
    assert!(matches!(error, Error::Import { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kameo_persistence_snapshot_beside_persevere_state_is_a_conflict() {
    let dir = copy_fixtures();
    let alice_key = key(dir.path(), "alice");
    let alice_dir = dir.path().join("alice");
    let restored = Profile::respawn_persistent(alice_key.clone())
        .await
        .expect("alice");
    stop(&restored).await;

    // A crash after the import's save and before index.bin was removed: the next open
    // finishes the import.
    std::fs::copy(
        alice_dir.join("index.bin.imported"),
        alice_dir.join("index.bin"),
    )
    .expect("copy");
    let restored = Profile::respawn_persistent(alice_key.clone())
        .await
        .expect("alice");
    assert_eq!(
        restored.ask(Show).await.expect("show"),
        format!("{:?}", alice())
    );
    assert_eq!(read(&alice_dir.join("index.bin")), None);
    stop(&restored).await;

    // Another index.bin (kameo-persistence wrote the key again, say): never ignored.
    let other = read(&fixtures().join("manager/workers/bob/index.bin")).expect("fixture");
    std::fs::write(alice_dir.join("index.bin"), &other).expect("write");
    let fresh = Profile {
        name: "fresh".into(),
        visits: 0,
        tags: Vec::new(),
    };
    let error = typed(Profile::try_respawn_persistent(alice_key.clone(), fresh).await);
    assert!(matches!(error, Error::ImportConflict { .. }), "{error}");
    let error = typed(Profile::respawn_persistent(alice_key.clone()).await);
    assert!(matches!(error, Error::ImportConflict { .. }), "{error}");
    assert_eq!(read(&alice_dir.join("index.bin")), Some(other));

    // Moving it out of the directory, as the error says, goes on with persevere's state.
    std::fs::remove_file(alice_dir.join("index.bin")).expect("move out");
    let restored = Profile::respawn_persistent(alice_key).await.expect("alice");
    assert_eq!(
        restored.ask(Show).await.expect("show"),
        format!("{:?}", alice())
    );
    stop(&restored).await;
}
