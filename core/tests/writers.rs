//! A write whose outcome is unknown, resolved while another writer appends to the same stream;
//! and completions of the wrong shape. Driven through [`Journal`] directly over a
//! [`MemoryStore`], with a second journal as the other writer.
//!
//! The classes a re-read must tell apart (the caller acts on them: a retry after `Conflict` or
//! `Failed { landed: Some(false) }` must never apply an event twice, and `Persisted` must never
//! name events that are not in the log):
//!
//! - ours landed, another writer appended after it: `Persisted`, then the journal stops;
//! - ours did not land and another writer took our positions (with as many events, fewer or
//!   more): `Conflict`, the journal stops;
//! - ours did not land and nobody wrote: `Failed { landed: Some(false) }`, the journal goes on;
//! - our last position cannot be read any more (compacted by another writer): unknown, stop.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{add, fold, Entry, Ledger};
use persevere_core::memory::MemoryStore;
use persevere_core::seal::{ChaChaRandom, Key, KeyId, KeyRing};
use persevere_core::{
    Command, Completion, Journal, JournalConfig, JournalEvent, PersistError, Phase, RequestId,
    StopReason, StorageError, Strategy,
};

const STREAM: &str = "ledger";

fn config(strategy: Strategy) -> JournalConfig {
    JournalConfig::new(STREAM)
        .strategy(strategy)
        .snapshot_every(None)
}

/// A journal over `STREAM`, sealed under `keys` if any (nonces from `nonces`).
fn open(config: JournalConfig, keys: Option<&Arc<KeyRing>>, nonces: u64) -> Journal<Ledger> {
    let journal = Journal::new(config, Ledger::default);
    match keys {
        Some(keys) => journal.with_encryption(Arc::clone(keys), ChaChaRandom::from_u64(nonces)),
        None => journal,
    }
}

/// What to do with a write command instead of executing it plainly.
type OnWrite<'a> = &'a mut dyn FnMut(&mut MemoryStore, Command) -> Result<Completion, StorageError>;

/// Drives `journal` until it has nothing left to do; every write command goes through
/// `on_write`. Returns the events reported. Bounded: a journal that never settles fails.
fn drive(
    journal: &mut Journal<Ledger>,
    store: &mut MemoryStore,
    state: &mut Ledger,
    on_write: OnWrite<'_>,
) -> Vec<JournalEvent> {
    let mut events = Vec::new();
    let mut now = Duration::ZERO;
    for _ in 0..10_000 {
        events.extend(std::iter::from_fn(|| journal.poll_event()));
        if let Some(command) = journal.poll_command() {
            let id = command.id();
            let result = if command.is_write() {
                on_write(store, command)
            } else {
                store.execute(STREAM, command).1
            };
            journal.handle_completion(now, id, result, state).unwrap();
            continue;
        }
        match journal.poll_timeout() {
            Some(deadline) => {
                now = now.max(deadline);
                journal.handle_timeout(now);
            }
            None => return events,
        }
    }
    panic!("the journal never settled");
}

fn plain(store: &mut MemoryStore, command: Command) -> Result<Completion, StorageError> {
    store.execute(STREAM, command).1
}

/// Another process opens the stream, recovers it and persists `events`, one request each.
fn other_writer(
    store: &mut MemoryStore,
    config: &JournalConfig,
    keys: Option<&Arc<KeyRing>>,
    events: &[Entry],
) {
    let mut journal = open(config.clone(), keys, 0xD1FF);
    let mut state = Ledger::default();
    drive(&mut journal, store, &mut state, &mut plain);
    for event in events {
        journal.handle_persist(event.clone(), &mut state).unwrap();
        let reported = drive(&mut journal, store, &mut state, &mut plain);
        assert!(
            reported
                .iter()
                .any(|e| matches!(e, JournalEvent::Persisted { .. })),
            "the other writer persists: {reported:?}"
        );
    }
}

/// The outcome reported for `request`.
fn outcome(events: &[JournalEvent], request: RequestId) -> Result<(u64, u64), PersistError> {
    events
        .iter()
        .find_map(|event| match event {
            JournalEvent::Persisted {
                request: r,
                first_seq,
                last_seq,
            } if *r == request => Some(Ok((*first_seq, *last_seq))),
            JournalEvent::PersistFailed { request: r, error } if *r == request => {
                Some(Err(error.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{request} unanswered: {events:?}"))
}

/// The ids of the events stored in `STREAM`, in seq order, as a fresh journal recovers them.
fn durable(store: &MemoryStore, config: &JournalConfig, keys: Option<&Arc<KeyRing>>) -> Vec<u32> {
    let mut store = store.clone();
    let mut journal = open(config.clone(), keys, 0xFEED);
    let mut state = Ledger::default();
    drive(&mut journal, &mut store, &mut state, &mut plain);
    assert_eq!(journal.phase(), Phase::Ready, "the stream recovers");
    state.ids
}

/// A journal that persisted `add(1)`, over its store.
fn started(
    config: &JournalConfig,
    keys: Option<&Arc<KeyRing>>,
) -> (Journal<Ledger>, MemoryStore, Ledger) {
    let mut store = MemoryStore::new();
    let mut journal = open(config.clone(), keys, 1);
    let mut state = Ledger::default();
    drive(&mut journal, &mut store, &mut state, &mut plain);
    journal.handle_persist(add(1), &mut state).unwrap();
    drive(&mut journal, &mut store, &mut state, &mut plain);
    assert_eq!(journal.last_seq(), 1);
    (journal, store, state)
}

fn keys_or_not() -> [Option<Arc<KeyRing>>; 2] {
    [
        None,
        Some(Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([9; 32])))),
    ]
}

/// Issue 13, item 1: the write landed, its outcome was reported unknown, and another writer
/// appended after it before the re-read. The caller must be told `Persisted` (a retry would
/// apply the events twice), and the journal must stop (another writer exists).
#[test]
fn a_landed_write_followed_by_another_writer_is_persisted_then_the_journal_stops() {
    for strategy in [Strategy::Full, Strategy::Light] {
        for keys in keys_or_not() {
            let what = format!("{strategy:?}, encrypted: {}", keys.is_some());
            let config = config(strategy);
            let (mut journal, mut store, mut state) = started(&config, keys.as_ref());
            let request = journal
                .handle_persist_all([add(2), add(3)], &mut state)
                .unwrap();
            let mut first = true;
            let events = drive(
                &mut journal,
                &mut store,
                &mut state,
                &mut |store, command| {
                    if std::mem::take(&mut first) {
                        store.execute(STREAM, command).1.expect("the append lands");
                        other_writer(store, &config, keys.as_ref(), &[add(10)]);
                        Err(StorageError::Failed(
                            "connection lost after the write".into(),
                        ))
                    } else {
                        plain(store, command)
                    }
                },
            );
            assert_eq!(outcome(&events, request), Ok((2, 3)), "{what}");
            assert_eq!(
                journal.stop_reason(),
                Some(&StopReason::Conflict {
                    expected: 3,
                    actual: 4
                }),
                "{what}"
            );
            assert_eq!(state, fold(&[1, 2, 3]), "{what}: up to our last event");
            assert_eq!(journal.last_seq(), 3, "{what}");
            assert_eq!(
                durable(&store, &config, keys.as_ref()),
                vec![1, 2, 3, 10],
                "{what}"
            );
        }
    }
}

/// Our write failed before landing and another writer took our positions, with as many
/// events as ours (the head equals our last seq), fewer, or more. Never `Persisted` (the events
/// are not in the log), never `Failed { landed: Some(false) }` with the journal going on (it
/// would write after another writer): a `Conflict`, and the journal stops.
#[test]
fn a_failed_write_whose_positions_another_writer_took_is_a_conflict() {
    for strategy in [Strategy::Full, Strategy::Light] {
        for keys in keys_or_not() {
            for others in 1..=3u32 {
                let what = format!(
                    "{strategy:?}, encrypted: {}, {others} foreign events",
                    keys.is_some()
                );
                let config = config(strategy);
                let (mut journal, mut store, mut state) = started(&config, keys.as_ref());
                let request = journal
                    .handle_persist_all([add(2), add(3)], &mut state)
                    .unwrap();
                let foreign: Vec<Entry> = (10..10 + others).map(add).collect();
                let mut first = true;
                let events = drive(
                    &mut journal,
                    &mut store,
                    &mut state,
                    &mut |store, command| {
                        if std::mem::take(&mut first) {
                            other_writer(store, &config, keys.as_ref(), &foreign);
                            Err(StorageError::Failed("timed out before the write".into()))
                        } else {
                            plain(store, command)
                        }
                    },
                );
                let head = 1 + u64::from(others);
                assert_eq!(
                    outcome(&events, request),
                    Err(PersistError::Conflict {
                        expected: 1,
                        actual: head
                    }),
                    "{what}"
                );
                assert_eq!(journal.phase(), Phase::Stopped, "{what}");
                assert_eq!(state, fold(&[1]), "{what}: the state as before");
                assert_eq!(journal.last_seq(), 1, "{what}");
                let mut ids = vec![1];
                ids.extend(10..10 + others);
                assert_eq!(durable(&store, &config, keys.as_ref()), ids, "{what}");
            }
        }
    }
}

/// Our write failed before landing and nobody else wrote: the classic unknown outcome learnt
/// to be "not landed"; the journal goes on and a retry takes the same seqs.
#[test]
fn a_failed_write_that_did_not_land_is_reported_not_landed_and_the_journal_goes_on() {
    let config = config(Strategy::Full);
    let (mut journal, mut store, mut state) = started(&config, None);
    let request = journal.handle_persist(add(2), &mut state).unwrap();
    let mut first = true;
    let events = drive(
        &mut journal,
        &mut store,
        &mut state,
        &mut |store, command| {
            if std::mem::take(&mut first) {
                Err(StorageError::Failed("timed out before the write".into()))
            } else {
                plain(store, command)
            }
        },
    );
    assert!(matches!(
        outcome(&events, request),
        Err(PersistError::Failed {
            landed: Some(false),
            ..
        })
    ));
    assert_eq!(journal.phase(), Phase::Ready);
    assert_eq!(state, fold(&[1]));
    let retry = journal.handle_persist(add(2), &mut state).unwrap();
    let events = drive(&mut journal, &mut store, &mut state, &mut plain);
    assert_eq!(outcome(&events, retry), Ok((2, 2)));
    assert_eq!(durable(&store, &config, None), vec![1, 2]);
}

/// Our write landed, then another writer appended, snapshotted and compacted our events away:
/// whether ours landed can no longer be read. Neither `Persisted` nor a class that invites a
/// retry: `Failed { landed: None }`, and the journal stops.
#[test]
fn an_outcome_compacted_away_by_another_writer_is_unknown_and_stops() {
    let config = config(Strategy::Full);
    let (mut journal, mut store, mut state) = started(&config, None);
    let request = journal.handle_persist(add(2), &mut state).unwrap();
    let compacting = JournalConfig::new(STREAM)
        .snapshot_every(Some(1))
        .compact_on_snapshot(true);
    let mut first = true;
    let events = drive(
        &mut journal,
        &mut store,
        &mut state,
        &mut |store, command| {
            if std::mem::take(&mut first) {
                store.execute(STREAM, command).1.expect("the append lands");
                other_writer(store, &compacting, None, &[add(10)]);
                Err(StorageError::Failed(
                    "connection lost after the write".into(),
                ))
            } else {
                plain(store, command)
            }
        },
    );
    assert!(
        !store.stream(STREAM).unwrap().events.contains_key(&2),
        "our event was compacted"
    );
    assert!(matches!(
        outcome(&events, request),
        Err(PersistError::Failed { landed: None, .. })
    ));
    assert_eq!(
        journal.stop_reason(),
        Some(&StopReason::Conflict {
            expected: 1,
            actual: 3
        })
    );
}
