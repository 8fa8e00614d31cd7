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
//!   more, even with a last event identical to ours: every position is compared): `Conflict`,
//!   the journal stops;
//! - ours did not land and nobody wrote: `Failed { landed: Some(false) }`, the journal goes on;
//! - our positions cannot be read any more (compacted by another writer), and no sealed record
//!   of ours proves the write: unknown, stop (a plaintext snapshot proves nothing);
//! - plaintext only: another writer's append of exactly our events at exactly our positions
//!   is byte-identical to ours, and taken for ours (the documented limit).

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
    drive_reads(journal, store, state, on_write, &mut plain)
}

/// [`drive`], with every read command going through `on_read`.
fn drive_reads(
    journal: &mut Journal<Ledger>,
    store: &mut MemoryStore,
    state: &mut Ledger,
    on_write: OnWrite<'_>,
    on_read: OnWrite<'_>,
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
                on_read(store, command)
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

/// A write hook: another writer (`config`, `keys`) appends `foreign` before the first write,
/// which is not executed and is reported failed; later writes run plainly.
fn another_writer_first<'a>(
    config: &'a JournalConfig,
    keys: Option<&'a Arc<KeyRing>>,
    foreign: &'a [Entry],
) -> impl FnMut(&mut MemoryStore, Command) -> Result<Completion, StorageError> + 'a {
    let mut first = true;
    move |store, command| {
        if !std::mem::take(&mut first) {
            return plain(store, command);
        }
        other_writer(store, config, keys, foreign);
        Err(StorageError::Failed("timed out before the write".into()))
    }
}

/// A write hook: the first write lands, then another writer (`config`, `keys`) appends
/// `foreign`, and the write is reported failed; later writes run plainly.
fn lands_then_another_writer<'a>(
    config: &'a JournalConfig,
    keys: Option<&'a Arc<KeyRing>>,
    foreign: &'a [Entry],
) -> impl FnMut(&mut MemoryStore, Command) -> Result<Completion, StorageError> + 'a {
    let mut first = true;
    move |store, command| {
        if !std::mem::take(&mut first) {
            return plain(store, command);
        }
        store.execute(STREAM, command).1.expect("the append lands");
        other_writer(store, config, keys, foreign);
        Err(StorageError::Failed(
            "connection lost after the write".into(),
        ))
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

/// After [`started`]: our append of `add(2), add(3)`, whose write meets another writer (see
/// [`raced`]), driven to its end.
struct Overtaken {
    journal: Journal<Ledger>,
    store: MemoryStore,
    state: Ledger,
    /// What the journal reported.
    events: Vec<JournalEvent>,
    /// Our persist request.
    request: RequestId,
}

impl Overtaken {
    /// Checks that our append was refused as a conflict with the other writer's head `actual`:
    /// nothing of it acknowledged or applied, and the journal stopped.
    fn assert_conflict(&self, actual: u64, what: &str) {
        assert_eq!(
            outcome(&self.events, self.request),
            Err(PersistError::Conflict {
                expected: 1,
                actual
            }),
            "{what}"
        );
        assert_eq!(self.journal.phase(), Phase::Stopped, "{what}");
        assert_eq!(self.state, fold(&[1]), "{what}: the state as before");
        assert_eq!(self.journal.last_seq(), 1, "{what}");
    }
}

/// Our append of `add(2), add(3)` after [`started`], its writes going through `on_write` (a
/// hook where another writer appends), driven to its end.
fn raced(ours: &JournalConfig, keys: Option<&Arc<KeyRing>>, on_write: OnWrite<'_>) -> Overtaken {
    let (mut journal, mut store, mut state) = started(ours, keys);
    let request = journal
        .handle_persist_all([add(2), add(3)], &mut state)
        .unwrap();
    let events = drive(&mut journal, &mut store, &mut state, on_write);
    Overtaken {
        journal,
        store,
        state,
        events,
        request,
    }
}

/// [`raced`] with another writer (`theirs`, `keys`) getting ahead of our write by appending
/// `foreign` (see [`another_writer_first`]).
fn overtaken(
    ours: &JournalConfig,
    theirs: &JournalConfig,
    keys: Option<&Arc<KeyRing>>,
    foreign: &[Entry],
) -> Overtaken {
    raced(ours, keys, &mut another_writer_first(theirs, keys, foreign))
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
            let Overtaken {
                journal,
                store,
                state,
                events,
                request,
            } = raced(
                &config,
                keys.as_ref(),
                &mut lands_then_another_writer(&config, keys.as_ref(), &[add(10)]),
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
                let foreign: Vec<Entry> = (10..10 + others).map(add).collect();
                let race = overtaken(&config, &config, keys.as_ref(), &foreign);
                race.assert_conflict(1 + u64::from(others), &what);
                let store = race.store;
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
    let events = drive(
        &mut journal,
        &mut store,
        &mut state,
        &mut lands_then_another_writer(&compacting, None, &[add(10)]),
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

// ----- completions of the wrong shape (issue 13, item 3) -----

/// Answers a command with a completion that does not fit it.
fn wrong_shape(command: &Command) -> Completion {
    match command {
        Command::LoadSnapshot { .. } => Completion::Done,
        Command::ReadEvents { .. } => Completion::Snapshot(None),
        _ => Completion::Events {
            records: Vec::new(),
            head: 0,
        },
    }
}

/// An append answered with `Events` (say, by a third-party store): an unknown outcome, never a
/// wedge. Not executed, it is learnt not landed and the journal goes on; executed, it is learnt
/// landed and reported persisted (never applied twice).
#[test]
fn an_append_answered_with_the_wrong_shape_is_an_unknown_outcome() {
    for executed in [false, true] {
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
                    let answer = wrong_shape(&command);
                    if executed {
                        store.execute(STREAM, command).1.expect("the append lands");
                    }
                    Ok(answer)
                } else {
                    plain(store, command)
                }
            },
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, JournalEvent::Fenced { .. })),
            "fenced: {events:?}"
        );
        assert_eq!(journal.phase(), Phase::Ready, "executed: {executed}");
        if executed {
            assert_eq!(outcome(&events, request), Ok((2, 2)));
            assert_eq!(state, fold(&[1, 2]));
        } else {
            assert!(matches!(
                outcome(&events, request),
                Err(PersistError::Failed {
                    landed: Some(false),
                    ..
                })
            ));
            assert_eq!(state, fold(&[1]), "the event is not left applied");
        }
        let next = journal.handle_persist(add(3), &mut state).unwrap();
        let events = drive(&mut journal, &mut store, &mut state, &mut plain);
        let seq = if executed { 3 } else { 2 };
        assert_eq!(
            outcome(&events, next),
            Ok((seq, seq)),
            "the journal goes on"
        );
    }
}

/// Every read of a recovery answered with the wrong shape, one at a time: a failed read. At
/// the first recovery the journal stops with a recovery error (as for any failed read); during
/// a re-read it retries after its backoff. Never a journal left `Persisting` or waiting forever.
#[test]
fn a_read_answered_with_the_wrong_shape_is_a_failed_read() {
    // The first recovery: the snapshot load, then the event read.
    for wrong_at in 1..=2 {
        let mut store = MemoryStore::new();
        let mut journal = open(config(Strategy::Full), None, 1);
        let mut state = Ledger::default();
        let mut reads = 0;
        let mut events = Vec::new();
        while let Some(command) = journal.poll_command() {
            reads += 1;
            let id = command.id();
            let result = if reads == wrong_at {
                Ok(wrong_shape(&command))
            } else {
                store.execute(STREAM, command).1
            };
            journal
                .handle_completion(Duration::ZERO, id, result, &mut state)
                .expect("a wrong shape is consumed, not refused");
            events.extend(std::iter::from_fn(|| journal.poll_event()));
        }
        assert_eq!(journal.phase(), Phase::Stopped, "read {wrong_at}");
        assert!(
            events.iter().any(|e| matches!(
                e,
                JournalEvent::RecoveryFailed(persevere_core::RecoveryError::Storage(_))
            )),
            "read {wrong_at}: {events:?}"
        );
        assert!(matches!(
            journal.handle_persist(add(1), &mut state),
            Err(PersistError::Rejected(persevere_core::Rejection::Stopped(
                _
            )))
        ));
    }
    // A re-read after a failed append: retried, then resolved.
    let config = config(Strategy::Full).reread(3, Duration::from_millis(5));
    let (mut journal, mut store, mut state) = started(&config, None);
    let request = journal.handle_persist(add(2), &mut state).unwrap();
    let mut now = Duration::ZERO;
    let mut answered = 0;
    let mut events = Vec::new();
    for _ in 0..100 {
        events.extend(std::iter::from_fn(|| journal.poll_event()));
        if let Some(command) = journal.poll_command() {
            answered += 1;
            let id = command.id();
            let result = match answered {
                1 => {
                    store.execute(STREAM, command).1.expect("the append lands");
                    Err(StorageError::Failed("lost".into()))
                }
                2 => Ok(wrong_shape(&command)),
                _ => store.execute(STREAM, command).1,
            };
            journal
                .handle_completion(now, id, result, &mut state)
                .unwrap();
        } else if let Some(deadline) = journal.poll_timeout() {
            assert_eq!(journal.phase(), Phase::Fenced);
            now = deadline;
            journal.handle_timeout(now);
        } else {
            break;
        }
    }
    assert_eq!(outcome(&events, request), Ok((2, 2)));
    assert_eq!(journal.phase(), Phase::Ready);
    assert_eq!(state, fold(&[1, 2]));
}

/// A snapshot, a compaction or a retention answered with the wrong shape: the write failed,
/// nothing is lost, the journal goes on.
#[test]
fn a_housekeeping_write_answered_with_the_wrong_shape_fails_alone() {
    let config = config(Strategy::Full)
        .snapshot_every(Some(1))
        .compact_on_snapshot(true)
        .keep_snapshots(1);
    for wrong_at in 1..=3 {
        let (mut journal, mut store, mut state) = started(&config, None);
        journal.handle_persist(add(2), &mut state).unwrap();
        let mut writes = 0;
        let events = drive(
            &mut journal,
            &mut store,
            &mut state,
            &mut |store, command| {
                writes += 1;
                // The append, then its snapshot, compaction and retention.
                if writes == wrong_at + 1 {
                    Ok(wrong_shape(&command))
                } else {
                    plain(store, command)
                }
            },
        );
        let failed = events.iter().any(|e| {
            matches!(
                e,
                JournalEvent::SnapshotFailed { .. } | JournalEvent::HousekeepingFailed { .. }
            )
        });
        assert!(failed, "write {wrong_at}: {events:?}");
        assert_eq!(journal.phase(), Phase::Ready, "write {wrong_at}");
        assert_eq!(durable(&store, &config, None), vec![1, 2]);
        let next = journal.handle_persist(add(3), &mut state).unwrap();
        let events = drive(&mut journal, &mut store, &mut state, &mut plain);
        assert_eq!(outcome(&events, next), Ok((3, 3)), "write {wrong_at}");
    }
}

/// Our Light append (events and snapshot) landed; then a maintenance process re-snapshotted the
/// stream at our last seq (a snapshot that is not ours) and compacted the events under it. Our
/// event cannot be read, and a snapshot that is not ours proves nothing (it may describe our
/// events): unknown, never `Conflict` (which says nothing was written and invites a retry).
#[test]
fn another_snapshot_at_our_last_seq_proves_nothing() {
    let config = config(Strategy::Light);
    // Sealed, so that a snapshot of the same state by another journal is another record.
    let keys = Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([9; 32])));
    let (mut journal, mut store, mut state) = started(&config, Some(&keys));
    let request = journal
        .handle_persist_all([add(2), add(3)], &mut state)
        .unwrap();
    let mut first = true;
    let events = drive(
        &mut journal,
        &mut store,
        &mut state,
        &mut |store, command| {
            if !std::mem::take(&mut first) {
                return plain(store, command);
            }
            store.execute(STREAM, command).1.expect("the append lands");
            // The maintenance process: the state at 3 snapshotted by another journal (Full, from
            // a copy without our snapshot), filed at 3; then the events under it compacted.
            let mut copy = store.clone();
            copy.stream_mut(STREAM).snapshots.clear();
            let mut other = open(
                JournalConfig::new(STREAM).snapshot_every(None),
                Some(&keys),
                7,
            );
            let mut other_state = Ledger::default();
            drive(&mut other, &mut copy, &mut other_state, &mut plain);
            other.handle_snapshot_request(&mut other_state).unwrap();
            drive(&mut other, &mut copy, &mut other_state, &mut plain);
            let theirs = copy.stream(STREAM).unwrap().snapshots[&3].clone();
            let s = store.stream_mut(STREAM);
            assert_ne!(s.snapshots[&3], theirs, "a different snapshot record");
            s.snapshots.insert(3, theirs);
            s.events.clear();
            Err(StorageError::Failed(
                "connection lost after the write".into(),
            ))
        },
    );
    assert!(
        matches!(
            outcome(&events, request),
            Err(PersistError::Failed { landed: None, .. })
        ),
        "{events:?}"
    );
    assert_eq!(journal.phase(), Phase::Stopped);
}

/// Makes `add(2)` (which starts at once) and three requests queued behind it, then drives the
/// journal with `on_second` in place of the second write: the coalesced append of the three.
fn coalesced(
    journal: &mut Journal<Ledger>,
    store: &mut MemoryStore,
    state: &mut Ledger,
    on_second: OnWrite<'_>,
) -> (Vec<RequestId>, Vec<JournalEvent>) {
    let mut ids = vec![journal.handle_persist(add(2), state).unwrap()];
    ids.push(journal.handle_persist(add(3), state).unwrap());
    ids.push(journal.handle_persist_all([add(4), add(5)], state).unwrap());
    ids.push(journal.handle_persist(add(6), state).unwrap());
    let mut writes = 0;
    let events = drive(journal, store, state, &mut |store, command| {
        writes += 1;
        if writes == 2 {
            let Command::Append { events, .. } = &command else {
                panic!("the second write is the coalesced append: {command:?}");
            };
            assert_eq!(events.len(), 4, "three requests, four events, one command");
            on_second(store, command)
        } else {
            plain(store, command)
        }
    });
    (ids, events)
}

/// A coalesced append landed, was reported unknown, and another writer appended after it:
/// every request in it is `Persisted` (in order), then the journal stops.
#[test]
fn a_coalesced_append_that_landed_before_another_writer_is_persisted_whole_then_stops() {
    for strategy in [Strategy::Full, Strategy::Light] {
        for keys in keys_or_not() {
            let what = format!("{strategy:?}, encrypted: {}", keys.is_some());
            let config = config(strategy);
            let (mut journal, mut store, mut state) = started(&config, keys.as_ref());
            let (ids, events) = coalesced(
                &mut journal,
                &mut store,
                &mut state,
                &mut |store, command| {
                    store.execute(STREAM, command).1.expect("the append lands");
                    other_writer(store, &config, keys.as_ref(), &[add(10)]);
                    Err(StorageError::Failed(
                        "connection lost after the write".into(),
                    ))
                },
            );
            let outcomes: Vec<_> = ids.iter().map(|&id| outcome(&events, id)).collect();
            assert_eq!(
                outcomes,
                vec![Ok((2, 2)), Ok((3, 3)), Ok((4, 5)), Ok((6, 6))],
                "{what}"
            );
            let order: Vec<RequestId> = events
                .iter()
                .filter_map(|e| match e {
                    JournalEvent::Persisted { request, .. } => Some(*request),
                    _ => None,
                })
                .collect();
            assert_eq!(order, ids, "{what}: Persisted in request order");
            assert_eq!(
                journal.stop_reason(),
                Some(&StopReason::Conflict {
                    expected: 6,
                    actual: 7
                }),
                "{what}"
            );
            assert_eq!(state, fold(&[1, 2, 3, 4, 5, 6]), "{what}: each once");
            assert_eq!(
                durable(&store, &config, keys.as_ref()),
                vec![1, 2, 3, 4, 5, 6, 10],
                "{what}"
            );
        }
    }
}

/// A coalesced append failed before landing and another writer took its positions (as many
/// events as ours, so the head equals our last seq): every request in it is a `Conflict`,
/// none is acknowledged, the state is as before it, and the journal stops.
#[test]
fn a_coalesced_append_whose_positions_another_writer_took_fails_whole_as_a_conflict() {
    // Other events at our positions; and other events ending with one identical to our last
    // (`add(6)` at 6): every position is compared, not only the last.
    for foreign in [[10, 11, 12, 13], [10, 11, 12, 6]] {
        for strategy in [Strategy::Full, Strategy::Light] {
            for keys in keys_or_not() {
                let what = format!(
                    "{strategy:?}, encrypted: {}, foreign {foreign:?}",
                    keys.is_some()
                );
                let config = config(strategy);
                let (mut journal, mut store, mut state) = started(&config, keys.as_ref());
                let entries: Vec<Entry> = foreign.into_iter().map(add).collect();
                let (ids, events) = coalesced(
                    &mut journal,
                    &mut store,
                    &mut state,
                    &mut |store, _command| {
                        other_writer(store, &config, keys.as_ref(), &entries);
                        Err(StorageError::Failed("timed out before the write".into()))
                    },
                );
                assert_eq!(outcome(&events, ids[0]), Ok((2, 2)), "{what}");
                for &id in &ids[1..] {
                    assert_eq!(
                        outcome(&events, id),
                        Err(PersistError::Conflict {
                            expected: 2,
                            actual: 6
                        }),
                        "{what}"
                    );
                }
                assert_eq!(journal.phase(), Phase::Stopped, "{what}");
                assert_eq!(
                    state,
                    fold(&[1, 2]),
                    "{what}: the state as before the batch"
                );
                let mut expected = vec![1, 2];
                expected.extend(foreign);
                assert_eq!(durable(&store, &config, keys.as_ref()), expected, "{what}");
            }
        }
    }
}

/// Our write landed and another writer appended after it (found by the re-read), then the
/// store failed the reads of the rebuild that follows, past every retry. The journal already
/// knows of the other writer: it stops on a `Conflict` (final), never on an `Unresolved`
/// failure that a driver resumes from, to write on after the other writer.
#[test]
fn a_landed_write_behind_another_writer_stops_on_a_conflict_even_if_the_rebuild_fails() {
    // The re-read that finds both writes makes three reads; the rebuild after it fails from
    // its first read, or from its second.
    for good_reads in [3, 4] {
        let config = config(Strategy::Full).reread(3, Duration::from_millis(1));
        let (mut journal, mut store, mut state) = started(&config, None);
        let request = journal.handle_persist(add(2), &mut state).unwrap();
        let mut reads = 0;
        let events = drive_reads(
            &mut journal,
            &mut store,
            &mut state,
            &mut |store, command| {
                store.execute(STREAM, command).1.expect("the append lands");
                other_writer(store, &config, None, &[add(10)]);
                Err(StorageError::Failed(
                    "connection lost after the write".into(),
                ))
            },
            &mut |store, command| {
                reads += 1;
                if reads > good_reads {
                    Err(StorageError::Failed("the store is gone".into()))
                } else {
                    plain(store, command)
                }
            },
        );
        assert_eq!(
            outcome(&events, request),
            Ok((2, 2)),
            "{good_reads} good reads"
        );
        assert_eq!(
            journal.stop_reason(),
            Some(&StopReason::Conflict {
                expected: 2,
                actual: 3
            }),
            "{good_reads} good reads"
        );
    }
}

// ----- the re-read compares every position of the append -----

/// Our write failed before landing, and another writer took our positions with a last event
/// byte-identical to ours (plaintext records are deterministic: same seq, same event, same
/// bytes) but another event before it. Ours is not in the log: a `Conflict`, never `Persisted`
/// (which would acknowledge `add(2)`, never written). Sealed, the records differ anyway.
#[test]
fn a_failed_write_whose_last_event_another_writer_wrote_identically_is_a_conflict() {
    for strategy in [Strategy::Full, Strategy::Light] {
        for keys in keys_or_not() {
            let what = format!("{strategy:?}, encrypted: {}", keys.is_some());
            let config = config(strategy);
            let race = overtaken(&config, &config, keys.as_ref(), &[add(10), add(3)]);
            race.assert_conflict(3, &what);
            assert_eq!(
                durable(&race.store, &config, keys.as_ref()),
                vec![1, 10, 3],
                "{what}"
            );
        }
    }
}

/// Our Light append failed before landing; another Light writer (compacting after each
/// snapshot) took our positions with other events that lead to the same state, so its
/// plaintext snapshot at our last seq is byte-identical to the one we would have written, and
/// the events under it are gone. A plaintext snapshot is a function of the state, not of the
/// events: it proves nothing. Unknown (`Failed { landed: None }`), and the journal stops; never
/// `Persisted`. Sealed, the snapshot is another record (its own nonce): the same outcome.
#[test]
fn a_byte_identical_light_snapshot_from_another_writer_proves_nothing() {
    for keys in keys_or_not() {
        let what = format!("encrypted: {}", keys.is_some());
        let config = config(Strategy::Light);
        let compacting = config.clone().compact_on_snapshot(true);
        // Ids 2 and 3 with their amounts swapped: other events, the same state as ours.
        let swapped = [
            Entry::Add { id: 2, amount: 3 },
            Entry::Add { id: 3, amount: 2 },
        ];
        let Overtaken {
            journal,
            store,
            events,
            request,
            ..
        } = overtaken(&config, &compacting, keys.as_ref(), &swapped);
        let s = store.stream(STREAM).unwrap();
        assert!(s.events.is_empty(), "{what}: the events were compacted");
        assert!(s.snapshots.contains_key(&3), "{what}");
        assert!(
            matches!(
                outcome(&events, request),
                Err(PersistError::Failed { landed: None, .. })
            ),
            "{what}: {events:?}"
        );
        assert_eq!(
            journal.stop_reason(),
            Some(&StopReason::Conflict {
                expected: 1,
                actual: 3
            }),
            "{what}"
        );
    }
}

/// The limit of a plaintext journal (see the crate docs): another writer's append of the same
/// events at the same positions leaves exactly the records ours would have, so the re-read
/// takes them for ours and reports `Persisted` (the log holds those events once, as the state
/// does). Sealed, every record has its own nonce: a `Conflict`.
#[test]
fn identical_appends_by_two_writers_are_told_apart_only_when_sealed() {
    for strategy in [Strategy::Full, Strategy::Light] {
        for keys in keys_or_not() {
            let what = format!("{strategy:?}, encrypted: {}", keys.is_some());
            let config = config(strategy);
            let race = overtaken(&config, &config, keys.as_ref(), &[add(2), add(3)]);
            if keys.is_some() {
                race.assert_conflict(3, &what);
            } else {
                assert_eq!(outcome(&race.events, race.request), Ok((2, 3)), "{what}");
                assert_eq!(race.journal.phase(), Phase::Ready, "{what}");
                assert_eq!(race.state, fold(&[1, 2, 3]), "{what}");
            }
            assert_eq!(
                durable(&race.store, &config, keys.as_ref()),
                vec![1, 2, 3],
                "{what}"
            );
        }
    }
}

/// The re-read reads an append's positions in pages of at most the read batch, and compares
/// every one of them. Light, so that the replay (which starts from the newest snapshot, past
/// the append) cannot decide in its place: landed before another writer, `Persisted` then
/// stop; taken over with an identical last event, `Conflict`.
#[test]
fn the_reread_compares_a_long_append_page_by_page() {
    for read_batch in 1..=5 {
        for landed in [true, false] {
            let what = format!("read batch {read_batch}, landed: {landed}");
            let config = config(Strategy::Light).read_batch(read_batch);
            let (mut journal, mut store, mut state) = started(&config, None);
            let (ids, events) = coalesced(
                &mut journal,
                &mut store,
                &mut state,
                &mut |store, command| {
                    if landed {
                        store.execute(STREAM, command).1.expect("the append lands");
                        other_writer(store, &config, None, &[add(10)]);
                    } else {
                        other_writer(store, &config, None, &[add(10), add(11), add(12), add(6)]);
                    }
                    Err(StorageError::Failed("connection lost".into()))
                },
            );
            let outcomes: Vec<_> = ids.iter().map(|&id| outcome(&events, id)).collect();
            if landed {
                assert_eq!(
                    outcomes,
                    vec![Ok((2, 2)), Ok((3, 3)), Ok((4, 5)), Ok((6, 6))],
                    "{what}"
                );
                assert_eq!(
                    journal.stop_reason(),
                    Some(&StopReason::Conflict {
                        expected: 6,
                        actual: 7
                    }),
                    "{what}"
                );
                assert_eq!(state, fold(&[1, 2, 3, 4, 5, 6]), "{what}");
            } else {
                let conflict = Err(PersistError::Conflict {
                    expected: 2,
                    actual: 6,
                });
                assert_eq!(
                    outcomes,
                    vec![Ok((2, 2)), conflict.clone(), conflict.clone(), conflict],
                    "{what}"
                );
                assert_eq!(journal.phase(), Phase::Stopped, "{what}");
                assert_eq!(state, fold(&[1, 2]), "{what}");
            }
        }
    }
}
