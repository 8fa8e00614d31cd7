//! Nonces from the adapters' OS-seeded source ([`persevere_driver::os_random`]): each call is a
//! new generator seeded by the operating system, so two processes (or two restarts of one)
//! sealing under the same key never draw the same nonce — directly, through journals, and
//! through a boxed source. A fixed seed would repeat every nonce of the first process.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use persevere_core::memory::MemoryStore;
use persevere_core::seal::{self, Key, KeyId, KeyRing, Randomness, NONCE_LEN};
use persevere_core::{Command, Journal, JournalConfig};
use persevere_driver::os_random;
use persevere_tests::{Entry, Ledger};

const STREAM: &str = "ledger";

/// Opens a journal over `store` with `random`, persists `events` events, and returns the nonce
/// of every record it wrote.
fn run(
    store: &mut MemoryStore,
    keys: &Arc<KeyRing>,
    random: impl Randomness + 'static,
    first_id: u32,
    events: u32,
) -> Vec<[u8; NONCE_LEN]> {
    let config = JournalConfig::new(STREAM).snapshot_every(Some(3));
    let mut journal =
        Journal::<Ledger>::new(config, Ledger::default).with_encryption(Arc::clone(keys), random);
    let mut state = Ledger::default();
    let mut nonces = Vec::new();
    let mut drive = |journal: &mut Journal<Ledger>, state: &mut Ledger| {
        while let Some(command) = journal.poll_command() {
            let records = match &command {
                Command::Append {
                    events, snapshot, ..
                } => events.iter().chain(snapshot).collect(),
                Command::SaveSnapshot { snapshot, .. } => vec![snapshot],
                _ => Vec::new(),
            };
            nonces.extend(
                records
                    .into_iter()
                    .map(|r| seal::nonce_of(&r.bytes).expect("sealed")),
            );
            let (id, result) = store.execute(STREAM, command);
            journal
                .handle_completion(Duration::ZERO, id, result, state)
                .expect("well driven");
            while journal.poll_event().is_some() {}
        }
    };
    drive(&mut journal, &mut state);
    for id in first_id..first_id + events {
        journal
            .handle_persist(Entry::Add(id), &mut state)
            .expect("not stopped");
        drive(&mut journal, &mut state);
    }
    assert_eq!(
        state.ids.len() as u32,
        first_id + events,
        "recovered and persisted"
    );
    nonces
}

#[test]
fn two_os_random_sources_never_draw_the_same_bytes() {
    let mut a = os_random().expect("OS entropy");
    let mut b = os_random().expect("OS entropy");
    let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
    a.fill_bytes(&mut x);
    b.fill_bytes(&mut y);
    assert_ne!(
        x, y,
        "two sources drew the same 256 bits: not seeded by the OS"
    );
}

/// One stream under one key, reopened (a restart) five times, each time with a fresh
/// `os_random()` — plain, boxed, and as a boxed trait object: every nonce is distinct.
#[test]
fn no_nonce_repeats_across_restarts_with_os_random() {
    let keys = Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([8; 32])));
    let mut store = MemoryStore::new();
    let mut nonces = Vec::new();
    let mut next = 0;
    for restart in 0..6 {
        let random = os_random().expect("OS entropy");
        let drawn = match restart % 3 {
            0 => run(&mut store, &keys, random, next, 8),
            1 => run(&mut store, &keys, Box::new(random), next, 8),
            _ => {
                let boxed: Box<dyn Randomness> = Box::new(random);
                run(&mut store, &keys, boxed, next, 8)
            }
        };
        next += 8;
        nonces.extend(drawn);
    }
    assert!(nonces.len() > 48, "{} records", nonces.len());
    let distinct: HashSet<_> = nonces.iter().collect();
    assert_eq!(
        distinct.len(),
        nonces.len(),
        "a nonce repeats across restarts"
    );
}
