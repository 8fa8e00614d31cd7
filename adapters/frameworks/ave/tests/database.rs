//! ave's storage traits over the file journal: durable across reopen, usable from inside a
//! tokio runtime (current-thread included).

#![allow(clippy::unwrap_used)]

use persevere_ave::database::StoreError as Error;
use persevere_ave::database::{Collection, DbManager, State, Table};
use persevere_ave::FileManager;

fn write_then_reopen(dir: &std::path::Path) {
    {
        let manager = FileManager::open_or_create(dir).unwrap();
        let mut events: Table = manager.create_collection("events", "user/a").unwrap();
        for seq in 0..5u8 {
            Collection::put(&mut events, &format!("{seq:020}"), &[seq]).unwrap();
        }
        Collection::del(&mut events, &format!("{:020}", 0)).unwrap();
        let mut state: Table = manager.create_state("state", "user/a").unwrap();
        State::put(&mut state, b"snapshot").unwrap();
    }
    let manager = FileManager::open_or_create(dir).unwrap();
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

/// A dropped manager releases its directory before its last answer arrives: reopening at once
/// never finds it locked. While one lives, another open in the same process shares its store
/// (and sees its data), and `create` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_manager_releases_its_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..200u32 {
        let manager = FileManager::open_or_create(dir.path()).unwrap();
        let shared = FileManager::open(dir.path()).unwrap();
        assert!(
            FileManager::create(dir.path()).is_err(),
            "creating a store that is open"
        );
        let mut state: Table = manager.create_state("state", "user/a").unwrap();
        State::put(&mut state, &round.to_le_bytes()).unwrap();
        let seen: Table = shared.create_state("state", "user/a").unwrap();
        assert_eq!(State::get(&seen).unwrap(), round.to_le_bytes());
        drop((state, seen, shared, manager));
    }
    let manager = FileManager::open_or_create(dir.path()).unwrap();
    let state: Table = manager.create_state("state", "user/a").unwrap();
    assert_eq!(State::get(&state).unwrap(), 199u32.to_le_bytes());
}

/// Set in the child process of [`another_process_gets_a_lock_error`]: the directory to open.
const CHILD: &str = "PERSEVERE_AVE_LOCK_CHILD";

/// Sharing is within one process: another process opening a live store's directory gets a
/// lock error.
#[test]
fn another_process_gets_a_lock_error() {
    if let Some(dir) = std::env::var_os(CHILD) {
        match FileManager::open(&dir) {
            Err(persevere_ave::AdapterError::Open(reason)) if reason.contains("lock") => return,
            other => panic!("the child expected a lock error, got {other:?}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _inside = runtime.enter();
    let dir = tempfile::tempdir().unwrap();
    let manager = FileManager::open_or_create(dir.path()).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["another_process_gets_a_lock_error", "--exact", "--quiet"])
        .env(CHILD, dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the child process: {status}");
    drop(manager);
}

/// Two stores over clones of one ave manager (as two `start_store` calls given a foreign
/// manager build): an append after the other store's is a conflict, never an overwrite of an
/// acknowledged event.
#[test]
fn a_second_store_over_one_manager_never_overwrites_the_first_ones_events() {
    use persevere_ave::database::DbStore;
    use persevere_core::{Command, CommandId, Completion, StorageError, Store, StoredRecord};
    use std::sync::Arc;

    let theirs = ave_actors_store::memory::MemoryManager::default();
    let mut first = DbStore::new(theirs.clone());
    let mut second = DbStore::new(theirs.clone());
    let stream: Arc<str> = "/user/c/counter".into();
    let read = |store: &mut DbStore<_, _, _>| {
        store.execute_one(
            &stream,
            Command::ReadEvents {
                id: CommandId(1),
                from: 1,
                limit: 10,
            },
        )
    };
    let append = |store: &mut DbStore<_, _, _>, byte: u8| {
        store
            .execute_one(
                &stream,
                Command::Append {
                    id: CommandId(2),
                    expected_last: 0,
                    events: StoredRecord::new(1, vec![byte]).into(),
                    snapshot: None,
                },
            )
            .1
    };
    // Both recover the empty stream (and know its head), then both append at seq 1.
    for store in [&mut first, &mut second] {
        assert!(matches!(
            read(store).1,
            Ok(Completion::Events { head: 0, .. })
        ));
    }
    assert_eq!(append(&mut first, 1), Ok(Completion::Done));
    assert_eq!(
        append(&mut second, 2),
        Err(StorageError::Conflict {
            expected: 0,
            actual: 1
        })
    );
    let Ok(Completion::Events { records, head }) = read(&mut DbStore::new(theirs)).1 else {
        panic!("the stream reads back");
    };
    assert_eq!((head, records.len()), (1, 1));
    assert_eq!(&records[0].bytes[..], &[1]);
}
