//! A real process appending to a SQLite store is SIGKILLed at random (seeded) moments; after
//! each kill the store is reopened and every event the child reported acknowledged must be
//! there, with the bytes it wrote, and nothing else.
//!
//! The child is this test binary itself, re-run with `SQLITE_KILL_CHILD_DB` set so that only
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
use persevere_sqlite::SqliteStore;

const STREAMS: &[&str] = &["k", "k.1", "k/1", "k_1"];
const CHILD_ENV: &str = "SQLITE_KILL_CHILD_DB";

/// The child's workload; does nothing unless run as the child.
#[test]
fn kill_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var("SQLITE_KILL_CHILD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut store = SqliteStore::open(&path).expect("child open");
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
        if round % 40 == 39 {
            let s = STREAMS[(round / 40) as usize % STREAMS.len()];
            batch.push(StreamCommand {
                stream: Arc::from(s),
                command: Command::DeleteEvents {
                    id: CommandId(0),
                    up_to: heads[s].saturating_sub(50),
                },
            });
            batch.push(StreamCommand {
                stream: Arc::from(s),
                command: Command::DeleteSnapshots {
                    id: CommandId(0),
                    keep: 2,
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
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("killed.db");
    // Created before the first child: every kill interrupts appends, never the creation.
    drop(SqliteStore::create(&path).expect("create"));
    let exe = std::env::current_exe().expect("test binary");
    let seed = 0x5EED_u64;
    let mut rng = seed;
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut acks_total = 0u64;
    let kills = 120;
    for round in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = Process::new(&exe)
            .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .env("SQLITE_KILL_CHILD_SEED", (rng % 1000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        // The kill comes at a random moment after the child's first acknowledged append, so
        // every kill interrupts appends however slow the disk is.
        let (started, appending) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Some(at) = line.find("ack ") else {
                    continue;
                };
                let mut parts = line[at + 4..].split(' ');
                let (Some(stream), Some(Ok(seq))) =
                    (parts.next(), parts.next().map(str::parse::<u64>))
                else {
                    continue;
                };
                if acks.is_empty() {
                    let _ = started.send(());
                }
                acks.push((stream.to_owned(), seq));
            }
            acks
        });
        // Returns at the first ack, or when the child exits without any.
        let _ = appending.recv();
        std::thread::sleep(Duration::from_micros(rng % 20_000));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        for (stream, seq) in reader.join().expect("reader") {
            acks_total += 1;
            let max = acked.entry(stream).or_default();
            *max = (*max).max(seq);
        }
        // The dead child's lock is gone with it: the store opens at once.
        let mut store = SqliteStore::open(&path)
            .unwrap_or_else(|e| panic!("seed {seed:#x}, kill {round}: reopen failed: {e}"));
        for &s in STREAMS {
            let (head, records, snapshots) =
                dump(&mut store, s).unwrap_or_else(|e| panic!("seed {seed:#x}, kill {round}: {e}"));
            let want = acked.get(s).copied().unwrap_or(0);
            assert!(
                head >= want,
                "seed {seed:#x}, kill {round}: {s}: head {head} < acknowledged {want}"
            );
            assert!(
                head <= want + 4,
                "seed {seed:#x}, kill {round}: {s}: head {head} beyond one unacknowledged append after {want}"
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
            for snapshot in &snapshots {
                assert_eq!(
                    snapshot.bytes,
                    format!("snapshot of {s} at {}", snapshot.seq).into_bytes(),
                    "seed {seed:#x}, kill {round}: {s}: garbage snapshot"
                );
            }
            // What the store has is what the next child continues from.
            acked.insert(s.to_owned(), head);
        }
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
