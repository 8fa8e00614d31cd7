#![allow(missing_docs)] // criterion's macros generate undocumented functions
//! The core's hot paths, with no IO: one persist transition (handle_persist, poll_command,
//! handle_completion, poll_event) without a codec and with borsh, replay throughput through
//! recovery, and pipelined persists: one journal with N requests queued per drain behind the
//! append in flight, against the in-memory store, coalesced (the default cap) or not (a cap of
//! one request per append). It prints the appends per drain first; criterion gives events/s.
//!
//! Run with `cargo bench -p persevere-core --bench journal`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use borsh::{BorshDeserialize, BorshSerialize};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use persevere_core::memory::MemoryStore;
use persevere_core::{
    Borsh, Codec, CodecError, Command, Completion, Entity, Journal, JournalConfig, JournalEvent,
    StoredRecord,
};

/// A codec that costs next to nothing: an event is its 8 little-endian bytes.
struct Raw;

impl Codec<u64> for Raw {
    const ID: u8 = 200;
    fn encode(value: &u64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn decode(bytes: &[u8]) -> Result<u64, CodecError> {
        let bytes: [u8; 8] = bytes.try_into().map_err(CodecError::new)?;
        Ok(u64::from_le_bytes(bytes))
    }
}

#[derive(Default)]
struct Sum(u64);

impl Entity for Sum {
    type Event = u64;
    type Error = &'static str;
    fn apply(&mut self, n: &u64) -> Result<(), &'static str> {
        self.0 = self.0.wrapping_add(*n);
        Ok(())
    }
}

impl Codec<Sum> for Raw {
    const ID: u8 = 200;
    fn encode(value: &Sum, out: &mut Vec<u8>) -> Result<(), CodecError> {
        <Raw as Codec<u64>>::encode(&value.0, out)
    }
    fn decode(bytes: &[u8]) -> Result<Sum, CodecError> {
        <Raw as Codec<u64>>::decode(bytes).map(Sum)
    }
}

/// A 64-byte event (as borsh encodes it).
#[derive(Clone, BorshSerialize, BorshDeserialize)]
struct Transfer {
    from: u64,
    to: u64,
    amount: i64,
    memo: [u8; 40],
}

#[derive(Default, BorshSerialize, BorshDeserialize)]
struct Balances {
    moved: i64,
    transfers: u64,
}

impl Entity for Balances {
    type Event = Transfer;
    type Error = &'static str;
    fn apply(&mut self, t: &Transfer) -> Result<(), &'static str> {
        self.moved = self.moved.wrapping_add(t.amount);
        self.transfers += 1;
        Ok(())
    }
}

fn transfer(i: u64) -> Transfer {
    Transfer {
        from: i,
        to: i + 1,
        amount: 100,
        memo: [7; 40],
    }
}

/// Completes a journal's recovery from `records` (no snapshot), as a store would answer it.
fn recover<E: Entity, C: Codec<E> + Codec<E::Event>>(
    journal: &mut Journal<E, C>,
    state: &mut E,
    records: Vec<StoredRecord>,
) {
    let head = records.len() as u64;
    let load = journal.poll_command().expect("load");
    journal
        .handle_completion(
            Duration::ZERO,
            load.id(),
            Ok(Completion::Snapshot(None)),
            state,
        )
        .expect("load completes");
    let read = journal.poll_command().expect("read");
    journal
        .handle_completion(
            Duration::ZERO,
            read.id(),
            Ok(Completion::Events { records, head }),
            state,
        )
        .expect("read completes");
    assert_eq!(journal.last_seq(), head, "recovered");
    while journal.poll_event().is_some() {}
}

/// A recovered journal over an empty stream, with no snapshots.
fn ready<E: Entity + 'static, C: Codec<E> + Codec<E::Event>>(
    state: &mut E,
    init: fn() -> E,
) -> Journal<E, C> {
    let mut journal = Journal::<E, C>::new(JournalConfig::new("bench").snapshot_every(None), init);
    recover(&mut journal, state, Vec::new());
    journal
}

/// One persist transition: the event is applied, the append emitted, acknowledged, reported.
fn persist_once<E: Entity, C: Codec<E> + Codec<E::Event>>(
    journal: &mut Journal<E, C>,
    state: &mut E,
    event: E::Event,
) {
    journal.handle_persist(event, state).expect("accepted");
    let append = journal.poll_command().expect("append");
    black_box(&append);
    journal
        .handle_completion(Duration::ZERO, append.id(), Ok(Completion::Done), state)
        .expect("completes");
    match journal.poll_event() {
        Some(JournalEvent::Persisted { .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
}

fn persist(c: &mut Criterion) {
    let mut group = c.benchmark_group("persist transition");
    group.throughput(Throughput::Elements(1));
    group.bench_function("no codec (u64)", |b| {
        let mut state = Sum::default();
        let mut journal = ready::<Sum, Raw>(&mut state, Sum::default);
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            persist_once(&mut journal, &mut state, i);
        });
    });
    group.bench_function("borsh (64-byte event)", |b| {
        let mut state = Balances::default();
        let mut journal = ready::<Balances, Borsh>(&mut state, Balances::default);
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            persist_once(&mut journal, &mut state, transfer(i));
        });
    });
    group.finish();
}

/// Records of `n` events, as a store would return them, written by a real journal.
fn log<E: Entity + 'static, C: Codec<E> + Codec<E::Event>>(
    n: u64,
    init: fn() -> E,
    event: impl Fn(u64) -> E::Event,
) -> Vec<StoredRecord> {
    let mut state = init();
    let mut journal = ready::<E, C>(&mut state, init);
    let mut records = Vec::with_capacity(n as usize);
    for i in 1..=n {
        journal
            .handle_persist(event(i), &mut state)
            .expect("accepted");
        let Some(persevere_core::Command::Append { id, events, .. }) = journal.poll_command()
        else {
            panic!("expected an append");
        };
        records.extend(events);
        journal
            .handle_completion(Duration::ZERO, id, Ok(Completion::Done), &mut state)
            .expect("completes");
        while journal.poll_event().is_some() {}
    }
    records
}

fn replay<E: Entity + 'static, C: Codec<E> + Codec<E::Event>>(
    records: Vec<StoredRecord>,
    init: fn() -> E,
) -> E {
    let mut state = init();
    let config = JournalConfig::new("bench").read_batch(records.len() + 1);
    let mut journal = Journal::<E, C>::new(config, init);
    recover(&mut journal, &mut state, records);
    state
}

fn recovery(c: &mut Criterion) {
    const N: u64 = 100_000;
    let mut group = c.benchmark_group("recovery");
    group.throughput(Throughput::Elements(N));
    group.sample_size(20);
    let raw = log::<Sum, Raw>(N, Sum::default, |i| i);
    group.bench_function("replay no codec (u64)", |b| {
        b.iter_batched(
            || raw.clone(),
            |records| replay::<Sum, Raw>(records, Sum::default),
            BatchSize::LargeInput,
        )
    });
    let borsh = log::<Balances, Borsh>(N, Balances::default, transfer);
    group.bench_function("replay borsh (64-byte event)", |b| {
        b.iter_batched(
            || borsh.clone(),
            |records| replay::<Balances, Borsh>(records, Balances::default),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// One journal over an in-memory store with an append always in flight: each drain makes `n`
/// persist requests (queued behind it), then feeds completions back until every one of them
/// is in an append polled (the last of which stays in flight for the next drain).
struct Pipeline {
    journal: Journal<Balances, Borsh>,
    state: Balances,
    store: MemoryStore,
    in_flight: Option<Command>,
    next: u64,
    persisted: u64,
}

impl Pipeline {
    const STREAM: &'static str = "bench";

    fn new(config: JournalConfig) -> Self {
        let mut pipeline = Self {
            journal: Journal::new(config, Balances::default),
            state: Balances::default(),
            store: MemoryStore::new(),
            in_flight: None,
            next: 0,
            persisted: 0,
        };
        while let Some(command) = pipeline.journal.poll_command() {
            let (id, result) = pipeline.store.execute(Self::STREAM, command);
            pipeline
                .journal
                .handle_completion(Duration::ZERO, id, result, &mut pipeline.state)
                .expect("recovery completes");
        }
        while pipeline.journal.poll_event().is_some() {}
        // Prime: one append in flight.
        pipeline.request();
        pipeline.in_flight = pipeline.journal.poll_command();
        pipeline
    }

    fn request(&mut self) {
        self.next += 1;
        self.journal
            .handle_persist(transfer(self.next), &mut self.state)
            .expect("accepted");
    }

    /// One drain; returns the appends polled in it.
    fn drain(&mut self, n: u64) -> u64 {
        for _ in 0..n {
            self.request();
        }
        let mut covered = 0;
        let mut appends = 0;
        while covered < n {
            let command = self.in_flight.take().expect("a command in flight");
            let (id, result) = self.store.execute(Self::STREAM, command);
            self.journal
                .handle_completion(Duration::ZERO, id, result, &mut self.state)
                .expect("completes");
            while let Some(event) = self.journal.poll_event() {
                if matches!(event, JournalEvent::Persisted { .. }) {
                    self.persisted += 1;
                }
            }
            let next = self.journal.poll_command().expect("the next append");
            if let Command::Append { events, .. } = &next {
                covered += events.len() as u64;
                appends += 1;
            }
            self.in_flight = Some(next);
        }
        appends
    }

    /// Forgets the stored events (untimed), so a long run does not grow the store.
    fn trim(&mut self) {
        self.store.stream_mut(Self::STREAM).events.clear();
    }
}

fn pipelined(c: &mut Criterion) {
    const QUEUED: [u64; 4] = [1, 8, 64, 512];
    let coalescing = || JournalConfig::new("bench").snapshot_every(None);
    let one_each = || coalescing().max_append(1, usize::MAX);
    for n in QUEUED {
        for (what, config) in [("coalesced", coalescing()), ("one per append", one_each())] {
            let mut pipeline = Pipeline::new(config);
            let drains = 200;
            let appends: u64 = (0..drains).map(|_| pipeline.drain(n)).sum();
            // About 400k events, timed drain by drain (the store is trimmed between drains).
            let mut spent = Duration::ZERO;
            let before = pipeline.persisted;
            for _ in 0..(400_000 / n).max(1) {
                let started = Instant::now();
                pipeline.drain(n);
                spent += started.elapsed();
                pipeline.trim();
            }
            let rate = (pipeline.persisted - before) as f64 / spent.as_secs_f64();
            println!(
                "pipelined: {n:>3} requests queued per drain, {what:<14}: {:>6.2} appends per drain, {:.2} M events/s",
                appends as f64 / drains as f64,
                rate / 1e6
            );
        }
    }
    let mut group = c.benchmark_group("pipelined persists (64-byte borsh events, memory store)");
    for n in QUEUED {
        group.throughput(Throughput::Elements(n));
        for (what, config) in [("coalesced", coalescing()), ("one per append", one_each())] {
            group.bench_function(format!("{n} queued per drain, {what}"), |b| {
                let mut pipeline = Pipeline::new(config.clone());
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        black_box(pipeline.drain(n));
                        total += started.elapsed();
                        pipeline.trim();
                    }
                    total
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, persist, recovery, pipelined);
criterion_main!(benches);
