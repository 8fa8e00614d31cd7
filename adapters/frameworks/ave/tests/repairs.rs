//! What the file store repairs at open reaches the ave layer: the manager and each actor's
//! store name it, and a strict open (`?strict` in a URL) refuses a store that needs repair.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;

use ave_actors_actor::ActorRef;
use common::{new_system, start, stop, value, Full, Msg, Resp, Setup};
use persevere_ave::FileManager;

/// Appends bytes that look like an interrupted write to the store's newest segment.
fn tear_the_tail(dir: &Path) {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(segments.last().unwrap())
        .unwrap();
    file.write_all(&[0x5a; 7]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repairs_reach_the_manager_and_the_actor_and_strict_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    {
        let manager = FileManager::create(&store).unwrap();
        assert!(manager.manager().repairs().is_empty());
        let (system, runner) = new_system();
        let counter: ActorRef<Full> = start(&system, "c", Setup::new(manager)).await.unwrap();
        counter.ask(Msg::Add(4)).await.unwrap();
        stop(system, runner).await;
    }
    tear_the_tail(&store);

    let strict = format!("file://{}?strict", store.display());
    let error = FileManager::open_url(&strict).unwrap_err();
    assert!(error.to_string().contains("needs repair"), "{error}");

    let manager = FileManager::open(&store).unwrap();
    let repairs = manager.manager().repairs();
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    let (system, runner) = new_system();
    let counter: ActorRef<Full> = start(&system, "c", Setup::new(manager)).await.unwrap();
    assert_eq!(value(&counter).await, 4);
    assert_eq!(
        counter.ask(Msg::Repairs).await.unwrap(),
        Resp::Repairs(repairs)
    );
    stop(system, runner).await;
}
