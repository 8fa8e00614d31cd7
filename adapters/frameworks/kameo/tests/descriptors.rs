//! A `file` key's store is closed once its actor is gone (at once with `wait_key_closed`,
//! otherwise past `IDLE_KEY_STORES` idle stores): going through many keys does not pile up
//! open files (a test binary of its own, so that no other test opens files meanwhile).
#![cfg(target_os = "linux")]

mod common;

use common::{profile, stop, Profile, Visit};
use persevere_kameo::persistent_actor::wait_key_closed;
use persevere_kameo::{PersistentActor, Url};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_keys_leave_no_open_store_once_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = |i: usize| Url::from_file_path(dir.path().join(format!("k{i}"))).expect("absolute");
    // Warm up the runtime's blocking pool and the registry.
    let first = Profile::spawn_persistent(key(0), profile("k0"))
        .await
        .expect("spawn");
    stop(&first).await;
    assert!(wait_key_closed(&key(0)).await.expect("key"));
    let before = open_descriptors();

    const KEYS: usize = 2 * persevere_kameo::IDLE_KEY_STORES;
    for i in 1..=KEYS {
        let actor = Profile::spawn_persistent(key(i), profile("k"))
            .await
            .expect("spawn");
        actor.ask(Visit).await.expect("visit");
        stop(&actor).await;
    }
    for i in 1..=KEYS {
        assert!(wait_key_closed(&key(i)).await.expect("key"));
    }
    let after = open_descriptors();
    assert!(
        after <= before + 4,
        "{KEYS} stopped keys left {} descriptors open",
        after.saturating_sub(before)
    );

    // Every key reopens with its state.
    for i in [1, KEYS] {
        let again = Profile::respawn_persistent(key(i)).await.expect("respawn");
        assert_eq!(again.ask(common::Visits).await.expect("visits"), 1);
        stop(&again).await;
    }
}
