//! Full persistence snapshots when its store stops gracefully and after a replay, as
//! ave-actors-store does, so a start never replays up to `snapshot_every - 1` events.

#![allow(clippy::unwrap_used)]

mod common;

use common::{new_system, start, stop, value, Full, Msg, Setup};
use persevere_ave::MemoryManager;

/// The seqs of the stream's snapshots.
fn snapshots(manager: &MemoryManager) -> Vec<u64> {
    manager.memory().with_store(|store| {
        store
            .stream("/user/c/counter")
            .map(|s| s.snapshots.keys().copied().collect())
            .unwrap_or_default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_snapshots_the_events_after_the_last_snapshot() {
    let manager = MemoryManager::default();
    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Full> =
        start(&system, "c", Setup::new(manager.clone()))
            .await
            .unwrap();
    // Snapshots every 3 events: after 5, the newest covers 3.
    for n in 1..=5 {
        counter.ask(Msg::Add(n)).await.unwrap();
    }
    assert_eq!(snapshots(&manager), vec![3]);
    stop(system, runner).await;
    assert_eq!(snapshots(&manager), vec![3, 5], "the stop snapshots seq 5");

    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Full> =
        start(&system, "c", Setup::new(manager.clone()))
            .await
            .unwrap();
    assert_eq!(value(&counter).await, 15);
    stop(system, runner).await;
    assert_eq!(snapshots(&manager), vec![3, 5], "nothing new to snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_replayed_events_snapshots_them() {
    let manager = MemoryManager::default();
    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Full> =
        start(&system, "c", Setup::new(manager.clone()))
            .await
            .unwrap();
    for n in 1..=5 {
        counter.ask(Msg::Add(n)).await.unwrap();
    }
    // No graceful stop (as after a crash): the snapshot covers 3, events 4 and 5 follow.
    std::mem::forget((system, runner, counter));
    assert_eq!(snapshots(&manager), vec![3]);
    // The stream's owner is gone with that system only once its store is released: take
    // the stream over as a restarted process would, through a new manager over the memory.
    let restarted = MemoryManager::from_memory(manager.memory().clone());
    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Full> =
        start(&system, "c", Setup::new(restarted.clone()))
            .await
            .unwrap();
    assert_eq!(value(&counter).await, 15);
    assert_eq!(
        snapshots(&restarted),
        vec![3, 5],
        "the replay of 4 and 5 was snapshotted"
    );
    stop(system, runner).await;
}
