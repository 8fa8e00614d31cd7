#![allow(missing_docs)] // criterion's macros generate undocumented functions
//! The core's hot paths, with no IO: one persist transition (handle_persist, poll_command,
//! handle_completion, poll_event) without a codec and with borsh, and replay throughput through
//! recovery.
//!
//! Run with `cargo bench -p persevere-core --bench journal`.

use std::hint::black_box;
use std::time::Duration;

use borsh::{BorshDeserialize, BorshSerialize};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use persevere_core::{
    Borsh, Codec, CodecError, Completion, Entity, Journal, JournalConfig, JournalEvent,
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

criterion_group!(benches, persist, recovery);
criterion_main!(benches);
