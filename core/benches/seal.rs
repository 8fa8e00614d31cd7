//! The cost of encryption at rest: the persist transition of a plaintext and of an encrypted
//! journal per 64-byte and per 1 KiB event, and sealing and opening one record.
//!
//! ```text
//! cargo bench -p persevere-core --bench seal
//! # with the AVX2 Poly1305 path inlined (see the `seal` module docs):
//! RUSTFLAGS="-C target-feature=+avx2" cargo bench -p persevere-core --bench seal
//! ```
#![allow(clippy::unwrap_used)]
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use persevere_core::memory::MemoryStore;
use persevere_core::record::{self, RecordKind};
use persevere_core::seal::{self, Binding, ChaChaRandom, Key, KeyId, KeyRing, Randomness};
use persevere_core::{Completion, Entity, Journal, JournalConfig};

/// Counts events; the event is an opaque byte string.
#[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Sink {
    events: u64,
}

impl Entity for Sink {
    type Event = Vec<u8>;
    type Error = String;
    fn apply(&mut self, _: &Vec<u8>) -> Result<(), String> {
        self.events += 1;
        Ok(())
    }
}

const SIZES: [(usize, &str); 2] = [(64, "64B"), (1024, "1KiB")];

fn keys() -> Arc<KeyRing> {
    Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([0x5a; 32])))
}

/// A recovered journal over an empty stream.
fn journal(encrypted: bool) -> (Journal<Sink>, Sink) {
    let config = JournalConfig::new("bench/1")
        .with_store_id("bench")
        .snapshot_every(None);
    let mut journal = Journal::<Sink>::new(config, Sink::default);
    if encrypted {
        journal = journal.with_encryption(keys(), ChaChaRandom::from_seed([9; 32]));
    }
    let mut store = MemoryStore::new();
    let mut state = Sink::default();
    while let Some(command) = journal.poll_command() {
        let (id, result) = store.execute("bench/1", command);
        journal
            .handle_completion(Duration::ZERO, id, result, &mut state)
            .unwrap();
    }
    while journal.poll_event().is_some() {}
    (journal, state)
}

/// One persist transition: request, the append command (encoded and sealed), its completion,
/// and the persisted event.
fn persist(journal: &mut Journal<Sink>, state: &mut Sink, event: Vec<u8>) {
    journal.handle_persist(event, state).unwrap();
    while let Some(command) = journal.poll_command() {
        let id = command.id();
        black_box(&command);
        journal
            .handle_completion(Duration::ZERO, id, Ok(Completion::Done), state)
            .unwrap();
    }
    while let Some(event) = journal.poll_event() {
        black_box(event);
    }
}

fn bench_persist(c: &mut Criterion) {
    let mut group = c.benchmark_group("persist");
    for (size, name) in SIZES {
        // Borsh writes a 4-byte length before the bytes: the encoded event is `size` bytes.
        let event = vec![0xa5u8; size - 4];
        group.throughput(Throughput::Elements(1));
        for (encrypted, mode) in [(false, "plaintext"), (true, "encrypted")] {
            let (mut journal, mut state) = journal(encrypted);
            group.bench_function(BenchmarkId::new(mode, name), |b| {
                b.iter(|| persist(&mut journal, &mut state, event.clone()))
            });
        }
    }
    group.finish();
}

fn bench_records(c: &mut Criterion) {
    let keys = keys();
    let mut random = ChaChaRandom::from_seed([3; 32]);
    let at = Binding {
        store: "bench",
        stream: "bench/1",
        kind: RecordKind::Event,
        codec: 1,
        seq: 42,
    };
    let chain = [7u8; 16];
    let mut group = c.benchmark_group("record");
    for (size, name) in SIZES {
        let payload = vec![0x3cu8; size];
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("seal", name), |b| {
            b.iter(|| seal::seal_payload(&keys, &mut random, &at, 1, &chain, black_box(&payload)))
        });
        let sealed = seal::seal_payload(&keys, &mut random, &at, 1, &chain, &payload).unwrap();
        group.bench_function(BenchmarkId::new("open", name), |b| {
            b.iter(|| {
                let rec = record::decode(black_box(&sealed)).unwrap();
                seal::open_payload(&keys, &at, 1, &chain, rec.payload).unwrap()
            })
        });
        let header = record::RecordHeader {
            kind: RecordKind::Event,
            codec: 1,
            type_version: 1,
            seq: 42,
        };
        group.bench_function(BenchmarkId::new("plaintext-encode", name), |b| {
            b.iter(|| record::encode(header, black_box(&payload)))
        });
    }
    group.bench_function("nonce", |b| {
        let mut nonce = [0u8; seal::NONCE_LEN];
        b.iter(|| {
            random.fill_bytes(&mut nonce);
            black_box(nonce)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_persist, bench_records);
criterion_main!(benches);
