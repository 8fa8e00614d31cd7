//! Keys of the kameo-persistence API mean what they mean in kameo-persistence: a
//! `file:///DIR/KEY` key is a directory of its own.

mod common;

use common::{profile, stop, typed, Profile, Visit, Visits};
use kameo::actor::Spawn;
use persevere_kameo::{Error, PersistentActor, Url};

fn dir_key(dir: &std::path::Path, name: &str) -> Url {
    Url::from_file_path(dir.join(name)).expect("an absolute path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_is_a_directory_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Profile::spawn_persistent(dir_key(dir.path(), "a"), profile("a"))
        .await
        .expect("a");
    let b = Profile::spawn_persistent(dir_key(dir.path(), "b"), profile("b"))
        .await
        .expect("b");
    // Nested in a's directory, as kameo-persistence's example nests sub-actors.
    let nested_key = dir_key(dir.path(), "a/sub-actors/1");
    let nested = Profile::spawn_persistent(nested_key.clone(), profile("nested"))
        .await
        .expect("nested");
    nested.ask(Visit).await.expect("visit");
    for store in ["a", "b", "a/sub-actors/1"] {
        assert!(dir.path().join(store).join("STORE").is_file(), "{store}");
    }
    // Nothing of the keys' lands in the parent directory.
    let mut parent: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    parent.sort();
    assert_eq!(parent, ["a", "b"]);
    for actor in [&a, &b, &nested] {
        stop(actor).await;
    }
    let again = Profile::respawn_persistent(nested_key)
        .await
        .expect("nested");
    assert_eq!(again.ask(Visits).await.expect("visits"), 1);
    stop(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_not_found_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir_key(dir.path(), "missing");
    let error = typed(Profile::respawn_persistent(key.clone()).await);
    assert!(matches!(error, Error::NotFound(_)), "{error}");
    let error = typed(Profile::try_read(&key).await);
    assert!(matches!(error, Error::NotFound(_)), "{error}");
    assert!(!dir.path().join("missing").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailing_slash_names_the_same_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir_key(dir.path(), "k");
    let slash = Url::from_directory_path(dir.path().join("k")).expect("absolute");
    assert!(slash.as_str().ends_with('/'));
    let actor = Profile::spawn_persistent(slash.clone(), profile("k"))
        .await
        .expect("spawn");
    assert_eq!(
        Profile::lookup_persistent(&plain).map(|r| r.id()),
        Some(actor.id())
    );
    assert!(matches!(
        typed(Profile::spawn_persistent(plain.clone(), profile("k")).await),
        Error::KeyInUse(_)
    ));
    actor.ask(Visit).await.expect("visit");
    stop(&actor).await;
    let again = Profile::respawn_persistent(plain).await.expect("respawn");
    assert_eq!(again.ask(Visits).await.expect("visits"), 1);
    stop(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_and_malformed_keys_are_refused() {
    let refused = |text: &str| Url::parse(text).expect("a URL");
    for key in [
        refused("file://relative/dir"),
        refused("file:///"),
        refused("memory://store"),
        refused("memory://store/k?option"),
    ] {
        let error = typed(Profile::try_respawn_persistent(key.clone(), profile("x")).await);
        assert!(matches!(error, Error::Key { .. }), "{key}: {error}");
        let error = typed(Profile::try_read(&key).await);
        assert!(matches!(error, Error::Key { .. }), "{key}: {error}");
        let actor = Profile::spawn(profile("x"));
        assert!(
            Profile::register_persistent(key.clone(), &actor).is_err(),
            "{key}"
        );
        stop(&actor).await;
    }
    // Text a URL parser would turn into another directory is refused before it is a key.
    assert!(matches!(
        persevere_kameo::parse_key("file:relative/dir"),
        Err(Error::Key { .. })
    ));
    // As is an escaped separator, which the store's location would decode into other
    // directories than the key's segments show.
    for hidden in [
        "file:///srv/keys/x%2F..%2F..%2Fetc",
        "file:///srv/keys/x%2f..%5Cother/stream",
        "file:///srv/keys/x%00y",
    ] {
        assert!(
            matches!(persevere_kameo::parse_key(hidden), Err(Error::Key { .. })),
            "{hidden}"
        );
        let key = Url::parse(hidden).expect("a URL");
        assert!(
            matches!(persevere_kameo::locate_key(&key), Err(Error::Key { .. })),
            "{hidden}"
        );
    }
}

/// The environment variable that makes [`second_process`] run, naming the parent directory.
const CHILD_DIR: &str = "PERSEVERE_KAMEO_KEYS_CHILD_DIR";

/// Run by [`another_process_uses_another_key_of_the_directory`] as a child process: saves
/// under `DIR/b`, and cannot open `DIR/a`, whose store the parent holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let b = Profile::spawn_persistent(dir_key(&dir, "b"), profile("b"))
        .await
        .expect("b in the second process");
    b.ask(Visit).await.expect("visit");
    b.ask(Visit).await.expect("visit");
    stop(&b).await;
    let error = typed(Profile::respawn_persistent(dir_key(&dir, "a")).await);
    assert!(matches!(error, Error::Storage { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_uses_another_key_of_the_directory() {
    if std::env::var_os(CHILD_DIR).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Profile::spawn_persistent(dir_key(dir.path(), "a"), profile("a"))
        .await
        .expect("a");
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "second_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .output()
        .expect("run the second process");
    assert!(
        output.status.success(),
        "the second process failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
    let b = Profile::respawn_persistent(dir_key(dir.path(), "b"))
        .await
        .expect("b, written by the second process");
    assert_eq!(b.ask(Visits).await.expect("visits"), 2);
    stop(&b).await;
    stop(&a).await;
}
