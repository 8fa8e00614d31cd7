//! Issue 12's crash scenarios with a real, SIGKILLed child process (this test binary re-run
//! with `KILL_SCENARIO` set, so that only [`scenario_child`] does work):
//!
//! 1. events whose payload holds bytes forming valid frames (of the old format, and of this
//!    one under a guessed store id), killed mid-write: every reopen succeeds;
//! 4. a second opener, after the reflexive `rm LOCK`, is still locked out while the child
//!    runs;
//! 6. the active segment deleted under the running child: it fences instead of acknowledging,
//!    and the reopened store refuses rather than show an empty log.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{dump, hostile_event};
use persevere_core::{
    Command, CommandId, Completion, StorageError, Store, StoredRecord, StreamCommand,
};
use persevere_file::{FileError, FileStore};

const ENV: &str = "KILL_SCENARIO";
const DIR_ENV: &str = "KILL_SCENARIO_DIR";

fn append_one(stream: &str, head: u64, bytes: Vec<u8>) -> StreamCommand {
    StreamCommand {
        stream: Arc::from(stream),
        command: Command::Append {
            id: CommandId(head + 1),
            expected_last: head,
            events: StoredRecord {
                seq: head + 1,
                bytes: bytes.into(),
            }
            .into(),
            snapshot: None,
        },
    }
}

/// The child's work; does nothing unless run as the child.
#[test]
fn scenario_child() {
    let (Ok(scenario), Ok(dir)) = (std::env::var(ENV), std::env::var(DIR_ENV)) else {
        return;
    };
    let mut store = FileStore::open_or_create(&dir).expect("child open");
    let mut head = dump(&mut store, "s").expect("child read").0;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("pipe");
    out.flush().expect("pipe");
    let rounds = if scenario == "forged" { 400 } else { 20_000 };
    for _ in 0..rounds {
        let bytes = match scenario.as_str() {
            "forged" => hostile_event(head + 1),
            _ => format!("event {}", head + 1).into_bytes(),
        };
        let results = store.execute(vec![append_one("s", head, bytes)]);
        match &results[0].1 {
            Ok(Completion::Done) => {
                head += 1;
                writeln!(out, "ack {head}").expect("pipe");
            }
            Err(StorageError::Failed(reason)) => {
                writeln!(out, "fenced {reason}").expect("pipe");
                out.flush().expect("pipe");
                break;
            }
            other => panic!("{other:?}"),
        }
        out.flush().expect("pipe");
    }
    writeln!(out, "done").expect("pipe");
    out.flush().expect("pipe");
    // Wait to be killed.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn spawn(
    scenario: &str,
    dir: &Path,
) -> (Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Process::new(exe)
        .args([
            "--exact",
            "scenario_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV, scenario)
        .env(DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, lines)
}

/// Reads the child's lines until `stop` says so; returns the highest acknowledged seq.
fn read_until(
    lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>,
    mut stop: impl FnMut(&str) -> bool,
) -> u64 {
    let mut acked = 0;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(seq) = line.strip_prefix("ack ").and_then(|s| s.parse().ok()) {
            acked = seq;
        }
        if stop(&line) {
            break;
        }
    }
    acked
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// Scenario 1.
#[test]
fn s01_payload_bytes_that_form_frames_never_brick_the_store_after_a_kill() {
    if std::env::var(ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    drop(FileStore::create(dir.path()).expect("create"));
    let mut rng = 0x5EED_u64;
    let mut acked = 0;
    let (mut cuts, kills) = (0, 25);
    for round in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (child, mut lines) = spawn("forged", dir.path());
        read_until(&mut lines, |l| l.ends_with("ready"));
        let reader = std::thread::spawn(move || read_until(&mut lines, |l| l == "done"));
        std::thread::sleep(Duration::from_micros(1_000 + rng % 20_000));
        kill(child);
        acked = acked.max(reader.join().expect("reader"));
        let mut store = FileStore::open(dir.path())
            .unwrap_or_else(|e| panic!("kill {round}: the store no longer opens: {e}"));
        cuts += usize::from(store.torn_tail().is_some());
        let (head, records, _) = dump(&mut store, "s").expect("dump");
        assert!(
            head >= acked,
            "kill {round}: head {head} < acknowledged {acked}"
        );
        for (r, seq) in records.iter().zip(1..) {
            assert_eq!(r.bytes, hostile_event(seq), "kill {round}: event {seq}");
        }
        acked = head;
    }
    let _ = writeln!(
        std::io::stderr(),
        "hostile payloads: {kills} kills, every reopen succeeded, {cuts} torn tails cut and reported, {acked} events"
    );
}

/// Scenario 4.
#[test]
fn s04_removing_a_lock_file_does_not_let_a_second_writer_in() {
    if std::env::var(ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    drop(FileStore::create(dir.path()).expect("create"));
    // What older versions used, and what an operator removes.
    std::fs::write(dir.path().join("LOCK"), b"").expect("write");
    let (child, mut lines) = spawn("plain", dir.path());
    let acked = read_until(&mut lines, |l| l.starts_with("ack 20"));
    std::fs::remove_file(dir.path().join("LOCK")).expect("rm LOCK");
    match FileStore::open(dir.path()) {
        Err(FileError::Locked { .. }) => {}
        other => panic!("a second opener got in: {other:?}"),
    }
    kill(child);
    let mut store = FileStore::open(dir.path()).expect("open after the child died");
    assert!(dump(&mut store, "s").expect("dump").0 >= acked);
}

/// Scenario 6.
#[test]
fn s06_an_active_segment_deleted_under_a_running_writer_fences_it() {
    if std::env::var(ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    drop(FileStore::create(dir.path()).expect("create"));
    let (child, mut lines) = spawn("plain", dir.path());
    read_until(&mut lines, |l| l.starts_with("ack 20"));
    let active = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .expect("segment");
    std::fs::remove_file(&active).expect("rm segment");
    let mut fenced = false;
    read_until(&mut lines, |l| {
        fenced |= l.starts_with("fenced");
        l == "done"
    });
    kill(child);
    assert!(fenced, "the writer never noticed its segment was gone");
    match FileStore::open(dir.path()) {
        Err(FileError::Missing { file, .. }) => assert_eq!(file, active),
        other => panic!("expected a missing segment, got {other:?}"),
    }
}
