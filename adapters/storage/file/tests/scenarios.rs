//! The ways a file store used to lose or invent data (issue 12), each through the public API
//! on real files: scenarios 2, 3, 5, 6 (in process), 7, 9, 10 and 11. Scenarios 1, 4 and 6
//! with a SIGKILLed child process are in `kill.rs`; fault isolation (8) and a panicking
//! `execute` (11) run over the simulated disk in the crate's own tests.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{append, dump, hostile_event, one};
use persevere_core::{
    Command, CommandId, Completion, Entity, Journal, JournalConfig, JournalEvent, StorageError,
    Store, StoredRecord, StreamCommand,
};
use persevere_file::{FileError, FileOptions, FileStore, Recovery};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    out.sort();
    out
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect()
}

/// The files of a running store, as a crash would leave them.
fn crash_copy(from: &Path, to: &Path) {
    for path in files(from) {
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
        }
    }
}

fn small_segments() -> FileOptions {
    let mut options = FileOptions::default();
    options.segment_size = 200;
    options
}

/// Scenario 1, deterministically: an event whose payload is full of bytes that form valid
/// frames (of format 1, and of this one under a guessed store id), torn at every point of its
/// frame: every reopen succeeds, reports the cut, and keeps what was acknowledged before.
#[test]
fn s01_a_torn_frame_whose_payload_forms_frames_never_bricks_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crashed = tempfile::tempdir().expect("tempdir");
    let mut store = FileStore::create(dir.path()).expect("create");
    store.execute(vec![append("before", 0, 2, false)]);
    let seg = logs(dir.path())[0].clone();
    let start = std::fs::metadata(&seg).expect("meta").len();
    let event = hostile_event(1);
    let results = store.execute(vec![StreamCommand {
        stream: Arc::from("hostile"),
        command: Command::Append {
            id: CommandId(1),
            expected_last: 0,
            events: vec![StoredRecord {
                seq: 1,
                bytes: event.clone().into(),
            }]
            .into(),
            snapshot: None,
        },
    }]);
    assert_eq!(results[0].1, Ok(Completion::Done));
    crash_copy(dir.path(), crashed.path());
    drop(store);
    let image = std::fs::read(crashed.path().join(seg.file_name().expect("name"))).expect("read");
    let torn_dir = tempfile::tempdir().expect("tempdir");
    let mut cuts = 0;
    for cut in (start as usize + 1..image.len()).step_by(61) {
        for path in files(torn_dir.path()) {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("clear");
            } else {
                std::fs::remove_file(&path).expect("clear");
            }
        }
        crash_copy(crashed.path(), torn_dir.path());
        let torn_seg = torn_dir.path().join(seg.file_name().expect("name"));
        std::fs::write(&torn_seg, &image[..cut]).expect("cut");
        let mut store = FileStore::open(torn_dir.path())
            .unwrap_or_else(|e| panic!("cut at {cut}: the store no longer opens: {e}"));
        assert_eq!(store.repairs().len(), 1, "cut at {cut}: reported");
        assert_eq!(dump(&mut store, "before").expect("dump").0, 2);
        assert_eq!(dump(&mut store, "hostile").expect("dump").0, 0);
        cuts += 1;
    }
    assert!(cuts > 1000);
}

/// Scenario 2: a flipped bit in the newest frame after a clean shutdown is an error, never a
/// silently dropped batch; after a crash, the cut is reported with the stream it held.
#[test]
fn s02_damage_to_the_newest_frame_is_refused_or_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crashed = tempfile::tempdir().expect("tempdir");
    let mut store = FileStore::create(dir.path()).expect("create");
    store.execute(vec![append("first", 0, 2, false)]);
    store.execute(vec![append("last", 0, 2, false)]);
    crash_copy(dir.path(), crashed.path());
    drop(store);
    // The last batch's frame ends 25 bytes (the close marker) before the end.
    for (dir, clean) in [(dir.path(), true), (crashed.path(), false)] {
        let seg = &logs(dir)[0];
        let mut bytes = std::fs::read(seg).expect("read");
        let at = bytes.len() - if clean { 25 } else { 0 } - 10;
        bytes[at] ^= 0x10;
        std::fs::write(seg, &bytes).expect("write");
        match FileStore::open(dir) {
            Err(FileError::Corrupt { file, .. }) if clean => assert_eq!(&file, seg),
            Ok(mut store) if !clean => {
                assert_eq!(store.repairs().len(), 1, "{:?}", store.repairs());
                let repair = &store.repairs()[0];
                assert_eq!(repair.streams, vec![Arc::<str>::from("last")]);
                let kept = repair.kept_at.as_ref().expect("kept");
                assert!(Path::new(kept).exists(), "the cut bytes are kept");
                assert!(Path::new(&format!("{kept}.note")).exists(), "with a note");
                assert_eq!(dump(&mut store, "first").expect("dump").0, 2);
            }
            other => panic!("clean shutdown {clean}: {other:?}"),
        }
    }
    // Strict open refuses instead of repairing, and changes nothing.
    let mut strict = FileOptions::default();
    strict.recovery = Recovery::Strict;
    let before = std::fs::read(&logs(crashed.path())[0]).expect("read");
    let crashed2 = tempfile::tempdir().expect("tempdir");
    crash_copy(crashed.path(), crashed2.path());
    let seg = &logs(crashed2.path())[0];
    let mut bytes = std::fs::read(seg).expect("read");
    bytes.extend_from_slice(&[0xAB; 7]);
    std::fs::write(seg, &bytes).expect("write");
    match FileStore::open_with(crashed2.path(), strict) {
        Err(FileError::NeedsRepair { file, .. }) => assert_eq!(&file, seg),
        other => panic!("strict open: {other:?}"),
    }
    assert_eq!(
        std::fs::read(seg).expect("read"),
        bytes,
        "strict open changed nothing"
    );
    assert_ne!(before, bytes);
}

/// Scenario 3: a segment that is not the newest, cut at a frame boundary (its seal gone), is
/// refused naming the file.
#[test]
fn s03_a_sealed_segment_cut_at_a_frame_boundary_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileStore::create_with(dir.path(), small_segments()).expect("create");
    for i in 0..8 {
        store.execute(vec![append("s", i * 3, 3, false)]);
    }
    drop(store);
    let segs = logs(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let first = &segs[0];
    let len = std::fs::metadata(first).expect("meta").len();
    // The seal frame is the last 25 bytes.
    std::fs::OpenOptions::new()
        .write(true)
        .open(first)
        .and_then(|f| f.set_len(len - 25))
        .expect("cut");
    match FileStore::open(dir.path()) {
        Err(FileError::Missing { file, reason }) => {
            assert_eq!(&file, first);
            assert!(reason.contains("cut"), "{reason}");
        }
        other => panic!("expected a cut segment, got {other:?}"),
    }
}

/// Scenario 5: a segment copied from another store is refused, and open deletes nothing.
#[test]
fn s05_a_segment_of_another_store_is_refused_and_nothing_is_deleted() {
    let ours = tempfile::tempdir().expect("tempdir");
    let theirs = tempfile::tempdir().expect("tempdir");
    let mut store = FileStore::create_with(ours.path(), small_segments()).expect("create");
    for i in 0..4 {
        store.execute(vec![append("ours", i * 3, 3, false)]);
    }
    drop(store);
    let mut other = FileStore::create(theirs.path()).expect("create");
    other.execute(vec![append("theirs", 0, 3, false)]);
    for _ in 0..4 {
        other.compact().expect("compact");
    }
    drop(other);
    // Their newest segment (a compacted one, whose floor made the old code drop every older
    // segment) under a name that continues ours.
    let theirs_seg = logs(theirs.path()).pop().expect("their segment");
    let next = logs(ours.path()).len() as u64 + 1;
    let foreign = ours.path().join(format!("{next:016x}.log"));
    std::fs::copy(&theirs_seg, &foreign).expect("copy");
    let before = files(ours.path());
    match FileStore::open(ours.path()) {
        Err(FileError::Foreign { file, .. }) => assert_eq!(file, foreign),
        other => panic!("expected a foreign segment, got {other:?}"),
    }
    assert_eq!(files(ours.path()), before, "open deleted or moved a file");
    std::fs::remove_file(&foreign).expect("remove");
    let mut store = FileStore::open(ours.path()).expect("reopen");
    assert_eq!(dump(&mut store, "ours").expect("dump").0, 12);
    assert_eq!(dump(&mut store, "theirs").expect("dump").0, 0);
}

/// Scenario 6 (in process): the active segment removed or replaced under a running store
/// fences it; nothing is acknowledged into the lost file; reopen refuses rather than show an
/// empty store. All segments deleted, or only snapshot files left: open refuses too.
#[test]
fn s06_an_active_segment_removed_or_replaced_fences_the_store() {
    for replace in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = FileStore::create(dir.path()).expect("create");
        assert_eq!(
            store.execute(vec![append("s", 0, 2, false)])[0].1,
            Ok(Completion::Done)
        );
        let active = logs(dir.path()).pop().expect("segment");
        if replace {
            let copy = dir.path().join("copy");
            std::fs::copy(&active, &copy).expect("copy");
            std::fs::rename(&copy, &active).expect("replace");
        } else {
            std::fs::remove_file(&active).expect("remove");
        }
        let results = store.execute(vec![append("s", 2, 1, false)]);
        assert!(
            matches!(results[0].1, Err(StorageError::Failed(_))),
            "replace {replace}: {results:?}"
        );
        assert!(store.fenced().is_some());
        assert!(store.reopen().is_ok() == replace, "replace {replace}");
        drop(store);
        match FileStore::open(dir.path()) {
            Ok(mut store) if replace => {
                assert_eq!(dump(&mut store, "s").expect("dump").0, 2);
            }
            Err(FileError::Missing { .. }) if !replace => {}
            other => panic!("replace {replace}: {other:?}"),
        }
    }
    // Every segment deleted; then the identity file too, with snapshot files left.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = FileOptions::default();
    options.snapshot_file_min = 1;
    let mut store = FileStore::create_with(dir.path(), options.clone()).expect("create");
    store.execute(vec![append("s", 0, 2, true)]);
    drop(store);
    for seg in logs(dir.path()) {
        std::fs::remove_file(seg).expect("remove");
    }
    assert!(matches!(
        FileStore::open_with(dir.path(), options.clone()),
        Err(FileError::Missing { .. })
    ));
    std::fs::remove_file(dir.path().join("STORE")).expect("remove");
    assert!(matches!(
        FileStore::open_or_create_with(dir.path(), options),
        Err(FileError::Missing { .. })
    ));
    assert!(
        files(dir.path())
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "snap")),
        "the snapshot files are kept"
    );
}

/// Scenario 7: files the store did not write are never touched; its own leftover temporary
/// files are moved to quarantine and reported; a missing directory is an error, never a
/// fresh store.
#[test]
fn s07_foreign_files_are_untouched_and_a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("typo");
    assert!(matches!(
        FileStore::open(&missing),
        Err(FileError::NotAStore { .. })
    ));
    assert!(!missing.exists(), "open created the directory");
    let store_dir = dir.path().join("store");
    let mut store = FileStore::create(&store_dir).expect("create");
    store.execute(vec![append("s", 0, 1, false)]);
    drop(store);
    std::fs::write(store_dir.join("notes.tmp"), b"mine").expect("write");
    std::fs::write(store_dir.join("README"), b"mine too").expect("write");
    std::fs::write(
        store_dir.join("0000000000000009.log.tmp"),
        b"half a compaction",
    )
    .expect("write");
    let store = FileStore::open(&store_dir).expect("open");
    assert_eq!(
        std::fs::read(store_dir.join("notes.tmp")).expect("kept"),
        b"mine"
    );
    assert_eq!(
        std::fs::read(store_dir.join("README")).expect("kept"),
        b"mine too"
    );
    assert!(!store_dir.join("0000000000000009.log.tmp").exists());
    assert_eq!(store.repairs().len(), 1);
    let kept = store.repairs()[0].kept_at.clone().expect("kept");
    assert_eq!(
        std::fs::read(&kept).expect("quarantined"),
        b"half a compaction"
    );
    assert!(kept.contains("quarantine"), "{kept}");
    drop(store);
    // A directory that holds no store is not one: open refuses, create starts one.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(empty.join("notes.tmp"), b"x").expect("write");
    assert!(matches!(
        FileStore::open(&empty),
        Err(FileError::NotAStore { .. })
    ));
    drop(FileStore::open_or_create(&empty).expect("create"));
    assert!(matches!(
        FileStore::create(&empty),
        Err(FileError::AlreadyAStore { .. })
    ));
}

#[derive(Default, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter {
    value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.value += n;
        Ok(())
    }
}

fn drive(
    journal: &mut Journal<Counter>,
    store: &mut FileStore,
    state: &mut Counter,
) -> Vec<JournalEvent> {
    let stream: Arc<str> = Arc::from(journal.config().stream());
    let mut events = Vec::new();
    loop {
        while let Some(event) = journal.poll_event() {
            events.push(event);
        }
        let Some(command) = journal.poll_command() else {
            return events;
        };
        let batch = vec![StreamCommand {
            stream: Arc::clone(&stream),
            command,
        }];
        for (id, result) in store.execute(batch) {
            let _ = journal.handle_completion(Duration::ZERO, id, result, state);
        }
    }
}

/// Scenario 9: a missing or damaged snapshot file no longer makes open refuse nor its stream
/// unrecoverable: loading it answers `Damaged` naming the file, and the journal falls back to
/// an older snapshot or a full replay.
#[test]
fn s09_a_missing_or_damaged_snapshot_file_falls_back() {
    for damage in ["remove", "flip"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut options = FileOptions::default();
        options.snapshot_file_min = 1;
        let config = || JournalConfig::new("counter").snapshot_every(Some(5));
        {
            let mut store = FileStore::create_with(dir.path(), options.clone()).expect("create");
            let mut state = Counter::default();
            let mut journal = Journal::new(config(), Counter::default);
            drive(&mut journal, &mut store, &mut state);
            for n in 1..=12u64 {
                journal.handle_persist(n, &mut state).expect("persist");
                drive(&mut journal, &mut store, &mut state);
            }
            assert_eq!(state.value, 78);
        }
        let snaps: Vec<PathBuf> = files(dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "snap"))
            .collect();
        let newest = snaps.last().expect("snapshot files");
        match damage {
            "remove" => std::fs::remove_file(newest).expect("remove"),
            _ => {
                let mut bytes = std::fs::read(newest).expect("read");
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                std::fs::write(newest, bytes).expect("write");
            }
        }
        let mut store = FileStore::open_with(dir.path(), options.clone()).expect("opens");
        match one(
            &mut store,
            "counter",
            Command::LoadSnapshot {
                id: CommandId(1),
                before: None,
            },
        ) {
            Err(reason) => assert!(
                reason.contains(&newest.display().to_string()),
                "{damage}: {reason}"
            ),
            other => panic!("{damage}: {other:?}"),
        }
        let mut state = Counter::default();
        let mut journal = Journal::new(config(), Counter::default);
        let events = drive(&mut journal, &mut store, &mut state);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, JournalEvent::SnapshotSkipped { .. })),
            "{damage}: {events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, JournalEvent::Recovered { last_seq: 12, .. })),
            "{damage}: {events:?}"
        );
        assert_eq!(state.value, 78, "{damage}");
    }
}

/// Scenario 10: files of another format version are named as such.
#[test]
fn s10_version_skew_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(FileStore::create(dir.path()).expect("create"));
    let identity = dir.path().join("STORE");
    let original = std::fs::read(&identity).expect("read");
    let mut newer = original.clone();
    newer[6..8].copy_from_slice(&9u16.to_le_bytes());
    std::fs::write(&identity, &newer).expect("write");
    let err = FileStore::open(dir.path()).expect_err("newer");
    assert!(
        matches!(&err, FileError::NewerFormat { format: 9, file, .. } if *file == identity),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("written by a newer version of persevere (format 9)"),
        "{err}"
    );
    std::fs::write(&identity, &original).expect("restore");
    // A segment of format 1.
    let seg = logs(dir.path()).pop().expect("segment");
    let mut old = std::fs::read(&seg).expect("read");
    old[0..8].copy_from_slice(b"PSVLOG01");
    std::fs::write(&seg, &old).expect("write");
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(FileError::OlderFormat { format: 1, .. })
    ));
}

/// Scenario 11: a group commit larger than one frame is split across frames under one
/// fdatasync; only a single write larger than a frame is rejected.
#[test]
fn s11_a_group_commit_larger_than_a_frame_is_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = FileOptions::default();
    options.frame_max = 400;
    let mut store = FileStore::create_with(dir.path(), options.clone()).expect("create");
    let batch: Vec<StreamCommand> = (0..20)
        .map(|i| append(&format!("stream-{i}"), 0, 3, false))
        .collect();
    let results = store.execute(batch);
    assert!(
        results.iter().all(|(_, r)| r == &Ok(Completion::Done)),
        "{results:?}"
    );
    assert_eq!(store.stats().commits, 1, "one group commit, one fdatasync");
    let big = StreamCommand {
        stream: Arc::from("big"),
        command: Command::Append {
            id: CommandId(99),
            expected_last: 0,
            events: vec![StoredRecord {
                seq: 1,
                bytes: vec![7; 500].into(),
            }]
            .into(),
            snapshot: None,
        },
    };
    assert!(matches!(
        store.execute(vec![big])[0].1,
        Err(StorageError::Rejected(_))
    ));
    drop(store);
    let mut store = FileStore::open_with(dir.path(), options).expect("reopen");
    for i in 0..20 {
        assert_eq!(dump(&mut store, &format!("stream-{i}")).expect("dump").0, 3);
    }
}
