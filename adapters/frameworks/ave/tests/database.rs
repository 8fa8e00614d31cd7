//! ave's storage traits over the file journal: durable across reopen, usable from inside a
//! tokio runtime (current-thread included).

#![allow(clippy::unwrap_used)]

use persevere_ave::database::StoreError as Error;
use persevere_ave::database::{Collection, DbManager, State, Table};
use persevere_ave::FileManager;

fn write_then_reopen(dir: &std::path::Path) {
    {
        let manager = FileManager::open(dir).unwrap();
        let mut events: Table = manager.create_collection("events", "user/a").unwrap();
        for seq in 0..5u8 {
            Collection::put(&mut events, &format!("{seq:020}"), &[seq]).unwrap();
        }
        Collection::del(&mut events, &format!("{:020}", 0)).unwrap();
        let mut state: Table = manager.create_state("state", "user/a").unwrap();
        State::put(&mut state, b"snapshot").unwrap();
    }
    let manager = FileManager::open(dir).unwrap();
    let events: Table = manager.create_collection("events", "user/a").unwrap();
    assert_eq!(
        events.get_by_range(None, 10).unwrap(),
        vec![vec![1], vec![2], vec![3], vec![4]]
    );
    assert!(matches!(
        Collection::get(&events, &format!("{:020}", 0)),
        Err(Error::EntryNotFound { .. })
    ));
    let state: Table = manager.create_state("state", "user/a").unwrap();
    assert_eq!(State::get(&state).unwrap(), b"snapshot");
}

#[test]
fn outside_a_runtime() {
    write_then_reopen(tempfile::tempdir().unwrap().path());
}

#[tokio::test(flavor = "current_thread")]
async fn inside_a_current_thread_runtime() {
    write_then_reopen(tempfile::tempdir().unwrap().path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_multi_thread_runtime() {
    write_then_reopen(tempfile::tempdir().unwrap().path());
}
