//! One entity's durable persists through the driver, against the raw fdatasync rate of the
//! same directory. The disk is shared and its sync rate swings from one second to the next, so
//! every block interleaves the two one operation at a time — a raw append, then a persist — and
//! its ratio is the raw appends' time over the persists' time; blocks of each kind are
//! interleaved in rounds:
//!
//! - raw: a 64 B `pwrite` + `fdatasync` appending to a scratch file
//!   (`persevere_conformance::baseline::RawAppend`);
//! - journal: the core `Journal` driven directly over a `FileStore` (no executor);
//! - driver (default): `Persistent::persist().await` from a tokio task (multi-thread, and
//!   current-thread) over a backend with the default `Execution::InPlace` — what users run: a
//!   command that finds the backend idle runs on the submitting thread through tokio's
//!   `block_in_place` on the multi-thread runtime, and on the blocking pool on the
//!   current-thread one;
//! - driver Blocking: the same with every command on the blocking pool (`Execution::Blocking`);
//! - driver Direct: the same over a backend with `Execution::Direct` (opt-in: a command that
//!   finds the backend idle runs in the submitting task, blocking its worker for the sync).
//!
//! Run with `cargo bench -p persevere-runtime-bench --bench durable`. `PERSEVERE_BENCH_DIR`
//! picks the file system (default: the target directory's); `PERSEVERE_BENCH_ROUNDS` the
//! number of interleaved rounds (default 7) and `PERSEVERE_BENCH_PERSISTS` the persists per
//! block (default 300). Medians of rates and of per-block ratios are printed.

use persevere_conformance::baseline::{RawAppend, RECORD};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use persevere_core::{Entity, Journal, JournalConfig, Store, StreamCommand};
use persevere_driver::{Backend, Execution, Persistent};
use persevere_file::FileStore;
use persevere_tokio::Tokio;

/// 40 payload bytes: with the record envelope's 24, a 64-byte event record.
type Payload = [u8; 40];

#[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Account {
    events: u64,
}

impl Entity for Account {
    type Event = Payload;
    type Error = String;
    fn apply(&mut self, _: &Payload) -> Result<(), String> {
        self.events += 1;
        Ok(())
    }
}

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `Journal` driven directly: each persist is one `execute` (one fdatasync).
fn journal_direct(dir: &Path, name: &str, n: u32) -> Block {
    let mut store = FileStore::open_or_create(dir.join(name)).expect("open");
    let mut journal = Journal::<Account>::new(JournalConfig::new(name), Account::default);
    let mut state = Account::default();
    let stream: Arc<str> = name.into();
    let mut drive = |journal: &mut Journal<Account>, state: &mut Account| loop {
        while journal.poll_event().is_some() {}
        let Some(command) = journal.poll_command() else {
            return;
        };
        let batch = vec![StreamCommand {
            stream: Arc::clone(&stream),
            command,
        }];
        for (id, result) in store.execute(batch) {
            journal
                .handle_completion(Duration::ZERO, id, result, state)
                .expect("completion");
        }
    };
    drive(&mut journal, &mut state);
    let mut raw = RawAppend::create(dir, &format!("{name}.raw"), RECORD);
    let mut block = Block::default();
    for i in 0..n {
        block.raw += raw.append();
        let start = Instant::now();
        journal
            .handle_persist([i as u8; 40], &mut state)
            .expect("persist");
        drive(&mut journal, &mut state);
        block.persists += start.elapsed();
    }
    assert_eq!(state.events, u64::from(n));
    block
}

/// `Persistent::persist().await` in a tokio task over a file-store backend run as `execution` says.
fn driver(dir: &Path, name: &str, n: u32, multi: bool, execution: Execution) -> Block {
    let runtime = if multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let path = dir.join(name);
    let dir = dir.to_owned();
    let name = name.to_owned();
    let task = async move {
        let store = FileStore::open_or_create(&path).expect("open");
        let backend = Backend::with_execution(Tokio::current(), store, execution);
        let mut account =
            Persistent::<Account>::open(&backend, JournalConfig::new(&*name), Account::default)
                .await
                .expect("open");
        let mut raw = RawAppend::create(&dir, &format!("{name}.raw"), RECORD);
        let mut block = Block::default();
        for i in 0..n {
            block.raw += raw.append();
            let start = Instant::now();
            account.persist([i as u8; 40]).await.expect("persist");
            block.persists += start.elapsed();
        }
        assert_eq!(account.state().expect("settled").events, u64::from(n));
        block
    };
    // From a spawned task, as an actor would, not from `block_on`'s own future.
    runtime
        .block_on(async { tokio::spawn(task).await })
        .expect("task")
}

/// One block: the time its persists took, and the time the raw appends interleaved with them
/// (one before each persist) took.
#[derive(Default)]
struct Block {
    persists: Duration,
    raw: Duration,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench_dir() -> PathBuf {
    std::env::var_os("PERSEVERE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env("PERSEVERE_BENCH_ROUNDS", 7);
    let n = env("PERSEVERE_BENCH_PERSISTS", 300);
    let root = bench_dir();
    std::fs::create_dir_all(&root).expect("bench dir");
    let dir = tempfile::tempdir_in(&root).expect("tempdir");
    let dir = dir.path();
    println!(
        "durable persists in {}: {rounds} interleaved rounds of {n} per block",
        dir.display()
    );

    type Run = (&'static str, Box<dyn Fn(&Path, &str) -> Block>);
    let blocks: Vec<Run> = vec![
        (
            "Journal driven directly",
            Box::new(move |d, s| journal_direct(d, s, n)),
        ),
        (
            "driver (default), tokio multi-thread(2)",
            Box::new(move |d, s| driver(d, s, n, true, Execution::InPlace)),
        ),
        (
            "driver (default), tokio current-thread",
            Box::new(move |d, s| driver(d, s, n, false, Execution::InPlace)),
        ),
        (
            "driver Blocking, tokio multi-thread(2)",
            Box::new(move |d, s| driver(d, s, n, true, Execution::Blocking)),
        ),
        (
            "driver Direct, tokio current-thread",
            Box::new(move |d, s| driver(d, s, n, false, Execution::Direct)),
        ),
        (
            "driver Direct, tokio multi-thread(2)",
            Box::new(move |d, s| driver(d, s, n, true, Execution::Direct)),
        ),
    ];
    let mut raws = Vec::new();
    let mut rates = vec![Vec::new(); blocks.len()];
    let mut ratios = vec![Vec::new(); blocks.len()];
    for round in 0..rounds {
        for (i, (_, run)) in blocks.iter().enumerate() {
            let block = run(dir, &format!("s{round}-{i}"));
            raws.push(f64::from(n) / block.raw.as_secs_f64());
            rates[i].push(f64::from(n) / block.persists.as_secs_f64());
            ratios[i].push(block.raw.as_secs_f64() / block.persists.as_secs_f64());
        }
    }
    println!(
        "{:<42} {:>10.0} /s",
        "raw 64 B pwrite + fdatasync (interleaved)",
        median(raws)
    );
    for (i, (name, _)) in blocks.iter().enumerate() {
        println!(
            "{name:<42} {:>10.0} persists/s  (median ratio to the raw appends interleaved with it {:.2})",
            median(rates[i].clone()),
            median(ratios[i].clone())
        );
    }
}
