//! Nonces: every sealed record draws a fresh one from the journal's randomness input, whether
//! that input is a generator, a boxed generator or a boxed trait object; journals and restarts
//! with their own seeds never share one. (The adapters' OS-seeded source is tested in
//! `persevere-tests`, `tests/nonces.rs`.)

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{add, Ledger};
use persevere_core::memory::MemoryStore;
use persevere_core::seal::{self, ChaChaRandom, Key, KeyId, KeyRing, Randomness, NONCE_LEN};
use persevere_core::testkit::Harness;
use persevere_core::{Command, Journal, JournalConfig};

const STREAM: &str = "ledger";

fn ring() -> Arc<KeyRing> {
    Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([5; 32])))
}

fn config(stream: &str) -> JournalConfig {
    JournalConfig::new(stream).snapshot_every(Some(4))
}

/// Runs `journal` over `store` (stream `stream`) for `events` persists, returning the nonce of
/// every record it sent, in order.
fn nonces_of(
    mut journal: Journal<Ledger>,
    store: &mut MemoryStore,
    stream: &str,
    events: u32,
) -> Vec<[u8; NONCE_LEN]> {
    let mut state = Ledger::default();
    let mut nonces = Vec::new();
    let mut run = |journal: &mut Journal<Ledger>, state: &mut Ledger| {
        while let Some(command) = journal.poll_command() {
            match &command {
                Command::Append {
                    events, snapshot, ..
                } => nonces.extend(
                    events
                        .iter()
                        .chain(snapshot)
                        .map(|r| seal::nonce_of(&r.bytes).unwrap()),
                ),
                Command::SaveSnapshot { snapshot, .. } => {
                    nonces.push(seal::nonce_of(&snapshot.bytes).unwrap())
                }
                _ => {}
            }
            let (id, result) = store.execute(stream, command);
            journal
                .handle_completion(Duration::ZERO, id, result, state)
                .unwrap();
            while journal.poll_event().is_some() {}
        }
    };
    run(&mut journal, &mut state);
    for id in 0..events {
        journal.handle_persist(add(id), &mut state).unwrap();
        run(&mut journal, &mut state);
    }
    nonces
}

fn all_distinct(nonces: &[[u8; NONCE_LEN]]) -> bool {
    nonces.iter().collect::<HashSet<_>>().len() == nonces.len()
}

/// A boxed generator (`Box<ChaChaRandom>`, `Box<dyn Randomness>`, a box of a box) forwards
/// every draw: the journal's nonces are exactly the generator's own, all distinct. A no-op
/// forwarding would leave every nonce the same.
#[test]
fn a_boxed_source_forwards_every_draw() {
    let seed = [11u8; 32];
    let open = || Journal::<Ledger>::new(config(STREAM), Ledger::default);
    let plain = nonces_of(
        open().with_encryption(ring(), ChaChaRandom::from_seed(seed)),
        &mut MemoryStore::new(),
        STREAM,
        20,
    );
    assert!(plain.len() > 20);
    assert!(all_distinct(&plain));
    let boxed: Box<dyn Randomness> = Box::new(ChaChaRandom::from_seed(seed));
    let twice: Box<dyn Randomness> = Box::new(Box::new(ChaChaRandom::from_seed(seed)));
    let sources: [(&str, Box<dyn Randomness>); 3] = [
        ("Box<ChaChaRandom>", Box::new(ChaChaRandom::from_seed(seed))),
        ("Box<dyn Randomness>", boxed),
        ("Box<Box<..>>", twice),
    ];
    for (what, source) in sources {
        let nonces = nonces_of(
            open().with_encryption(ring(), source),
            &mut MemoryStore::new(),
            STREAM,
            20,
        );
        assert_eq!(nonces, plain, "{what}: the generator's own nonces");
    }
    // And drawing straight through a box.
    let mut direct = ChaChaRandom::from_seed(seed);
    let mut boxed: Box<dyn Randomness> = Box::new(ChaChaRandom::from_seed(seed));
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    direct.fill_bytes(&mut a);
    boxed.fill_bytes(&mut b);
    assert_eq!(a, b);
    assert_ne!(b, [0u8; 64]);
}

/// Journals of several streams under one key, each with its own seed, and every restart of
/// the testkit's encrypted harness (a new seed per journal it opens): no nonce is shared.
#[test]
fn no_nonce_is_shared_across_journals_or_restarts() {
    let mut store = MemoryStore::new();
    let mut seen = Vec::new();
    for (i, stream) in ["a", "b", "c"].into_iter().enumerate() {
        let mut seed = [0u8; 32];
        seed[0] = i as u8 + 1;
        let journal = Journal::<Ledger>::new(config(stream), Ledger::default)
            .with_encryption(ring(), ChaChaRandom::from_seed(seed));
        seen.extend(nonces_of(journal, &mut store, stream, 10));
    }
    let mut h = Harness::<Ledger>::encrypted(config(STREAM), Ledger::default, ring(), 3);
    for round in 0..5u32 {
        for id in 0..6 {
            h.persist(add(round * 10 + id)).unwrap();
        }
        h.restart().unwrap();
    }
    let stream = h.store().stream(STREAM).unwrap();
    seen.extend(
        stream
            .events
            .values()
            .chain(stream.snapshots.values())
            .map(|bytes| seal::nonce_of(bytes).unwrap()),
    );
    assert!(seen.len() > 60, "{} records", seen.len());
    assert!(all_distinct(&seen), "a nonce repeats");
}
