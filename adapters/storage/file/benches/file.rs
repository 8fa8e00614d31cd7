//! Figures of the file journal, printed in one run (`cargo bench -p persevere-file`):
//!
//! 1. raw fdatasync rate of the store's directory (64 B append + fdatasync);
//! 2. one entity persisting sequentially through a `Journal` (one durable persist per execute);
//! 3. 1,000 entities persisting concurrently (every round's appends in one execute);
//! 4. recovery of one stream of 1 M events through a `Journal`;
//! 5. bytes on disk per 64-byte event.
//!
//! Set `PERSEVERE_BENCH_DIR` to measure another file system than the target directory's.

use persevere_conformance::baseline::raw_fdatasync;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use persevere_core::{Entity, Journal, JournalConfig, JournalEvent, Store, StreamCommand};
use persevere_file::FileStore;

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

struct Entry {
    journal: Journal<Account>,
    state: Account,
    stream: Arc<str>,
}

impl Entry {
    fn new(stream: &str, config: JournalConfig) -> Self {
        Self {
            journal: Journal::new(config, Account::default),
            state: Account::default(),
            stream: Arc::from(stream),
        }
    }
}

/// Drives every entry until none has work: each pass sends all the commands polled at that
/// moment to the store as one `execute` (one group commit). Returns the events seen.
fn drive(entries: &mut [Entry], store: &mut FileStore) -> Vec<JournalEvent> {
    let mut seen = Vec::new();
    loop {
        let mut batch = Vec::new();
        let mut owners = Vec::new();
        for (i, e) in entries.iter_mut().enumerate() {
            while let Some(event) = e.journal.poll_event() {
                seen.push(event);
            }
            if let Some(command) = e.journal.poll_command() {
                batch.push(StreamCommand {
                    stream: Arc::clone(&e.stream),
                    command,
                });
                owners.push(i);
            }
        }
        if batch.is_empty() {
            return seen;
        }
        for ((id, result), i) in store.execute(batch).into_iter().zip(owners) {
            let e = &mut entries[i];
            e.journal
                .handle_completion(Duration::ZERO, id, result, &mut e.state)
                .expect("completion");
        }
    }
}

fn bench_dir() -> PathBuf {
    std::env::var_os("PERSEVERE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

fn single_entity(dir: &Path, round: u32, n: u32) -> f64 {
    let name = format!("single-{round}");
    let mut store = FileStore::open_or_create(dir.join(&name)).expect("open");
    let mut entries = vec![Entry::new(&name, JournalConfig::new(name.clone()))];
    drive(&mut entries, &mut store);
    let start = Instant::now();
    for i in 0..n {
        let e = &mut entries[0];
        e.journal
            .handle_persist([i as u8; 40], &mut e.state)
            .expect("persist");
        drive(&mut entries, &mut store);
    }
    let rate = f64::from(n) / start.elapsed().as_secs_f64();
    assert_eq!(entries[0].state.events, u64::from(n));
    rate
}

fn many_entities(dir: &Path, entities: usize, rounds: u32) -> (f64, f64) {
    let mut store = FileStore::open_or_create(dir.join("many")).expect("open");
    let mut entries: Vec<Entry> = (0..entities)
        .map(|i| {
            let name = format!("entity-{i}");
            Entry::new(&name, JournalConfig::new(name.clone()))
        })
        .collect();
    drive(&mut entries, &mut store);
    let before = store.stats();
    let start = Instant::now();
    for round in 0..rounds {
        for e in entries.iter_mut() {
            e.journal
                .handle_persist([round as u8; 40], &mut e.state)
                .expect("persist");
        }
        drive(&mut entries, &mut store);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = store.stats();
    let events = entities as f64 * f64::from(rounds);
    assert!(entries.iter().all(|e| e.state.events == u64::from(rounds)));
    let mean_batch =
        (after.writes - before.writes) as f64 / (after.commits - before.commits) as f64;
    (events / elapsed, mean_batch)
}

fn recovery(dir: &Path, events: u32) -> (f64, f64, f64) {
    let path = dir.join("recovery");
    let config = || {
        JournalConfig::new("big")
            .snapshot_every(None)
            .read_batch(65_536)
    };
    {
        let mut store = FileStore::open_or_create(&path).expect("open");
        let mut entries = vec![Entry::new("big", config())];
        drive(&mut entries, &mut store);
        let chunk = 10_000;
        for c in 0..events / chunk {
            let e = &mut entries[0];
            e.journal
                .handle_persist_all((0..chunk).map(|i| [(c + i) as u8; 40]), &mut e.state)
                .expect("persist");
            drive(&mut entries, &mut store);
        }
        assert_eq!(entries[0].state.events, u64::from(events));
    }
    let start = Instant::now();
    let mut store = FileStore::open(&path).expect("reopen");
    let opened = start.elapsed().as_secs_f64();
    let replay_start = Instant::now();
    let mut entries = vec![Entry::new("big", config())];
    let seen = drive(&mut entries, &mut store);
    let replay = replay_start.elapsed().as_secs_f64();
    assert!(seen.iter().any(
        |e| matches!(e, JournalEvent::Recovered { last_seq, .. } if *last_seq == u64::from(events))
    ));
    assert_eq!(entries[0].state.events, u64::from(events));
    let bytes: u64 = std::fs::read_dir(&path)
        .expect("list")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    (
        f64::from(events) / (opened + replay),
        f64::from(events) / replay,
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
    println!("persevere-file benchmark in {}", dir.display());

    // The disk is shared and noisy: alternate the two measurements and take medians.
    let (mut raws, mut singles, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..7 {
        let raw = raw_fdatasync(dir, 300);
        let single = single_entity(dir, round, 300);
        raws.push(raw);
        singles.push(single);
        ratios.push(single / raw);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (raw, single, ratio) = (median(&mut raws), median(&mut singles), median(&mut ratios));
    println!(
        "raw 64 B append + fdatasync:            {raw:>12.0} /s  (median of 7 alternating rounds)"
    );
    println!(
        "1 entity, sequential durable persists:  {single:>12.0} events/s  (median ratio to raw fdatasync {ratio:.2}; target >= 0.8)"
    );
    let (many, batch) = many_entities(dir, 1_000, 100);
    println!(
        "1,000 entities, concurrent persists:    {many:>12.0} events/s durable (target >= 100,000); mean group-commit batch {batch:.1} writes"
    );
    let (total, replay, per_event) = recovery(dir, 1_000_000);
    println!(
        "recovery of 1 M events (open + replay): {total:>12.0} events/s; replay through the Journal alone {replay:.0} events/s (target >= 3,000,000)"
    );
    println!("bytes on disk per 64-byte event:        {per_event:>12.1}");
}
