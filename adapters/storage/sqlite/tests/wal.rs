//! The write-ahead log is kept allocated ahead of the writer (`WalGrowth::Reserved`, the
//! default, with `Durability::Full`): commits write inside the file instead of extending
//! it at every commit, the zeros past the frames read as the log's end after a crash, and a
//! log with a checkpoint size has its whole pass written at open and is reused within it.

mod common;

use std::path::{Path, PathBuf};

use common::{append, dump};
use persevere_core::{Completion, Store};
use persevere_sqlite::{Durability, OpenMode, SqliteOptions, SqliteStore, WalGrowth};

fn wal(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn wal_len(path: &Path) -> u64 {
    std::fs::metadata(wal(path)).map_or(0, |m| m.len())
}

fn store(path: &Path, wal_growth: WalGrowth, checkpoint_pages: u32) -> SqliteStore {
    let mut options = SqliteOptions::default();
    options.mode = OpenMode::OpenOrCreate;
    options.wal_growth = wal_growth;
    options.checkpoint_pages = checkpoint_pages;
    SqliteStore::open_with(path, options).expect("opens")
}

/// Appends `n` one-event transactions to stream `s` after `from`; returns how many of them
/// changed the log's length.
fn appends(store: &mut SqliteStore, path: &Path, from: u64, n: u64) -> usize {
    let mut len = wal_len(path);
    let mut changes = 0;
    for last in from..from + n {
        let results = store.execute(vec![append("s", last, 1, false)]);
        assert_eq!(results[0].1, Ok(Completion::Done), "append after {last}");
        let now = wal_len(path);
        if now != len {
            changes += 1;
            len = now;
        }
    }
    changes
}

/// Copies the database at `path` and its log beside it (`crashed.db`), as a crash leaves them
/// while `live` still has them open, then closes `live`.
fn crash_copy(path: &Path, live: SqliteStore) -> PathBuf {
    let crashed = path.with_file_name("crashed.db");
    std::fs::copy(path, &crashed).expect("copy the database");
    std::fs::copy(wal(path), wal(&crashed)).expect("copy the log");
    drop(live);
    crashed
}

/// Checks that stream `s` holds its `n` committed events.
fn assert_all_back(store: &mut SqliteStore, n: u64) {
    let (head, events, _) = dump(store, "s").expect("reads");
    assert_eq!(
        (head, events.len() as u64),
        (n, n),
        "every committed event is back"
    );
}

#[test]
fn the_log_grows_by_chunks_not_at_every_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reserved.db");
    let mut reserved = store(&path, WalGrowth::Reserved, 0);
    let changes = appends(&mut reserved, &path, 0, 400);
    // About 3.2 MiB of log in 400 commits: grown a few times, 1 MiB, then by its own size.
    assert!(
        (1..=6).contains(&changes),
        "the log's length changed at {changes} of 400 commits"
    );
    let frames_end = wal_len(&path);
    assert!(frames_end >= 400 * 4096, "{frames_end}");
    let (head, events, _) = dump(&mut reserved, "s").expect("reads");
    assert_eq!((head, events.len()), (400, 400));

    // The control: SQLite alone extends the log at (nearly) every commit.
    let path = dir.path().join("growing.db");
    let mut growing = store(&path, WalGrowth::AtCommit, 0);
    let changes = appends(&mut growing, &path, 0, 400);
    assert!(
        changes >= 390,
        "only {changes} of 400 commits extended the log"
    );
}

#[test]
fn the_zeros_past_the_frames_read_as_the_end_of_the_log_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.db");
    let mut live = store(&path, WalGrowth::Reserved, 0);
    appends(&mut live, &path, 0, 150);
    let len = wal_len(&path);
    assert!(
        len % 4096 == 0,
        "the log ends in the reserve's zeros: {len}"
    );
    // The files as a crash leaves them: no checkpoint, no index, the log's zeros after its
    // frames.
    let crashed = crash_copy(&path, live);

    let mut store = store(&crashed, WalGrowth::Reserved, 0);
    assert_all_back(&mut store, 150);
    appends(&mut store, &crashed, 150, 50);
    drop(store);
    let mut store = SqliteStore::open(&crashed).expect("reopens");
    assert_all_back(&mut store, 200);
}

#[test]
fn a_checkpointed_log_is_reused_within_the_pass_written_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reused.db");
    // Checkpointed every 100 frames (about 50 commits): the log starts again from its
    // beginning, so the whole pass (100 frames, the last commit's overshoot and the low water
    // mark) is written at open and no commit changes the file's length.
    let mut store = store(&path, WalGrowth::Reserved, 100);
    let opened = wal_len(&path);
    assert!(
        opened >= 32 + 100 * (4096 + 24) + (2 << 20),
        "the log's pass was not written at open: {opened} bytes"
    );
    let changes = appends(&mut store, &path, 0, 1_000);
    let len = wal_len(&path);
    assert_eq!(
        (changes, len),
        (0, opened),
        "the log's length changed at {changes} of 1,000 commits"
    );
    assert_all_back(&mut store, 1_000);
}

#[test]
fn the_pass_written_at_open_keeps_the_frames_of_a_crashed_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.db");
    // SQLite extends this log at each commit: it ends exactly at its last frame.
    let mut live = store(&path, WalGrowth::AtCommit, 0);
    appends(&mut live, &path, 0, 150);
    let len = wal_len(&path);
    assert_eq!(
        (len - 32) % (4096 + 24),
        0,
        "the log ends at a frame: {len}"
    );
    let crashed = crash_copy(&path, live);

    // Opening it writes the log's pass right after its last frame, before SQLite has
    // checkpointed them into the database.
    let mut store = store(&crashed, WalGrowth::Reserved, 1_000);
    assert!(wal_len(&crashed) > len, "the pass was written at open");
    assert_all_back(&mut store, 150);
    assert_eq!(appends(&mut store, &crashed, 150, 50), 0);
    drop(store);
    let mut store = SqliteStore::open(&crashed).expect("reopens");
    assert_all_back(&mut store, 200);
}

#[test]
fn no_reserve_when_commits_do_not_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relaxed.db");
    let mut options = SqliteOptions::default();
    options.durability = Durability::ProcessCrashOnly;
    options.checkpoint_pages = 0;
    let mut relaxed = SqliteStore::open_with(&path, options).expect("opens");
    let changes = appends(&mut relaxed, &path, 0, 100);
    assert!(
        changes >= 95,
        "only {changes} of 100 commits extended the log"
    );
}
