//! A real process persisting to a store is SIGKILLed at random (seeded) moments; after each kill
//! the store is reopened and every event the child reported acknowledged must be there, with
//! the bytes it wrote, and nothing else (the conformance kit's kill harness).
//!
//! The child is this test binary itself, re-run with `KILL_CHILD_DIR` set so that only
//! [`kill_child`] does work.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use persevere_conformance::kill::{self, KillAt, Workload};
use persevere_file::{FileOptions, FileStore};

const CHILD_ENV: &str = "KILL_CHILD_DIR";
const SEED_ENV: &str = "KILL_CHILD_SEED";

fn options(compacting: bool) -> FileOptions {
    let mut options = FileOptions::default();
    options.segment_size = 32 << 10;
    options.compact_min_bytes = 16 << 10;
    options.snapshot_file_min = 22;
    if compacting {
        // Compactions that copy a little after each commit, often: kills land in them.
        options.segment_size = 4 << 10;
        options.compact_min_bytes = 2 << 10;
        options.compact_step_bytes = 256;
    }
    options
}

const COMPACT_ENV: &str = "KILL_CHILD_COMPACTING";

/// The child's workload; does nothing unless run as the child.
#[test]
fn kill_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let compacting = std::env::var(COMPACT_ENV).is_ok_and(|v| v == "1");
    let mut store = FileStore::open_or_create_with(&dir, options(compacting)).expect("child open");
    kill::run_child(
        &mut store,
        seed,
        Workload {
            // Deletions often enough that compactions keep running.
            delete_every: if compacting { 4 } else { 40 },
            prune_snapshots: false,
        },
    );
}

#[test]
fn sigkill_at_random_moments_never_loses_acknowledged_events() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    kill_loop(200..=200, 2_000, 25_000, false);
}

/// The same with compactions running in steps between the child's commits, and kills later
/// in its run (so that it compacts). Whether a kill lands inside a compaction depends on the
/// machine's speed: after the first 40 kills, children are killed until one has (at most 400
/// in all).
#[test]
fn sigkill_during_compactions_never_loses_acknowledged_events() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let (acks, interrupted) = kill_loop(40..=400, 60_000, 200_000, true);
    assert!(acks > 1000, "only {acks} acknowledged appends");
    assert!(interrupted > 0, "no kill of 400 interrupted a compaction");
}

/// Kills children after `min + rng % spread` microseconds, as many as the start of `kills`,
/// then more until one interrupted a compaction, at most the end of `kills`;
/// returns the acknowledged appends checked and the compactions found interrupted.
fn kill_loop(
    kills: std::ops::RangeInclusive<usize>,
    min: u64,
    spread: u64,
    compacting: bool,
) -> (u64, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    // The store exists before the first child starts: a child killed before it got as far as
    // creating it would otherwise leave nothing to reopen.
    drop(FileStore::create_with(dir.path(), options(compacting)).expect("create"));
    let seed = 0x5EED_u64;
    let mut rng = seed;
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut acks_total = 0u64;
    let mut torn = 0;
    let mut interrupted_compactions = 0;
    let mut round = 0;
    while round < *kills.start() || (interrupted_compactions == 0 && round < *kills.end()) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = kill::child_process("kill_child");
        child
            .env(CHILD_ENV, dir.path())
            .env(SEED_ENV, (rng % 1000).to_string())
            .env(COMPACT_ENV, if compacting { "1" } else { "" });
        let acks = kill::spawn_and_kill(
            &mut child,
            KillAt::AfterSpawn(Duration::from_micros(min + rng % spread)),
        );
        acks_total += acks.len() as u64;
        kill::note_acks(&mut acked, &acks);
        let mut store = FileStore::open_with(dir.path(), options(compacting))
            .unwrap_or_else(|e| panic!("seed {seed:#x}, kill {round}: reopen failed: {e}"));
        torn += usize::from(store.torn_tail().is_some());
        interrupted_compactions += store
            .repairs()
            .iter()
            .filter(|r| r.what.contains(".log.tmp"))
            .count();
        kill::check_streams(
            &mut store,
            &mut acked,
            &format!("seed {seed:#x}, kill {round}"),
        );
        round += 1;
    }
    // Written to the stderr handle so `cargo test` shows it without `--nocapture`.
    let _ = writeln!(
        std::io::stderr(),
        "kills: {round}, acknowledged appends checked: {acks_total}, torn tails truncated: {torn}, compactions interrupted: {interrupted_compactions}"
    );
    assert!(
        acks_total > 0,
        "the child never got to acknowledge anything"
    );
    (acks_total, interrupted_compactions)
}
