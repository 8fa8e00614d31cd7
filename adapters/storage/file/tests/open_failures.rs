//! Opens that fail halfway, and files the store did not expect in its directory, on real
//! files: neither may brick the store nor overwrite a file it holds.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{append, dump};
use persevere_core::{Completion, Store};
use persevere_file::{FileOptions, FileStore};

fn set_mode(dir: &Path, mode: u32) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A crash between sealing segment 2 and creating segment 3 leaves segments 1 and 2 (sealed)
/// and the identity file naming segment 2. An open of it that cannot create segment 3 (here:
/// a read-only directory) fails, writing nothing on its way out; the next open succeeds with
/// every event.
#[test]
fn an_open_that_cannot_start_the_next_segment_leaves_the_store_openable() {
    if rustix::process::getuid().is_root() {
        eprintln!(
            "skipped: running as root, a read-only directory does not stop this process; \
             the simulated-disk test `an_open_that_fails_starting_the_next_segment_never_bricks_the_store` covers it"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let crashed = tempfile::tempdir().expect("tempdir");
    let mut options = FileOptions::default();
    options.segment_size = 1;
    let mut store = FileStore::create_with(dir.path(), options.clone()).expect("create");
    assert_eq!(
        store.execute(vec![append("s", 0, 1, false)])[0].1,
        Ok(Completion::Done)
    );
    let identity = std::fs::read(dir.path().join("STORE")).expect("identity");
    assert_eq!(
        store.execute(vec![append("s", 1, 1, false)])[0].1,
        Ok(Completion::Done)
    );
    for n in 1..=2u64 {
        let name = format!("{n:016x}.log");
        std::fs::copy(dir.path().join(&name), crashed.path().join(&name)).expect("copy");
    }
    std::fs::write(crashed.path().join("STORE"), identity).expect("identity");
    drop(store);

    set_mode(crashed.path(), 0o555);
    let failed = FileStore::open_with(crashed.path(), options.clone());
    set_mode(crashed.path(), 0o755);
    assert!(
        failed.is_err(),
        "the open created a segment in a read-only directory"
    );
    drop(failed);

    let mut store =
        FileStore::open_with(crashed.path(), options).expect("open after a failed open");
    let (head, events, _) = dump(&mut store, "s").expect("dump");
    assert_eq!((head, events.len()), (1, 1));
    assert_eq!(
        store.execute(vec![append("s", 1, 1, false)])[0].1,
        Ok(Completion::Done)
    );
}

/// Every snapshot file in `dir`, by name, with its bytes.
fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect();
    out.sort();
    out
}

/// A stray file named with the last snapshot file id (`ffffffffffffffff.snap`), or the one
/// before it, copied into a store's directory: open succeeds, snapshots saved after it are
/// stored or refused with a clear error, and no snapshot file is ever written over — the
/// stray nor one the store references.
#[test]
fn a_stray_snapshot_file_with_the_last_id_never_lets_a_snapshot_file_be_overwritten() {
    for stray in [u64::MAX, u64::MAX - 1] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut options = FileOptions::default();
        options.snapshot_file_min = 16;
        let mut store = FileStore::create_with(dir.path(), options.clone()).expect("create");
        let snapshot = |seq: u64| persevere_core::StoredRecord {
            seq,
            bytes: format!("the large snapshot of s at {seq}, in a file of its own")
                .into_bytes()
                .into(),
        };
        let save = |store: &mut FileStore, seq: u64| {
            store
                .execute(vec![persevere_core::StreamCommand {
                    stream: "s".into(),
                    command: persevere_core::Command::SaveSnapshot {
                        id: persevere_core::CommandId(seq),
                        snapshot: snapshot(seq),
                    },
                }])
                .remove(0)
                .1
        };
        assert_eq!(
            store.execute(vec![append("s", 0, 3, false)])[0].1,
            Ok(Completion::Done)
        );
        assert_eq!(save(&mut store, 1), Ok(Completion::Done));
        drop(store);
        let stray_name = format!("{stray:016x}.snap");
        std::fs::write(dir.path().join(&stray_name), b"not this store's file").expect("stray");
        let before = snapshot_files(dir.path());
        assert_eq!(before.len(), 2, "{stray:x}");

        let mut store = FileStore::open_with(dir.path(), options.clone())
            .unwrap_or_else(|e| panic!("{stray:x}: open with a stray snapshot file: {e}"));
        let mut refused = 0;
        for seq in 2..=3 {
            match save(&mut store, seq) {
                Ok(Completion::Done) => {}
                Err(persevere_core::StorageError::Rejected(reason)) => {
                    assert!(
                        reason.contains("ffffffffffffffff.snap"),
                        "{stray:x}: {reason}"
                    );
                    refused += 1;
                }
                other => panic!("{stray:x}: saving snapshot {seq} answered {other:?}"),
            }
        }
        assert!(
            refused > 0,
            "{stray:x}: a snapshot file was numbered past the last id"
        );
        drop(store);
        // Every file there before is still there, unchanged.
        let after = snapshot_files(dir.path());
        for file in &before {
            assert!(
                after.contains(file),
                "{stray:x}: {} was overwritten",
                file.0
            );
        }
        let mut store = FileStore::open_with(dir.path(), options).expect("reopen");
        let (_, _, snapshots) = dump(&mut store, "s").expect("dump");
        assert!(!snapshots.is_empty(), "{stray:x}");
        for s in snapshots {
            assert_eq!(
                s.bytes,
                snapshot(s.seq).bytes,
                "{stray:x}: snapshot {}",
                s.seq
            );
        }
    }
}
