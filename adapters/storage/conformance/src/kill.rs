//! Real process kills during appends (Unix only): a child process appends to a store and
//! reports each acknowledged append; the parent SIGKILLs it at a seeded moment, reopens the
//! store and checks that every acknowledged event is there, with the bytes it wrote, and
//! nothing else.
//!
//! The child is the calling test binary itself, re-run with an environment variable the test
//! chooses, so that only the child's `#[test]` does work: it opens the store and calls
//! [`run_child`]. The parent's test calls [`spawn_and_kill`] for each kill, then
//! [`check_streams`] on the reopened store. Events are [`fixtures::append`]'s, so their bytes
//! are known ([`fixtures::event_bytes`]).
//!
//! ```no_run
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use persevere_conformance::kill::{self, KillAt, Workload};
//!
//! const CHILD_ENV: &str = "MY_KILL_CHILD";
//!
//! /// The child's work (a `#[test]` of its own); does nothing in the parent.
//! fn kill_child() {
//!     let Ok(_dir) = std::env::var(CHILD_ENV) else { return };
//!     let mut store = persevere_core::memory::MemoryStore::new(); // open the real store in `_dir`
//!     kill::run_child(&mut store, 7, Workload::default());
//! }
//!
//! /// The test (a `#[test]`).
//! fn killed_children_lose_nothing() {
//!     if std::env::var(CHILD_ENV).is_ok() {
//!         return;
//!     }
//!     let dir = std::env::temp_dir().join("kill-example");
//!     let mut acked = HashMap::new();
//!     let acks = kill::spawn_and_kill(
//!         kill::child_process("kill_child").env(CHILD_ENV, &dir),
//!         KillAt::AfterFirstAck(Duration::from_millis(5)),
//!     );
//!     kill::note_acks(&mut acked, &acks);
//!     let mut store = persevere_core::memory::MemoryStore::new(); // reopen the real store
//!     kill::check_streams(&mut store, &mut acked, "kill 0");
//! }
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use persevere_core::{Command, CommandId, Completion, Store, StreamCommand};

use crate::fixtures::{self, append, event_bytes};

/// The streams the child appends to: names that differ only by a separator.
pub const STREAMS: &[&str] = &["k", "k.1", "k/1", "k_1"];

/// The most events one append of the child holds: a stream can be at most this far past its
/// last acknowledged event after a kill.
pub const MAX_APPEND: u64 = 4;

/// What the child does besides appending.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Every this many batches, one stream's events below its head − 50 are deleted.
    pub delete_every: u64,
    /// Whether those batches also prune the stream's snapshots to the newest two.
    pub prune_snapshots: bool,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            delete_every: 40,
            prune_snapshots: false,
        }
    }
}

/// The child's loop: seeded batches of appends to [`STREAMS`] (some with a snapshot), with
/// the `workload`'s deletions, each acknowledged by a line `ack <stream> <seq>` on stdout once
/// `execute` returned. Runs until it is killed (or a million batches).
///
/// # Panics
///
/// When the store answers anything but success: the parent sees the child end early.
pub fn run_child(store: &mut dyn Store, seed: u64, workload: Workload) {
    let mut heads: HashMap<&str, u64> = HashMap::new();
    for &s in STREAMS {
        heads.insert(s, fixtures::dump(store, s).expect("child read").0);
    }
    let every = workload.delete_every.max(1);
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
            let n = 1 + (rng >> (20 + i * 2)) % MAX_APPEND;
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
            if workload.prune_snapshots {
                batch.push(StreamCommand {
                    stream: Arc::from(s),
                    command: Command::DeleteSnapshots {
                        id: CommandId(0),
                        keep: 2,
                    },
                });
            }
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

/// The command that runs the calling test binary's `#[test]` named `test` alone, as a child.
/// Add the environment variable that makes it the child.
///
/// # Panics
///
/// When the test binary's path is unknown.
pub fn child_process(test: &str) -> Process {
    let exe = std::env::current_exe().expect("test binary");
    let mut process = Process::new(exe);
    process.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    process
}

/// When the child is killed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum KillAt {
    /// This long after it was started.
    AfterSpawn(Duration),
    /// This long after its first acknowledged append (or when it exits without any), so the
    /// kill interrupts appends however slow the disk is.
    AfterFirstAck(Duration),
}

/// Starts `child`, SIGKILLs it `at` the moment given, reaps it and returns the appends it
/// acknowledged (stream, last seq), in order.
///
/// # Panics
///
/// When the child cannot be started, killed or reaped.
pub fn spawn_and_kill(child: &mut Process, at: KillAt) -> Vec<(String, u64)> {
    let mut child = child
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (started, appending) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Some(at) = line.find("ack ") else {
                continue;
            };
            let mut parts = line[at + 4..].split(' ');
            let (Some(stream), Some(Ok(seq))) = (parts.next(), parts.next().map(str::parse::<u64>))
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
    match at {
        KillAt::AfterSpawn(delay) => std::thread::sleep(delay),
        KillAt::AfterFirstAck(delay) => {
            // Returns at the first ack, or when the child exits without any.
            let _ = appending.recv();
            std::thread::sleep(delay);
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    reader.join().expect("reader")
}

/// Raises each stream's acknowledged head in `acked` to what `acks` acknowledged.
pub fn note_acks(acked: &mut HashMap<String, u64>, acks: &[(String, u64)]) {
    for (stream, seq) in acks {
        let max = acked.entry(stream.clone()).or_default();
        *max = (*max).max(*seq);
    }
}

/// Checks every stream of the reopened `store` against `acked`: its head is at least the
/// acknowledged one and at most one unacknowledged append past it; the events kept are
/// contiguous up to the head, at least the last 50, each with the bytes written; every
/// snapshot has the bytes written. Then sets `acked` to the heads found, which the next child
/// continues from. `context` (seed, kill) prefixes every failure.
///
/// # Panics
///
/// On any difference: that is the test failing.
pub fn check_streams(store: &mut dyn Store, acked: &mut HashMap<String, u64>, context: &str) {
    for &s in STREAMS {
        let (head, records, snapshots) =
            fixtures::dump(store, s).unwrap_or_else(|e| panic!("{context}: {e}"));
        let want = acked.get(s).copied().unwrap_or(0);
        assert!(
            head >= want,
            "{context}: {s}: head {head} < acknowledged {want}"
        );
        assert!(
            head <= want + MAX_APPEND,
            "{context}: {s}: head {head} beyond one unacknowledged append after {want}"
        );
        let first = head + 1 - records.len() as u64;
        assert!(
            records.len() as u64 >= head.min(50),
            "{context}: {s}: only {} events kept below head {head}",
            records.len()
        );
        for (r, seq) in records.iter().zip(first..) {
            assert_eq!(r.seq, seq, "{context}: {s}: gap or duplicate");
            assert_eq!(
                r.bytes,
                event_bytes(s, seq),
                "{context}: {s}: garbage at {seq}"
            );
        }
        for snapshot in &snapshots {
            assert_eq!(
                snapshot.bytes,
                format!("snapshot of {s} at {}", snapshot.seq).into_bytes(),
                "{context}: {s}: garbage snapshot"
            );
        }
        acked.insert(s.to_owned(), head);
    }
}
