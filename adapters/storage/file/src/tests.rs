//! Unit tests of the contract against `MemoryStore`'s semantics, recovery and fencing, plus the
//! helpers the crash sweep shares.

use std::sync::Arc;

use persevere_core::memory::MemoryStore;
use persevere_core::{
    Command, CommandId, CommandResult, Completion, StorageError, Store, StoredRecord, StreamCommand,
};

use crate::compaction_worker::Pacing;
use crate::sim::SimDisk;
use crate::{FileError, FileOptions, FileStore};

/// A small deterministic generator (xorshift64*).
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One stream's full observable content: head, events, snapshots.
pub(crate) type StreamDump = (String, u64, Vec<StoredRecord>, Vec<StoredRecord>);

/// Everything a store shows for `streams`, read through its commands.
pub(crate) fn dump(store: &mut dyn Store, streams: &[&str]) -> Result<Vec<StreamDump>, String> {
    let mut out = Vec::new();
    for &name in streams {
        let stream: Arc<str> = Arc::from(name);
        let one = |store: &mut dyn Store, command| {
            store
                .execute(vec![StreamCommand {
                    stream: Arc::clone(&stream),
                    command,
                }])
                .pop()
                .map(|(_, r)| r)
                .unwrap_or(Err(StorageError::Failed("no answer".into())))
        };
        let read = one(
            store,
            Command::ReadEvents {
                id: CommandId(0),
                from: 0,
                limit: usize::MAX,
            },
        );
        let Ok(Completion::Events { records, head }) = read else {
            return Err(format!("read of {name:?}: {read:?}"));
        };
        let mut snapshots = Vec::new();
        let mut before = None;
        loop {
            match one(
                store,
                Command::LoadSnapshot {
                    id: CommandId(0),
                    before,
                },
            ) {
                Ok(Completion::Snapshot(Some(s))) => {
                    before = Some(s.seq);
                    snapshots.push(s);
                }
                Ok(Completion::Snapshot(None)) => break,
                other => return Err(format!("snapshot of {name:?}: {other:?}")),
            }
        }
        out.push((name.to_owned(), head, records, snapshots));
    }
    Ok(out)
}

pub(crate) const STREAMS: &[&str] = &["a", "a.b", "a/b", "a_b", "", "b"];

fn record(stream: &str, seq: u64, kind: &str, rng: &mut Rng) -> StoredRecord {
    let pad = "x".repeat(rng.below(24) as usize);
    StoredRecord {
        seq,
        bytes: format!("{kind}|{stream}|{seq}|{pad}").into_bytes().into(),
    }
}

/// What a generated scenario exercises.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mix {
    pub streams: usize,
    pub snapshots: bool,
    pub deletes: bool,
    pub reads: bool,
}

/// Generates `batches` batches of commands that mostly succeed (tracking heads with a model).
pub(crate) fn generate(seed: u64, batches: usize, mix: Mix) -> Vec<Vec<StreamCommand>> {
    let mut rng = Rng::new(seed);
    let mut model = MemoryStore::new();
    let mut id = 0;
    let mut out = Vec::new();
    for _ in 0..batches {
        let mut batch = Vec::new();
        for _ in 0..1 + rng.below(5) {
            id += 1;
            let name = STREAMS[rng.below(mix.streams as u64) as usize];
            let head = model.stream(name).map_or(0, |s| s.head);
            let roll = rng.below(100);
            let command = if roll < 50 || (!mix.snapshots && !mix.deletes && !mix.reads) {
                let expected = if rng.below(20) == 0 {
                    head.saturating_sub(1)
                } else {
                    head
                };
                let n = 1 + rng.below(3);
                let events: Vec<_> = (expected + 1..=expected + n)
                    .map(|s| record(name, s, "e", &mut rng))
                    .collect();
                let snapshot = (mix.snapshots && rng.below(3) == 0)
                    .then(|| record(name, expected + n, "s", &mut rng));
                Command::Append {
                    id: CommandId(id),
                    expected_last: expected,
                    events: events.into(),
                    snapshot,
                }
            } else if roll < 60 && mix.reads {
                Command::ReadEvents {
                    id: CommandId(id),
                    from: rng.below(head + 2),
                    limit: 1 + rng.below(4) as usize,
                }
            } else if roll < 70 && mix.reads {
                Command::LoadSnapshot {
                    id: CommandId(id),
                    before: (rng.below(2) == 0).then(|| rng.below(head + 2)),
                }
            } else if roll < 80 && mix.snapshots {
                Command::SaveSnapshot {
                    id: CommandId(id),
                    snapshot: record(name, rng.below(head + 1), "s", &mut rng),
                }
            } else if roll < 90 && mix.deletes {
                Command::DeleteEvents {
                    id: CommandId(id),
                    up_to: rng.below(head + 3),
                }
            } else if mix.deletes {
                Command::DeleteSnapshots {
                    id: CommandId(id),
                    keep: rng.below(3) as usize,
                }
            } else {
                Command::ReadEvents {
                    id: CommandId(id),
                    from: 1,
                    limit: 100,
                }
            };
            let _ = model.execute(name, command.clone());
            batch.push(StreamCommand {
                stream: Arc::from(name),
                command,
            });
        }
        out.push(batch);
    }
    out
}

pub(crate) fn sim_store(disk: &SimDisk, options: &FileOptions) -> Result<FileStore, FileError> {
    sim_store_paced(disk, options, Pacing::Lockstep)
}

/// A store over the simulated disk whose compaction worker is paced as `pacing` says.
pub(crate) fn sim_store_paced(
    disk: &SimDisk,
    options: &FileOptions,
    pacing: Pacing,
) -> Result<FileStore, FileError> {
    FileStore::open_vfs(Arc::new(disk.clone()), options.clone(), pacing)
}

pub(crate) fn small_options() -> FileOptions {
    FileOptions {
        segment_size: 400,
        compact_min_bytes: 200,
        snapshot_file_min: 20,
        ..FileOptions::default()
    }
}

fn cmd(stream: &str, command: Command) -> StreamCommand {
    StreamCommand {
        stream: Arc::from(stream),
        command,
    }
}

fn append(id: u64, stream: &str, expected_last: u64, n: u64) -> StreamCommand {
    cmd(
        stream,
        Command::Append {
            id: CommandId(id),
            expected_last,
            events: (expected_last + 1..=expected_last + n)
                .map(|seq| StoredRecord {
                    seq,
                    bytes: format!("{stream}:{seq}").into_bytes().into(),
                })
                .collect(),
            snapshot: None,
        },
    )
}

#[test]
fn same_commands_give_the_same_completions_as_the_memory_store() {
    for seed in 0..40 {
        let mix = Mix {
            streams: STREAMS.len(),
            snapshots: true,
            deletes: true,
            reads: true,
        };
        let options = if seed % 2 == 0 {
            small_options()
        } else {
            FileOptions::default()
        };
        let disk = SimDisk::new();
        let mut store = sim_store(&disk, &options).expect("open");
        let mut model = MemoryStore::new();
        let mut compactions = 0;
        for (i, batch) in generate(seed, 60, mix).into_iter().enumerate() {
            let want: Vec<CommandResult> = Store::execute(&mut model, batch.clone());
            let got = store.execute(batch);
            assert_eq!(got, want, "seed {seed}, batch {i}");
            if i % 20 == 19 {
                compactions += store.stats().compactions;
                drop(store);
                store = sim_store(&disk, &options).expect("reopen");
            }
        }
        assert_eq!(
            dump(&mut store, STREAMS),
            dump(&mut model, STREAMS),
            "seed {seed}"
        );
        compactions += store.stats().compactions;
        if seed % 2 == 0 {
            assert!(compactions > 0, "seed {seed}: no compaction ran");
        }
    }
}

#[test]
fn group_commit_writes_one_frame_and_one_sync_per_execute() {
    let disk = SimDisk::new();
    let mut store = sim_store(&disk, &FileOptions::default()).expect("open");
    let ops = disk.ops();
    let batch = (0..100)
        .map(|i| append(i, &format!("s{i}"), 0, 2))
        .collect();
    let results = store.execute(batch);
    assert!(results.iter().all(|(_, r)| r == &Ok(Completion::Done)));
    assert_eq!(disk.ops() - ops, 2, "one write and one fdatasync");
    assert_eq!(store.stats().commits, 1);
    assert_eq!(store.stats().writes, 100);
}

#[test]
fn heads_survive_compaction_and_reopen() {
    let disk = SimDisk::new();
    let options = small_options();
    let mut store = sim_store(&disk, &options).expect("open");
    store.execute(vec![append(1, "s", 0, 20)]);
    store.execute(vec![cmd(
        "s",
        Command::DeleteEvents {
            id: CommandId(2),
            up_to: 20,
        },
    )]);
    store.compact().expect("compact");
    drop(store);
    let mut store = sim_store(&disk, &options).expect("reopen");
    let results = store.execute(vec![append(3, "s", 0, 1), append(4, "s", 20, 1)]);
    assert_eq!(
        results[0].1,
        Err(StorageError::Conflict {
            expected: 0,
            actual: 20
        })
    );
    assert_eq!(results[1].1, Ok(Completion::Done));
    // The compacted segment (the floor) and the active one after it.
    assert_eq!(store.segment_numbers().len(), 2, "old segments dropped");
}

#[test]
fn a_torn_tail_is_truncated_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileStore::create(dir.path()).expect("open");
    store.execute(vec![append(1, "s", 0, 3)]);
    store.execute(vec![append(2, "s", 3, 3)]);
    // What a crash leaves: the files as they are while the store runs (no close marker).
    let crashed = tempfile::tempdir().expect("tempdir");
    copy_files(dir.path(), crashed.path());
    drop(store);
    let seg = crashed.path().join(crate::segment::name(1));
    let len = std::fs::metadata(&seg).expect("meta").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open seg");
    file.set_len(len - 5).expect("cut");
    drop(file);
    let mut store = FileStore::open(crashed.path()).expect("reopen");
    let torn = store.torn_tail().cloned().expect("torn tail reported");
    assert_eq!(torn.file, seg);
    assert!(torn.dropped_bytes > 0);
    assert_eq!(store.repairs().len(), 1);
    assert_eq!(store.repairs()[0].streams, vec![Arc::<str>::from("s")]);
    let kept = store.repairs()[0].kept_at.clone().expect("kept");
    assert_eq!(
        std::fs::read(&kept).expect("quarantined bytes").len() as u64,
        torn.dropped_bytes
    );
    let d = dump(&mut store, &["s"]).expect("dump");
    assert_eq!(d[0].1, 3, "the torn batch is gone whole");
    assert_eq!(
        store.execute(vec![append(3, "s", 3, 1)])[0].1,
        Ok(Completion::Done)
    );
    drop(store);
    let store = FileStore::open(crashed.path()).expect("reopen clean");
    assert_eq!(store.torn_tail(), None);
    assert!(store.repairs().is_empty());
}

/// Copies the regular files of `from` into `to`.
pub(crate) fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

#[test]
fn corruption_mid_log_fails_closed_naming_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileStore::create(dir.path()).expect("open");
    for i in 0..3 {
        store.execute(vec![append(i, "s", i * 2, 2)]);
    }
    drop(store);
    let seg = dir.path().join(crate::segment::name(1));
    let mut bytes = std::fs::read(&seg).expect("read");
    let first_frame = crate::frame::SEGMENT_HEADER_LEN;
    bytes[first_frame + 20] ^= 0x40;
    std::fs::write(&seg, &bytes).expect("write");
    match FileStore::open(dir.path()) {
        Err(FileError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, first_frame as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let err = FileStore::open(dir.path()).expect_err("still refused");
    assert!(err.to_string().contains("offset 48"), "{err}");
}

#[test]
fn a_missing_segment_fails_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = FileOptions {
        segment_size: 100,
        ..FileOptions::default()
    };
    let mut store = FileStore::create_with(dir.path(), options.clone()).expect("open");
    for i in 0..6 {
        store.execute(vec![append(i, "s", i * 4, 4)]);
    }
    assert!(store.segment_numbers().len() >= 3);
    drop(store);
    let first = dir.path().join(crate::segment::name(1));
    std::fs::remove_file(&first).expect("remove");
    match FileStore::open_with(dir.path(), options) {
        Err(FileError::Missing { file, .. }) => assert_eq!(file, first),
        other => panic!("expected a missing segment, got {other:?}"),
    }
}

#[test]
fn a_second_opener_gets_a_lock_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileStore::create(dir.path()).expect("open");
    match FileStore::open(dir.path()) {
        Err(FileError::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected a lock error, got {other:?}"),
    }
    drop(store);
    FileStore::open(dir.path()).expect("reopen after drop");
}

#[test]
fn open_url_opens_the_named_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", dir.path().display());
    let mut store = FileStore::open_url(&url).expect("open url");
    store.execute(vec![append(1, "s", 0, 1)]);
    drop(store);
    let mut store = FileStore::open(dir.path()).expect("open path");
    assert_eq!(dump(&mut store, &["s"]).expect("dump")[0].1, 1);
}

/// The numbers of the file operations `batches` make on a fresh disk after its store opened:
/// the points a failure sweep fails in turn.
fn operations_of(
    batches: &[Vec<StreamCommand>],
    options: &FileOptions,
) -> std::ops::RangeInclusive<u64> {
    let clean = SimDisk::new();
    let mut store = sim_store(&clean, options).expect("open");
    let first = clean.ops() + 1;
    for batch in batches {
        store.execute(batch.clone());
    }
    first..=clean.ops()
}

#[test]
fn a_failed_write_fences_the_store_and_reopen_recovers_a_prefix() {
    let mix = Mix {
        streams: 4,
        snapshots: true,
        deletes: true,
        reads: true,
    };
    let batches = generate(7, 30, mix);
    let options = small_options();
    let (mut checked, mut unfenced) = (0, 0);
    for n in operations_of(&batches, &options) {
        let disk = SimDisk::new();
        let mut store = sim_store(&disk, &options).expect("open");
        disk.fail_at(n);
        let mut model = MemoryStore::new();
        let mut before = None;
        let mut full = MemoryStore::new();
        for batch in &batches {
            let previous = model.clone();
            full = model.clone();
            Store::execute(&mut full, batch.clone());
            // A failed snapshot file or compaction fails that command only: the model takes
            // the commands the store acknowledged.
            let results = store.execute(batch.clone());
            let acked: Vec<StreamCommand> = batch
                .iter()
                .zip(&results)
                .filter(|(c, (_, r))| r.is_ok() || !c.command.is_write())
                .map(|(c, _)| c.clone())
                .collect();
            Store::execute(&mut model, acked);
            if store.is_fenced() {
                before = Some(previous);
                break;
            }
        }
        let Some(mut before) = before else {
            // Removing a dropped snapshot file, writing a snapshot file or compacting may fail
            // without fencing: the store stays open and holds what it acknowledged.
            drop(store);
            let reopened = SimDisk::from_image(&disk.image());
            let mut store = sim_store(&reopened, &options)
                .unwrap_or_else(|e| panic!("op {n}: reopen failed: {e}"));
            assert_eq!(
                dump(&mut store, STREAMS),
                dump(&mut model, STREAMS),
                "op {n}"
            );
            assert_eq!(
                reopened
                    .image()
                    .keys()
                    .filter(|f| f.ends_with(".snap") && !f.starts_with("quarantine/"))
                    .count(),
                store.snapshot_files(),
                "op {n}: unreferenced snapshot file left"
            );
            unfenced += 1;
            continue;
        };
        let later = store.execute(vec![
            append(9, "z", 0, 1),
            cmd(
                "a",
                Command::ReadEvents {
                    id: CommandId(10),
                    from: 1,
                    limit: 1,
                },
            ),
        ]);
        assert!(
            later
                .iter()
                .all(|(_, r)| matches!(r, Err(StorageError::Failed(_)))),
            "op {n}: fenced store answered {later:?}"
        );
        drop(store);
        let reopened = SimDisk::from_image(&disk.image());
        let mut store =
            sim_store(&reopened, &options).unwrap_or_else(|e| panic!("op {n}: reopen failed: {e}"));
        let got = dump(&mut store, STREAMS);
        assert!(
            got == dump(&mut before, STREAMS) || got == dump(&mut full, STREAMS),
            "op {n}: not a consistent prefix"
        );
        checked += 1;
    }
    assert!(checked > 20);
    assert!(
        unfenced > 0,
        "some failures (snapshot files, compaction) do not fence"
    );
}

#[test]
fn a_store_that_panicked_inside_execute_is_fenced_until_reopened() {
    let disk = SimDisk::new();
    let mut store = sim_store(&disk, &FileOptions::default()).expect("open");
    assert_eq!(
        store.execute(vec![append(1, "s", 0, 1)])[0].1,
        Ok(Completion::Done)
    );
    disk.panic_at(disk.ops() + 1);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.execute(vec![append(2, "s", 1, 1)])
    }));
    assert!(panicked.is_err());
    let results = store.execute(vec![append(3, "s", 1, 1)]);
    assert!(
        matches!(results[0].1, Err(StorageError::Failed(_))),
        "{results:?}"
    );
    assert!(Store::fenced(&store).is_some());
    Store::reopen(&mut store).expect("reopen");
    assert_eq!(Store::fenced(&store), None);
    assert_eq!(
        store.execute(vec![append(4, "s", 1, 1)])[0].1,
        Ok(Completion::Done)
    );
    assert_eq!(dump(&mut store, &["s"]).expect("dump")[0].1, 2);
}

#[test]
fn a_failed_snapshot_file_fails_that_command_only() {
    let disk = SimDisk::new();
    let options = FileOptions {
        snapshot_file_min: 10,
        ..FileOptions::default()
    };
    let mut store = sim_store(&disk, &options).expect("open");
    disk.fail_at(disk.ops() + 1);
    let results = store.execute(vec![
        append(1, "a", 0, 2),
        cmd(
            "b",
            Command::SaveSnapshot {
                id: CommandId(2),
                snapshot: StoredRecord {
                    seq: 0,
                    bytes: vec![5; 100].into(),
                },
            },
        ),
        append(3, "c", 0, 1),
    ]);
    assert_eq!(results[0].1, Ok(Completion::Done));
    assert!(
        matches!(results[1].1, Err(StorageError::Failed(_))),
        "{results:?}"
    );
    assert_eq!(results[2].1, Ok(Completion::Done));
    assert_eq!(Store::fenced(&store), None);
    assert_eq!(
        store.execute(vec![append(4, "a", 2, 1)])[0].1,
        Ok(Completion::Done)
    );
    drop(store);
    let mut store = sim_store(&SimDisk::from_image(&disk.image()), &options).expect("reopen");
    let d = dump(&mut store, &["a", "b", "c"]).expect("dump");
    assert_eq!((d[0].1, d[1].3.len(), d[2].1), (3, 0, 1));
    assert!(store.repairs().is_empty(), "{:?}", store.repairs());
}

/// A store on `disk` whose stream `s` holds five events, appended one at a time.
fn five_events(disk: &SimDisk) -> FileStore {
    let mut store = sim_store(disk, &FileOptions::default()).expect("open");
    for i in 0..5 {
        store.execute(vec![append(i, "s", i, 1)]);
    }
    store
}

#[test]
fn a_failed_compaction_never_fences_and_a_fenced_store_reopens() {
    let disk = SimDisk::new();
    let mut store = five_events(&disk);
    // A failure at any file operation of a compaction: the seal of the active segment and
    // the start of the next are log writes, which fence; any later one (the copy, its sync,
    // the rename) fails the compaction only, and the store keeps committing.
    let image = disk.image();
    let clean = SimDisk::from_image(&image);
    let mut s = sim_store(&clean, &FileOptions::default()).expect("open");
    let before = clean.ops();
    s.compact().expect("compact");
    let total = clean.ops() - before;
    drop(s);
    let mut copy_failures = 0;
    for k in 1..=total {
        let probe = SimDisk::from_image(&image);
        let mut s = sim_store(&probe, &FileOptions::default()).expect("open");
        probe.fail_at(probe.ops() + k);
        let result = s.compact();
        if result.is_ok() {
            // Operation k is one whose failure is only logged (the index checkpoint, the
            // removal of old segments).
            continue;
        }
        if Store::fenced(&s).is_some() {
            continue;
        }
        copy_failures += 1;
        assert_eq!(s.stats().failed_compactions, 1, "op {k}");
        assert_eq!(
            s.execute(vec![append(9, "s", 5, 1)])[0].1,
            Ok(Completion::Done),
            "op {k}"
        );
        s.compact()
            .unwrap_or_else(|e| panic!("op {k}: compaction retried: {e}"));
    }
    assert!(copy_failures > 3, "{copy_failures}");
    assert!(store.compact().is_ok());
    assert_eq!(Store::fenced(&store), None);
    assert_eq!(
        store.execute(vec![append(9, "s", 5, 1)])[0].1,
        Ok(Completion::Done)
    );
    store.compact().expect("compaction retried");
    // A failed log write fences; reopen (keeping the lock) recovers without a restart.
    disk.fail_at(disk.ops() + 1);
    let results = store.execute(vec![append(10, "s", 6, 1)]);
    assert!(matches!(results[0].1, Err(StorageError::Failed(_))));
    assert!(Store::fenced(&store).is_some());
    assert!(matches!(
        store.execute(vec![append(11, "s", 6, 1)])[0].1,
        Err(StorageError::Failed(_))
    ));
    Store::reopen(&mut store).expect("reopen");
    assert_eq!(Store::fenced(&store), None);
    let head = dump(&mut store, &["s"]).expect("dump")[0].1;
    assert!(head == 6 || head == 7, "{head}");
    assert_eq!(
        store.execute(vec![append(12, "s", head, 1)])[0].1,
        Ok(Completion::Done)
    );
}

/// A log write whose fdatasync failed leaves its bytes in the file (the page cache) without
/// making them durable, and the kernel may then mark them clean without ever writing them. The
/// reopen that lifts the fence must never serve them — a journal re-reading the log would take
/// the append as landed and acknowledge an event a power loss takes away: it cuts the active
/// segment back to the end this store made durable, keeps the cut bytes in quarantine and
/// reports the cut.
#[test]
fn a_reopen_after_a_failed_sync_never_serves_the_unsynced_write() {
    let disk = SimDisk::new();
    let mut store = five_events(&disk);
    let written = disk.image();
    // The append's write goes through; its sync, the next operation, fails.
    disk.fail_at(disk.ops() + 2);
    let results = store.execute(vec![append(9, "s", 5, 1)]);
    assert!(matches!(results[0].1, Err(StorageError::Failed(_))));
    assert!(Store::fenced(&store).is_some());
    assert_ne!(
        disk.image(),
        written,
        "the failed append's bytes are in the file"
    );
    Store::reopen(&mut store).expect("reopen");
    assert_eq!(Store::fenced(&store), None);
    assert_eq!(dump(&mut store, &["s"]).expect("dump")[0].1, 5);
    assert_eq!(
        disk.image().get(&crate::segment::name(1)),
        written.get(&crate::segment::name(1))
    );
    let repairs = store.repairs();
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    assert!(repairs[0].what.contains("fdatasync"), "{repairs:?}");
    assert_eq!(repairs[0].streams, vec![Arc::<str>::from("s")]);
    assert!(repairs[0]
        .kept_at
        .as_ref()
        .is_some_and(|k| k.contains("quarantine")));
    // What a power loss now leaves agrees with what the store serves, and the log goes on.
    assert_eq!(
        store.execute(vec![append(10, "s", 5, 1)])[0].1,
        Ok(Completion::Done)
    );
    disk.crash_at(disk.ops() + 1);
    let _ = store.execute(vec![append(11, "s", 6, 1)]);
    drop(store);
    let durable = disk.images().into_iter().next().expect("the durable image");
    let mut after =
        sim_store(&SimDisk::from_image(&durable), &FileOptions::default()).expect("reopen");
    assert_eq!(dump(&mut after, &["s"]).expect("dump")[0].1, 6);
}

/// At every file operation of a run of batches in turn: a failure that fences the store, then
/// the reopen that lifts the fence, serves exactly what a power loss right after it would
/// leave on disk — never a write the store did not make durable.
#[test]
fn a_reopened_store_serves_only_what_is_durable_whatever_operation_failed() {
    let mix = Mix {
        streams: 3,
        snapshots: true,
        deletes: true,
        reads: false,
    };
    let batches = generate(11, 20, mix);
    let options = small_options();
    let mut reopened = 0;
    for n in operations_of(&batches, &options) {
        let disk = SimDisk::new();
        let mut store = sim_store(&disk, &options).expect("open");
        disk.fail_at(n);
        if !batches.iter().any(|batch| {
            store.execute(batch.clone());
            store.is_fenced()
        }) {
            continue;
        }
        Store::reopen(&mut store).unwrap_or_else(|e| panic!("op {n}: reopen failed: {e}"));
        let served = dump(&mut store, STREAMS);
        disk.crash_at(disk.ops() + 1);
        let _ = store.execute(vec![append(99, "z", 0, 1)]);
        drop(store);
        let durable = disk.images().into_iter().next().expect("the durable image");
        let mut after = sim_store(&SimDisk::from_image(&durable), &options)
            .unwrap_or_else(|e| panic!("op {n}: open after the power loss failed: {e}"));
        assert_eq!(dump(&mut after, STREAMS), served, "op {n}");
        reopened += 1;
    }
    assert!(reopened > 10, "{reopened}");
}

/// The disk a crash leaves between sealing segment 2 and creating segment 3: segments 1 and 2
/// (both sealed, event 1 of stream `s` in 2) and the identity file naming segment 2.
fn sealed_without_successor(options: &FileOptions) -> crate::sim::Image {
    let disk = SimDisk::new();
    let mut store = sim_store(&disk, options).expect("create");
    assert_eq!(
        store.execute(vec![append(1, "s", 0, 1)])[0].1,
        Ok(Completion::Done)
    );
    let identity = disk
        .image()
        .remove(crate::manifest::NAME)
        .expect("identity");
    assert_eq!(
        store.execute(vec![append(2, "s", 1, 1)])[0].1,
        Ok(Completion::Done)
    );
    let mut image = disk.image();
    image.retain(|name, _| crate::segment::parse_name(name).is_some_and(|n| n <= 2));
    image.insert(crate::manifest::NAME.into(), identity);
    image
}

/// An open that fails while it starts the segment after a sealed one (ENOSPC, EMFILE, a failed
/// fsync, at each file operation in turn) writes nothing on its way out: the next open
/// succeeds with every event.
#[test]
fn an_open_that_fails_starting_the_next_segment_never_bricks_the_store() {
    let options = FileOptions {
        segment_size: 1,
        ..FileOptions::default()
    };
    let image = sealed_without_successor(&options);
    let mut failed_opens = 0;
    for k in 1..=64 {
        let probe = SimDisk::from_image(&image);
        probe.fail_at(k);
        let opened = sim_store(&probe, &options);
        let done = opened.is_ok();
        failed_opens += usize::from(!done);
        drop(opened);
        if !done {
            // Nothing of a clean shutdown: no close marker, no checkpoint.
            let after = probe.image();
            let seg2 = crate::segment::name(2);
            assert_eq!(after.get(&seg2), image.get(&seg2), "op {k}");
            assert!(!after.contains_key(crate::checkpoint::NAME), "op {k}");
        }
        let mut store = sim_store(&probe, &options)
            .unwrap_or_else(|e| panic!("op {k}: the open after a failed one: {e}"));
        let d = dump(&mut store, &["s"]).expect("dump");
        assert_eq!((d[0].1, d[0].2.len()), (1, 1), "op {k}");
        assert_eq!(
            store.execute(vec![append(3, "s", 1, 1)])[0].1,
            Ok(Completion::Done),
            "op {k}"
        );
        if done {
            break;
        }
    }
    assert!(failed_opens >= 3, "{failed_opens}");
}

/// A close marker is never written after a segment's seal, whatever state the store is in.
#[test]
fn a_sealed_segment_never_gets_a_close_marker() {
    let options = FileOptions {
        segment_size: 1,
        ..FileOptions::default()
    };
    let image = sealed_without_successor(&options);
    let disk = SimDisk::from_image(&image);
    let mut store = sim_store(&disk, &options).expect("open");
    // A store whose active segment is sealed but not fenced (which no path should leave).
    store.active = 2;
    store.active_sealed = true;
    let sealed = disk.image()[&crate::segment::name(2)].clone();
    drop(store);
    assert_eq!(disk.image()[&crate::segment::name(2)], sealed);
}
