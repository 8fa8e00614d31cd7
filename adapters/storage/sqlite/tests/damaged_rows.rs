//! Rows changed behind the store's back: a value the store never writes (text or a real number
//! in an integer column, a seq at the end of the integers, a corrupt page) answers the command
//! that reads it (`Damaged`, naming the stream, the table, the column and what to do), never
//! the rest of its batch, never fences the store and never panics.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{append, event_bytes, one};
use persevere_core::{
    Command, CommandId, CommandResult, Completion, StorageError, Store, StoredRecord, StreamCommand,
};
use persevere_sqlite::SqliteStore;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::create(dir.path().join("a.db")).expect("opens");
    (dir, store)
}

fn on(stream: &str, command: Command) -> StreamCommand {
    StreamCommand {
        stream: Arc::from(stream),
        command,
    }
}

fn load(before: Option<u64>) -> Command {
    Command::LoadSnapshot {
        id: CommandId(100),
        before,
    }
}

fn read_from(from: u64) -> Command {
    Command::ReadEvents {
        id: CommandId(101),
        from,
        limit: 100,
    }
}

fn tamper(store: &SqliteStore, sql: &str) {
    let changed = store
        .with_connection(|c| c.execute(sql, []))
        .expect("connected")
        .expect("tamper");
    assert!(changed > 0, "{sql} changed nothing");
}

/// Asserts `result` is `Damaged` at `seq` and its reason says every word of `words`.
fn assert_damaged(result: &CommandResult, seq: u64, words: &[&str]) {
    match &result.1 {
        Err(StorageError::Damaged { seq: got, reason }) => {
            assert_eq!(*got, seq, "{reason}");
            for word in words {
                assert!(reason.contains(word), "{word:?} missing from: {reason}");
            }
        }
        other => panic!("not Damaged at seq {seq}: {other:?}"),
    }
}

/// "a": events 1..=2 and a snapshot at 2; "b": event 1.
fn two_streams() -> (tempfile::TempDir, SqliteStore) {
    let (dir, mut store) = store();
    let results = store.execute(vec![append("a", 0, 2, true), append("b", 0, 1, false)]);
    assert!(
        results.iter().all(|(_, r)| r == &Ok(Completion::Done)),
        "{results:?}"
    );
    (dir, store)
}

const A_ID: &str = "(SELECT stream_id FROM persevere_streams WHERE name = 'a')";

#[test]
fn a_snapshot_crc_that_is_not_an_integer_fails_only_its_read() {
    let (dir, mut store) = two_streams();
    tamper(&store, "UPDATE persevere_snapshots SET crc32 = 'x'");
    let results = store.execute(vec![on("a", load(None)), append("b", 1, 1, false)]);
    assert_damaged(
        &results[0],
        2,
        &["\"a\"", "persevere_snapshots", "crc32", "a.db", "backup"],
    );
    assert_eq!(results[1].1, Ok(Completion::Done), "{results:?}");
    assert_eq!(store.fenced(), None);
    // Still so after a reopen, and the stream's events still read.
    drop(store);
    let mut store = SqliteStore::open(dir.path().join("a.db")).expect("reopens");
    let results = store.execute(vec![
        on("a", load(None)),
        on("a", read_from(1)),
        append("b", 2, 1, false),
    ]);
    assert_damaged(&results[0], 2, &["crc32"]);
    let Ok(Completion::Events { records, head: 2 }) = &results[1].1 else {
        panic!("{results:?}");
    };
    assert_eq!(records.len(), 2);
    assert_eq!(results[2].1, Ok(Completion::Done), "{results:?}");
    assert_eq!(store.fenced(), None);
}

#[test]
fn a_snapshot_seq_that_is_not_an_integer_is_damaged_below_it_so_an_older_one_loads() {
    let (_dir, mut store) = store();
    let results = store.execute(vec![append("a", 0, 2, true), append("a", 2, 2, true)]);
    assert!(results.iter().all(|(_, r)| r == &Ok(Completion::Done)));
    store.execute(vec![append("b", 0, 1, false)]);
    tamper(
        &store,
        &format!("UPDATE persevere_snapshots SET seq = 3.5 WHERE seq = 4 AND stream_id = {A_ID}"),
    );
    let results = store.execute(vec![on("a", load(None)), append("b", 1, 1, false)]);
    // Reported at the whole seq below the stored value: the journal's next load (before it)
    // passes the damaged row and finds the older snapshot.
    assert_damaged(
        &results[0],
        3,
        &["\"a\"", "persevere_snapshots", "seq", "3.5"],
    );
    assert_eq!(results[1].1, Ok(Completion::Done), "{results:?}");
    let Ok(Completion::Snapshot(Some(older))) = one(&mut store, "a", load(Some(3))) else {
        panic!("the older snapshot does not load");
    };
    assert_eq!(older.seq, 2);
    assert_eq!(store.fenced(), None);
}

#[test]
fn an_event_seq_that_is_not_an_integer_fails_only_its_read() {
    let (dir, mut store) = two_streams();
    tamper(
        &store,
        &format!("UPDATE persevere_events SET seq = 1.5 WHERE seq = 1 AND stream_id = {A_ID}"),
    );
    let results = store.execute(vec![on("a", read_from(1)), append("b", 1, 1, false)]);
    assert_damaged(
        &results[0],
        1,
        &["\"a\"", "persevere_events", "seq", "1.5", "a.db", "backup"],
    );
    assert_eq!(results[1].1, Ok(Completion::Done), "{results:?}");
    assert_eq!(store.fenced(), None);
    // The events past the damaged row still read, and the snapshot still loads.
    let results = store.execute(vec![on("a", read_from(2)), on("a", load(None))]);
    let Ok(Completion::Events { records, head: 2 }) = &results[0].1 else {
        panic!("{results:?}");
    };
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    assert!(matches!(&results[1].1, Ok(Completion::Snapshot(Some(s))) if s.seq == 2));
    drop(store);
    let mut store = SqliteStore::open(dir.path().join("a.db")).expect("reopens");
    let results = store.execute(vec![on("a", read_from(1)), append("b", 2, 1, false)]);
    assert_damaged(&results[0], 1, &["persevere_events"]);
    assert_eq!(results[1].1, Ok(Completion::Done), "{results:?}");
    assert_eq!(store.fenced(), None);
}

#[test]
fn an_event_seq_that_is_not_an_integer_inside_a_page_fails_only_its_read() {
    let (_dir, mut store) = store();
    // "a" written in one run (read by a scan of the table's positions), "d" interleaved with
    // other streams (read through the (stream, seq) index).
    store.execute(vec![append("a", 0, 3, false)]);
    for seq in 0..3 {
        store.execute(vec![append("d", seq, 1, false)]);
        store.execute(vec![append("x", seq, 1, false)]);
        store.execute(vec![append("y", seq, 1, false)]);
    }
    tamper(
        &store,
        "UPDATE persevere_events SET seq = 2.5 WHERE seq = 2 AND stream_id IN \
         (SELECT stream_id FROM persevere_streams WHERE name IN ('a', 'd'))",
    );
    let results = store.execute(vec![
        on("a", read_from(1)),
        append("x", 3, 1, false),
        on("d", read_from(1)),
    ]);
    assert_damaged(&results[0], 2, &["\"a\"", "persevere_events", "seq", "2.5"]);
    assert_eq!(results[1].1, Ok(Completion::Done), "{results:?}");
    assert_damaged(&results[2], 2, &["\"d\"", "persevere_events", "seq", "2.5"]);
    assert_eq!(store.fenced(), None);
}

#[test]
fn a_stream_head_that_is_not_an_integer_fails_only_the_commands_that_need_it() {
    let (_dir, mut store) = two_streams();
    tamper(
        &store,
        "UPDATE persevere_streams SET compacted_head = 'x' WHERE name = 'a'",
    );
    let results = store.execute(vec![
        on("a", read_from(1)),
        on("a", load(None)),
        append("a", 2, 1, false),
        append("b", 1, 1, false),
    ]);
    assert_damaged(
        &results[0],
        0,
        &[
            "\"a\"",
            "persevere_streams",
            "compacted_head",
            "a.db",
            "backup",
        ],
    );
    // The snapshot needs no head.
    assert!(
        matches!(&results[1].1, Ok(Completion::Snapshot(Some(s))) if s.seq == 2),
        "{results:?}"
    );
    assert_damaged(&results[2], 0, &["compacted_head"]);
    assert_eq!(results[3].1, Ok(Completion::Done), "{results:?}");
    assert_eq!(store.fenced(), None);
    let seqs: i64 = store
        .with_connection(|c| {
            c.query_row(
                &format!("SELECT count(*) FROM persevere_events WHERE stream_id = {A_ID}"),
                [],
                |r| r.get(0),
            )
        })
        .expect("connected")
        .expect("count");
    assert_eq!(seqs, 2, "the append on the damaged stream wrote nothing");
}

#[test]
fn a_corrupt_page_fails_only_the_read_that_meets_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = SqliteStore::create(&path).expect("opens");
    // An event of "a" spread over overflow pages of 0xa5 bytes.
    let big = StreamCommand {
        stream: Arc::from("a"),
        command: Command::Append {
            id: CommandId(1),
            expected_last: 0,
            events: vec![StoredRecord {
                seq: 1,
                bytes: vec![0xa5; 5 * 4096].into(),
            }]
            .into(),
            snapshot: None,
        },
    };
    let results = store.execute(vec![big, append("b", 0, 1, false)]);
    assert!(results.iter().all(|(_, r)| r == &Ok(Completion::Done)));
    drop(store); // checkpoints the log into the database file
    corrupt_an_overflow_chain(&path, 0xa5);
    let mut store = SqliteStore::open(&path).expect("reopens");
    let results = store.execute(vec![on("a", read_from(1)), append("b", 1, 1, false)]);
    assert_damaged(&results[0], 0, &["\"a\"", "a.db", "backup"]);
    assert_eq!(results[1].1, Ok(Completion::Done), "{results:?}");
    assert_eq!(store.fenced(), None);
    let Ok(Completion::Events { records, head: 2 }) = one(&mut store, "b", read_from(1)) else {
        panic!("b does not read");
    };
    assert_eq!(records[1].bytes, event_bytes("b", 2));
}

/// Points the first overflow page of a payload of `fill` bytes past the database's end.
fn corrupt_an_overflow_chain(path: &Path, fill: u8) {
    let mut bytes = std::fs::read(path).expect("read the database");
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        n => usize::from(n),
    };
    let pages = bytes.len() / page_size;
    let overflow = (1..pages)
        .find(|&n| {
            let page = &bytes[n * page_size..(n + 1) * page_size];
            page[4..].iter().all(|&b| b == fill) && page[..4] != [0; 4]
        })
        .expect("an overflow page");
    let past_end = u32::try_from(pages + 1_000).expect("small file");
    bytes[overflow * page_size..overflow * page_size + 4].copy_from_slice(&past_end.to_be_bytes());
    std::fs::write(path, bytes).expect("write the database");
}

#[test]
fn a_seq_at_the_end_of_the_integers_reads_without_overflow() {
    let (_dir, mut store) = two_streams();
    // A row at seq i64::MAX after "a"'s 1..=2, and a stream "z" holding only such a row.
    tamper(
        &store,
        &format!(
            "INSERT INTO persevere_events (stream_id, seq, position, payload) \
             SELECT {A_ID}, {max}, max(position) + 1, x'01' FROM persevere_events",
            max = i64::MAX
        ),
    );
    tamper(
        &store,
        "INSERT INTO persevere_streams (name, compacted_head) VALUES ('z', 0)",
    );
    tamper(
        &store,
        &format!(
            "INSERT INTO persevere_events (stream_id, seq, position, payload) \
             SELECT (SELECT stream_id FROM persevere_streams WHERE name = 'z'), {max}, \
             max(position) + 1, x'02' FROM persevere_events",
            max = i64::MAX
        ),
    );
    let max = i64::MAX as u64;
    let results = store.execute(vec![
        on("a", read_from(3)),
        on("z", read_from(0)),
        on("a", read_from(u64::MAX)),
        on("a", read_from(max)),
    ]);
    let seqs = |i: usize| match &results[i].1 {
        Ok(Completion::Events { records, head }) => {
            (*head, records.iter().map(|r| r.seq).collect::<Vec<_>>())
        }
        other => panic!("{i}: {other:?}"),
    };
    assert_eq!(seqs(0), (max, vec![max]));
    assert_eq!(seqs(1), (max, vec![max]));
    assert_eq!(seqs(2), (max, vec![]), "no event is at or past u64::MAX");
    assert_eq!(seqs(3), (max, vec![max]));
    // A snapshot at i64::MAX (the store writes one) loads as the newest.
    let save = Command::SaveSnapshot {
        id: CommandId(3),
        snapshot: StoredRecord {
            seq: max,
            bytes: b"last".to_vec().into(),
        },
    };
    assert_eq!(one(&mut store, "z", save), Ok(Completion::Done));
    let Ok(Completion::Snapshot(Some(newest))) = one(&mut store, "z", load(None)) else {
        panic!("the snapshot at i64::MAX does not load");
    };
    assert_eq!(newest.seq, max);
    assert_eq!(
        one(&mut store, "z", load(Some(u64::MAX))),
        Ok(Completion::Snapshot(Some(newest)))
    );
    assert_eq!(
        one(&mut store, "z", load(Some(max))),
        Ok(Completion::Snapshot(None))
    );
    // Nothing can follow it.
    assert!(matches!(
        store.execute(vec![append("z", max, 1, false)])[0].1,
        Err(StorageError::Rejected(_))
    ));
    assert_eq!(store.fenced(), None);
}

#[test]
fn an_event_seq_below_one_is_damaged() {
    let (_dir, mut store) = two_streams();
    tamper(
        &store,
        &format!("UPDATE persevere_events SET seq = 0 WHERE seq = 1 AND stream_id = {A_ID}"),
    );
    let results = store.execute(vec![on("a", read_from(0)), append("b", 1, 1, false)]);
    // Reported at the seq the row stands for.
    assert_damaged(
        &results[0],
        1,
        &["\"a\"", "persevere_events", "seq", "integer 0"],
    );
    assert_eq!(results[1].1, Ok(Completion::Done), "{results:?}");
}

#[test]
fn a_position_counter_at_the_end_of_the_integers_refuses_appends_without_overflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = SqliteStore::create(&path).expect("opens");
    store.execute(vec![append("a", 0, 1, false)]);
    tamper(
        &store,
        &format!(
            "UPDATE persevere_counters SET value = {} WHERE name = 'position'",
            i64::MAX
        ),
    );
    drop(store);
    let mut store = SqliteStore::open(&path).expect("reopens");
    let results = store.execute(vec![append("a", 1, 1, false), on("a", read_from(1))]);
    assert!(
        matches!(&results[0].1, Err(StorageError::Rejected(r)) if r.contains("position") && r.contains("a.db")),
        "{results:?}"
    );
    assert!(matches!(
        &results[1].1,
        Ok(Completion::Events { head: 1, .. })
    ));
    assert_eq!(store.fenced(), None);
}
