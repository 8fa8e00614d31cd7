//! Reads of events: a stream written in long runs (read by a scan of the table's positions) and
//! a stream interleaved with many others (read through the `(stream, seq)` index) answer every
//! page, after compaction too, with exactly the events asked for.

mod common;

use std::sync::Arc;

use common::{append, event_bytes, one};
use persevere_core::{Command, CommandId, Completion, Store, StoredRecord, StreamCommand};
use persevere_sqlite::SqliteStore;

fn read(
    store: &mut SqliteStore,
    stream: &str,
    from: u64,
    limit: usize,
) -> (u64, Vec<StoredRecord>) {
    match one(
        store,
        stream,
        Command::ReadEvents {
            id: CommandId(0),
            from,
            limit,
        },
    ) {
        Ok(Completion::Events { records, head }) => (head, records),
        other => panic!("{stream} from {from} limit {limit}: {other:?}"),
    }
}

/// Checks every page shape against the events `first..=head` the stream holds.
fn check_pages(store: &mut SqliteStore, stream: &str, first: u64, head: u64) {
    for from in [
        0,
        1,
        first.saturating_sub(1),
        first,
        first + 1,
        head / 2,
        head - 1,
        head,
        head + 1,
    ] {
        for limit in [0, 1, 2, 7, 64, usize::MAX] {
            let (got_head, records) = read(store, stream, from, limit);
            assert_eq!(got_head, head, "{stream} from {from} limit {limit}");
            let start = from.max(first);
            let want: Vec<u64> = (start..=head).take(limit).collect();
            let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
            assert_eq!(seqs, want, "{stream} from {from} limit {limit}");
            for r in &records {
                assert_eq!(r.bytes, event_bytes(stream, r.seq), "{stream} {}", r.seq);
            }
        }
    }
}

#[test]
fn dense_and_interleaved_streams_read_the_same_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::create(dir.path().join("a.db")).expect("opens");
    // "dense": runs of 50 events in a batch of its own; "sparse": one event per batch beside
    // nine other streams; "mixed": runs of 3 beside one other stream (half its span is its own).
    for run in 0..4 {
        let done = store.execute(vec![append("dense", run * 50, 50, false)]);
        assert!(done.iter().all(|r| r.1.is_ok()), "{done:?}");
    }
    for seq in 0..120 {
        let mut batch = vec![append("sparse", seq, 1, false)];
        batch.extend((0..9).map(|i| append(&format!("other-{i}"), seq, 1, false)));
        if seq < 40 {
            batch.push(append("mixed", seq * 3, 3, false));
            batch.push(append("beside", seq * 2, 2, false));
        }
        let done = store.execute(batch);
        assert!(done.iter().all(|r| r.1.is_ok()), "{done:?}");
    }
    check_pages(&mut store, "dense", 1, 200);
    check_pages(&mut store, "sparse", 1, 120);
    check_pages(&mut store, "mixed", 1, 120);
    for (stream, up_to) in [("dense", 75), ("sparse", 33), ("mixed", 100)] {
        let compact = StreamCommand {
            stream: Arc::from(stream),
            command: Command::DeleteEvents {
                id: CommandId(1),
                up_to,
            },
        };
        assert_eq!(store.execute(vec![compact])[0].1, Ok(Completion::Done));
    }
    check_pages(&mut store, "dense", 76, 200);
    check_pages(&mut store, "sparse", 34, 120);
    check_pages(&mut store, "mixed", 101, 120);
}
