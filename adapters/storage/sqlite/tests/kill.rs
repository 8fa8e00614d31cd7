//! A real process appending to a SQLite store is SIGKILLed at random (seeded) moments; after
//! each kill the store is reopened and every event the child reported acknowledged must be
//! there, with the bytes it wrote, and nothing else (the conformance kit's kill harness).
//!
//! The child is this test binary itself, re-run with `SQLITE_KILL_CHILD_DB` set so that only
//! [`kill_child`] does work.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use persevere_conformance::kill::{self, KillAt, Workload};
use persevere_sqlite::SqliteStore;

const CHILD_ENV: &str = "SQLITE_KILL_CHILD_DB";
const SEED_ENV: &str = "SQLITE_KILL_CHILD_SEED";

/// The child's workload; does nothing unless run as the child.
#[test]
fn kill_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut store = SqliteStore::open(&path).expect("child open");
    kill::run_child(
        &mut store,
        seed,
        Workload {
            delete_every: 40,
            prune_snapshots: true,
        },
    );
}

#[test]
fn sigkill_at_random_moments_never_loses_acknowledged_events() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("killed.db");
    // Created before the first child: every kill interrupts appends, never the creation.
    drop(SqliteStore::create(&path).expect("create"));
    let seed = 0x5EED_u64;
    let mut rng = seed;
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut acks_total = 0u64;
    let kills = 120;
    for round in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = kill::child_process("kill_child");
        child
            .env(CHILD_ENV, &path)
            .env(SEED_ENV, (rng % 1000).to_string());
        let acks = kill::spawn_and_kill(
            &mut child,
            KillAt::AfterFirstAck(Duration::from_micros(rng % 20_000)),
        );
        acks_total += acks.len() as u64;
        kill::note_acks(&mut acked, &acks);
        // The dead child's lock is gone with it: the store opens at once.
        let mut store = SqliteStore::open(&path)
            .unwrap_or_else(|e| panic!("seed {seed:#x}, kill {round}: reopen failed: {e}"));
        kill::check_streams(
            &mut store,
            &mut acked,
            &format!("seed {seed:#x}, kill {round}"),
        );
    }
    // Written to the stderr handle so `cargo test` shows it without `--nocapture`.
    let _ = writeln!(
        std::io::stderr(),
        "kills: {kills}, acknowledged appends checked: {acks_total}"
    );
    assert!(
        acks_total > 0,
        "the child never got to acknowledge anything"
    );
}
