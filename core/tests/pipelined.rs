//! Coalesced appends: persist requests queued while a write is in flight go into the next
//! append together (one command), each reported by its own `Persisted`, in request order, with
//! the rollback and fencing semantics of a single request.

mod common;

use std::time::Duration;

use common::{add, fold, harness, Entry, Ledger};
use persevere_core::memory::MemoryStore;
use persevere_core::seal::{Key, KeyId, KeyRing};
use persevere_core::testkit::{Fault, Harness, HarnessError};
use persevere_core::{
    Command, Journal, JournalConfig, JournalEvent, PersistError, Phase, Rejection, RequestId,
    Strategy,
};

const STREAM: &str = "ledger";

fn config() -> JournalConfig {
    JournalConfig::new(STREAM).snapshot_every(None)
}

fn one(id: u32) -> Vec<Entry> {
    vec![add(id)]
}

fn persisted(events: &[JournalEvent]) -> Vec<(RequestId, u64, u64)> {
    events
        .iter()
        .filter_map(|event| match event {
            JournalEvent::Persisted {
                request,
                first_seq,
                last_seq,
            } => Some((*request, *first_seq, *last_seq)),
            _ => None,
        })
        .collect()
}

fn failure(result: &Result<(u64, u64), HarnessError>) -> &PersistError {
    match result {
        Err(HarnessError::Persist(error)) => error,
        other => panic!("expected a persist error, got {other:?}"),
    }
}

/// What one drain of a journal did: each append's (expected last seq, event seqs, record bytes,
/// snapshot seq), and the events reported.
#[derive(Debug, Default)]
struct Drained {
    appends: Vec<(u64, Vec<u64>, usize, Option<u64>)>,
    events: Vec<JournalEvent>,
}

impl Drained {
    /// The event seqs of each append.
    fn seqs(&self) -> Vec<Vec<u64>> {
        self.appends.iter().map(|a| a.1.clone()).collect()
    }
}

/// Recovers a journal over an empty store, makes every request (the first starts at once, the
/// others queue behind it), then drains it; returns the request ids and what the drain did.
fn drive(config: JournalConfig, requests: Vec<Vec<Entry>>) -> (Vec<RequestId>, Drained, Ledger) {
    let mut store = MemoryStore::new();
    let mut state = Ledger::default();
    let mut journal = Journal::<Ledger>::new(config, Ledger::default);
    let mut drained = Drained::default();
    run(&mut journal, &mut store, &mut state, &mut drained);
    drained = Drained::default();
    let ids = requests
        .into_iter()
        .map(|events| {
            journal
                .handle_persist_all(events, &mut state)
                .expect("accepted")
        })
        .collect();
    run(&mut journal, &mut store, &mut state, &mut drained);
    (ids, drained, state)
}

fn run(
    journal: &mut Journal<Ledger>,
    store: &mut MemoryStore,
    state: &mut Ledger,
    drained: &mut Drained,
) {
    loop {
        drained
            .events
            .extend(std::iter::from_fn(|| journal.poll_event()));
        let Some(command) = journal.poll_command() else {
            break;
        };
        if let Command::Append {
            expected_last,
            events,
            snapshot,
            ..
        } = &command
        {
            drained.appends.push((
                *expected_last,
                events.iter().map(|r| r.seq).collect(),
                events.iter().map(|r| r.bytes.len()).sum(),
                snapshot.as_ref().map(|s| s.seq),
            ));
        }
        let (id, result) = store.execute(STREAM, command);
        journal
            .handle_completion(Duration::ZERO, id, result, state)
            .expect("the completion of the command in flight");
    }
}

#[test]
fn requests_queued_behind_an_append_go_into_one_append_with_one_persisted_each() {
    let (ids, drained, state) = drive(config(), vec![one(1), one(2), vec![add(3), add(4)], one(5)]);
    assert_eq!(
        drained
            .appends
            .iter()
            .map(|a| (a.0, a.1.clone()))
            .collect::<Vec<_>>(),
        vec![(0, vec![1]), (1, vec![2, 3, 4, 5])],
        "the first goes at once, the three queued behind it in one command"
    );
    assert_eq!(
        persisted(&drained.events),
        vec![
            (ids[0], 1, 1),
            (ids[1], 2, 2),
            (ids[2], 3, 4),
            (ids[3], 5, 5)
        ],
        "one Persisted per request, in request order"
    );
    assert_eq!(state, fold(&[1, 2, 3, 4, 5]));
}

#[test]
fn coalesced_requests_are_recovered_after_a_crash() {
    let mut h = harness(config());
    let before = h.commands_executed();
    let results = h.persist_queued([one(1), one(2), vec![add(3), add(4)]]);
    assert_eq!(results, vec![Ok((1, 1)), Ok((2, 2)), Ok((3, 4))]);
    assert_eq!(h.commands_executed() - before, 2, "two appends");
    h.crash();
    assert_eq!(h.restart().unwrap(), &fold(&[1, 2, 3, 4]));
}

#[test]
fn a_request_apply_refuses_is_rejected_alone_and_the_others_go() {
    let mut h = harness(config());
    let before = h.commands_executed();
    let results = h.persist_queued([one(1), one(2), vec![Entry::Refused], one(3)]);
    assert_eq!(results[0], Ok((1, 1)));
    assert_eq!(results[1], Ok((2, 2)));
    assert!(matches!(
        failure(&results[2]),
        PersistError::Rejected(Rejection::Refused(_))
    ));
    assert_eq!(
        results[3],
        Ok((3, 3)),
        "no seq taken by the refused request"
    );
    assert_eq!(h.commands_executed() - before, 2, "no rebuild, two appends");
    assert_eq!(h.state(), &fold(&[1, 2, 3]));
    h.crash();
    assert_eq!(h.restart().unwrap(), &fold(&[1, 2, 3]));
}

#[test]
fn a_refusal_after_a_queued_requests_first_event_undoes_it_alone() {
    let (ids, drained, state) = drive(
        config(),
        vec![one(1), one(2), vec![add(3), Entry::Refused], one(4)],
    );
    assert!(drained.events.iter().any(|e| matches!(
        e,
        JournalEvent::PersistFailed { request, error: PersistError::Rejected(Rejection::Refused(_)) }
            if *request == ids[2]
    )));
    assert_eq!(
        persisted(&drained.events),
        vec![(ids[0], 1, 1), (ids[1], 2, 2), (ids[3], 3, 3)]
    );
    assert_eq!(
        drained.seqs(),
        vec![vec![1], vec![2, 3]],
        "the requests around the refused one still share an append"
    );
    assert_eq!(
        state,
        fold(&[1, 2, 4]),
        "its first event undone, nothing twice"
    );
}

/// Requests rejected alone before a request refused after its first event (which rebuilds the
/// state and re-queues the requests taken before it) are answered once, never taken again.
#[test]
fn every_queued_request_is_answered_exactly_once_around_a_rebuild() {
    let (ids, drained, state) = drive(
        config(),
        vec![
            one(1),
            one(2),
            vec![Entry::Refused],
            one(3),
            vec![add(4), Entry::Refused],
            one(5),
        ],
    );
    for id in &ids {
        let answers = drained
            .events
            .iter()
            .filter(|e| {
                matches!(e, JournalEvent::Persisted { request, .. }
                    | JournalEvent::PersistFailed { request, .. } if request == id)
            })
            .count();
        assert_eq!(
            answers, 1,
            "{id} answered {answers} times: {:?}",
            drained.events
        );
    }
    assert_eq!(
        persisted(&drained.events),
        vec![
            (ids[0], 1, 1),
            (ids[1], 2, 2),
            (ids[3], 3, 3),
            (ids[5], 4, 4)
        ]
    );
    assert_eq!(state, fold(&[1, 2, 3, 5]));
}

#[test]
fn a_rejected_coalesced_append_fails_every_request_in_it_and_restores_the_state() {
    let mut h = harness(config());
    let next = h.commands_executed() + 1;
    h.fault_at(next + 1, Fault::Reject);
    let results = h.persist_queued([one(1), one(2), vec![add(3), add(4)]]);
    assert_eq!(results[0], Ok((1, 1)));
    for result in &results[1..] {
        assert!(matches!(
            failure(result),
            PersistError::Rejected(Rejection::Storage(_))
        ));
    }
    assert_eq!(h.state(), &fold(&[1]));
    assert_eq!(h.journal().unwrap().last_seq(), 1);
    assert_eq!(h.persist(add(5)).unwrap(), (2, 2), "the seqs are reused");
    h.crash();
    assert_eq!(h.restart().unwrap(), &fold(&[1, 5]));
}

#[test]
fn a_conflicting_coalesced_append_fails_every_request_and_stops() {
    let mut h = harness(config());
    let next = h.commands_executed() + 1;
    h.fault_at(next + 1, Fault::Conflict);
    let results = h.persist_queued([one(1), one(2), one(3)]);
    assert_eq!(results[0], Ok((1, 1)));
    for result in &results[1..] {
        assert_eq!(
            failure(result),
            &PersistError::Conflict {
                expected: 1,
                actual: 2
            }
        );
    }
    assert_eq!(h.state(), &fold(&[1]), "state as before the batch");
    assert_eq!(h.journal().unwrap().phase(), Phase::Stopped);
    assert_eq!(
        h.store().stream(STREAM).unwrap().head,
        2,
        "never overwritten"
    );
}

#[test]
fn a_coalesced_append_that_failed_and_landed_is_persisted_whole_and_applied_once() {
    for strategy in [Strategy::Full, Strategy::Light] {
        let mut h = harness(config().strategy(strategy));
        let next = h.commands_executed() + 1;
        h.fault_at(next + 1, Fault::FailAfterWrite);
        let results = h.persist_queued([one(1), one(2), vec![add(3), add(4)], one(5)]);
        assert_eq!(
            results,
            vec![Ok((1, 1)), Ok((2, 2)), Ok((3, 4)), Ok((5, 5))],
            "{strategy:?}"
        );
        assert_eq!(h.state(), &fold(&[1, 2, 3, 4, 5]));
        assert_eq!(h.journal().unwrap().phase(), Phase::Ready);
        assert_eq!(h.persist(add(6)).unwrap(), (6, 6));
        h.crash();
        assert_eq!(h.restart().unwrap(), &fold(&[1, 2, 3, 4, 5, 6]));
    }
}

#[test]
fn a_coalesced_append_that_failed_and_did_not_land_fails_every_request_in_it() {
    for strategy in [Strategy::Full, Strategy::Light] {
        let mut h = harness(config().strategy(strategy));
        let next = h.commands_executed() + 1;
        h.fault_at(next + 1, Fault::FailBeforeWrite);
        let results = h.persist_queued([one(1), one(2), vec![add(3), add(4)]]);
        assert_eq!(results[0], Ok((1, 1)));
        for result in &results[1..] {
            assert!(matches!(
                failure(result),
                PersistError::Failed {
                    landed: Some(false),
                    ..
                }
            ));
        }
        assert_eq!(h.state(), &fold(&[1]), "{strategy:?}");
        assert_eq!(h.persist(add(2)).unwrap(), (2, 2), "a retry is safe");
        h.crash();
        assert_eq!(h.restart().unwrap(), &fold(&[1, 2]));
    }
}

#[test]
fn a_crash_in_the_middle_of_a_coalesced_append_keeps_all_of_it_or_none() {
    for (fault, expected) in [
        (Fault::CrashBefore, vec![1]),
        (Fault::CrashAfter, vec![1, 2, 3, 4]),
    ] {
        let mut h = harness(config());
        let next = h.commands_executed() + 1;
        h.fault_at(next + 1, fault);
        let results = h.persist_queued([one(1), one(2), vec![add(3), add(4)]]);
        assert_eq!(results[0], Ok((1, 1)));
        assert!(results[1..]
            .iter()
            .all(|r| r == &Err(HarnessError::Crashed)));
        assert_eq!(h.restart().unwrap(), &fold(&expected), "{fault:?}");
    }
}

#[test]
fn light_writes_one_snapshot_at_the_coalesced_appends_last_seq() {
    let (_, drained, state) = drive(
        config().strategy(Strategy::Light),
        vec![one(1), one(2), vec![add(3), add(4)]],
    );
    assert_eq!(
        drained
            .appends
            .iter()
            .map(|a| (a.1.clone(), a.3))
            .collect::<Vec<_>>(),
        vec![(vec![1], Some(1)), (vec![2, 3, 4], Some(4))]
    );
    assert_eq!(state, fold(&[1, 2, 3, 4]));

    let mut h = harness(config().strategy(Strategy::Light));
    h.persist_queued([one(1), one(2), vec![add(3), add(4)]]);
    h.crash();
    assert_eq!(h.restart().unwrap(), &fold(&[1, 2, 3, 4]));
    assert_eq!(
        h.events().last(),
        Some(&JournalEvent::Recovered {
            last_seq: 4,
            snapshot_seq: Some(4),
            replayed: 0
        })
    );
}

#[test]
fn full_snapshots_every_n_after_a_coalesced_append() {
    let mut h = harness(config().snapshot_every(Some(3)));
    let results = h.persist_queued((1..=5).map(one));
    assert!(results.iter().all(Result::is_ok));
    let snapshots: Vec<u64> = h
        .store()
        .stream(STREAM)
        .unwrap()
        .snapshots
        .keys()
        .copied()
        .collect();
    assert_eq!(snapshots, vec![5], "one snapshot, at the batch's last seq");
    h.crash();
    assert_eq!(h.restart().unwrap(), &fold(&[1, 2, 3, 4, 5]));
}

#[test]
fn a_snapshot_request_is_a_barrier_between_coalesced_appends() {
    let mut store = MemoryStore::new();
    let mut state = Ledger::default();
    let mut journal = Journal::<Ledger>::new(config(), Ledger::default);
    let mut drained = Drained::default();
    run(&mut journal, &mut store, &mut state, &mut drained);
    journal.handle_persist(add(1), &mut state).unwrap();
    journal.handle_persist(add(2), &mut state).unwrap();
    journal.handle_persist(add(3), &mut state).unwrap();
    let snapshot = journal.handle_snapshot_request(&mut state).unwrap();
    journal.handle_persist(add(4), &mut state).unwrap();
    let mut drained = Drained::default();
    run(&mut journal, &mut store, &mut state, &mut drained);
    assert_eq!(drained.seqs(), vec![vec![1], vec![2, 3], vec![4]]);
    assert!(drained.events.contains(&JournalEvent::SnapshotSaved {
        request: Some(snapshot),
        seq: 3
    }));
}

#[test]
fn coalesced_appends_are_capped_in_events() {
    let requests = vec![
        one(1),
        one(2),
        one(3),
        one(4),
        one(5),
        vec![add(6), add(7), add(8)],
        one(9),
    ];
    let (ids, drained, state) = drive(config().max_append(2, usize::MAX), requests);
    assert_eq!(
        drained.seqs(),
        vec![vec![1], vec![2, 3], vec![4, 5], vec![6, 7, 8], vec![9]],
        "at most two events, unless one request alone is larger (never split)"
    );
    assert_eq!(persisted(&drained.events).len(), ids.len());
    assert_eq!(state, fold(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert_eq!(config().max_append_size(), (1024, 4 << 20), "the defaults");
}

#[test]
fn coalesced_appends_are_capped_in_bytes() {
    let (_, uncapped, _) = drive(config(), vec![one(1), one(2)]);
    let record = uncapped.appends[0].2;
    let (ids, drained, state) = drive(
        config().max_append(usize::MAX, 2 * record + record / 2),
        (1..=6).map(one).collect(),
    );
    assert_eq!(
        drained.seqs(),
        vec![vec![1], vec![2, 3], vec![4, 5], vec![6]]
    );
    assert!(drained
        .appends
        .iter()
        .all(|a| a.2 <= 2 * record + record / 2));
    assert_eq!(
        persisted(&drained.events),
        ids.iter()
            .zip(1..)
            .map(|(&id, seq)| (id, seq, seq))
            .collect::<Vec<_>>()
    );
    assert_eq!(state, fold(&[1, 2, 3, 4, 5, 6]));

    // A request alone larger than the cap still goes, whole and alone.
    let (ids, drained, state) = drive(
        config().max_append(usize::MAX, record / 2),
        vec![one(1), vec![add(2), add(3)], one(4)],
    );
    assert_eq!(drained.seqs(), vec![vec![1], vec![2, 3], vec![4]]);
    assert_eq!(persisted(&drained.events).len(), ids.len());
    assert_eq!(state, fold(&[1, 2, 3, 4]));
}

#[test]
fn a_cap_of_one_turns_coalescing_off() {
    let (_, drained, _) = drive(
        config().max_append(1, usize::MAX),
        (1..=3).map(one).collect(),
    );
    assert_eq!(drained.appends.len(), 3);
}

#[test]
fn coalesced_appends_of_an_encrypted_journal_chain_and_recover() {
    let keys = std::sync::Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([9; 32])));
    let mut h = Harness::<Ledger>::encrypted(config(), Ledger::default, keys, 3);
    let results = h.persist_queued([one(1), one(2), vec![add(3), add(4)], one(5)]);
    assert!(results.iter().all(Result::is_ok));
    h.crash();
    assert_eq!(h.restart().unwrap(), &fold(&[1, 2, 3, 4, 5]));
    assert_eq!(h.persist(add(6)).unwrap(), (6, 6));
    h.crash();
    assert_eq!(h.restart().unwrap(), &fold(&[1, 2, 3, 4, 5, 6]));
}
