//! Tests of the index's size (runs per stream and segment, not per event) and of reads that
//! rebuild the positions of sealed segments' events.

use persevere_core::memory::MemoryStore;
use persevere_core::{Command, CommandId, Store, StoredRecord, StreamCommand};

use crate::sim::SimDisk;
use crate::tests::{dump, sim_store, Rng};
use crate::{FileOptions, FileStore};

const NAMES: &[&str] = &["x", "x.y", "y"];

fn one_event(id: u64, stream: &str, seq: u64, rng: &mut Rng) -> StreamCommand {
    StreamCommand {
        stream: stream.into(),
        command: Command::Append {
            id: CommandId(id),
            expected_last: seq - 1,
            events: StoredRecord::new(
                seq,
                format!("{stream}:{seq}:{}", "p".repeat(rng.below(30) as usize)).into_bytes(),
            )
            .into(),
            snapshot: None,
        },
    }
}

/// A store on a simulated disk with 400-byte segments, holding events `1..=events` of stream
/// `x` (payload lengths drawn from `seed`): the disk, its options, the store and the generator.
fn small_segments(seed: u64, events: u64) -> (SimDisk, FileOptions, FileStore, Rng) {
    let mut rng = Rng::new(seed);
    let options = FileOptions {
        segment_size: 400,
        ..FileOptions::default()
    };
    let disk = SimDisk::new();
    let mut store = sim_store(&disk, &options).expect("open");
    for seq in 1..=events {
        store.execute(vec![one_event(seq, "x", seq, &mut rng)]);
    }
    (disk, options, store, rng)
}

/// Flips a bit of the first copy of `marker` in `store`'s segment files, in place on `disk`;
/// returns the segment it was in (`None`: not found).
fn flip_where(disk: &SimDisk, store: &FileStore, marker: &[u8]) -> Option<u64> {
    use crate::vfs::Vfs;
    for seg in store.segment_numbers() {
        let name = crate::segment::name(seg);
        let mut file = Vfs::open(disk, &name, false).expect("segment");
        let mut bytes = vec![0u8; file.len().expect("len") as usize];
        file.read_at(&mut bytes, 0).expect("read");
        if let Some(at) = bytes.windows(marker.len()).position(|w| w == marker) {
            file.write_at(&[bytes[at + 3] ^ 0x01], (at + 3) as u64)
                .expect("write");
            return Some(seg);
        }
    }
    None
}

#[test]
fn the_index_holds_one_run_per_stream_and_segment_not_one_entry_per_event() {
    let seed = 11;
    let mut rng = Rng::new(seed);
    let options = FileOptions {
        segment_size: 4000,
        ..FileOptions::default()
    };
    let disk = SimDisk::new();
    let mut store = sim_store(&disk, &options).expect("open");
    let mut heads = [0u64; 3];
    for i in 0..3000u64 {
        let s = (i % 3) as usize;
        heads[s] += 1;
        let r = store.execute(vec![one_event(i, NAMES[s], heads[s], &mut rng)]);
        assert!(r[0].1.is_ok(), "seed {seed}: {r:?}");
    }
    let segments = store.segment_numbers().len();
    assert!(segments > 10, "seed {seed}: only {segments} segments");
    let runs: usize = store.index.streams.values().map(|s| s.runs.len()).sum();
    assert!(
        runs <= NAMES.len() * segments,
        "seed {seed}: {runs} runs for {segments} segments"
    );
    // Positions are held for the active segment (and a few recent ones) only.
    assert!(
        store.index.fine.len() <= super::store::FINE_CACHE + 1,
        "seed {seed}"
    );
    drop(store);
    let store = sim_store(&disk, &options).expect("reopen");
    let reopened: usize = store.index.streams.values().map(|s| s.runs.len()).sum();
    assert_eq!(reopened, runs, "seed {seed}");
    assert_eq!(store.index.fine.len(), 1, "seed {seed}");
}

#[test]
fn reads_anywhere_rebuild_sealed_segments_positions_within_a_bounded_cache() {
    for seed in 0..6u64 {
        let mut rng = Rng::new(seed);
        let options = FileOptions {
            segment_size: 300 + 200 * seed,
            ..FileOptions::default()
        };
        let disk = SimDisk::new();
        let mut store = sim_store(&disk, &options).expect("open");
        let mut model = MemoryStore::new();
        let mut heads = [0u64; 3];
        let mut id = 0;
        for round in 0..400u64 {
            id += 1;
            let s = rng.below(3) as usize;
            let command = if rng.below(3) == 0 {
                StreamCommand {
                    stream: NAMES[s].into(),
                    command: Command::ReadEvents {
                        id: CommandId(id),
                        from: rng.below(heads[s] + 2),
                        limit: 1 + rng.below(40) as usize,
                    },
                }
            } else {
                heads[s] += 1;
                one_event(id, NAMES[s], heads[s], &mut rng)
            };
            let want = Store::execute(&mut model, vec![command.clone()]);
            let got = store.execute(vec![command]);
            assert_eq!(got, want, "seed {seed}, round {round}");
            assert!(
                store.index.fine.len() <= super::store::FINE_CACHE + 1,
                "seed {seed}, round {round}: {} segments' positions loaded",
                store.index.fine.len()
            );
            if round % 150 == 149 {
                drop(store);
                store = sim_store(&disk, &options).expect("reopen");
            }
        }
        assert!(store.segment_numbers().len() > 2 * super::store::FINE_CACHE);
        assert_eq!(
            dump(&mut store, NAMES),
            dump(&mut model, NAMES),
            "seed {seed}"
        );
    }
}

#[test]
fn a_sealed_segment_damaged_under_a_running_store_fails_the_read_never_answers_wrong_events() {
    use crate::vfs::Vfs;
    let seed = 12;
    let (disk, options, store, _) = small_segments(seed, 60);
    drop(store);
    let mut store = sim_store(&disk, &options).expect("reopen");
    let first = store.segment_numbers()[0];
    let name = crate::segment::name(first);
    let mut file = Vfs::open(&disk, &name, false).expect("segment");
    let mut byte = [0u8; 1];
    file.read_at(&mut byte, 100).expect("read");
    file.write_at(&[byte[0] ^ 0x20], 100).expect("write");
    let read = StreamCommand {
        stream: "x".into(),
        command: Command::ReadEvents {
            id: CommandId(1),
            from: 1,
            limit: 5,
        },
    };
    let got = store.execute(vec![read]);
    let Err(persevere_core::StorageError::Damaged { seq: 1, reason }) = &got[0].1 else {
        panic!("seed {seed}: a damaged segment answered {got:?}");
    };
    assert!(reason.contains("damaged"), "seed {seed}: {reason}");
}

#[test]
fn a_snapshot_in_a_damaged_sealed_segment_is_damaged_never_answered() {
    let seed = 13;
    let (disk, options, mut store, mut rng) = small_segments(seed, 5);
    let marker = b"SNAPSHOT-OF-X-AT-5";
    store.execute(vec![StreamCommand {
        stream: "x".into(),
        command: Command::SaveSnapshot {
            id: CommandId(100),
            snapshot: StoredRecord::new(5, marker.to_vec()),
        },
    }]);
    for seq in 6..=60 {
        store.execute(vec![one_event(seq + 100, "x", seq, &mut rng)]);
    }
    drop(store);
    let mut store = sim_store(&disk, &options).expect("reopen");
    // Flip a bit of the snapshot's bytes where they lie, in a sealed segment.
    let seg = flip_where(&disk, &store, marker);
    let seg = seg.unwrap_or_else(|| panic!("seed {seed}: the snapshot's bytes were not found"));
    assert_ne!(Some(&seg), store.segment_numbers().last(), "seed {seed}");
    let load = StreamCommand {
        stream: "x".into(),
        command: Command::LoadSnapshot {
            id: CommandId(1),
            before: None,
        },
    };
    let got = store.execute(vec![load]);
    let Err(persevere_core::StorageError::Damaged { seq: 5, reason }) = &got[0].1 else {
        panic!("seed {seed}: a snapshot in a damaged segment answered {got:?}");
    };
    assert!(reason.contains("damage"), "seed {seed}: {reason}");
}

/// A snapshot whose events were all deleted, in a sealed segment the index checkpoint covers
/// (so open did not verify it), damaged before a compaction: the compaction copies no event
/// from that segment, yet it must not give the damaged bytes a fresh checksum and delete the
/// original. It fails (the log is unchanged), and loading the snapshot answers `Damaged`,
/// before and after a reopen.
#[test]
fn compaction_never_launders_a_damaged_snapshot_whose_events_were_deleted() {
    let seed = 14;
    let (disk, options, mut store, mut rng) = small_segments(seed, 5);
    // Larger than a segment: the next write starts a new segment, so no live event shares
    // the snapshot's segment.
    let mut snapshot = b"SNAPSHOT-OF-X-AT-5".to_vec();
    snapshot.resize(500, b's');
    let cmd = |id, command| StreamCommand {
        stream: "x".into(),
        command: match command {
            0 => Command::SaveSnapshot {
                id: CommandId(id),
                snapshot: StoredRecord::new(5, snapshot.clone()),
            },
            1 => Command::DeleteEvents {
                id: CommandId(id),
                up_to: 5,
            },
            _ => Command::LoadSnapshot {
                id: CommandId(id),
                before: None,
            },
        },
    };
    store.execute(vec![cmd(100, 0)]);
    store.execute(vec![cmd(101, 1)]);
    for seq in 6..=60 {
        store.execute(vec![one_event(seq + 100, "x", seq, &mut rng)]);
    }
    drop(store);
    let mut store = sim_store(&disk, &options).expect("reopen");
    let seg = flip_where(&disk, &store, &snapshot[..18]);
    let seg = seg.expect("the snapshot's bytes were not found");
    assert_ne!(Some(&seg), store.segment_numbers().last(), "seed {seed}");
    let compacted = store.compact();
    let load = |store: &mut crate::FileStore| store.execute(vec![cmd(1, 2)]).remove(0).1;
    let got = load(&mut store);
    assert!(
        matches!(
            got,
            Err(persevere_core::StorageError::Damaged { seq: 5, .. })
        ),
        "seed {seed}: after compaction ({compacted:?}) a damaged snapshot answered {got:?}"
    );
    let Err(persevere_core::StorageError::Failed(reason)) = &compacted else {
        panic!("seed {seed}: the compaction over a damaged snapshot answered {compacted:?}");
    };
    assert!(
        reason.contains("damaged") && reason.contains(&crate::segment::name(seg)),
        "seed {seed}: {reason}"
    );
    assert!(store.segment_numbers().contains(&seg), "seed {seed}");
    drop(store);
    let mut store = sim_store(&disk, &options).expect("reopen");
    let got = load(&mut store);
    assert!(
        matches!(
            got,
            Err(persevere_core::StorageError::Damaged { seq: 5, .. })
        ),
        "seed {seed}: after a reopen a damaged snapshot answered {got:?}"
    );
}
