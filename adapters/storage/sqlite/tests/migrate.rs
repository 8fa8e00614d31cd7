//! A database written at schema version 1 (the events clustered by (stream, seq)) is migrated
//! at open to the current schema with every stream, event, snapshot, head and position kept.
//!
//! `tests/fixtures/schema-v1.db` was written by this crate at schema version 1: streams `a`
//! (events 1..=5, a snapshot at 3), `b` (events 1..=10, a snapshot at 10, compacted up to 6),
//! `c` (event 1) and `d` (only a snapshot, at 7), appended in two interleaved batches.

mod common;

use std::path::{Path, PathBuf};

use common::{append, dump, event_bytes};
use persevere_core::{Completion, StorageError, Store};
use persevere_sqlite::rusqlite::Connection;
use persevere_sqlite::SqliteStore;

/// (stream, seq, position) of every event in the fixture, as version 1 wrote them.
const POSITIONS: &[(&str, i64, i64)] = &[
    ("a", 1, 1),
    ("a", 2, 2),
    ("a", 3, 3),
    ("a", 4, 9),
    ("a", 5, 10),
    ("b", 7, 13),
    ("b", 8, 14),
    ("b", 9, 15),
    ("b", 10, 16),
    ("c", 1, 8),
];

fn version_1_copy(dir: &Path) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1.db");
    let path = dir.join("v1.db");
    std::fs::copy(fixture, &path).expect("copy the fixture");
    path
}

fn positions(store: &SqliteStore) -> Vec<(String, i64, i64)> {
    store
        .with_connection(|c| {
            let mut s = c.prepare(
                "SELECT s.name, e.seq, e.position FROM persevere_events e \
                 JOIN persevere_stream_heads s USING (stream_id) ORDER BY s.name, e.seq",
            )?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .expect("connected")
        .expect("positions")
}

fn assert_fixture_content(store: &mut SqliteStore) {
    let expect = |store: &mut SqliteStore, stream: &str, head, seqs: &[u64], snaps: &[u64]| {
        let (h, events, snapshots) = dump(store, stream).expect("reads");
        assert_eq!(h, head, "head of {stream}");
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            seqs,
            "events of {stream}"
        );
        for e in &events {
            assert_eq!(e.bytes, event_bytes(stream, e.seq), "{stream} {}", e.seq);
        }
        assert_eq!(
            snapshots.iter().map(|s| s.seq).collect::<Vec<_>>(),
            snaps,
            "snapshots of {stream}"
        );
    };
    expect(store, "a", 5, &[1, 2, 3, 4, 5], &[3]);
    expect(store, "b", 10, &[7, 8, 9, 10], &[10]);
    expect(store, "c", 1, &[1], &[]);
    expect(store, "d", 0, &[], &[7]);
}

#[test]
fn a_version_1_database_is_migrated_with_everything_it_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = version_1_copy(dir.path());
    let before: i64 = Connection::open(&path)
        .expect("sqlite")
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(before, 1, "the fixture is a version 1 database");

    let mut store = SqliteStore::open(&path).expect("migrates");
    assert_fixture_content(&mut store);
    let want: Vec<(String, i64, i64)> = POSITIONS
        .iter()
        .map(|&(s, seq, p)| (s.to_owned(), seq, p))
        .collect();
    assert_eq!(positions(&store), want, "positions are kept");
    let (versions, user_version): (Vec<i64>, i64) = store
        .with_connection(|c| -> Result<_, persevere_sqlite::rusqlite::Error> {
            let mut s = c.prepare("SELECT version FROM persevere_migrations ORDER BY version")?;
            let versions = s
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            Ok((
                versions,
                c.query_row("PRAGMA user_version", [], |r| r.get(0))?,
            ))
        })
        .expect("connected")
        .expect("migrations");
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(user_version, persevere_sqlite::SCHEMA_VERSION);

    // The heads guard appends as before: the compacted stream's head is still 10.
    let results = store.execute(vec![append("b", 9, 1, false), append("a", 5, 2, true)]);
    assert!(
        matches!(
            results[0].1,
            Err(StorageError::Conflict {
                expected: 9,
                actual: 10
            })
        ),
        "{results:?}"
    );
    assert_eq!(results[1].1, Ok(Completion::Done));
    assert_eq!(
        store.execute(vec![append("b", 10, 1, false)])[0].1,
        Ok(Completion::Done)
    );
    let after = positions(&store);
    let new: Vec<i64> = after
        .iter()
        .filter(|(s, seq, _)| (s == "a" && *seq > 5) || (s == "b" && *seq > 10))
        .map(|&(_, _, p)| p)
        .collect();
    assert_eq!(new.len(), 3);
    assert!(
        new.iter().all(|&p| p >= 4105),
        "new events take positions above version 1's reserved bound 4105: {new:?}"
    );
    drop(store);

    // Reopening applies nothing more and shows the same.
    let mut store = SqliteStore::open(&path).expect("reopens");
    assert_eq!(positions(&store), after);
    assert_eq!(dump(&mut store, "a").expect("a").0, 7);
    assert_eq!(dump(&mut store, "b").expect("b").0, 11);
}

#[test]
fn compaction_after_the_migration_keeps_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = version_1_copy(dir.path());
    let mut store = SqliteStore::open(&path).expect("migrates");
    let compact = persevere_core::StreamCommand {
        stream: "a".into(),
        command: persevere_core::Command::DeleteEvents {
            id: persevere_core::CommandId(1),
            up_to: 5,
        },
    };
    assert_eq!(store.execute(vec![compact])[0].1, Ok(Completion::Done));
    drop(store);
    let mut store = SqliteStore::open(&path).expect("reopens");
    let (head, events, _) = dump(&mut store, "a").expect("a");
    assert_eq!((head, events.len()), (5, 0), "compaction lowered the head");
    assert!(matches!(
        store.execute(vec![append("a", 4, 1, false)])[0].1,
        Err(StorageError::Conflict { actual: 5, .. })
    ));
}
