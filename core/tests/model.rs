//! A property test of the journal against a model: random sequences of persist, persist_all,
//! refused events, snapshots, compaction, injected faults (records reported damaged among
//! them), crashes and restarts, under random configurations — and several persist requests
//! queued between two drains, coalesced into shared appends (capped at random), with faults,
//! crashes and conflicts landing in the middle of a coalesced append. After every step:
//!
//! - every acknowledged event is recovered, and no rolled-back event is ever visible;
//! - sequence numbers are contiguous (the last seq is the number of acknowledged events);
//! - the state equals the fold of the acknowledged events, each applied exactly once;
//! - no request is acknowledged that is not durable: after a crash or an unknown outcome, the
//!   log holds the acknowledged events followed by whole unanswered requests, in order (the one
//!   append in flight landed entirely or not at all), never part of a request.
//!
//! The runner uses a fixed seed; a failure prints the seed and the minimal failing case.

mod common;

use common::{add, fold, Entry, Ledger};
use persevere_core::record::{self};
use persevere_core::testkit::{Fault, Harness, HarnessError};
use persevere_core::{JournalConfig, PersistError, Phase, StopReason, Strategy as Persistence};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const STREAM: &str = "model";
const SEED: [u8; 32] = *b"persevere-core-model-test-seed-1";

#[derive(Debug, Clone)]
enum Action {
    Persist,
    PersistAll(u8),
    Refused,
    BatchEndingRefused(u8),
    Snapshot,
    Restart,
    /// Several requests made before the journal is drained: the first starts at once, the
    /// others queue behind it and are coalesced.
    Queued(Vec<Queued>),
}

/// One request of a [`Action::Queued`] step.
#[derive(Debug, Clone, Copy)]
enum Queued {
    Persist,
    PersistAll(u8),
    Refused,
    BatchEndingRefused(u8),
}

#[derive(Debug, Clone)]
struct Step {
    action: Action,
    /// A fault at the `n`-th command of this step (0 = the first).
    fault: Option<(u8, Fault)>,
    /// Another writer appends just before this step's first write (a queued step: before its
    /// write number `conflict_skip`, from 0, so often inside a coalesced append).
    conflict: bool,
    conflict_skip: u8,
}

#[derive(Debug, Clone)]
struct Setup {
    strategy: Persistence,
    snapshot_every: Option<u64>,
    compact: bool,
    keep: Option<usize>,
    housekeep_every: u64,
    read_batch: usize,
    /// The cap on coalesced appends (events, bytes), if not the default.
    max_append: Option<(usize, usize)>,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![Just(Persistence::Full), Just(Persistence::Light)],
        prop_oneof![Just(None), (1u64..6).prop_map(Some)],
        any::<bool>(),
        prop_oneof![Just(None), (1usize..3).prop_map(Some)],
        1u64..4,
        1usize..6,
        prop::option::of((
            1usize..5,
            prop_oneof![Just(1usize), Just(64), Just(200), Just(usize::MAX)],
        )),
    )
        .prop_map(
            |(strategy, snapshot_every, compact, keep, housekeep_every, read_batch, max_append)| {
                Setup {
                    strategy,
                    snapshot_every,
                    compact,
                    keep,
                    housekeep_every,
                    read_batch,
                    max_append,
                }
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    let action = prop_oneof![
        6 => Just(Action::Persist),
        3 => (2u8..5).prop_map(Action::PersistAll),
        1 => Just(Action::Refused),
        1 => (1u8..4).prop_map(Action::BatchEndingRefused),
        2 => Just(Action::Snapshot),
        1 => Just(Action::Restart),
        4 => prop::collection::vec(
            prop_oneof![
                6 => Just(Queued::Persist),
                3 => (2u8..5).prop_map(Queued::PersistAll),
                1 => Just(Queued::Refused),
                1 => (1u8..4).prop_map(Queued::BatchEndingRefused),
            ],
            2..8,
        )
        .prop_map(Action::Queued),
    ];
    let fault = prop_oneof![
        Just(Fault::Reject),
        Just(Fault::FailBeforeWrite),
        Just(Fault::FailAfterWrite),
        Just(Fault::CrashBefore),
        Just(Fault::CrashAfter),
        Just(Fault::Damaged),
    ];
    (
        action,
        prop::option::weighted(0.3, (0u8..5, fault)),
        prop::bool::weighted(0.06),
        0u8..3,
    )
        .prop_map(|(action, fault, conflict, conflict_skip)| Step {
            action,
            fault,
            conflict,
            conflict_skip,
        })
}

struct Model {
    harness: Harness<Ledger>,
    acked: Vec<u32>,
    next_id: u32,
}

impl Model {
    /// Restarts until recovery succeeds (injected faults may hit the first attempts), then
    /// checks the recovered state against the model, allowing the unanswered `pending`
    /// requests (their event ids, in request order) to have landed or not: the log may hold
    /// the first `k` of them, whole, after the acknowledged events, and nothing else.
    fn restart(&mut self, pending: &[Vec<u32>]) -> Result<(), TestCaseError> {
        let mut attempts = 0;
        let recovered = loop {
            attempts += 1;
            match self.harness.restart() {
                Ok(state) => break state.clone(),
                Err(HarnessError::Crashed) if attempts < 10 => continue,
                Err(HarnessError::Recovery(persevere_core::RecoveryError::Storage(_)))
                    if attempts < 10 => {}
                // A read answered `Damaged` (an injected fault, not damage in the store): a
                // recovery error only when no fallback exists, and gone on the next attempt.
                Err(HarnessError::Recovery(
                    persevere_core::RecoveryError::SnapshotUnrecoverable { reason, .. }
                    | persevere_core::RecoveryError::Decode { reason, .. },
                )) if attempts < 10 && reason.contains("damaged record") => {}
                Err(other) => return Err(TestCaseError::fail(format!("restart failed: {other}"))),
            }
        };
        let mut with_pending = self.acked.clone();
        let mut candidates = vec![with_pending.clone()];
        for request in pending {
            with_pending.extend(request);
            candidates.push(with_pending.clone());
        }
        if let Some(landed) = candidates.into_iter().find(|c| *c == recovered.ids) {
            self.acked = landed;
        } else {
            return Err(TestCaseError::fail(format!(
                "recovered {:?}, acknowledged {:?}, in flight {:?}",
                recovered.ids, self.acked, pending
            )));
        }
        prop_assert_eq!(recovered, fold(&self.acked));
        Ok(())
    }

    /// Removes another writer's events (recognised by their foreign codec) so the stream is
    /// ours again.
    fn remove_other_writer(&mut self) {
        let stream = self.harness.store_mut().stream_mut(STREAM);
        let before = stream.events.len();
        stream
            .events
            .retain(|_, bytes| record::decode(bytes).map_or(true, |r| r.header.codec != 0));
        // Nothing can append after the other writer's event (it would conflict), so its event
        // is the head.
        stream.head -= (before - stream.events.len()) as u64;
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let Some(journal) = self.harness.journal() else {
            return Ok(());
        };
        if journal.phase() == Phase::Stopped {
            return Ok(());
        }
        prop_assert_eq!(self.harness.state(), &fold(&self.acked));
        prop_assert_eq!(journal.last_seq(), self.acked.len() as u64);
        Ok(())
    }

    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        self.harness.clear_faults();
        if let Some((offset, fault)) = step.fault {
            let at = self.harness.commands_executed() + 1 + u64::from(offset);
            self.harness.fault_at(at, fault);
        }
        if step.conflict {
            self.harness.fault_next_write(Fault::Conflict);
        }
        let mut fresh = |n: u8| -> Vec<u32> {
            (0..n)
                .map(|_| {
                    self.next_id += 1;
                    self.next_id
                })
                .collect()
        };
        let (pending, outcome) = match step.action {
            Action::Persist => {
                let ids = fresh(1);
                let outcome = self.harness.persist(add(ids[0])).map(|_| ());
                (ids, outcome)
            }
            Action::PersistAll(n) => {
                let ids = fresh(n);
                let outcome = self
                    .harness
                    .persist_all(ids.iter().map(|&id| add(id)))
                    .map(|_| ());
                (ids, outcome)
            }
            Action::Refused => (Vec::new(), self.harness.persist(Entry::Refused).map(|_| ())),
            Action::BatchEndingRefused(n) => {
                let ids = fresh(n);
                let events = ids.iter().map(|&id| add(id)).chain([Entry::Refused]);
                (Vec::new(), self.harness.persist_all(events).map(|_| ()))
            }
            Action::Snapshot => (Vec::new(), self.harness.snapshot().map(|_| ())),
            Action::Restart => {
                self.harness.crash();
                return self.restart(&[]);
            }
            Action::Queued(ref requests) => return self.run_queued(step, requests),
        };
        if step.conflict {
            // Another writer appended before this step's first write; whatever our journal did,
            // take its event away again so the stream is ours for the next steps.
            // (Unless rebuilding the state failed: the journal then stops for that reason and
            // the state is to be discarded.)
            let rebuilt = self
                .harness
                .journal()
                .and_then(|j| j.stop_reason())
                .is_none_or(|reason| matches!(reason, StopReason::Conflict { .. }));
            if rebuilt
                && matches!(
                    outcome,
                    Err(HarnessError::Persist(PersistError::Conflict { .. }))
                )
            {
                prop_assert_eq!(self.harness.state(), &fold(&self.acked));
            }
            self.remove_other_writer();
        }
        match outcome {
            Ok(()) => self.acked.extend(&pending),
            Err(HarnessError::Persist(PersistError::Rejected(_)))
            | Err(HarnessError::Persist(PersistError::Failed {
                landed: Some(false),
                ..
            }))
            | Err(HarnessError::Snapshot(_)) => {}
            Err(HarnessError::Persist(PersistError::Conflict { .. })) => {
                self.harness.crash();
                return self.restart(&[]);
            }
            Err(HarnessError::Persist(PersistError::Failed { landed: None, .. }))
            | Err(HarnessError::Crashed) => {
                self.harness.crash();
                return self.restart(std::slice::from_ref(&pending));
            }
            Err(other) => return Err(TestCaseError::fail(format!("unexpected: {other}"))),
        }
        if step.conflict {
            // The other writer's event went in before a snapshot or housekeeping command, which
            // does not check the head; the journal learns of it at its next append or restart.
            self.harness.crash();
            return self.restart(&[]);
        }
        self.check()
    }

    /// A [`Action::Queued`] step: the requests are made before the journal is drained.
    fn run_queued(&mut self, step: &Step, requests: &[Queued]) -> Result<(), TestCaseError> {
        if step.conflict {
            // `run` queued the conflict at the next write: move it to a later one.
            self.harness.clear_faults();
            if let Some((offset, fault)) = step.fault {
                let at = self.harness.commands_executed() + 1 + u64::from(offset);
                self.harness.fault_at(at, fault);
            }
            self.harness
                .fault_write_after(usize::from(step.conflict_skip), Fault::Conflict);
        }
        // Each request's events, the ids it adds if acknowledged, and whether `apply` refuses it.
        let mut made = Vec::new();
        for request in requests {
            let mut fresh = |n: u8| -> Vec<u32> {
                (0..n)
                    .map(|_| {
                        self.next_id += 1;
                        self.next_id
                    })
                    .collect()
            };
            made.push(match *request {
                Queued::Persist => {
                    let ids = fresh(1);
                    (vec![add(ids[0])], ids, false)
                }
                Queued::PersistAll(n) => {
                    let ids = fresh(n);
                    (ids.iter().map(|&id| add(id)).collect(), ids, false)
                }
                Queued::Refused => (vec![Entry::Refused], Vec::new(), true),
                Queued::BatchEndingRefused(n) => {
                    let ids = fresh(n);
                    let mut events: Vec<Entry> = ids.iter().map(|&id| add(id)).collect();
                    events.push(Entry::Refused);
                    (events, Vec::new(), true)
                }
            });
        }
        let results = self
            .harness
            .persist_queued(made.iter().map(|(events, _, _)| events.clone()));
        // Unanswered requests (crash, unknown outcome) that may have landed, in order.
        let mut unknown: Vec<Vec<u32>> = Vec::new();
        let mut conflict = false;
        for ((_, ids, refused), result) in made.into_iter().zip(results) {
            match result {
                Ok(_) if refused => {
                    return Err(TestCaseError::fail(
                        "a request apply refuses was acknowledged",
                    ))
                }
                Ok(_) if !unknown.is_empty() || conflict => {
                    return Err(TestCaseError::fail(
                        "a request acknowledged after an earlier one's outcome was unknown",
                    ))
                }
                Ok(_) => self.acked.extend(ids),
                Err(HarnessError::Persist(PersistError::Rejected(_)))
                | Err(HarnessError::Persist(PersistError::Failed {
                    landed: Some(false),
                    ..
                })) => {}
                Err(HarnessError::Persist(PersistError::Conflict { .. })) => conflict = true,
                Err(HarnessError::Persist(PersistError::Failed { landed: None, .. }))
                | Err(HarnessError::Crashed) => {
                    if !refused {
                        unknown.push(ids);
                    }
                }
                Err(other) => return Err(TestCaseError::fail(format!("unexpected: {other}"))),
            }
        }
        if conflict {
            let rebuilt = self
                .harness
                .journal()
                .and_then(|j| j.stop_reason())
                .is_none_or(|reason| matches!(reason, StopReason::Conflict { .. }));
            if rebuilt {
                prop_assert_eq!(self.harness.state(), &fold(&self.acked));
            }
        }
        if step.conflict {
            self.remove_other_writer();
        }
        if conflict || !unknown.is_empty() || step.conflict {
            self.harness.crash();
            return self.restart(&unknown);
        }
        self.check()
    }
}

#[test]
fn the_journal_matches_the_model_under_faults_and_crashes() {
    let config = Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    let steps = prop::collection::vec(step(), 1..40);
    let result = runner.run(&(setup(), steps), |(setup, steps)| {
        let mut config = JournalConfig::new(STREAM)
            .strategy(setup.strategy)
            .snapshot_every(setup.snapshot_every)
            .compact_on_snapshot(setup.compact)
            .housekeep_every(setup.housekeep_every)
            .read_batch(setup.read_batch)
            .reread(3, std::time::Duration::from_millis(5));
        if let Some(keep) = setup.keep {
            config = config.keep_snapshots(keep);
        }
        if let Some((events, bytes)) = setup.max_append {
            config = config.max_append(events, bytes);
        }
        let mut model = Model {
            harness: Harness::new(config, Ledger::default),
            acked: Vec::new(),
            next_id: 0,
        };
        for step in &steps {
            model.run(step)?;
        }
        model.harness.crash();
        model.restart(&[])
    });
    if let Err(error) = result {
        panic!(
            "model test failed with seed {:?}: {error}",
            String::from_utf8_lossy(&SEED)
        );
    }
}
