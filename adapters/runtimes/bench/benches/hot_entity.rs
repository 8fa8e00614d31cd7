//! One hot entity with many concurrent callers against as many entities, durable, on one
//! file-journal backend, in blocks interleaved in one run (the disk is shared and noisy):
//!
//! - one entity: 64 tasks persist to one entity through its [`PersistentHandle`] (their
//!   requests coalesced into group appends by the journal);
//! - 64 entities: 64 tasks, each persisting to an entity of its own (group-committed by the
//!   backend).
//!
//! Both run on tokio multi-thread(2) over the same `Backend` (one `FileStore`, one fdatasync
//! per batch). Run with `cargo bench -p persevere-runtime-bench --bench hot_entity`.
//! `PERSEVERE_BENCH_DIR` picks the file system (default: the target directory's);
//! `PERSEVERE_BENCH_ROUNDS` the number of interleaved rounds (default 5),
//! `PERSEVERE_BENCH_PERSISTS` the persists per caller and block (default 40). Medians of the
//! rates and of the per-round ratios are printed.
//!
//! [`PersistentHandle`]: persevere_driver::PersistentHandle

use std::path::PathBuf;
use std::time::Instant;

use persevere_core::{Entity, JournalConfig};
use persevere_driver::{Backend, Persistent};
use persevere_file::FileStore;
use persevere_tokio::Tokio;

const CALLERS: u64 = 64;

#[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Account {
    events: u64,
}

impl Entity for Account {
    type Event = [u8; 40];
    type Error = String;
    fn apply(&mut self, _: &[u8; 40]) -> Result<(), String> {
        self.events += 1;
        Ok(())
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 64 tasks persisting `each` events to one entity; persists per second.
async fn one_entity(backend: &Backend, stream: String, each: u64) -> (f64, f64) {
    let before = backend.stats();
    let account =
        Persistent::<Account>::open(backend, JournalConfig::new(stream), Account::default)
            .await
            .expect("open")
            .into_handle();
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let account = account.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    account
                        .persist([(caller + i) as u8; 40])
                        .await
                        .expect("persist");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("caller task");
    }
    let rate = (CALLERS * each) as f64 / start.elapsed().as_secs_f64();
    assert_eq!(account.read(|a| a.events).await, Ok(CALLERS * each));
    account.close().await;
    let after = backend.stats();
    (
        rate,
        (CALLERS * each) as f64 / batches(before, after) as f64,
    )
}

/// 64 tasks each persisting `each` events to an entity of its own; persists per second.
async fn many_entities(backend: &Backend, round: u64, each: u64) -> (f64, f64) {
    let mut accounts = Vec::new();
    for caller in 0..CALLERS {
        let config = JournalConfig::new(format!("many/{round}/{caller}"));
        accounts.push(
            Persistent::<Account>::open(backend, config, Account::default)
                .await
                .expect("open"),
        );
    }
    let before = backend.stats();
    let start = Instant::now();
    let tasks: Vec<_> = accounts
        .into_iter()
        .enumerate()
        .map(|(caller, mut account)| {
            tokio::spawn(async move {
                for i in 0..each {
                    account
                        .persist([(caller as u64 + i) as u8; 40])
                        .await
                        .expect("persist");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("entity task");
    }
    let rate = (CALLERS * each) as f64 / start.elapsed().as_secs_f64();
    (
        rate,
        (CALLERS * each) as f64 / batches(before, backend.stats()) as f64,
    )
}

/// Batches (fdatasyncs) between two readings.
fn batches(before: persevere_driver::CommitStats, after: persevere_driver::CommitStats) -> u64 {
    (after.batches - before.batches).max(1)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env("PERSEVERE_BENCH_ROUNDS", 5);
    let each = env("PERSEVERE_BENCH_PERSISTS", 40);
    let root = std::env::var_os("PERSEVERE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&root).expect("bench dir");
    let dir = tempfile::tempdir_in(&root).expect("tempdir");
    println!(
        "{CALLERS} concurrent durable persisters in {}: {rounds} interleaved rounds, {each} persists per caller",
        dir.path().display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let path = dir.path().join("store");
    let (ones, manys, ratios, batch) = runtime
        .block_on(async move {
            tokio::spawn(async move {
                let store = FileStore::open_or_create(&path).expect("open");
                let backend = Backend::new(Tokio::current(), store);
                let (mut ones, mut manys, mut ratios, mut batch) =
                    (Vec::new(), Vec::new(), Vec::new(), [Vec::new(), Vec::new()]);
                for round in 0..rounds {
                    let (many, many_batch) = many_entities(&backend, round, each).await;
                    let (one, one_batch) = one_entity(&backend, format!("one/{round}"), each).await;
                    ones.push(one);
                    manys.push(many);
                    ratios.push(one / many);
                    batch[0].push(one_batch);
                    batch[1].push(many_batch);
                }
                (ones, manys, ratios, batch)
            })
            .await
        })
        .expect("bench task");
    let [one_batch, many_batch] = batch;
    println!(
        "one entity, {CALLERS} callers (handle)  {:>10.0} persists/s  ({:.1} persists per fdatasync)",
        median(ones),
        median(one_batch)
    );
    println!(
        "{CALLERS} entities, one caller each      {:>10.0} persists/s  ({:.1} persists per fdatasync)",
        median(manys),
        median(many_batch)
    );
    println!(
        "ratio one entity / {CALLERS} entities    {:>10.2}  (median of the per-round ratios)",
        median(ratios)
    );
}
