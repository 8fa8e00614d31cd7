//! The store's lock and child processes: while one thread spawns processes, another drops
//! and reopens its store at once. A child between its fork and its exec shares the parent's
//! descriptors — the lock file's among them — so the lock the store just released can
//! outlive it for a moment; reopening must not fail for it.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use persevere_sqlite::SqliteStore;

#[test]
fn a_store_reopens_at_once_while_another_thread_spawns_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.db");
    drop(SqliteStore::create(&path).expect("create"));
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut spawned = 0u32;
            while !stop.load(Ordering::Relaxed) {
                Command::new("true").status().expect("spawn true");
                spawned += 1;
            }
            spawned
        })
    };
    for round in 0..200 {
        let store = SqliteStore::open(&path)
            .unwrap_or_else(|e| panic!("round {round}: reopening failed: {e}"));
        drop(store);
    }
    stop.store(true, Ordering::Relaxed);
    let spawned = spawner.join().expect("spawner");
    assert!(spawned > 0, "no child was spawned while the store reopened");
}
