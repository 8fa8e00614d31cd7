//! Flip every bit of every byte of a small store, one at a time, and reopen: each flip must be
//! detected — open refuses with `FileError::Corrupt`, or open cuts the damaged newest frame as
//! a torn tail, reports it, and shows exactly the state before that last batch, or a read
//! fails — or be provably harmless: the store shows exactly what it held. A flip that silently
//! changes what the store shows fails the test.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use common::{append, dump, StreamDump};
use persevere_core::{Command, CommandId, Store, StoredRecord, StreamCommand};
use persevere_file::{FileError, FileOptions, FileStore};

const STREAMS: &[&str] = &["a", "a.b", "a/b"];

/// Snapshots of 16 bytes or more go to files of their own.
fn options() -> FileOptions {
    let mut options = FileOptions::default();
    options.snapshot_file_min = 16;
    options
}

fn open(dir: &Path) -> Result<FileStore, FileError> {
    FileStore::open_or_create_with(dir, options())
}

fn build(dir: &Path, last_batch: bool) {
    let mut store = open(dir).expect("open");
    store.execute(vec![append("a", 0, 3, false), append("a.b", 0, 2, true)]);
    store.execute(vec![
        append("a/b", 0, 2, false),
        StreamCommand {
            stream: Arc::from("a"),
            command: Command::SaveSnapshot {
                id: CommandId(1),
                snapshot: StoredRecord {
                    seq: 2,
                    bytes: b"snap a 2".to_vec(),
                },
            },
        },
    ]);
    store.execute(vec![StreamCommand {
        stream: Arc::from("a"),
        command: Command::DeleteEvents {
            id: CommandId(2),
            up_to: 1,
        },
    }]);
    store.compact().expect("compact");
    if last_batch {
        store.execute(vec![append("a", 3, 1, true), append("a/b", 2, 1, false)]);
    }
}

fn show(store: &mut FileStore) -> Result<Vec<StreamDump>, String> {
    STREAMS
        .iter()
        .map(|s| dump(store as &mut dyn Store, s))
        .collect()
}

#[test]
fn every_bit_flip_is_detected_or_harmless() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), true);
    let expected = show(&mut open(dir.path()).expect("open")).expect("dump");
    let prefix_dir = tempfile::tempdir().expect("tempdir");
    build(prefix_dir.path(), false);
    let prefix = show(&mut open(prefix_dir.path()).expect("open")).expect("dump");
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log" || e == "snap"))
        .collect();
    files.sort();
    let logs = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"));
    assert_eq!(logs.count(), 2, "a compacted segment and an active one");
    assert!(files.len() > 2, "snapshot files");
    let (mut refused, mut cut, mut read_failed, mut harmless, mut flips) = (0, 0, 0, 0, 0);
    let originals: Vec<(std::path::PathBuf, Vec<u8>)> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read(f).expect("read")))
        .collect();
    for (file, original) in &originals {
        for byte in 0..original.len() {
            for bit in 0..8 {
                flips += 1;
                let mut damaged = original.clone();
                damaged[byte] ^= 1 << bit;
                std::fs::write(file, &damaged).expect("write");
                let where_ = format!("{} byte {byte} bit {bit}", file.display());
                match open(dir.path()) {
                    Err(FileError::Corrupt { .. }) => refused += 1,
                    Err(other) => panic!("{where_}: unexpected error {other}"),
                    Ok(mut store) => match show(&mut store) {
                        Err(_) => read_failed += 1,
                        Ok(got) if store.torn_tail().is_some() => {
                            assert_eq!(
                                got, prefix,
                                "{where_}: cut to something else than the last batch"
                            );
                            cut += 1;
                        }
                        Ok(got) => {
                            assert_eq!(got, expected, "{where_}: silent damage");
                            harmless += 1;
                        }
                    },
                }
                // Open may have cut the log or removed a snapshot file it no longer references.
                for (f, bytes) in &originals {
                    std::fs::write(f, bytes).expect("restore");
                }
            }
        }
    }
    // Written to the stderr handle so `cargo test` shows it without `--nocapture`.
    let _ = writeln!(
        std::io::stderr(),
        "bit flips: {flips}; refused at open: {refused}; cut as a reported torn tail: {cut}; \
         read failed: {read_failed}; harmless: {harmless}"
    );
    assert_eq!(refused + cut + read_failed + harmless, flips);
    // Every flip but those in the newest frame is refused: a flip there is indistinguishable
    // from an interrupted write, so it is cut and reported.
    assert_eq!(harmless, 0);
    assert!(refused > cut);
    // Every flip in a snapshot file fails the read of that snapshot.
    assert!(read_failed > 0);
}
