//! Tests of the index checkpoint: used at a clean open, brought up to date after a crash,
//! ignored (and the log replayed) when damaged, foreign or stale, and written for stores
//! that predate it.

use persevere_core::memory::MemoryStore;
use persevere_core::Store;

use crate::sim::{Image, SimDisk};
use crate::tests::{dump, generate, sim_store, Mix, STREAMS};
use crate::{FileOptions, FileStore, IndexCheckpoint};

const MIX: Mix = Mix {
    streams: 6,
    snapshots: true,
    deletes: true,
    reads: true,
};

fn options() -> FileOptions {
    FileOptions {
        segment_size: 600,
        compact_min_bytes: u64::MAX,
        snapshot_file_min: 40,
        ..FileOptions::default()
    }
}

/// A store after `batches` generated batches (left open, as a crash would leave it) and the
/// model of what it holds.
fn filled(seed: u64, batches: usize) -> (SimDisk, FileStore, MemoryStore) {
    let disk = SimDisk::new();
    let mut store = sim_store(&disk, &options()).expect("open");
    let mut model = MemoryStore::new();
    for batch in generate(seed, batches, MIX) {
        Store::execute(&mut model, batch.clone());
        store.execute(batch);
    }
    (disk, store, model)
}

fn reopen(image: &Image) -> FileStore {
    sim_store(&SimDisk::from_image(image), &options()).expect("reopen")
}

#[test]
fn a_clean_open_replays_nothing_and_a_crash_replays_only_what_follows_the_checkpoint() {
    for seed in 0..5 {
        let (disk, store, mut model) = filled(seed, 60);
        let want = dump(&mut model, STREAMS).expect("model");
        let segments = store.segment_numbers();
        assert!(segments.len() > 3, "seed {seed}: {segments:?}");
        // A crash: the store is never dropped. The last checkpoint was written when the
        // previous segment was sealed.
        let crashed = disk.image();
        std::mem::forget(store);
        let mut after_crash = reopen(&crashed);
        let summary = after_crash.open_summary().clone();
        let last = *segments.last().expect("a segment");
        assert_eq!(
            summary.checkpoint,
            IndexCheckpoint::Used {
                segment: last - 1,
                offset: crashed[&crate::segment::name(last - 1)].len() as u64
            },
            "seed {seed}"
        );
        let tail = crashed[&crate::segment::name(last)].len() as u64;
        assert_eq!(summary.scanned_bytes, tail, "seed {seed}");
        assert!(
            summary.scanned_bytes < summary.bytes / 2,
            "seed {seed}: {summary:?}"
        );
        assert_eq!(
            dump(&mut after_crash, STREAMS).expect("dump"),
            want,
            "seed {seed}"
        );
        drop(after_crash);
        // A clean shutdown: open replays nothing.
        let disk2 = SimDisk::from_image(&crashed);
        drop(sim_store(&disk2, &options()).expect("open"));
        let mut clean = reopen(&disk2.image());
        let summary = clean.open_summary().clone();
        assert!(
            matches!(summary.checkpoint, IndexCheckpoint::Used { .. }),
            "seed {seed}"
        );
        assert_eq!(summary.scanned_bytes, 0, "seed {seed}: {summary:?}");
        assert_eq!(
            dump(&mut clean, STREAMS).expect("dump"),
            want,
            "seed {seed}"
        );
    }
}

#[test]
fn a_damaged_checkpoint_is_ignored_and_the_log_replayed() {
    let seed = 21;
    let (disk, store, mut model) = filled(seed, 50);
    drop(store);
    let want = dump(&mut model, STREAMS).expect("model");
    let image = disk.image();
    let index = image[crate::checkpoint::NAME].clone();
    for i in 0..index.len() {
        for bit in [0, 5] {
            let mut damaged = image.clone();
            let bytes = damaged.get_mut(crate::checkpoint::NAME).expect("INDEX");
            bytes[i] ^= 1 << bit;
            let mut store = reopen(&damaged);
            assert!(
                matches!(
                    store.open_summary().checkpoint,
                    IndexCheckpoint::Ignored { .. }
                ),
                "seed {seed}: byte {i} bit {bit}: {:?}",
                store.open_summary()
            );
            assert_eq!(
                store.open_summary().scanned_bytes,
                store.open_summary().bytes
            );
            assert_eq!(
                dump(&mut store, STREAMS).expect("dump"),
                want,
                "byte {i} bit {bit}"
            );
        }
    }
    // Cut short, or emptied.
    for len in [0, 7, index.len() / 2, index.len() - 1] {
        let mut damaged = image.clone();
        damaged.insert(crate::checkpoint::NAME.into(), index[..len].to_vec());
        let mut store = reopen(&damaged);
        assert!(matches!(
            store.open_summary().checkpoint,
            IndexCheckpoint::Ignored { .. }
        ));
        assert_eq!(
            dump(&mut store, STREAMS).expect("dump"),
            want,
            "cut at {len}"
        );
    }
}

#[test]
fn a_foreign_or_stale_checkpoint_is_never_trusted() {
    let seed = 22;
    let (disk, store, mut model) = filled(seed, 40);
    drop(store);
    let want = dump(&mut model, STREAMS).expect("model");
    let image = disk.image();
    // Another store's checkpoint (same history, another id).
    let (other, store, _) = filled(seed, 40);
    drop(store);
    let mut foreign = image.clone();
    foreign.insert(
        crate::checkpoint::NAME.into(),
        other.image()[crate::checkpoint::NAME].clone(),
    );
    let mut store = reopen(&foreign);
    let IndexCheckpoint::Ignored { reason } = &store.open_summary().checkpoint else {
        panic!("seed {seed}: a foreign checkpoint was used");
    };
    assert!(reason.contains("belongs to store"), "{reason}");
    assert_eq!(dump(&mut store, STREAMS).expect("dump"), want);
    drop(store);

    // A checkpoint of the same store standing where the log now holds another frame: the
    // log was written on after it, then cut back, then written differently.
    let (disk, mut store, _) = filled(seed, 40);
    let old = disk.image()[crate::checkpoint::NAME].clone();
    let mut model = MemoryStore::new();
    for batch in generate(seed, 40, MIX) {
        Store::execute(&mut model, batch);
    }
    for batch in generate(seed + 100, 30, MIX) {
        Store::execute(&mut model, batch.clone());
        store.execute(batch);
    }
    drop(store);
    let mut image = disk.image();
    image.insert(crate::checkpoint::NAME.into(), old.clone());
    let mut stale = reopen(&image);
    let want = dump(&mut model, STREAMS).expect("model");
    // Either ignored or used from its (still valid) place: never a different state.
    assert_eq!(
        dump(&mut stale, STREAMS).expect("dump"),
        want,
        "seed {seed}"
    );
    // A checkpoint (of this store, intact) that names another frame than the one the log
    // holds where it stands.
    let mut rewritten = image.clone();
    let mut checkpoint = crate::checkpoint::decode(&old).expect("decode");
    checkpoint.position.chain ^= 1;
    rewritten.insert(
        crate::checkpoint::NAME.into(),
        crate::checkpoint::encode(
            checkpoint.store,
            checkpoint.position,
            checkpoint.floor,
            &checkpoint.segments,
            &checkpoint.index,
        ),
    );
    let mut store = reopen(&rewritten);
    let IndexCheckpoint::Ignored { reason } = &store.open_summary().checkpoint else {
        panic!("seed {seed}: a checkpoint standing after another frame was used");
    };
    assert!(reason.contains("not the one it covers"), "{reason}");
    assert_eq!(
        dump(&mut store, STREAMS).expect("dump"),
        want,
        "seed {seed}"
    );
}

#[test]
fn a_store_written_before_checkpoints_opens_and_gets_one() {
    // Written by the format-2 code that had no index checkpoint (120 generated batches of
    // seed 77, segment size 2000, compaction at 1500 bytes, snapshot files from 100 bytes).
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format2-v1");
    let dir = tempfile::tempdir().expect("tempdir");
    crate::tests::copy_files(&fixture, dir.path());
    let mix = Mix {
        streams: STREAMS.len(),
        snapshots: true,
        deletes: true,
        reads: false,
    };
    let mut model = MemoryStore::new();
    for batch in generate(77, 120, mix) {
        Store::execute(&mut model, batch);
    }
    let want = dump(&mut model, STREAMS).expect("model");
    let mut store = FileStore::open(dir.path()).expect("open");
    assert!(store.repairs().is_empty());
    assert_eq!(store.open_summary().checkpoint, IndexCheckpoint::Absent);
    assert_eq!(dump(&mut store, STREAMS).expect("dump"), want);
    drop(store);
    let mut store = FileStore::open(dir.path()).expect("reopen");
    assert!(matches!(
        store.open_summary().checkpoint,
        IndexCheckpoint::Used { .. }
    ));
    assert_eq!(store.open_summary().scanned_bytes, 0);
    assert_eq!(dump(&mut store, STREAMS).expect("dump"), want);
}
