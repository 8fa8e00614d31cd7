//! The simulated power-loss sweep: for each scenario, lose power at every file operation
//! (every create, write — torn at every byte —, fsync, truncate, rename, remove and directory
//! sync), reopen every disk image a reboot could find, and check that the store shows exactly
//! the state before or after the interrupted `execute` (after, if any of its writes was
//! acknowledged): every acknowledged event present, a prefix of what was attempted, no
//! garbage, no duplicates; then that the recovered store takes new writes.

use std::io::Write as _;
use std::sync::Arc;

use persevere_core::memory::MemoryStore;
use persevere_core::{Command, CommandId, Completion, Store, StoredRecord, StreamCommand};

use crate::compaction_worker::Pacing;
use crate::sim::SimDisk;
use crate::tests::{dump, generate, sim_store, sim_store_paced, small_options, Mix, STREAMS};
use crate::FileOptions;

fn sweep(name: &str, seed: u64, batches: usize, mix: Mix, options: &FileOptions) -> usize {
    sweep_counting(name, seed, batches, mix, options, Pacing::Lockstep).0
}

/// The sweep; also returns how many reboots opened from an index checkpoint.
fn sweep_counting(
    name: &str,
    seed: u64,
    batches: usize,
    mix: Mix,
    options: &FileOptions,
    pacing: Pacing,
) -> (usize, usize) {
    let batches = generate(seed, batches, mix);
    let clean = SimDisk::new();
    let mut store = sim_store_paced(&clean, options, pacing).expect("open");
    for batch in &batches {
        store.execute(batch.clone());
    }
    let compactions = store.stats().compactions;
    drop(store);
    let total = clean.ops();
    let mut points = 0;
    let mut nested = 0;
    let mut repaired = 0u64;
    let mut from_checkpoint = 0;
    for n in 1..=total {
        let disk = SimDisk::new();
        disk.crash_at(n);
        let mut before = MemoryStore::new();
        let mut after = MemoryStore::new();
        let mut acked = false;
        // The states of the interrupted batch's command prefixes: each command is atomic,
        // and a batch split across frames may survive in part (none of it acknowledged).
        let mut prefixes = Vec::new();
        if let Ok(mut store) = sim_store_paced(&disk, options, pacing) {
            for batch in &batches {
                before = after.clone();
                Store::execute(&mut after, batch.clone());
                let results = store.execute(batch.clone());
                prefixes = (0..batch.len())
                    .map(|j| {
                        let mut m = before.clone();
                        Store::execute(&mut m, batch[..j].to_vec());
                        m
                    })
                    .collect();
                if disk.crashed() {
                    acked = batch
                        .iter()
                        .zip(&results)
                        .any(|(c, (_, r))| c.command.is_write() && r.is_ok());
                    break;
                }
            }
        }
        assert!(disk.crashed(), "{name}: op {n} was never reached");
        let want_before = dump(&mut before, STREAMS).expect("model");
        let want_after = dump(&mut after, STREAMS).expect("model");
        let want_prefixes: Vec<_> = prefixes
            .iter_mut()
            .map(|m| dump(m, STREAMS).expect("model"))
            .collect();
        for image in disk.images() {
            points += 1;
            let reboot = SimDisk::from_image(&image);
            let mut store = sim_store(&reboot, options).unwrap_or_else(|e| {
                panic!("{name} (seed {seed}): crash at op {n}: reopen failed: {e}")
            });
            if matches!(
                store.open_summary().checkpoint,
                crate::IndexCheckpoint::Used { .. }
            ) {
                from_checkpoint += 1;
            }
            let got = dump(&mut store, STREAMS)
                .unwrap_or_else(|e| panic!("{name} (seed {seed}): crash at op {n}: {e}"));
            // Open's own repairs (quarantine moves, the cut, a new segment) may be interrupted
            // too: every image a crash during open leaves opens to the same state.
            let open_ops = reboot.ops();
            // A sample (every 200th image that needed repairs) keeps the sweep quick.
            if open_ops > 0 && !store.repairs().is_empty() && {
                repaired += 1;
                repaired % 200 == 1
            } {
                for m in 1..=open_ops {
                    let again = SimDisk::from_image(&image);
                    again.crash_at(m);
                    assert!(sim_store(&again, options).is_err() || !again.crashed());
                    for image2 in again.images() {
                        nested += 1;
                        let mut store2 = sim_store(&SimDisk::from_image(&image2), options)
                            .unwrap_or_else(|e| {
                                panic!(
                                    "{name}: op {n}, crash at op {m} of open: reopen failed: {e}"
                                )
                            });
                        assert_eq!(
                            dump(&mut store2, STREAMS).expect("dump"),
                            got,
                            "{name}: op {n}, crash at op {m} of open"
                        );
                    }
                }
            }
            if acked {
                assert_eq!(
                    got, want_after,
                    "{name} (seed {seed}): crash at op {n}: acknowledged writes lost"
                );
            } else {
                assert!(
                    got == want_before || got == want_after || want_prefixes.contains(&got),
                    "{name} (seed {seed}): crash at op {n}: recovered state is neither before nor after the interrupted batch"
                );
            }
            // No garbage left behind, and the recovered store takes writes that survive a reopen.
            assert!(
                reboot
                    .image()
                    .keys()
                    .all(|f| !f.ends_with(".tmp") || f.starts_with("quarantine/")),
                "{name}: op {n}: temporary file left"
            );
            assert_eq!(
                reboot
                    .image()
                    .keys()
                    .filter(|f| f.ends_with(".snap") && !f.starts_with("quarantine/"))
                    .count(),
                store.snapshot_files(),
                "{name}: op {n}: unreferenced snapshot file left"
            );
            let write = StreamCommand {
                stream: Arc::from("after-crash"),
                command: Command::Append {
                    id: CommandId(1),
                    expected_last: 0,
                    events: StoredRecord {
                        seq: 1,
                        bytes: b"after".to_vec().into(),
                    }
                    .into(),
                    snapshot: None,
                },
            };
            assert_eq!(store.execute(vec![write])[0].1, Ok(Completion::Done));
            drop(store);
            let mut store = sim_store(&SimDisk::from_image(&reboot.image()), options)
                .unwrap_or_else(|e| panic!("{name}: op {n}: second reopen failed: {e}"));
            assert_eq!(
                dump(&mut store, STREAMS).expect("dump"),
                got,
                "{name}: op {n}"
            );
            assert_eq!(
                dump(&mut store, &["after-crash"]).expect("dump")[0].1,
                1,
                "{name}: op {n}"
            );
        }
    }
    println!("{name}: {total} file operations, {points} crash images ({nested} more from crashes during open's repairs, {from_checkpoint} opened from an index checkpoint), {compactions} compactions in the clean run");
    (points, from_checkpoint)
}

#[test]
fn crash_sweep_at_every_file_operation() {
    let all = Mix {
        streams: STREAMS.len(),
        snapshots: true,
        deletes: true,
        reads: true,
    };
    let mut points = 0;
    points += sweep(
        "many streams",
        1,
        25,
        Mix {
            streams: STREAMS.len(),
            snapshots: false,
            deletes: false,
            reads: true,
        },
        &FileOptions::default(),
    );
    points += sweep(
        "snapshots",
        2,
        25,
        Mix {
            streams: 3,
            snapshots: true,
            deletes: false,
            reads: true,
        },
        &FileOptions::default(),
    );
    points += sweep(
        "snapshot files",
        5,
        25,
        Mix {
            streams: 3,
            snapshots: true,
            deletes: true,
            reads: true,
        },
        &FileOptions {
            snapshot_file_min: 20,
            ..FileOptions::default()
        },
    );
    points += sweep("compaction", 3, 30, all, &small_options());
    // The worker installs the result itself (the idle path: no `execute` holds the lock),
    // and the commit thread moves its index over at the next one.
    points += sweep_counting(
        "compaction installed by the worker",
        3,
        30,
        all,
        &small_options(),
        Pacing::LockstepIdle,
    )
    .0;
    points += sweep(
        "segments",
        4,
        30,
        all,
        &FileOptions {
            segment_size: 150,
            compact_min_bytes: 100,
            snapshot_file_min: usize::MAX,
            ..FileOptions::default()
        },
    );
    // Index checkpoints written at every seal and at the clean shutdown, interrupted at each
    // of their file operations; reboots open from whichever checkpoint survived.
    let (more, from_checkpoint) = sweep_counting(
        "checkpoints",
        6,
        30,
        all,
        &FileOptions {
            segment_size: 250,
            compact_min_bytes: u64::MAX,
            snapshot_file_min: 40,
            ..FileOptions::default()
        },
        Pacing::Lockstep,
    );
    points += more;
    assert!(
        from_checkpoint > 100,
        "{from_checkpoint} reboots used a checkpoint"
    );
    // Group commits split across small frames under one fdatasync.
    points += sweep(
        "split frames",
        5,
        20,
        all,
        &FileOptions {
            frame_max: 260,
            ..small_options()
        },
    );
    // Written to the stderr handle, not with `eprintln!`, so `cargo test` shows it without
    // `--nocapture`.
    let _ = writeln!(std::io::stderr(), "crash points: {points}");
    assert!(points > 1000);
}

/// What open sets aside is durable in `quarantine/` before it leaves its place: losing power
/// at any file operation of an open that cuts a torn tail (alone, or after moving a leftover
/// temporary file aside), no disk image a reboot may find has the cut (or the move) without
/// the quarantined copy (the sub-directory's entries are synced, not only the store
/// directory's).
#[test]
fn what_open_sets_aside_is_in_quarantine_before_it_leaves_its_place() {
    let disk = SimDisk::new();
    let mut store = sim_store(&disk, &FileOptions::default()).expect("create");
    for i in 1..=3 {
        let append = StreamCommand {
            stream: "s".into(),
            command: Command::Append {
                id: CommandId(i),
                expected_last: i - 1,
                events: StoredRecord::new(i, format!("event {i}").into_bytes()).into(),
                snapshot: None,
            },
        };
        assert_eq!(store.execute(vec![append])[0].1, Ok(Completion::Done));
    }
    // The running store's files (a crash) with a torn write at the end of the active
    // segment; then also a leftover temporary file of the identity file.
    let mut torn_only = disk.image();
    drop(store);
    let set_aside = SetAside {
        segment: crate::segment::name(1),
        whole: torn_only[&crate::segment::name(1)].len(),
        torn: vec![0xAB; 30],
        leftover: b"a temporary identity file".to_vec(),
    };
    torn_only
        .get_mut(&set_aside.segment)
        .expect("segment")
        .extend_from_slice(&set_aside.torn);
    let mut both = torn_only.clone();
    both.insert(crate::manifest::TEMP.into(), set_aside.leftover.clone());
    let checked = set_aside.crash_at_each_operation(&torn_only, 1)
        + set_aside.crash_at_each_operation(&both, 2);
    assert!(checked > 20, "{checked}");
}

/// What the open in [`what_open_sets_aside_is_in_quarantine_before_it_leaves_its_place`]
/// sets aside.
struct SetAside {
    segment: String,
    /// The segment's length without its torn tail.
    whole: usize,
    torn: Vec<u8>,
    leftover: Vec<u8>,
}

impl SetAside {
    /// Loses power at each file operation of an open of `image` (which makes `repairs`);
    /// checks every image a reboot may find; returns how many.
    fn crash_at_each_operation(&self, image: &crate::sim::Image, repairs: usize) -> usize {
        let options = FileOptions::default();
        let probe = SimDisk::from_image(image);
        let store = sim_store(&probe, &options).expect("open");
        assert_eq!(store.repairs().len(), repairs, "{:?}", store.repairs());
        drop(store);
        let kept = |image: &crate::sim::Image, bytes: &[u8]| {
            image.iter().any(|(name, b)| {
                name.starts_with("quarantine/") && !name.ends_with(".note") && b == bytes
            })
        };
        let mut checked = 0;
        for n in 1..=probe.ops() {
            let disk = SimDisk::from_image(image);
            disk.crash_at(n);
            drop(sim_store(&disk, &options));
            for after in disk.images() {
                checked += 1;
                let cut = after.get(&self.segment).map(Vec::len) == Some(self.whole);
                assert!(
                    !cut || kept(&after, &self.torn),
                    "op {n}: the torn tail was cut, no copy kept"
                );
                let moved = repairs == 2 && !after.contains_key(crate::manifest::TEMP);
                assert!(
                    !moved || kept(&after, &self.leftover),
                    "op {n}: the leftover was moved, no copy kept"
                );
            }
        }
        checked
    }
}
