//! Figures of the SQLite store, printed in one run (`cargo bench -p persevere-sqlite`):
//!
//! 1. sequential durable appends (`synchronous=FULL`), one operation of each kind in turn so
//!    that all see the same disk (its sync rate swings within seconds here): raw fdatasync of
//!    the database's directory (a 64 B append + fdatasync, the baseline of every ratio); one
//!    stream appending to the store directly (`Store::execute`, no driver); the same with the
//!    write-ahead log grown at each commit (`WalGrowth::AtCommit`); one entity persisting
//!    through the driver (tokio, blocking pool) and over a backend with the opt-in
//!    `Execution::Direct` (an idle backend's command runs in the calling task); raw appends
//!    of 8,240 B + fdatasync, the bytes of two log frames, growing the file (what a commit
//!    that extends the log syncs) and inside a file already allocated (what a commit syncs
//!    now); and one stream with no sync per commit (`Durability::ProcessCrashOnly`), the
//!    store's own cost. Each a median of rounds on new databases and files, its ratio the
//!    median of the rounds' ratios to raw fdatasync; and the time to create a store, with the
//!    log's pass written at open (`WalGrowth::Reserved`) and without (`WalGrowth::AtCommit`);
//! 2. 1,000 streams appending concurrently: to the store directly (batches of one append per
//!    stream, durable and with no sync per commit, the store's ceiling) and 1,000 entities
//!    through the driver (group commit: one transaction per batch);
//! 3. replay of one stream of 1 M events through the driver (`Persistent::open`), and read
//!    from the store directly.
//!
//! Environment: `PERSEVERE_BENCH_DIR` measures another file system than the target
//! directory's; `PERSEVERE_BENCH_ROUNDS` (default 7) and `PERSEVERE_BENCH_APPENDS` (default
//! 300) size the sequential rounds; `PERSEVERE_BENCH_SEQUENTIAL_ONLY=1` stops after them.

use persevere_conformance::baseline::{RawAppend, RECORD};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use persevere_core::{
    Command, CommandId, Completion, Entity, JournalConfig, Store, StoredRecord, StreamCommand,
};
use persevere_driver::{Backend, Execution, Persistent};
use persevere_sqlite::{Durability, OpenMode, SqliteOptions, SqliteStore, WalGrowth};
use persevere_tokio::Tokio;

/// 40 payload bytes: with the record envelope's 24, a 64-byte event record.
type Payload = [u8; 40];

#[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Account {
    events: u64,
    sum: u64,
}

impl Entity for Account {
    type Event = Payload;
    type Error = String;
    fn apply(&mut self, event: &Payload) -> Result<(), String> {
        self.events += 1;
        self.sum += u64::from(event[0]);
        Ok(())
    }
}

fn bench_dir() -> PathBuf {
    std::env::var_os("PERSEVERE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A 64-byte event record, like the driver's for a 40-byte payload.
fn record(seq: u64) -> StoredRecord {
    StoredRecord {
        seq,
        bytes: vec![seq as u8; 64].into(),
    }
}

fn append(stream: &Arc<str>, seq: u64) -> StreamCommand {
    StreamCommand {
        stream: stream.clone(),
        command: Command::Append {
            id: CommandId(seq),
            expected_last: seq - 1,
            events: record(seq).into(),
            snapshot: None,
        },
    }
}

/// One stream appending sequentially to the store directly.
struct Direct {
    store: SqliteStore,
    stream: Arc<str>,
    seq: u64,
}

impl Direct {
    /// [`create`](Self::create) with durable commits, its time in milliseconds pushed to `opens`.
    fn timed_create(path: &Path, wal_growth: WalGrowth, opens: &mut Vec<f64>) -> Self {
        let start = Instant::now();
        let store = Self::create(path, wal_growth, Durability::Full);
        opens.push(start.elapsed().as_secs_f64() * 1e3);
        store
    }

    fn create(path: &Path, wal_growth: WalGrowth, durability: Durability) -> Self {
        let mut options = SqliteOptions::default();
        options.mode = OpenMode::Create;
        options.wal_growth = wal_growth;
        options.durability = durability;
        Self {
            store: SqliteStore::open_with(path, options).expect("create"),
            stream: Arc::from("single"),
            seq: 0,
        }
    }

    /// One durable append; how long it took.
    fn append(&mut self) -> Duration {
        self.seq += 1;
        let start = Instant::now();
        let results = self.store.execute(vec![append(&self.stream, self.seq)]);
        let took = start.elapsed();
        assert_eq!(results[0].1, Ok(Completion::Done));
        took
    }
}

/// One entity persisting sequentially through the driver.
struct Single {
    _backend: Backend,
    account: Persistent<Account>,
    persisted: u64,
}

impl Single {
    fn create(rt: &tokio::runtime::Runtime, path: &Path, execution: Execution) -> Self {
        let backend = Backend::with_execution(
            Tokio::from_handle(rt.handle().clone()),
            SqliteStore::create(path).expect("create"),
            execution,
        );
        let account = rt.block_on(open(&backend, JournalConfig::new("single")));
        Self {
            _backend: backend,
            account,
            persisted: 0,
        }
    }

    /// One durable persist; how long it took.
    fn persist(&mut self, rt: &tokio::runtime::Runtime) -> Duration {
        let start = Instant::now();
        rt.block_on(self.account.persist([self.persisted as u8; 40]))
            .expect("persist");
        let took = start.elapsed();
        self.persisted += 1;
        assert_eq!(
            self.account.state().expect("settled").events,
            self.persisted
        );
        took
    }
}

/// The sequential figures: each kind's rate and ratio to raw fdatasync in each round.
#[derive(Default)]
struct Sequential {
    rates: Vec<Vec<f64>>,
    ratios: Vec<Vec<f64>>,
    /// Milliseconds to create a store: with the log reserved, and grown at commit.
    opens: [Vec<f64>; 2],
}

/// The kinds of sequential operation, in the order they are printed.
const RAW: usize = 0;
const DIRECT: usize = 1;
const DIRECT_GROWING: usize = 2;
const BLOCKING: usize = 3;
const IN_PLACE: usize = 4;
const RAW_FRAMES: usize = 5;
const NO_SYNC: usize = 6;
const RAW_FRAMES_INSIDE: usize = 7;
const KINDS: usize = 8;

/// `rounds` rounds of `n` operations of each kind, one of each in turn (the first kind
/// rotating), each round on new databases and files.
fn sequential(rt: &tokio::runtime::Runtime, dir: &Path, rounds: u32, n: u32) -> Sequential {
    let mut figures = Sequential {
        rates: vec![Vec::new(); KINDS],
        ratios: vec![Vec::new(); KINDS],
        opens: [Vec::new(), Vec::new()],
    };
    for round in 0..rounds {
        let mut raw = RawAppend::create(dir, "raw.bin", RECORD);
        let mut raw_frames = RawAppend::create(dir, "raw-frames.bin", 2 * (4096 + 24));
        let mut raw_frames_inside =
            RawAppend::preallocated(dir, "raw-frames-inside.bin", 2 * (4096 + 24), n.into());
        let [reserved_opens, growing_opens] = &mut figures.opens;
        let mut direct = Direct::timed_create(
            &dir.join(format!("direct-{round}.db")),
            WalGrowth::Reserved,
            reserved_opens,
        );
        let mut growing = Direct::timed_create(
            &dir.join(format!("growing-{round}.db")),
            WalGrowth::AtCommit,
            growing_opens,
        );
        let mut no_sync = Direct::create(
            &dir.join(format!("no-sync-{round}.db")),
            WalGrowth::Reserved,
            Durability::ProcessCrashOnly,
        );
        let mut blocking = Single::create(
            rt,
            &dir.join(format!("single-{round}.db")),
            Execution::Blocking,
        );
        let mut in_place = Single::create(
            rt,
            &dir.join(format!("in-place-{round}.db")),
            Execution::Direct,
        );
        let mut took = [Duration::ZERO; KINDS];
        for i in 0..n as usize {
            for k in 0..KINDS {
                let kind = (i + k) % KINDS;
                took[kind] += match kind {
                    RAW => raw.append(),
                    DIRECT => direct.append(),
                    DIRECT_GROWING => growing.append(),
                    BLOCKING => blocking.persist(rt),
                    IN_PLACE => in_place.persist(rt),
                    NO_SYNC => no_sync.append(),
                    RAW_FRAMES_INSIDE => raw_frames_inside.append(),
                    _ => raw_frames.append(),
                };
            }
        }
        for kind in 0..KINDS {
            figures.rates[kind].push(f64::from(n) / took[kind].as_secs_f64());
            figures.ratios[kind].push(took[RAW].as_secs_f64() / took[kind].as_secs_f64());
        }
    }
    figures
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn many_direct(dir: &Path, durability: Durability, streams: u64, rounds: u64) -> f64 {
    let mut options = SqliteOptions::default();
    options.mode = OpenMode::Create;
    options.durability = durability;
    let path = dir.join(format!("many-direct-{durability:?}.db"));
    let mut store = SqliteStore::open_with(&path, options).expect("create");
    appends(&mut store, streams, rounds)
}

/// `rounds` batches of one append to each of `streams` streams; events per second.
fn appends(store: &mut SqliteStore, streams: u64, rounds: u64) -> f64 {
    let names: Vec<Arc<str>> = (0..streams)
        .map(|i| Arc::from(format!("entity-{i}")))
        .collect();
    let start = Instant::now();
    for seq in 1..=rounds {
        let batch = names.iter().map(|s| append(s, seq)).collect();
        let results = store.execute(batch);
        assert!(results.iter().all(|r| r.1 == Ok(Completion::Done)));
    }
    (streams * rounds) as f64 / start.elapsed().as_secs_f64()
}

/// Bytes of write-ahead log per event (the pages a transaction dirties), with no checkpoint.
fn wal_per_event(dir: &Path, streams: u64, rounds: u64) -> f64 {
    let mut options = SqliteOptions::default();
    options.mode = OpenMode::Create;
    options.durability = Durability::ProcessCrashOnly;
    options.checkpoint_pages = 0;
    let path = dir.join(format!("wal-{streams}.db"));
    let mut store = SqliteStore::open_with(&path, options).expect("create");
    let wal = |path: &Path| {
        let mut name = path.as_os_str().to_owned();
        name.push("-wal");
        std::fs::metadata(PathBuf::from(name)).map_or(0, |m| m.len())
    };
    let before = wal(&path);
    appends(&mut store, streams, rounds);
    wal(&path).saturating_sub(before) as f64 / (streams * rounds) as f64
}

async fn open(backend: &Backend, config: JournalConfig) -> Persistent<Account> {
    Persistent::open(backend, config, Account::default)
        .await
        .expect("opens")
}

fn many_entities(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    entities: u64,
    rounds: u32,
) -> (f64, f64) {
    let backend = Backend::new(
        Tokio::from_handle(rt.handle().clone()),
        SqliteStore::create(dir.join("many.db")).expect("create"),
    );
    rt.block_on(async {
        let mut accounts = Vec::new();
        for i in 0..entities {
            accounts.push(open(&backend, JournalConfig::new(format!("entity-{i}"))).await);
        }
        let before = backend.stats();
        let start = Instant::now();
        let tasks: Vec<_> = accounts
            .into_iter()
            .map(|mut account| {
                tokio::spawn(async move {
                    for round in 0..rounds {
                        account.persist([round as u8; 40]).await.expect("persist");
                    }
                    account.state().expect("settled").events
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("task"), u64::from(rounds));
        }
        let elapsed = start.elapsed().as_secs_f64();
        let after = backend.stats();
        let mean =
            (after.commands - before.commands) as f64 / (after.batches - before.batches) as f64;
        (entities as f64 * f64::from(rounds) / elapsed, mean)
    })
}

/// Opens the store at `path` once the previous backend's store, closing on the blocking pool,
/// has released its lock.
fn reopen(path: &Path) -> SqliteStore {
    loop {
        match SqliteStore::open(path) {
            Err(persevere_sqlite::SqliteError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            other => break other.expect("reopen"),
        }
    }
}

/// Reads every event of stream `big` from the store directly, in pages of 65,536.
fn replay_direct(path: &Path, events: u32) -> f64 {
    let mut store = reopen(path);
    let stream: Arc<str> = Arc::from("big");
    let (mut from, mut read) = (1, 0u64);
    let start = Instant::now();
    loop {
        let results = store.execute(vec![StreamCommand {
            stream: stream.clone(),
            command: Command::ReadEvents {
                id: CommandId(from),
                from,
                limit: 65_536,
            },
        }]);
        let Ok(Completion::Events { records, .. }) = &results[0].1 else {
            panic!("read: {results:?}");
        };
        let Some(last) = records.last() else { break };
        read += records.len() as u64;
        from = last.seq + 1;
    }
    assert_eq!(read, u64::from(events));
    f64::from(events) / start.elapsed().as_secs_f64()
}

fn replay(rt: &tokio::runtime::Runtime, dir: &Path, events: u32) -> (f64, f64, f64) {
    let path = dir.join("replay.db");
    let config = || {
        JournalConfig::new("big")
            .snapshot_every(None)
            .read_batch(65_536)
    };
    {
        let backend = Backend::new(
            Tokio::from_handle(rt.handle().clone()),
            SqliteStore::create(&path).expect("create"),
        );
        rt.block_on(async {
            let mut account = open(&backend, config()).await;
            let chunk = 10_000;
            for c in 0..events / chunk {
                account
                    .persist_all((0..chunk).map(|i| [(c + i) as u8; 40]))
                    .await
                    .expect("persist");
            }
        });
    }
    let store = reopen(&path);
    let backend = Backend::new(Tokio::from_handle(rt.handle().clone()), store);
    let start = Instant::now();
    let account = rt.block_on(open(&backend, config()));
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(account.state().expect("settled").events, u64::from(events));
    let bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).ok()
        })
        .map(|m| m.len())
        .sum();
    drop(account);
    drop(backend);
    (
        f64::from(events) / elapsed,
        replay_direct(&path, events),
        bytes as f64 / f64::from(events),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = bench_dir();
    std::fs::create_dir_all(&root).expect("bench dir");
    let dir = tempfile::tempdir_in(&root).expect("tempdir");
    let dir = dir.path();
    println!("persevere-sqlite benchmark in {}", dir.display());
    let rt = runtime();

    // The disk is shared and noisy: one operation of each kind in turn, medians of rounds.
    let rounds = env_u32("PERSEVERE_BENCH_ROUNDS", 7).max(1);
    let n = env_u32("PERSEVERE_BENCH_APPENDS", 300).max(1);
    let Sequential {
        rates,
        ratios,
        opens,
    } = sequential(&rt, dir, rounds, n);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let range = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{min:.2}-{max:.2}")
    };
    let rate = |kind: usize| median(&rates[kind]);
    let ratio = |kind: usize| {
        format!(
            "median ratio to raw fdatasync {:.2}, rounds {}",
            median(&ratios[kind]),
            range(&ratios[kind])
        )
    };
    println!(
        "raw 64 B append + fdatasync:              {:>10.0} /s  (median of {rounds} rounds of {n}, one operation of each kind in turn)",
        rate(RAW)
    );
    println!(
        "1 stream, sequential durable appends:     {:>10.0} events/s to the store directly ({}; target >= 0.8)",
        rate(DIRECT),
        ratio(DIRECT)
    );
    println!(
        "  the same, log grown at commit:          {:>10.0} events/s (SQLite extends the log at each commit; {})",
        rate(DIRECT_GROWING),
        ratio(DIRECT_GROWING)
    );
    println!(
        "1 entity, sequential durable persists:    {:>10.0} events/s through the driver ({}; target >= 0.8)",
        rate(BLOCKING),
        ratio(BLOCKING)
    );
    println!(
        "1 entity, Execution::Direct (opt-in):     {:>10.0} events/s through the driver, an idle backend's command run in the calling task ({})",
        rate(IN_PLACE),
        ratio(IN_PLACE)
    );
    println!(
        "raw 8,240 B append + fdatasync:           {:>10.0} /s  (two log frames' bytes, growing the file at each sync; {})",
        rate(RAW_FRAMES),
        ratio(RAW_FRAMES)
    );
    println!(
        "raw 8,240 B written inside + fdatasync:   {:>10.0} /s  (the same bytes inside a file already allocated, what a commit syncs now; {})",
        rate(RAW_FRAMES_INSIDE),
        ratio(RAW_FRAMES_INSIDE)
    );
    println!(
        "1 stream, no sync per commit:             {:>10.0} events/s to the store directly (ProcessCrashOnly: the store's own cost, {:.0} µs a commit)",
        rate(NO_SYNC),
        1e6 / rate(NO_SYNC)
    );
    println!(
        "create a store:                           {:>10.1} ms with the log reserved ({} ms over the rounds); {:.1} ms with it grown at commit",
        median(&opens[0]),
        range(&opens[0]),
        median(&opens[1])
    );
    if std::env::var_os("PERSEVERE_BENCH_SEQUENTIAL_ONLY").is_some() {
        return;
    }
    let relaxed = many_direct(dir, Durability::ProcessCrashOnly, 1_000, 100);
    let direct = many_direct(dir, Durability::Full, 1_000, 100);
    println!(
        "1,000 streams, batches of 1,000 appends:  {direct:>10.0} events/s durable to the store directly; {relaxed:.0} with no sync per commit (ratio {:.2})",
        direct / relaxed
    );
    println!(
        "write-ahead log per event:                {:>10.0} bytes, one-event transactions; {:.0} bytes, batches of 1,000 streams (4 KiB pages)",
        wal_per_event(dir, 1, 2_000),
        wal_per_event(dir, 1_000, 100)
    );
    let (many, batch) = many_entities(&rt, dir, 1_000, 100);
    println!(
        "1,000 entities, concurrent persists:      {many:>10.0} events/s durable through the driver (target >= 100,000; ratio to the store directly {:.2}); mean group-commit batch {batch:.1} commands",
        many / direct
    );
    let (replayed, direct, per_event) = replay(&rt, dir, 1_000_000);
    println!(
        "replay of 1 M events (Persistent::open):  {replayed:>10.0} events/s (target >= 2,000,000); {direct:.0} reading the store directly; {per_event:.1} bytes on disk per 64-byte event"
    );
}
