//! Faults stay where they happen: a conflict or a refused command fails alone, a failed commit
//! (a full disk) fences the store until it reopens, a damaged snapshot row is `Damaged`.

mod common;

use std::sync::Arc;

use common::{append, dump, event_bytes, one};
use persevere_core::{Command, CommandId, Completion, StorageError, Store, StreamCommand};
use persevere_sqlite::SqliteStore;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::create(dir.path().join("a.db")).expect("opens");
    (dir, store)
}

#[test]
fn a_conflict_fails_alone_and_the_rest_of_the_batch_commits() {
    let (_dir, mut store) = store();
    assert_eq!(
        store.execute(vec![append("a", 0, 2, false)])[0].1,
        Ok(Completion::Done)
    );
    let results = store.execute(vec![
        append("b", 0, 1, false),
        append("a", 1, 1, false),
        append("c", 0, 2, true),
    ]);
    assert_eq!(results[0].1, Ok(Completion::Done));
    assert_eq!(
        results[1].1,
        Err(StorageError::Conflict {
            expected: 1,
            actual: 2
        })
    );
    assert_eq!(results[2].1, Ok(Completion::Done));
    assert_eq!(dump(&mut store, "a").expect("a").0, 2);
    assert_eq!(dump(&mut store, "b").expect("b").0, 1);
    let (head, events, snapshots) = dump(&mut store, "c").expect("c");
    assert_eq!((head, events.len(), snapshots.len()), (2, 2, 1));
}

#[test]
fn a_command_sqlite_refuses_is_rolled_back_alone() {
    let (_dir, mut store) = store();
    assert_eq!(
        store.execute(vec![append("a", 0, 3, false)])[0].1,
        Ok(Completion::Done)
    );
    // A stray row of another stream (written behind the store's back) at the global position
    // the next append's second event takes makes its second insert violate the primary key,
    // after its first insert.
    store
        .with_connection(|c| {
            c.execute(
                "INSERT INTO persevere_events (stream_id, seq, position, payload) \
                 SELECT 999, 1, max(position) + 2, x'00' FROM persevere_events",
                [],
            )
        })
        .expect("connected")
        .expect("stray row");
    let results = store.execute(vec![append("a", 3, 2, false), append("b", 0, 1, false)]);
    assert!(
        matches!(&results[0].1, Err(StorageError::Rejected(reason)) if reason.contains("a.db")),
        "{results:?}"
    );
    assert_eq!(results[1].1, Ok(Completion::Done));
    assert_eq!(store.fenced(), None);
    let (head, events, _) = dump(&mut store, "a").expect("a");
    assert_eq!(head, 3, "the refused append moved the head");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "the refused append's first event stayed"
    );
}

#[test]
fn a_full_disk_fences_the_store_until_it_reopens() {
    let (_dir, mut store) = store();
    assert_eq!(
        store.execute(vec![append("a", 0, 2, false)])[0].1,
        Ok(Completion::Done)
    );
    // The connection may not grow the file any more: the next big write is SQLITE_FULL.
    store
        .with_connection(|c| {
            c.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
                .and_then(|pages| {
                    c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
        })
        .expect("connected")
        .expect("limit");
    let big = StreamCommand {
        stream: Arc::from("b"),
        command: Command::Append {
            id: CommandId(7),
            expected_last: 0,
            events: (1..=64)
                .map(|seq| persevere_core::StoredRecord {
                    seq,
                    bytes: vec![7; 4096].into(),
                })
                .collect(),
            snapshot: None,
        },
    };
    let results = store.execute(vec![append("a", 2, 1, false), big.clone()]);
    assert!(
        results
            .iter()
            .all(|(_, r)| matches!(r, Err(StorageError::Failed(_)))),
        "{results:?}"
    );
    let reason = store.fenced().expect("fenced");
    assert!(reason.contains("a.db"), "{reason}");
    let results = store.execute(vec![append("c", 0, 1, false)]);
    assert!(
        matches!(&results[0].1, Err(StorageError::Failed(r)) if r.contains("fenced")),
        "{results:?}"
    );
    store.reopen().expect("reopens");
    assert_eq!(store.fenced(), None);
    assert_eq!(
        dump(&mut store, "a").expect("a").0,
        2,
        "nothing of the failed batch landed"
    );
    let results = store.execute(vec![append("a", 2, 1, false), big]);
    assert!(
        results.iter().all(|(_, r)| r == &Ok(Completion::Done)),
        "{results:?}"
    );
}

#[test]
fn a_damaged_snapshot_row_is_damaged_and_an_older_one_still_loads() {
    let (_dir, mut store) = store();
    let results = store.execute(vec![append("a", 0, 2, true), append("a", 2, 2, true)]);
    assert!(results.iter().all(|(_, r)| r == &Ok(Completion::Done)));
    store
        .with_connection(|c| {
            c.execute(
                "UPDATE persevere_snapshots SET payload = x'0badbeef' WHERE seq = 4",
                [],
            )
        })
        .expect("connected")
        .expect("tamper");
    let load = |before| Command::LoadSnapshot {
        id: CommandId(1),
        before,
    };
    let error = one(&mut store, "a", load(None)).expect_err("damaged");
    assert!(error.contains("seq 4") && error.contains("a.db"), "{error}");
    let results = store.execute(vec![StreamCommand {
        stream: Arc::from("a"),
        command: load(None),
    }]);
    assert!(matches!(
        results[0].1,
        Err(StorageError::Damaged { seq: 4, .. })
    ));
    let Ok(Completion::Snapshot(Some(older))) = one(&mut store, "a", load(Some(4))) else {
        panic!("the older snapshot does not load");
    };
    assert_eq!(older.seq, 2);
    assert_eq!(store.fenced(), None);
}

#[test]
fn the_head_survives_compaction_and_positions_are_never_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = SqliteStore::create(&path).expect("opens");
    store.execute(vec![append("a", 0, 5, true)]);
    let results = store.execute(vec![StreamCommand {
        stream: Arc::from("a"),
        command: Command::DeleteEvents {
            id: CommandId(2),
            up_to: 5,
        },
    }]);
    assert_eq!(results[0].1, Ok(Completion::Done));
    drop(store);
    let mut store = SqliteStore::open(&path).expect("reopens");
    let (head, events, snapshots) = dump(&mut store, "a").expect("a");
    assert_eq!((head, events.len(), snapshots.len()), (5, 0, 1));
    store.execute(vec![append("a", 5, 2, false)]);
    let (_, events, _) = dump(&mut store, "a").expect("a");
    assert_eq!(events[0].bytes, event_bytes("a", 6));
    let positions: Vec<i64> = store
        .with_connection(|c| {
            let mut s = c.prepare("SELECT position FROM persevere_events ORDER BY seq")?;
            let rows = s.query_map([], |r| r.get(0))?;
            rows.collect::<Result<Vec<i64>, _>>()
        })
        .expect("connected")
        .expect("positions");
    // Positions are reserved in blocks: after a reopen the store starts past the block.
    assert_eq!(positions.len(), 2);
    assert!(
        positions[0] > 5 && positions[1] > positions[0],
        "positions 1..=5 were deleted, not reused: {positions:?}"
    );
}

#[test]
fn a_reader_in_another_connection_never_blocks_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = SqliteStore::create(&path).expect("opens");
    store.execute(vec![append("a", 0, 2, false)]);
    // A reporting job holds a read transaction open across the writer's commits.
    let reader = persevere_sqlite::rusqlite::Connection::open(&path).expect("reader");
    reader.execute_batch("BEGIN").expect("begin");
    let seen = |reader: &persevere_sqlite::rusqlite::Connection| -> i64 {
        reader
            .query_row("SELECT count(*) FROM persevere_events", [], |r| r.get(0))
            .expect("read")
    };
    assert_eq!(seen(&reader), 2);
    for n in 0..20 {
        let results = store.execute(vec![append("a", 2 + n, 1, n % 5 == 0)]);
        assert_eq!(results[0].1, Ok(Completion::Done));
    }
    assert_eq!(seen(&reader), 2, "the reader keeps its snapshot");
    reader.execute_batch("COMMIT").expect("end");
    assert_eq!(seen(&reader), 22);
    assert_eq!(dump(&mut store, "a").expect("a").0, 22);
}
