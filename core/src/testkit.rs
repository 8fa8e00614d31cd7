//! A synchronous in-memory executor for unit-testing entities and recovery without IO.
//!
//! [`Harness`] runs a [`Journal`] against a [`MemoryStore`] to completion after every call, and
//! injects [`Fault`]s at chosen commands: a rejected or failed write (landed or not), a conflict
//! with another writer, or a crash before or after any command. After a crash,
//! [`Harness::restart`] recovers a fresh journal and state from what the store holds. Every run
//! is bounded: a journal that never settles fails with [`HarnessError::Unsettled`].
//!
//! ```
//! use persevere_core::testkit::Harness;
//! use persevere_core::{Entity, JournalConfig};
//!
//! #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
//! struct Counter { value: i64 }
//!
//! impl Entity for Counter {
//!     type Event = i64;
//!     type Error = String;
//!     fn apply(&mut self, n: &i64) -> Result<(), String> {
//!         self.value += n;
//!         Ok(())
//!     }
//! }
//!
//! // Recover an actor from these events, and assert its state.
//! let harness = Harness::<Counter>::recover_from_events(
//!     JournalConfig::new("counter"),
//!     Counter::default,
//!     [5, -2, 10],
//! ).unwrap();
//! assert_eq!(harness.state().value, 13);
//! assert_eq!(harness.journal().map(|j| j.last_seq()), Some(3));
//!
//! // The same, with every record sealed (nonces from a generator with a fixed seed).
//! use std::sync::Arc;
//! use persevere_core::seal::{Key, KeyId, KeyRing};
//! let keys = Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([3; 32])));
//! let mut harness = Harness::<Counter>::encrypted(JournalConfig::new("counter"), Counter::default, keys, 7);
//! harness.persist(5).unwrap();
//! harness.restart().unwrap();
//! assert_eq!(harness.state().value, 5);
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::codec::{Borsh, Codec, CodecError};
use crate::command::{Command, Completion, StorageError};
use crate::config::JournalConfig;
use crate::entity::Entity;
use crate::error::{HandleError, PersistError, RecoveryError};
use crate::journal::Journal;
use crate::memory::MemoryStore;
use crate::output::{JournalEvent, RequestId};
use crate::record::{self, RecordHeader, RecordKind};
use crate::seal::{self, Binding, ChaChaRandom, HeadCommitment, KeyRing, CHAIN_LEN, TAG_LEN};

/// A fault injected in place of a command's normal execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The storage refuses the command; nothing is written.
    Reject,
    /// The command fails with an unknown outcome, and did not write.
    FailBeforeWrite,
    /// The command is executed, then reported failed with an unknown outcome.
    FailAfterWrite,
    /// Another writer appends one event to the stream just before the command runs.
    Conflict,
    /// The process dies before the command runs: the journal and the state are lost.
    CrashBefore,
    /// The process dies after the command ran, before its completion is seen.
    CrashAfter,
    /// The store finds its record damaged ([`StorageError::Damaged`]): a read that finds a
    /// snapshot or events answers `Damaged` with the seq of the (first) record found; a read
    /// that finds nothing is answered as usual; a write writes nothing and answers `Damaged`.
    Damaged,
}

/// What a harness call can end in.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The request failed.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// A snapshot request failed.
    #[error("snapshot failed: {0}")]
    Snapshot(String),
    /// Recovery failed.
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    /// An injected crash happened; call [`Harness::restart`].
    #[error("crashed by an injected fault")]
    Crashed,
    /// The journal was driven wrongly (a bug in the harness or the journal).
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// Seeding the store failed.
    #[error("encoding a seeded event failed: {0}")]
    Encode(#[from] CodecError),
    /// The journal never settled: it ignored a due timeout (asked for it again without doing
    /// anything), or kept issuing commands or timeouts for
    /// [`max_steps`](Harness::set_max_steps) steps of one run. A journal bug, reported instead
    /// of running forever.
    #[error("the journal never settled after {steps} steps: {why}")]
    Unsettled {
        /// The steps (commands executed and timeouts fed) of the run.
        steps: u64,
        /// What was seen.
        why: String,
    },
}

/// The steps one [`Harness::run`] may take before it fails with [`HarnessError::Unsettled`].
pub const DEFAULT_MAX_STEPS: u64 = 100_000;

/// Runs one journal over an in-memory store, synchronously, with fault injection.
pub struct Harness<E: Entity, C = Borsh> {
    store: MemoryStore,
    config: JournalConfig,
    initial: Arc<dyn Fn() -> E + Send + Sync>,
    journal: Option<Journal<E, C>>,
    state: E,
    now: Duration,
    executed: u64,
    faults: BTreeMap<u64, Fault>,
    /// Faults for the coming write commands, the next one last (`None`: no fault).
    next_write: Vec<Option<Fault>>,
    log: Vec<JournalEvent>,
    keys: Option<Arc<KeyRing>>,
    seed: u64,
    opened: u64,
    expected_head: Option<HeadCommitment>,
    max_steps: u64,
}

impl<E, C> Harness<E, C>
where
    E: Entity + 'static,
    C: Codec<E> + Codec<E::Event>,
{
    /// A harness over an empty store, recovered (to the initial state).
    pub fn new(config: JournalConfig, initial: impl Fn() -> E + Send + Sync + 'static) -> Self {
        let mut harness = Self::unopened(MemoryStore::new(), config, Arc::new(initial));
        // Recovering an empty store cannot fail; if it somehow did, the journal is stopped and
        // every later call reports why.
        let _ = harness.restart();
        harness
    }

    /// A harness over `store`, recovered from it.
    pub fn with_store(
        store: MemoryStore,
        config: JournalConfig,
        initial: impl Fn() -> E + Send + Sync + 'static,
    ) -> Result<Self, HarnessError> {
        let mut harness = Self::unopened(store, config, Arc::new(initial));
        harness.restart()?;
        Ok(harness)
    }

    /// Writes `events` to a fresh store as if persisted earlier, then recovers from it.
    pub fn recover_from_events(
        config: JournalConfig,
        initial: impl Fn() -> E + Send + Sync + 'static,
        events: impl IntoIterator<Item = E::Event>,
    ) -> Result<Self, HarnessError> {
        let mut harness = Self::unopened(MemoryStore::new(), config, Arc::new(initial));
        harness.seed_events(events)?;
        harness.restart()?;
        Ok(harness)
    }

    fn unopened(
        store: MemoryStore,
        config: JournalConfig,
        initial: Arc<dyn Fn() -> E + Send + Sync>,
    ) -> Self {
        let state = initial();
        Self {
            store,
            config,
            initial,
            journal: None,
            state,
            now: Duration::ZERO,
            executed: 0,
            faults: BTreeMap::new(),
            next_write: Vec::new(),
            log: Vec::new(),
            keys: None,
            seed: 0,
            opened: 0,
            expected_head: None,
            max_steps: DEFAULT_MAX_STEPS,
        }
    }

    /// How many steps (commands executed and timeouts fed) one [`run`](Self::run) may take
    /// before it fails with [`HarnessError::Unsettled`] ([`DEFAULT_MAX_STEPS`] unless set).
    pub fn set_max_steps(&mut self, steps: u64) {
        self.max_steps = steps.max(1);
    }

    /// A harness over an empty store whose journals seal every record with `keys`. Each journal
    /// it opens draws nonces from a [`ChaChaRandom`] seeded from `seed` and the number of
    /// journals opened before, so runs are reproducible and restarts never repeat a nonce.
    pub fn encrypted(
        config: JournalConfig,
        initial: impl Fn() -> E + Send + Sync + 'static,
        keys: Arc<KeyRing>,
        seed: u64,
    ) -> Self {
        let mut harness = Self::unopened(MemoryStore::new(), config, Arc::new(initial));
        harness.keys = Some(keys);
        harness.seed = seed;
        // As in `new`: recovering an empty store cannot fail.
        let _ = harness.restart();
        harness
    }

    /// The keys journals opened from now on use (`None`: plaintext), for instance to rotate
    /// keys or to open the store with a wrong key. Takes effect at the next
    /// [`restart`](Self::restart).
    pub fn set_keys(&mut self, keys: Option<Arc<KeyRing>>) {
        self.keys = keys;
    }

    /// The head commitment journals opened from now on must recover exactly (see
    /// [`Journal::expect_head`]). Takes effect at the next [`restart`](Self::restart).
    pub fn set_expected_head(&mut self, head: Option<HeadCommitment>) {
        self.expected_head = head;
    }

    /// Appends `events` to the stored log after its head, as another process would have; the
    /// running journal does not see them until [`restart`](Self::restart).
    pub fn seed_events(
        &mut self,
        events: impl IntoIterator<Item = E::Event>,
    ) -> Result<(), HarnessError> {
        self.opened += 1;
        let mut random = ChaChaRandom::from_seed(self.random_seed());
        let stream = self.store.stream_mut(&self.config.stream);
        for event in events {
            let seq = stream.head + 1;
            let codec = <C as Codec<E::Event>>::ID;
            let bytes = match &self.keys {
                None => {
                    let mut payload = Vec::new();
                    <C as Codec<E::Event>>::encode(&event, &mut payload)?;
                    let header = RecordHeader {
                        kind: RecordKind::Event,
                        codec,
                        type_version: E::EVENT_VERSION,
                        seq,
                    };
                    record::encode(header, &payload)
                }
                Some(keys) => {
                    // The chain continues from the tag of the event at the head.
                    let chain = match stream.events.get(&stream.head) {
                        None if stream.head == 0 => [0; CHAIN_LEN],
                        None => {
                            return Err(HarnessError::Encode(CodecError::new(
                                "cannot seed sealed events after a compacted head",
                            )))
                        }
                        Some(bytes) => tag_of(bytes).ok_or_else(|| {
                            CodecError::new("the record at the head is not sealed")
                        })?,
                    };
                    let at = Binding {
                        store: &self.config.store_id,
                        stream: &self.config.stream,
                        kind: RecordKind::Event,
                        codec,
                        seq,
                    };
                    seal::seal(keys, &mut random, &at, E::EVENT_VERSION, &chain, |out| {
                        <C as Codec<E::Event>>::encode(&event, out)
                    })?
                    .bytes
                }
            };
            stream.events.insert(seq, bytes.into());
            stream.head = seq;
        }
        Ok(())
    }

    fn random_seed(&self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&self.opened.to_le_bytes());
        seed[16..].copy_from_slice(b"persevere-tstkit");
        seed
    }

    /// Drops the journal and state, as a crash would, keeping the store.
    pub fn crash(&mut self) {
        self.journal = None;
    }

    /// Opens a new journal and state over the store and recovers.
    pub fn restart(&mut self) -> Result<&E, HarnessError> {
        self.state = (self.initial)();
        let initial = Arc::clone(&self.initial);
        let mut journal = Journal::new(self.config.clone(), move || initial());
        self.opened += 1;
        if let Some(keys) = &self.keys {
            let random = ChaChaRandom::from_seed(self.random_seed());
            journal = journal.with_encryption(Arc::clone(keys), random);
        }
        if let Some(head) = self.expected_head {
            journal = journal.expect_head(head);
        }
        self.journal = Some(journal);
        let from = self.log.len();
        self.run()?;
        let failure = self.log[from..].iter().find_map(|event| match event {
            JournalEvent::RecoveryFailed(error) => Some(error.clone()),
            _ => None,
        });
        match failure {
            Some(error) => Err(HarnessError::Recovery(error)),
            None => Ok(&self.state),
        }
    }

    /// Injects `fault` at the `n`-th command executed by this harness (counting from 1, across
    /// restarts; see [`commands_executed`](Self::commands_executed)).
    pub fn fault_at(&mut self, n: u64, fault: Fault) {
        self.faults.insert(n, fault);
    }

    /// Injects `fault` at the next write command.
    pub fn fault_next_write(&mut self, fault: Fault) {
        self.next_write.insert(0, Some(fault));
    }

    /// Injects `fault` at a later write command: after `skip` writes run normally, beyond
    /// those already given a fault by [`fault_next_write`](Self::fault_next_write) or this.
    pub fn fault_write_after(&mut self, skip: usize, fault: Fault) {
        for _ in 0..skip {
            self.next_write.insert(0, None);
        }
        self.next_write.insert(0, Some(fault));
    }

    /// Forgets every fault not yet injected.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
        self.next_write.clear();
    }

    /// Persists one event and runs to completion; returns the seqs written.
    pub fn persist(&mut self, event: E::Event) -> Result<(u64, u64), HarnessError> {
        let journal = self.journal.as_mut().ok_or(HarnessError::Crashed)?;
        let request = journal.handle_persist(event, &mut self.state)?;
        self.finish_persist(request)
    }

    /// Persists an atomic batch and runs to completion; returns the seqs written.
    pub fn persist_all(
        &mut self,
        events: impl IntoIterator<Item = E::Event>,
    ) -> Result<(u64, u64), HarnessError> {
        let journal = self.journal.as_mut().ok_or(HarnessError::Crashed)?;
        let request = journal.handle_persist_all(events, &mut self.state)?;
        self.finish_persist(request)
    }

    /// Makes several persist requests (each an atomic batch) before running, then runs to
    /// completion: the first starts at once and the others queue behind it, so they are
    /// coalesced into the next append(s). Returns each request's outcome, in order; a request
    /// the journal refused at once, or left unanswered by a crash, gets that error.
    pub fn persist_queued(
        &mut self,
        requests: impl IntoIterator<Item = Vec<E::Event>>,
    ) -> Vec<Result<(u64, u64), HarnessError>> {
        let mut made = Vec::new();
        for events in requests {
            made.push(match self.journal.as_mut() {
                None => Err(HarnessError::Crashed),
                Some(journal) => journal
                    .handle_persist_all(events, &mut self.state)
                    .map_err(HarnessError::Persist),
            });
        }
        let from = self.log.len();
        let ran = self.run();
        made.into_iter()
            .map(|request| {
                let request = request?;
                self.log[from..]
                    .iter()
                    .find_map(|event| Self::outcome_of(request, event))
                    .unwrap_or_else(|| Err(ran.clone().err().unwrap_or(HarnessError::Crashed)))
            })
            .collect()
    }

    fn outcome_of(
        request: RequestId,
        event: &JournalEvent,
    ) -> Option<Result<(u64, u64), HarnessError>> {
        match event {
            JournalEvent::Persisted {
                request: r,
                first_seq,
                last_seq,
            } if *r == request => Some(Ok((*first_seq, *last_seq))),
            JournalEvent::PersistFailed { request: r, error } if *r == request => {
                Some(Err(HarnessError::Persist(error.clone())))
            }
            _ => None,
        }
    }

    /// Takes a snapshot on demand and runs to completion; returns the seq it covers.
    pub fn snapshot(&mut self) -> Result<u64, HarnessError> {
        let journal = self.journal.as_mut().ok_or(HarnessError::Crashed)?;
        let request = journal.handle_snapshot_request(&mut self.state)?;
        self.finish_snapshot(request)
    }

    /// Makes `state` the state at the head: a snapshot of it, written even over a snapshot
    /// at the head (see [`Journal::handle_snapshot_replacing`]), run to completion; the
    /// harness's state becomes `state`. Returns the seq it covers.
    pub fn snapshot_replacing(&mut self, state: E) -> Result<u64, HarnessError> {
        let journal = self.journal.as_mut().ok_or(HarnessError::Crashed)?;
        self.state = state;
        let request = journal.handle_snapshot_replacing(&mut self.state)?;
        self.finish_snapshot(request)
    }

    fn finish_snapshot(&mut self, request: RequestId) -> Result<u64, HarnessError> {
        let from = self.log.len();
        self.run()?;
        self.log[from..]
            .iter()
            .find_map(|event| match event {
                JournalEvent::SnapshotSaved {
                    request: Some(r),
                    seq,
                } if *r == request => Some(Ok(*seq)),
                JournalEvent::SnapshotFailed {
                    request: Some(r),
                    reason,
                    ..
                } if *r == request => Some(Err(HarnessError::Snapshot(reason.clone()))),
                _ => None,
            })
            .unwrap_or(Err(HarnessError::Crashed))
    }

    fn finish_persist(&mut self, request: RequestId) -> Result<(u64, u64), HarnessError> {
        let from = self.log.len();
        self.run()?;
        self.log[from..]
            .iter()
            .find_map(|event| Self::outcome_of(request, event))
            .unwrap_or(Err(HarnessError::Crashed))
    }

    /// Drives the journal until it has nothing left to do: executes every command (with any
    /// injected fault), drains every event, and advances virtual time to every timeout.
    ///
    /// Bounded: fails with [`HarnessError::Unsettled`] as soon as the journal ignores a due
    /// timeout, or after [`set_max_steps`](Self::set_max_steps) steps.
    pub fn run(&mut self) -> Result<(), HarnessError> {
        let mut steps = 0u64;
        // Whether the last step fed a timeout (and no command ran since).
        let mut fed_timeout = false;
        loop {
            steps += 1;
            if steps > self.max_steps {
                return Err(HarnessError::Unsettled {
                    steps: steps - 1,
                    why: "still busy".into(),
                });
            }
            let journal = self.journal.as_mut().ok_or(HarnessError::Crashed)?;
            while let Some(event) = journal.poll_event() {
                self.log.push(event);
            }
            if journal.poll_replay() {
                fed_timeout = false;
                journal.handle_replay(self.now, &mut self.state);
                continue;
            }
            if let Some(command) = journal.poll_command() {
                fed_timeout = false;
                self.executed += 1;
                let fault = self.faults.remove(&self.executed).or_else(|| {
                    command
                        .is_write()
                        .then(|| self.next_write.pop().flatten())
                        .flatten()
                });
                let id = command.id();
                let Some(result) = self.execute(command, fault) else {
                    self.crash();
                    return Err(HarnessError::Crashed);
                };
                let journal = self.journal.as_mut().ok_or(HarnessError::Crashed)?;
                journal.handle_completion(self.now, id, result, &mut self.state)?;
                continue;
            }
            match journal.poll_timeout() {
                Some(deadline) => {
                    if fed_timeout && deadline <= self.now {
                        // It was fed a due timeout and asks for one again, without a command:
                        // virtual time will not move, so neither will it.
                        return Err(HarnessError::Unsettled {
                            steps,
                            why: format!("it ignored its due timeout ({deadline:?})"),
                        });
                    }
                    self.now = self.now.max(deadline);
                    journal.handle_timeout(self.now);
                    fed_timeout = true;
                }
                None => return Ok(()),
            }
        }
    }

    /// Executes `command` under `fault`; `None` means the process crashed.
    fn execute(
        &mut self,
        command: Command,
        fault: Option<Fault>,
    ) -> Option<Result<Completion, StorageError>> {
        let stream = self.config.stream.as_str();
        let injected = |what: &str| format!("injected fault: {what}");
        Some(match fault {
            None => self.store.execute(stream, command).1,
            Some(Fault::Reject) => Err(StorageError::Rejected(injected("rejected"))),
            Some(Fault::FailBeforeWrite) => Err(StorageError::Failed(injected("not written"))),
            Some(Fault::FailAfterWrite) => {
                let _ = self.store.execute(stream, command);
                Err(StorageError::Failed(injected("written")))
            }
            Some(Fault::Conflict) => {
                let rogue = self.store.stream_mut(stream);
                let seq = rogue.head + 1;
                let header = RecordHeader {
                    kind: RecordKind::Event,
                    codec: 0,
                    type_version: 0,
                    seq,
                };
                let bytes = record::encode(header, b"another writer");
                rogue.events.insert(seq, bytes.into());
                rogue.head = seq;
                self.store.execute(stream, command).1
            }
            Some(Fault::Damaged) => {
                let damaged = |seq: u64| StorageError::Damaged {
                    seq,
                    reason: injected("damaged record"),
                };
                if !command.is_write() {
                    match self.store.execute(stream, command).1 {
                        Ok(Completion::Snapshot(Some(found))) => Err(damaged(found.seq)),
                        Ok(Completion::Events { records, .. }) if !records.is_empty() => {
                            Err(damaged(records[0].seq))
                        }
                        other => other,
                    }
                } else {
                    Err(damaged(0))
                }
            }
            Some(Fault::CrashBefore) => return None,
            Some(Fault::CrashAfter) => {
                let _ = self.store.execute(stream, command);
                return None;
            }
        })
    }

    /// The entity's current state.
    pub fn state(&self) -> &E {
        &self.state
    }

    /// The journal, unless crashed.
    pub fn journal(&self) -> Option<&Journal<E, C>> {
        self.journal.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The store, to tamper with.
    pub fn store_mut(&mut self) -> &mut MemoryStore {
        &mut self.store
    }

    /// Every event the journal reported, oldest first.
    pub fn events(&self) -> &[JournalEvent] {
        &self.log
    }

    /// How many commands were executed (or faulted) so far.
    pub fn commands_executed(&self) -> u64 {
        self.executed
    }
}

/// The tag of a sealed record (its last 16 payload bytes).
fn tag_of(bytes: &[u8]) -> Option<[u8; TAG_LEN]> {
    let rec = record::decode(bytes).ok().filter(|rec| rec.sealed)?;
    let start = rec.payload.len().checked_sub(TAG_LEN)?;
    let mut tag = [0; TAG_LEN];
    tag.copy_from_slice(&rec.payload[start..]);
    Some(tag)
}
