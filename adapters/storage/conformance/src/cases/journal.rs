//! Real journals over the store: persist and recover, many at once, racing writers.

use std::sync::{Arc, Mutex};

use persevere_core::{Entity, Journal, JournalConfig, JournalEvent, PersistError, StorageError};

use crate::case::{ensure, ensure_eq, Ctx, Outcome};
use crate::kit::Kit;

/// A sum of increments, and how many there were.
#[derive(Debug, Default, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Tally {
    sum: u64,
    count: u64,
}

impl Entity for Tally {
    type Event = u64;
    type Error = String;

    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.sum = self.sum.checked_add(*n).ok_or("overflow")?;
        self.count += 1;
        Ok(())
    }
}

/// A journal, its state and what it reported.
struct Entry {
    journal: Journal<Tally>,
    state: Tally,
    events: Vec<JournalEvent>,
}

impl Entry {
    fn open(config: JournalConfig) -> Self {
        Self {
            journal: Journal::new(config, Tally::default),
            state: Tally::default(),
            events: Vec::new(),
        }
    }

    fn failure(&self) -> Option<&JournalEvent> {
        self.events.iter().find(|e| {
            matches!(
                e,
                JournalEvent::RecoveryFailed(_)
                    | JournalEvent::PersistFailed { .. }
                    | JournalEvent::Stopped(_)
                    | JournalEvent::SnapshotFailed { .. }
                    | JournalEvent::HousekeepingFailed { .. }
            )
        })
    }
}

/// Drives every journal in lockstep: each round, the command of every journal that has one
/// goes into one batch. Returns the size of each batch.
fn drive(entries: &mut [Entry], kit: &mut Kit) -> Result<Vec<usize>, String> {
    let mut sizes = Vec::new();
    loop {
        let mut streams = Vec::new();
        let mut commands = Vec::new();
        for (index, entry) in entries.iter_mut().enumerate() {
            while let Some(event) = entry.journal.poll_event() {
                entry.events.push(event);
            }
            if let Some(command) = entry.journal.poll_command() {
                streams.push((index, entry.journal.config().stream().to_owned()));
                commands.push(command);
            }
        }
        if commands.is_empty() {
            return Ok(sizes);
        }
        sizes.push(commands.len());
        let ids: Vec<_> = commands.iter().map(|c| c.id()).collect();
        let batch = streams
            .iter()
            .zip(commands)
            .map(|((_, stream), command)| (stream.as_str(), command))
            .collect();
        let results = kit.batch(batch)?;
        for (((index, _), id), result) in streams.iter().zip(ids).zip(results) {
            let entry = &mut entries[*index];
            entry
                .journal
                .handle_completion(std::time::Duration::ZERO, id, result, &mut entry.state)
                .map_err(|e| format!("the journal refused a completion: {e}"))?;
        }
    }
}

fn recovered(kit: &mut Kit, config: JournalConfig) -> Result<Entry, String> {
    let mut entries = vec![Entry::open(config)];
    drive(&mut entries, kit)?;
    let entry = entries.remove(0);
    if let Some(failure) = entry.failure() {
        return Err(format!("recovery failed: {failure:?}"));
    }
    Ok(entry)
}

pub(crate) fn journal_persists_and_recovers(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let config = JournalConfig::new("tally")
        .snapshot_every(Some(3))
        .compact_on_snapshot(true)
        .keep_snapshots(1);
    let mut entries = vec![recovered(&mut kit, config.clone())?];
    for n in 1..=10 {
        let entry = &mut entries[0];
        entry
            .journal
            .handle_persist(n, &mut entry.state)
            .map_err(|e| e.to_string())?;
        drive(&mut entries, &mut kit)?;
    }
    let entry = &mut entries[0];
    entry
        .journal
        .handle_persist_all([5, 5], &mut entry.state)
        .map_err(|e| e.to_string())?;
    drive(&mut entries, &mut kit)?;
    if let Some(failure) = entries[0].failure() {
        return Err(format!("persisting failed: {failure:?}"));
    }
    let again = recovered(&mut kit, config)?;
    ensure_eq!(again.state, Tally { sum: 65, count: 12 }, "recovered state");
    ensure_eq!(again.journal.last_seq(), 12, "recovered last seq");
    ensure_eq!(
        again.journal.snapshot_seq(),
        Some(12),
        "recovered snapshot seq"
    );
    Ok(())
}

pub(crate) fn journals_append_concurrently_in_shared_batches(ctx: &mut Ctx<'_>) -> Outcome {
    const JOURNALS: usize = 16;
    let mut kit = ctx.fresh();
    let config = |i: usize| JournalConfig::new(format!("journal/{i}")).snapshot_every(Some(4));
    let mut entries: Vec<Entry> = (0..JOURNALS).map(|i| Entry::open(config(i))).collect();
    drive(&mut entries, &mut kit)?;
    let mut largest = 0;
    for n in 1..=10 {
        for entry in &mut entries {
            entry
                .journal
                .handle_persist(n, &mut entry.state)
                .map_err(|e| e.to_string())?;
        }
        largest = largest.max(
            drive(&mut entries, &mut kit)?
                .into_iter()
                .max()
                .unwrap_or(0),
        );
    }
    ensure_eq!(largest, JOURNALS, "largest batch");
    for (i, entry) in entries.iter().enumerate() {
        if let Some(failure) = entry.failure() {
            return Err(format!("journal {i}: {failure:?}"));
        }
    }
    for i in 0..JOURNALS {
        let again = recovered(&mut kit, config(i))?;
        ensure_eq!(
            again.state,
            Tally { sum: 55, count: 10 },
            "journal {i} recovered"
        );
        ensure_eq!(
            kit.head(&format!("journal/{i}"))?,
            10,
            "head of journal {i}"
        );
    }
    Ok(())
}

fn lock(kit: &Mutex<Kit>) -> Result<std::sync::MutexGuard<'_, Kit>, String> {
    kit.lock()
        .map_err(|_| "a writer thread panicked".to_owned())
}

pub(crate) fn threads_append_concurrently(ctx: &mut Ctx<'_>) -> Outcome {
    const THREADS: u64 = 4;
    const APPENDS: u64 = 25;
    let kit = Arc::new(Mutex::new(ctx.fresh()));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let kit = Arc::clone(&kit);
            std::thread::spawn(move || -> Result<(), String> {
                let own = format!("thread/{t}");
                for seq in 1..=APPENDS {
                    lock(&kit)?.must_append(&own, seq - 1, seq..=seq)?;
                    // The shared stream: read the head, append after it, retry on conflict
                    // (a bounded number of times: a store that always conflicts is broken).
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        if attempts > 10_000 {
                            return Err("the shared stream never accepted an append".into());
                        }
                        let head = lock(&kit)?.head("shared")?;
                        match lock(&kit)?.append("shared", head, head + 1..=head + 1)? {
                            Ok(_) => break,
                            Err(StorageError::Conflict { .. }) => continue,
                            Err(other) => return Err(format!("shared append: {other}")),
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| "a writer thread panicked".to_owned())??;
    }
    let mut kit = lock(&kit)?;
    for t in 0..THREADS {
        let read = kit.read_all(&format!("thread/{t}"))?;
        ensure_eq!(
            read.seqs(),
            (1..=APPENDS).collect::<Vec<_>>(),
            "events of thread {t}"
        );
    }
    let shared = kit.read_all("shared")?;
    let total = THREADS * APPENDS;
    ensure_eq!(
        shared.seqs(),
        (1..=total).collect::<Vec<_>>(),
        "events of the shared stream"
    );
    ensure_eq!(shared.head, total, "head of the shared stream");
    Ok(())
}

pub(crate) fn stale_writer_never_overwrites(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let config = JournalConfig::new("s");
    let mut entries = vec![Entry::open(config.clone()), Entry::open(config.clone())];
    drive(&mut entries, &mut kit)?;
    let first = &mut entries[0];
    first
        .journal
        .handle_persist(1, &mut first.state)
        .map_err(|e| e.to_string())?;
    drive(&mut entries, &mut kit)?;
    let second = &mut entries[1];
    second
        .journal
        .handle_persist(7, &mut second.state)
        .map_err(|e| e.to_string())?;
    drive(&mut entries, &mut kit)?;
    let conflict = entries[1].events.iter().any(|e| {
        matches!(
            e,
            JournalEvent::PersistFailed {
                error: PersistError::Conflict { .. },
                ..
            }
        )
    });
    ensure!(
        conflict,
        "the stale writer saw no conflict: {:?}",
        entries[1].events
    );
    ensure_eq!(kit.read("s", 1, usize::MAX)?.seqs(), vec![1], "events");
    let again = recovered(&mut kit, config)?;
    ensure_eq!(again.state, Tally { sum: 1, count: 1 }, "recovered state");
    Ok(())
}
