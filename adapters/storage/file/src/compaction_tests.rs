//! Compaction runs on its own worker beside the commit path: writers keep committing (and
//! reading, deleting, snapshotting) while it copies — also while it is held in the middle of
//! its copy —, an idle store completes it, a failed one is retried, a store closed meanwhile
//! abandons it, and the result is the model's state.

use persevere_core::memory::MemoryStore;
use persevere_core::{CommandResult, Store, StreamCommand};

use crate::compaction_worker::Pacing;
use crate::sim::SimDisk;
use crate::tests::{dump, generate, sim_store, sim_store_paced, small_options, Mix, STREAMS};
use crate::FileStore;

const ALL: Mix = Mix {
    streams: STREAMS.len(),
    snapshots: true,
    deletes: true,
    reads: true,
};

/// Runs `batches` on the store and the model until a compaction is under way; returns the
/// batches left.
fn until_compacting(
    store: &mut FileStore,
    model: &mut MemoryStore,
    batches: &mut std::vec::IntoIter<Vec<StreamCommand>>,
) {
    for batch in batches.by_ref() {
        let want: Vec<CommandResult> = Store::execute(model, batch.clone());
        assert_eq!(store.execute(batch), want);
        if store.compacting() {
            return;
        }
    }
    panic!("no compaction started");
}

fn files(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// The compaction worker is held at a pause point in the middle of its copy while writers
/// commit (rolling segments, reading the segments being compacted, snapshotting, deleting):
/// every commit completes — none waits for the copy — and, once released, the compaction
/// completes into the model's state. Deterministic: the test waits for the worker to reach
/// its pause point, never for a time.
#[test]
fn writers_keep_committing_while_the_compaction_worker_is_held_mid_copy() {
    for seed in 0..4 {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = small_options();
        let mut store = FileStore::create_with(dir.path(), options.clone()).expect("create");
        store.compact_hold = Some(1);
        let mut model = MemoryStore::new();
        let mut batches = generate(seed, 300, ALL).into_iter();
        until_compacting(&mut store, &mut model, &mut batches);
        store.compact_hold = None;
        store.compaction_wait_held();
        let written = store.compaction_written();
        assert!(written > 0, "seed {seed}: the worker copied nothing");
        let segments = store.segment_numbers().len();
        for (i, batch) in batches.by_ref().take(150).enumerate() {
            let want: Vec<CommandResult> = Store::execute(&mut model, batch.clone());
            assert_eq!(store.execute(batch), want, "seed {seed}, batch {i}");
            assert!(store.compacting(), "seed {seed}: batch {i}");
        }
        // Reads of every stream, in the segments being compacted too, answer the model's.
        assert_eq!(dump(&mut store, STREAMS), dump(&mut model, STREAMS));
        assert_eq!(store.compaction_written(), written, "seed {seed}: not held");
        assert_eq!(store.stats().compactions, 0);
        assert!(
            store.segment_numbers().len() > segments,
            "seed {seed}: no segment was sealed while the worker was held"
        );
        assert_eq!(files(dir.path(), ".log.tmp").len(), 1);
        store.compaction_release();
        store.compaction_wait_done();
        for batch in batches {
            let want: Vec<CommandResult> = Store::execute(&mut model, batch.clone());
            assert_eq!(store.execute(batch), want, "seed {seed}");
        }
        assert!(store.stats().compactions >= 1, "seed {seed}");
        assert_eq!(store.stats().failed_compactions, 0, "seed {seed}");
        assert_eq!(dump(&mut store, STREAMS), dump(&mut model, STREAMS));
        drop(store);
        let mut store = FileStore::open_with(dir.path(), options).expect("reopen");
        assert!(store.repairs().is_empty(), "{:?}", store.repairs());
        assert_eq!(dump(&mut store, STREAMS), dump(&mut model, STREAMS));
    }
}

/// A store that stops executing once a compaction started still completes it: the worker
/// installs its result on disk (rename, removal of the superseded segments) by itself, and
/// the index follows at the next `execute`.
#[test]
fn an_idle_store_completes_a_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small_options();
    let mut store = FileStore::create_with(dir.path(), options.clone()).expect("create");
    let mut model = MemoryStore::new();
    let mut batches = generate(11, 300, ALL).into_iter();
    // The first compaction (of segment 1) supersedes no segment: take the second.
    until_compacting(&mut store, &mut model, &mut batches);
    store.compaction_wait_done();
    store.compact_hold = Some(1);
    until_compacting(&mut store, &mut model, &mut batches);
    assert_eq!(store.stats().compactions, 1);
    store.compaction_wait_held();
    let before = files(dir.path(), ".log");
    store.compaction_release();
    store.compaction_wait_done();
    // Nothing executed since: the worker installed the result.
    let after = files(dir.path(), ".log");
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    assert!(files(dir.path(), ".tmp").is_empty());
    assert_eq!(dump(&mut store, STREAMS), dump(&mut model, STREAMS));
    assert_eq!(store.stats().compactions, 2);
    assert!(!store.compacting());
    let names: Vec<String> = store
        .segment_numbers()
        .iter()
        .map(|&n| crate::segment::name(n))
        .collect();
    assert_eq!(files(dir.path(), ".log"), names);
    drop(store);
    let mut store = FileStore::open_with(dir.path(), options).expect("reopen");
    assert!(store.repairs().is_empty(), "{:?}", store.repairs());
    assert_eq!(dump(&mut store, STREAMS), dump(&mut model, STREAMS));
}

/// A failure of the worker's copy (here its next write, while no commit runs) fails that
/// compaction only: the store is not fenced, its temporary file is removed, nothing is lost,
/// and a later compaction succeeds.
#[test]
fn a_failed_compaction_worker_never_fences_and_is_retried() {
    let disk = SimDisk::new();
    let options = small_options();
    let mut store = sim_store_paced(&disk, &options, Pacing::Free).expect("open");
    store.compact_hold = Some(1);
    let mut model = MemoryStore::new();
    let mut batches = generate(12, 300, ALL).into_iter();
    until_compacting(&mut store, &mut model, &mut batches);
    store.compact_hold = None;
    store.compaction_wait_held();
    disk.fail_at(disk.ops() + 1);
    store.compaction_release();
    store.compaction_wait_done();
    for batch in batches {
        let want: Vec<CommandResult> = Store::execute(&mut model, batch.clone());
        assert_eq!(store.execute(batch), want);
        assert!(!store.is_fenced());
    }
    // A retry the last batches started may still be copying: the worker installs it on its
    // own once done (on a loaded machine it can outlast the batches).
    store.compaction_wait_done();
    assert_eq!(store.stats().failed_compactions, 1);
    assert!(store.stats().compactions >= 1, "never retried");
    assert_eq!(dump(&mut store, STREAMS), dump(&mut model, STREAMS));
    drop(store);
    assert!(disk
        .image()
        .keys()
        .all(|f| !f.ends_with(".tmp") || f.starts_with("quarantine/")));
    let mut store = sim_store(&SimDisk::from_image(&disk.image()), &options).expect("reopen");
    assert!(store.repairs().is_empty(), "{:?}", store.repairs());
    assert_eq!(dump(&mut store, STREAMS), dump(&mut model, STREAMS));
}

/// Closing the store while its worker copies stops the worker (at its next frame), waits for
/// it and removes its temporary file: the log is as the commits left it.
#[test]
fn closing_while_the_worker_copies_abandons_the_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small_options();
    let mut store = FileStore::create_with(dir.path(), options.clone()).expect("create");
    store.compact_hold = Some(1);
    let mut model = MemoryStore::new();
    let mut batches = generate(13, 300, ALL).into_iter();
    until_compacting(&mut store, &mut model, &mut batches);
    store.compaction_wait_held();
    assert_eq!(files(dir.path(), ".log.tmp").len(), 1);
    drop(store);
    assert!(files(dir.path(), ".tmp").is_empty());
    let mut store = FileStore::open_with(dir.path(), options).expect("reopen");
    assert!(store.repairs().is_empty(), "{:?}", store.repairs());
    assert_eq!(store.stats().compactions, 0);
    assert_eq!(dump(&mut store, STREAMS), dump(&mut model, STREAMS));
}

/// The worker paced in steps after each commit (as in the crash simulations): compactions
/// span many commits and end in the model's state.
#[test]
fn writers_keep_committing_while_a_compaction_runs() {
    let mix = ALL;
    for seed in 0..8 {
        let disk = SimDisk::new();
        let options = small_options();
        let mut store = sim_store(&disk, &options).expect("open");
        let mut model = MemoryStore::new();
        let mut during = 0;
        let mut longest = 0;
        let mut run = 0;
        for (i, batch) in generate(seed, 150, mix).into_iter().enumerate() {
            let compacting = store.compacting();
            let want: Vec<CommandResult> = Store::execute(&mut model, batch.clone());
            let got = store.execute(batch);
            assert_eq!(got, want, "seed {seed}, batch {i}");
            if compacting {
                during += 1;
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
            if i % 50 == 49 {
                drop(store);
                store = sim_store(&disk, &options).expect("reopen");
                assert!(
                    store.repairs().is_empty(),
                    "seed {seed}: {:?}",
                    store.repairs()
                );
            }
        }
        assert!(store.stats().compactions > 0 || during > 0, "seed {seed}");
        assert!(
            longest >= 2,
            "seed {seed}: a compaction never spanned two commits"
        );
        assert!(
            during >= 5,
            "seed {seed}: only {during} batches ran during compactions"
        );
        assert_eq!(
            dump(&mut store, STREAMS),
            dump(&mut model, STREAMS),
            "seed {seed}"
        );
        drop(store);
        let mut store = sim_store(&disk, &options).expect("reopen");
        assert_eq!(
            dump(&mut store, STREAMS),
            dump(&mut model, STREAMS),
            "seed {seed}"
        );
    }
}
