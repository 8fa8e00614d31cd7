//! The deterministic simulation: many journals over one simulated store, a random workload,
//! faults drawn at per-seed rates, completions delayed and reordered across journals, crashes
//! at any command, and a reference model that checks every outcome.
//!
//! Requests pile up while a journal's command is in flight (and a workload step may make a
//! burst of several at once), so appends often carry several coalesced requests; the model
//! learns which from the append itself (the oldest unresolved requests whose events it holds)
//! and treats them as one atomic write: after a crash or an unknown outcome, all of them landed
//! or none did; none is acknowledged before it is durable, none applied twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use persevere_core::record::{self, RecordHeader, RecordKind};
use persevere_core::seal::{ChaChaRandom, Key, KeyId, KeyRing};
use persevere_core::{
    Borsh, Codec, Command, CommandId, Completion, Journal, JournalConfig, JournalEvent,
    PersistError, Phase, RecoveryError, RequestId, StorageError, StoredRecord, Strategy,
};

use crate::backend::{Backend, Interrupted, StorageKind};
use crate::ledger::{Entry, Ledger};
use crate::rng::SimRng;

/// How often each fault happens, per command of the kind it applies to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    /// A write refused with nothing written.
    pub reject: f64,
    /// A write that fails without landing.
    pub fail_not_landed: f64,
    /// A write that lands, then is reported failed.
    pub fail_landed: f64,
    /// Another writer appends just before an append (plaintext streams), or just after an
    /// append that landed and is then reported failed.
    pub conflict: f64,
    /// A read that fails (reads run during recovery and re-reads).
    pub read_fault: f64,
    /// A crash of the whole process, per scheduling step.
    pub crash: f64,
    /// An IO failure of the disk (file storage only), per scheduling step.
    pub io_fault: f64,
}

impl FaultRates {
    /// No faults at all.
    pub fn none() -> Self {
        Self {
            reject: 0.0,
            fail_not_landed: 0.0,
            fail_landed: 0.0,
            conflict: 0.0,
            read_fault: 0.0,
            crash: 0.0,
            io_fault: 0.0,
        }
    }

    /// Rates drawn for one seed: each fault between 0 and 8 %, crashes between 0 and 2 %.
    pub fn draw(rng: &mut SimRng) -> Self {
        let mut rate = |permille: u64| rng.below(permille + 1) as f64 / 1000.0;
        Self {
            reject: rate(80),
            fail_not_landed: rate(80),
            fail_landed: rate(80),
            conflict: rate(30),
            read_fault: rate(80),
            crash: rate(20),
            io_fault: rate(20),
        }
    }
}

/// A crash planned at an exact command, followed by a fault during the recovery after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Crash when the `crash_at`-th command is about to execute.
    pub crash_at: u64,
    /// Whether the crash keeps every executed write (`true`) or loses every unsynced one.
    pub keep_unsynced: bool,
    /// Fail the `then_fault`-th command executed after the crash (0: none).
    pub then_fault: u64,
}

/// What a run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Faults injected and crashes taken.
    pub fault_points: u64,
    /// Commands executed.
    pub commands: u64,
    /// Events acknowledged persisted.
    pub persisted: u64,
    /// Appends that carried more than one request.
    pub coalesced: u64,
    /// Every broken rule, with the step it was seen at.
    pub violations: Vec<String>,
    /// A digest of everything that happened: the same seed gives the same digest.
    pub digest: u64,
}

enum Flight {
    Idle,
    Issued(Command),
    Executed {
        id: CommandId,
        write: Option<usize>,
        result: Result<Completion, StorageError>,
    },
}

/// A journal for `config`, sealing its records under `keys` if any, with nonces from a
/// generator seeded by `nonces` (a new seed for every journal, so no nonce repeats).
fn open_journal(
    config: &JournalConfig,
    keys: Option<&Arc<KeyRing>>,
    nonces: u64,
) -> Journal<Ledger> {
    let journal = Journal::new(config.clone(), Ledger::default);
    match keys {
        Some(keys) => journal.with_encryption(Arc::clone(keys), ChaChaRandom::from_u64(nonces)),
        None => journal,
    }
}

struct Slot {
    stream: Arc<str>,
    config: JournalConfig,
    /// The key ring of an encrypted stream.
    keys: Option<Arc<KeyRing>>,
    journal: Journal<Ledger>,
    state: Ledger,
    flight: Flight,
    /// The ids durable in the stream, in seq order (ours and another writer's).
    truth: Vec<u32>,
    /// Requests not yet resolved, with their ids.
    pending: BTreeMap<RequestId, Vec<u32>>,
    /// The requests whose (one, atomic) append was sent and not yet resolved, in order.
    appending: Vec<RequestId>,
    /// Ids that may or may not have landed (a write cut short by a crash or left unresolved):
    /// all of them or none.
    maybe: Vec<u32>,
    /// Requests whose append landed (then was reported failed) before another writer
    /// appended: their ids are in `truth` already, and they must be reported persisted.
    durable_early: Vec<RequestId>,
    /// Every request of this journal answered so far (each must be answered once).
    answered: BTreeSet<RequestId>,
    recovering: bool,
}

impl Slot {
    fn new(
        stream: Arc<str>,
        config: JournalConfig,
        keys: Option<Arc<KeyRing>>,
        nonces: u64,
    ) -> Self {
        Self {
            journal: open_journal(&config, keys.as_ref(), nonces),
            stream,
            config,
            keys,
            state: Ledger::default(),
            flight: Flight::Idle,
            truth: Vec::new(),
            pending: BTreeMap::new(),
            appending: Vec::new(),
            maybe: Vec::new(),
            durable_early: Vec::new(),
            answered: BTreeSet::new(),
            recovering: true,
        }
    }

    /// A new process: a fresh journal (with a fresh nonce seed) and state over the same stream.
    fn restart(&mut self, nonces: u64) {
        // The append in flight landed whole or not at all.
        let appending = std::mem::take(&mut self.appending);
        if !appending.iter().any(|r| self.durable_early.contains(r)) {
            let maybe: Vec<u32> = appending
                .iter()
                .filter_map(|request| self.pending.get(request))
                .flatten()
                .copied()
                .collect();
            if !maybe.is_empty() {
                self.maybe = maybe;
            }
        }
        self.durable_early.clear();
        self.answered.clear();
        self.pending.clear();
        self.journal = open_journal(&self.config, self.keys.as_ref(), nonces);
        self.state = Ledger::default();
        self.flight = Flight::Idle;
        self.recovering = true;
    }
}

/// A seeded simulation run.
pub struct Simulation {
    rng: SimRng,
    rates: FaultRates,
    plan: Option<Plan>,
    backend: Backend,
    slots: Vec<Slot>,
    now: Duration,
    step: u64,
    next_id: u32,
    fault_after: Option<u64>,
    /// Another writer's append whose outcome is unknown: (slot, event id, seq).
    foreign_unknown: Option<(usize, u32, u64)>,
    /// A journal that will never settle was seen: the run stops at once.
    stalled: bool,
    report: Report,
}

/// How many rounds [`Simulation::run`]'s final drains may take before the journals are
/// declared never to settle.
pub const DRAIN_STEPS: u64 = 20_000;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(digest: u64, text: &str) -> u64 {
    text.bytes().fold(digest, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A short, byte-free description of a command for the digest.
fn summary(slot: usize, command: &Command) -> String {
    match command {
        Command::LoadSnapshot { before, .. } => format!("{slot}:load<{before:?}"),
        Command::ReadEvents { from, limit, .. } => format!("{slot}:read{from}+{limit}"),
        Command::Append {
            expected_last,
            events,
            snapshot,
            ..
        } => format!(
            "{slot}:append{expected_last}+{}{}",
            events.len(),
            if snapshot.is_some() { "s" } else { "" }
        ),
        Command::SaveSnapshot { snapshot, .. } => format!("{slot}:snap{}", snapshot.seq),
        Command::DeleteEvents { up_to, .. } => format!("{slot}:compact{up_to}"),
        Command::DeleteSnapshots { keep, .. } => format!("{slot}:prune{keep}"),
        other => format!("{slot}:{:?}", other.id()),
    }
}

impl Simulation {
    /// A simulation of `journals` journals whose configuration (strategy, snapshot cadence,
    /// compaction, retention, page size) is drawn from `seed`.
    pub fn new(seed: u64, journals: usize, rates: FaultRates) -> Self {
        let mut rng = SimRng::new(seed);
        let slots = (0..journals)
            .map(|i| {
                let mut config = JournalConfig::new(format!("entity/{i}"))
                    .strategy(if rng.chance(0.3) {
                        Strategy::Light
                    } else {
                        Strategy::Full
                    })
                    .snapshot_every([None, Some(1), Some(3), Some(7)][rng.below(4) as usize])
                    .compact_on_snapshot(rng.chance(0.5))
                    .housekeep_every(rng.between(1, 3))
                    .read_batch(rng.between(1, 8) as usize)
                    .reread(4, Duration::from_millis(20));
                if rng.chance(0.5) {
                    config = config.keep_snapshots(rng.between(1, 3) as usize);
                }
                if rng.chance(0.3) {
                    // A small cap on coalesced appends (events, bytes of records).
                    let bytes = [48, 160, usize::MAX][rng.below(3) as usize];
                    config = config.max_append(rng.between(1, 6) as usize, bytes);
                }
                let keys = rng
                    .chance(0.4)
                    .then(|| Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([i as u8; 32]))));
                let nonces = rng.next_u64();
                Slot::new(Arc::from(config.stream()), config, keys, nonces)
            })
            .collect();
        Self {
            rng,
            rates,
            plan: None,
            backend: Backend::new(StorageKind::Reference),
            slots,
            now: Duration::ZERO,
            step: 0,
            next_id: 0,
            fault_after: None,
            foreign_unknown: None,
            stalled: false,
            report: Report {
                digest: FNV_OFFSET,
                ..Report::default()
            },
        }
    }

    /// Runs on `kind` of storage instead of the reference store.
    pub fn with_storage(mut self, kind: StorageKind) -> Self {
        self.backend = Backend::new(kind);
        self
    }

    /// Adds a planned crash (used by the exhaustive sweep).
    pub fn with_plan(mut self, plan: Plan) -> Self {
        self.plan = Some(plan);
        self
    }

    /// Runs `steps` scheduling steps, then drains, restarts everything cleanly and checks the
    /// final state.
    ///
    /// Bounded: a journal that ignores its due timeout, or journals that do not go quiet within
    /// [`DRAIN_STEPS`] once faults stop, end the run at once with a violation (so a seed that
    /// never settles fails fast instead of running until a CI time limit).
    pub fn run(mut self, steps: u64) -> Report {
        for i in 0..self.slots.len() {
            self.pump(i);
        }
        for _ in 0..steps {
            if self.stalled {
                return self.report;
            }
            self.step += 1;
            self.schedule();
        }
        self.rates = FaultRates::none();
        self.plan = None;
        self.fault_after = None;
        self.drain();
        if self.stalled {
            return self.report;
        }
        self.crash(Some(true));
        self.drain();
        if self.stalled {
            return self.report;
        }
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            let ids = format!("{:?}", slot.state.ids);
            if slot.state.ids != slot.truth {
                let what = format!(
                    "{}: final state {ids} is not the durable stream {:?}",
                    slot.stream, slot.truth
                );
                self.violation(what);
            }
            self.report.digest = fnv(self.report.digest, &ids);
        }
        self.report
    }

    fn violation(&mut self, what: String) {
        self.report
            .violations
            .push(format!("step {}: {what}", self.step));
    }

    fn schedule(&mut self) {
        if self.rng.chance(self.rates.crash) {
            self.report.fault_points += 1;
            self.crash(None);
            return;
        }
        if self.rng.chance(self.rates.io_fault) {
            self.report.fault_points += 1;
            self.backend.fail_soon(&mut self.rng);
        }
        let slot = self.rng.below(self.slots.len() as u64) as usize;
        match self.rng.below(100) {
            0..=29 => self.workload(slot),
            30..=64 => self.execute(slot),
            65..=94 => self.deliver(slot),
            _ => self.tick(),
        }
    }

    fn fresh(&mut self, n: u64) -> Vec<u32> {
        (0..n)
            .map(|_| {
                self.next_id += 1;
                self.next_id
            })
            .collect()
    }

    /// Makes one request to slot `i` or, one time in five, a burst of two to six made before
    /// the journal is drained (they queue behind the command in flight and are coalesced).
    fn workload(&mut self, i: usize) {
        let burst = if self.rng.chance(0.2) {
            self.rng.between(2, 6)
        } else {
            1
        };
        for _ in 0..burst {
            self.request(i);
        }
        self.pump(i);
    }

    fn request(&mut self, i: usize) {
        let choice = self.rng.below(100);
        let ids = match choice {
            0..=49 => self.fresh(1),
            50..=74 => {
                let n = self.rng.between(2, 4);
                self.fresh(n)
            }
            _ => Vec::new(),
        };
        let slot = &mut self.slots[i];
        let state = &mut slot.state;
        let result = match choice {
            0..=49 => slot.journal.handle_persist(Entry::Add(ids[0]), state),
            50..=74 => slot
                .journal
                .handle_persist_all(ids.iter().map(|&id| Entry::Add(id)), state),
            75..=79 => slot.journal.handle_persist(Entry::Refused, state),
            80..=84 => slot
                .journal
                .handle_persist_all([Entry::Add(u32::MAX), Entry::Refused], state),
            _ => slot.journal.handle_snapshot_request(state),
        };
        match result {
            Ok(request) => {
                if choice < 75 {
                    slot.pending.insert(request, ids);
                }
            }
            Err(error) => {
                let stream = slot.stream.clone();
                self.violation(format!("{stream}: request refused at once: {error}"));
            }
        }
    }

    fn execute(&mut self, i: usize) {
        if !matches!(self.slots[i].flight, Flight::Issued(_)) {
            return;
        }
        let Flight::Issued(command) = std::mem::replace(&mut self.slots[i].flight, Flight::Idle)
        else {
            return;
        };
        self.report.commands += 1;
        let n = self.report.commands;
        self.report.digest = fnv(self.report.digest, &summary(i, &command));
        if let Some(plan) = self.plan.filter(|p| p.crash_at == n) {
            self.report.fault_points += 1;
            if plan.then_fault > 0 {
                self.fault_after = Some(n + plan.then_fault);
            }
            if self.crash(Some(plan.keep_unsynced)) {
                return;
            }
        }
        let forced = self.fault_after == Some(n);
        let stream = Arc::clone(&self.slots[i].stream);
        let id = command.id();
        let (write, result) = if command.is_write() {
            self.execute_write(i, &stream, command, forced)
        } else if forced || self.rng.chance(self.rates.read_fault) {
            self.report.fault_points += 1;
            (
                None,
                Err(StorageError::Failed("injected read fault".into())),
            )
        } else {
            self.backend.execute(&stream, command)
        };
        match self.backend.check(&mut self.rng) {
            Interrupted::No => self.slots[i].flight = Flight::Executed { id, write, result },
            Interrupted::Restarted => self.restart_all(),
            Interrupted::Unrecoverable(why) => {
                self.violation(format!("storage cannot be reopened: {why}"));
                self.backend = Backend::new(StorageKind::Reference);
                self.restart_all();
            }
        }
    }

    fn execute_write(
        &mut self,
        i: usize,
        stream: &Arc<str>,
        command: Command,
        forced: bool,
    ) -> (Option<usize>, Result<Completion, StorageError>) {
        let rates = self.rates;
        if forced || self.rng.chance(rates.fail_not_landed) {
            self.report.fault_points += 1;
            return (
                None,
                Err(StorageError::Failed("injected: not landed".into())),
            );
        }
        if self.rng.chance(rates.reject) {
            self.report.fault_points += 1;
            return (None, Err(StorageError::Rejected("injected".into())));
        }
        // Another writer of a sealed stream would need the chain value as well as the key: the
        // conflict faults are for plaintext streams.
        let plaintext = self.slots[i].keys.is_none();
        if self.rng.chance(rates.fail_landed) {
            self.report.fault_points += 1;
            let append = matches!(command, Command::Append { .. });
            let (write, result) = self.backend.execute(stream, command);
            if result.is_ok() && append && plaintext && self.rng.chance(rates.conflict) {
                // Ours landed, then another writer appends before the journal re-reads: the
                // journal must report ours persisted (a retry would apply it twice) and stop.
                self.report.fault_points += 1;
                let slot = &mut self.slots[i];
                for request in slot.appending.clone() {
                    if let Some(ids) = slot.pending.get(&request) {
                        slot.truth.extend(ids);
                        slot.durable_early.push(request);
                    }
                }
                self.other_writer_appends(i);
            }
            return (write, Err(StorageError::Failed("injected: landed".into())));
        }
        if plaintext && matches!(command, Command::Append { .. }) && self.rng.chance(rates.conflict)
        {
            self.report.fault_points += 1;
            self.other_writer_appends(i);
        }
        self.backend.execute(stream, command)
    }

    /// Another process appends one valid event to slot `i`'s stream, and syncs it.
    fn other_writer_appends(&mut self, i: usize) {
        self.next_id += 1;
        let id = self.next_id;
        let stream = Arc::clone(&self.slots[i].stream);
        let head = self.backend.head(&stream);
        let mut payload = Vec::new();
        if <Borsh as Codec<Entry>>::encode(&Entry::Add(id), &mut payload).is_err() {
            return self.violation("borsh failed to encode an event".into());
        }
        let header = RecordHeader {
            kind: RecordKind::Event,
            codec: <Borsh as Codec<Entry>>::ID,
            type_version: 1,
            seq: head + 1,
        };
        let append = Command::Append {
            id: CommandId(0),
            expected_last: head,
            events: StoredRecord {
                seq: head + 1,
                bytes: record::encode(header, &payload).into(),
            }
            .into(),
            snapshot: None,
        };
        match self.backend.foreign_write(&stream, append) {
            Ok(_) => self.slots[i].truth.push(id),
            Err(StorageError::Failed(_)) => self.foreign_unknown = Some((i, id, head + 1)),
            Err(error) => self.violation(format!("{stream}: the other writer failed: {error}")),
        }
    }

    /// Learns, as the other writer would after a restart, whether its append landed.
    fn resolve_foreign_write(&mut self) {
        let Some((i, id, seq)) = self.foreign_unknown.take() else {
            return;
        };
        let stream = Arc::clone(&self.slots[i].stream);
        let read = Command::ReadEvents {
            id: CommandId(0),
            from: seq,
            limit: 1,
        };
        let landed = match self.backend.execute(&stream, read).1 {
            Ok(Completion::Events { records, .. }) => records.first().is_some_and(|r| {
                r.seq == seq
                    && record::decode(&r.bytes).is_ok_and(|rec| {
                        <Borsh as Codec<Entry>>::decode(rec.payload).ok() == Some(Entry::Add(id))
                    })
            }),
            _ => false,
        };
        if landed {
            self.slots[i].truth.push(id);
        }
    }

    fn deliver(&mut self, i: usize) {
        if !matches!(self.slots[i].flight, Flight::Executed { .. }) {
            return;
        }
        let Flight::Executed { id, write, result } =
            std::mem::replace(&mut self.slots[i].flight, Flight::Idle)
        else {
            return;
        };
        if let Some(index) = write {
            self.backend.sync(index);
        }
        let slot = &mut self.slots[i];
        if let Err(error) = slot
            .journal
            .handle_completion(self.now, id, result, &mut slot.state)
        {
            let stream = slot.stream.clone();
            self.violation(format!("{stream}: completion refused: {error}"));
        }
        self.pump(i);
    }

    fn tick(&mut self) {
        self.now += Duration::from_millis(self.rng.between(1, 40));
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if slot.journal.poll_timeout().is_some_and(|t| t <= self.now) {
                slot.journal.handle_timeout(self.now);
                let slot = &self.slots[i];
                // A journal fed its due timeout must act (issue a command) or move its deadline
                // later; asking again for a deadline already past means it will never settle.
                let idle = matches!(slot.flight, Flight::Idle);
                let stalled = slot.journal.poll_timeout().is_some_and(|t| t <= self.now);
                self.pump(i);
                let slot = &self.slots[i];
                if stalled && idle && matches!(slot.flight, Flight::Idle) {
                    let stream = slot.stream.clone();
                    self.stall(format!(
                        "{stream}: the journal ignored its due timeout (phase {:?})",
                        slot.journal.phase()
                    ));
                    return;
                }
            }
        }
    }

    /// Ends the run: a journal will never settle.
    fn stall(&mut self, what: String) {
        self.violation(what);
        self.stalled = true;
    }

    /// A crash: returns whether the process restarted now (a file-storage power loss may be
    /// armed for a later disk operation instead).
    fn crash(&mut self, keep_unsynced: Option<bool>) -> bool {
        self.report.digest = fnv(self.report.digest, &format!("crash {keep_unsynced:?}"));
        let now = self.backend.crash(&mut self.rng, keep_unsynced);
        if now {
            self.restart_all();
        }
        now
    }

    fn restart_all(&mut self) {
        self.resolve_foreign_write();
        for i in 0..self.slots.len() {
            let nonces = self.rng.next_u64();
            self.slots[i].restart(nonces);
            self.pump(i);
        }
    }

    /// Runs every journal to quiescence without faults.
    fn drain(&mut self) {
        for _ in 0..DRAIN_STEPS {
            if self.stalled {
                return;
            }
            let busy: Vec<usize> = (0..self.slots.len())
                .filter(|&i| !matches!(self.slots[i].flight, Flight::Idle))
                .collect();
            if busy.is_empty() {
                let waiting = self
                    .slots
                    .iter()
                    .any(|s| s.journal.poll_timeout().is_some());
                if !waiting {
                    return;
                }
                self.tick();
                continue;
            }
            for i in busy {
                self.execute(i);
                self.deliver(i);
            }
        }
        self.stall(format!(
            "the journals never went quiet within {DRAIN_STEPS} steps"
        ));
    }

    /// Drains slot `i`'s outputs, checking each event against the model.
    fn pump(&mut self, i: usize) {
        while let Some(event) = self.slots[i].journal.poll_event() {
            self.report.digest = fnv(self.report.digest, &format!("{i}:{event:?}"));
            self.check_event(i, event);
        }
        if self.slots[i].journal.phase() == Phase::Stopped {
            let nonces = self.rng.next_u64();
            self.slots[i].restart(nonces);
            return self.pump(i);
        }
        let slot = &mut self.slots[i];
        if matches!(slot.flight, Flight::Idle) {
            if let Some(command) = slot.journal.poll_command() {
                if let Command::Append { events, .. } = &command {
                    // The append carries the oldest unresolved requests, whole, in order.
                    let mut carried = 0;
                    slot.appending.clear();
                    for (request, ids) in &slot.pending {
                        if carried >= events.len() {
                            break;
                        }
                        carried += ids.len();
                        slot.appending.push(*request);
                    }
                    if carried != events.len() {
                        let what = format!(
                            "{}: an append of {} events is not the oldest whole requests {:?}",
                            slot.stream,
                            events.len(),
                            slot.pending
                        );
                        self.violation(what);
                    }
                    let slot = &mut self.slots[i];
                    if slot.appending.len() > 1 {
                        self.report.coalesced += 1;
                    }
                }
                let slot = &mut self.slots[i];
                slot.flight = Flight::Issued(command);
            }
        }
        let slot = &self.slots[i];
        if slot.journal.phase() == Phase::Ready && matches!(slot.flight, Flight::Idle) {
            let last = slot.journal.last_seq();
            if slot.state.ids != slot.truth || last != slot.truth.len() as u64 {
                let what = format!(
                    "{}: idle state {:?} (last seq {last}) is not the durable stream {:?}",
                    slot.stream, slot.state.ids, slot.truth
                );
                self.violation(what);
            }
        }
    }

    fn check_event(&mut self, i: usize, event: JournalEvent) {
        let slot = &mut self.slots[i];
        let mut problem = String::new();
        if let JournalEvent::Persisted { request, .. }
        | JournalEvent::PersistFailed { request, .. } = &event
        {
            if !slot.answered.insert(*request) {
                let _ = write!(problem, "{request} answered twice: {event:?}; ");
            }
        }
        match event {
            JournalEvent::Recovered { last_seq, .. } if slot.recovering => {
                slot.recovering = false;
                // The same call may already have applied a queued request: the recovered part
                // is the first `last_seq` events.
                let recovered = slot.state.ids.get(..last_seq as usize).unwrap_or(&[]);
                let maybe: Vec<u32> = slot.truth.iter().chain(&slot.maybe).copied().collect();
                if recovered == slot.truth.as_slice() {
                } else if !slot.maybe.is_empty() && recovered == maybe.as_slice() {
                    slot.truth = maybe;
                } else {
                    let _ = write!(
                        problem,
                        "recovered {:?} (last seq {last_seq}), durable {:?}, maybe {:?}",
                        slot.state.ids, slot.truth, slot.maybe
                    );
                }
                slot.maybe.clear();
            }
            JournalEvent::Persisted {
                request, last_seq, ..
            } => {
                slot.appending.retain(|&r| r != request);
                let early = slot.durable_early.contains(&request);
                if early {
                    slot.durable_early.retain(|&r| r != request);
                }
                match slot.pending.remove(&request) {
                    // Its ids went into the model when it landed.
                    Some(ids) if early => self.report.persisted += ids.len() as u64,
                    Some(ids) => {
                        self.report.persisted += ids.len() as u64;
                        slot.truth.extend(ids);
                        if last_seq != slot.truth.len() as u64 {
                            let _ = write!(
                                problem,
                                "persisted up to {last_seq}, model has {}",
                                slot.truth.len()
                            );
                        }
                    }
                    None => {
                        let _ = write!(problem, "{request} persisted but never made");
                    }
                }
            }
            JournalEvent::PersistFailed { request, error } => {
                slot.appending.retain(|&r| r != request);
                let ids = slot.pending.remove(&request).unwrap_or_default();
                if slot.durable_early.contains(&request) {
                    slot.durable_early.retain(|&r| r != request);
                    // It landed: only "unknown" is true of it, anything else invites a retry
                    // that applies it twice.
                    if !matches!(error, PersistError::Failed { landed: None, .. }) {
                        let _ = write!(
                            problem,
                            "{request} landed before another writer appended, reported {error}"
                        );
                    }
                } else if let PersistError::Failed { landed: None, .. } = error {
                    // Every request of the unresolved append is reported so, in order: together
                    // they landed or not.
                    slot.maybe.extend(ids);
                }
            }
            JournalEvent::RecoveryFailed(RecoveryError::Storage(_)) => {}
            JournalEvent::RecoveryFailed(error) => {
                let _ = write!(problem, "recovery failed: {error}");
            }
            _ => {}
        }
        if !problem.is_empty() {
            let stream = self.slots[i].stream.clone();
            self.violation(format!("{stream}: {problem}"));
        }
    }
}
