//! The built-in `sqlite` scheme (feature `sqlite`): keys `sqlite:///path/to/actors.db/STREAM`.
#![cfg(feature = "sqlite")]

mod common;

use common::*;
use persevere_kameo::PersistentActor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keys_survive_a_kill_and_a_respawn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/actors.db/carol", dir.path().display());
    let key = key(&url);
    let carol = Profile::spawn_persistent(key.clone(), profile("carol"))
        .await
        .expect("spawn");
    for n in 1..=3 {
        assert_eq!(carol.ask(Visit).await.expect("visit"), n);
    }
    carol.kill();
    gone(&carol).await;

    let again = Profile::respawn_persistent(key).await.expect("respawn");
    assert_eq!(again.ask(Visits).await.expect("visits"), 3);
    stop(&again).await;
    assert!(dir.path().join("actors.db").exists());
}
