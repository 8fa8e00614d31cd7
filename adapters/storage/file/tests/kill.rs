//! A real process persisting to a store is SIGKILLed at random (seeded) moments; after each kill
//! the store is reopened and every event the child reported acknowledged must be there.
//!
//! The child is this test binary itself, re-run with `KILL_CHILD_DIR` set so that only
//! [`kill_child`] does work. It reports `ack <stream> <seq>` on stdout after each `execute`
//! returned.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{append, dump, event_bytes};
use persevere_core::{Command, CommandId, Completion, Store, StreamCommand};
use persevere_file::{FileOptions, FileStore};

const STREAMS: &[&str] = &["k", "k.1", "k/1", "k_1"];
const CHILD_ENV: &str = "KILL_CHILD_DIR";

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
    let seed: u64 = std::env::var("KILL_CHILD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let compacting = std::env::var(COMPACT_ENV).is_ok_and(|v| v == "1");
    // Deletions often enough that compactions keep running.
    let every = if compacting { 4 } else { 40 };
    let mut store = FileStore::open_or_create_with(&dir, options(compacting)).expect("child open");
    let mut heads: HashMap<&str, u64> = HashMap::new();
    for &s in STREAMS {
        heads.insert(s, dump(&mut store, s).expect("child read").0);
    }
    let mut rng = seed | 1;
    let mut out = std::io::stdout().lock();
    for round in 0u64..1_000_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut batch = Vec::new();
        let mut appended = Vec::new();
        for (i, &s) in STREAMS.iter().enumerate() {
            if (rng >> (i * 3)) & 1 == 0 {
                continue;
            }
            let head = heads[s];
            let n = 1 + (rng >> (20 + i * 2)) % 4;
            batch.push(append(s, head, n, (rng >> 40) % 5 == 0));
            appended.push((s, head + n));
        }
        if round % every == every - 1 {
            let s = STREAMS[(round / every) as usize % STREAMS.len()];
            batch.push(StreamCommand {
                stream: Arc::from(s),
                command: Command::DeleteEvents {
                    id: CommandId(0),
                    up_to: heads[s].saturating_sub(50),
                },
            });
        }
        let results = store.execute(batch);
        assert!(
            results.iter().all(|(_, r)| r == &Ok(Completion::Done)),
            "{results:?}"
        );
        for (s, last) in appended {
            heads.insert(s, last);
            writeln!(out, "ack {s} {last}").expect("pipe");
        }
        out.flush().expect("pipe");
    }
}

#[test]
fn sigkill_at_random_moments_never_loses_acknowledged_events() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    kill_loop(200, 2_000, 25_000, false);
}

/// The same with compactions running in steps between the child's commits, and kills later
/// in its run (so that it compacts).
#[test]
fn sigkill_during_compactions_never_loses_acknowledged_events() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let (acks, interrupted) = kill_loop(40, 60_000, 200_000, true);
    assert!(acks > 1000, "only {acks} acknowledged appends");
    assert!(interrupted > 0, "no kill interrupted a compaction");
}

/// Kills `kills` children after `min + rng % spread` microseconds; returns the acknowledged
/// appends checked and the compactions found interrupted.
fn kill_loop(kills: usize, min: u64, spread: u64, compacting: bool) -> (u64, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let seed = 0x5EED_u64;
    let mut rng = seed;
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut acks_total = 0u64;
    let mut torn = 0;
    let mut interrupted_compactions = 0;
    for round in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = Process::new(&exe)
            .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("KILL_CHILD_SEED", (rng % 1000).to_string())
            .env(COMPACT_ENV, if compacting { "1" } else { "" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| {
                    let mut parts = line.strip_prefix("ack ")?.split(' ');
                    let stream = parts.next()?.to_owned();
                    let seq = parts.next()?.parse::<u64>().ok()?;
                    Some((stream, seq))
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_micros(min + rng % spread));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        for (stream, seq) in reader.join().expect("reader") {
            acks_total += 1;
            let max = acked.entry(stream).or_default();
            *max = (*max).max(seq);
        }
        let mut store = FileStore::open_with(dir.path(), options(compacting))
            .unwrap_or_else(|e| panic!("seed {seed:#x}, kill {round}: reopen failed: {e}"));
        torn += usize::from(store.torn_tail().is_some());
        interrupted_compactions += store
            .repairs()
            .iter()
            .filter(|r| r.what.contains(".log.tmp"))
            .count();
        for &s in STREAMS {
            let (head, records, _) =
                dump(&mut store, s).unwrap_or_else(|e| panic!("seed {seed:#x}, kill {round}: {e}"));
            let want = acked.get(s).copied().unwrap_or(0);
            assert!(
                head >= want,
                "seed {seed:#x}, kill {round}: {s}: head {head} < acknowledged {want}"
            );
            let first = head + 1 - records.len() as u64;
            assert!(
                records.len() as u64 >= head.min(50),
                "seed {seed:#x}, kill {round}: {s}: only {} events kept below head {head}",
                records.len()
            );
            for (r, seq) in records.iter().zip(first..) {
                assert_eq!(
                    r.seq, seq,
                    "seed {seed:#x}, kill {round}: {s}: gap or duplicate"
                );
                assert_eq!(
                    r.bytes,
                    event_bytes(s, seq),
                    "seed {seed:#x}, kill {round}: {s}: garbage at {seq}"
                );
            }
            // What the store has is what the next child continues from.
            acked.insert(s.to_owned(), head);
        }
    }
    // Written to the stderr handle so `cargo test` shows it without `--nocapture`.
    let _ = writeln!(
        std::io::stderr(),
        "kills: {kills}, acknowledged appends checked: {acks_total}, torn tails truncated: {torn}, compactions interrupted: {interrupted_compactions}"
    );
    assert!(
        acks_total > 0,
        "the child never got to acknowledge anything"
    );
    (acks_total, interrupted_compactions)
}
