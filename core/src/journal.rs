//! The journal: one persistent entity's state machine.

use std::collections::VecDeque;
use std::mem;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::bytes::SharedBytes;
use crate::codec::{Borsh, Codec, CodecError};
use crate::command::{Command, CommandId, Completion, StorageError, StoredRecord};
use crate::config::{JournalConfig, Strategy};
use crate::entity::Entity;
use crate::error::{HandleError, PersistError, RecoveryError, Refusal, Rejection, StopReason};
use crate::output::{JournalEvent, Phase, RequestId};
use crate::record::{self, RecordKind};
use crate::recovery::{Probe, Progress, Reader, Recovered, Recovery};
use crate::seal::{
    self, Binding, Chain, Encryption, HeadCommitment, KeyRing, Randomness, CHAIN_LEN,
};

/// A queued request: a persist of one event or an atomic batch of them, or a snapshot.
enum Request<T> {
    Persist { id: RequestId, events: Batch<T> },
    Snapshot { id: RequestId, at_head: AtHead },
}

/// What a snapshot request does when the newest snapshot is already at the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AtHead {
    /// Nothing: that snapshot covers the state (reported saved at once).
    Keep,
    /// Writes the state anyway, in place of that snapshot.
    Replace,
}

/// One persist request's place in an append.
#[derive(Debug, Clone, Copy)]
struct Member {
    request: RequestId,
    first: u64,
    last: u64,
}

/// An append in flight: what was sent, and how to recognise it in the log. It carries the
/// events of one or more requests (`members`, in request order, their seqs contiguous), and is
/// one atomic write: all of them land or none.
#[derive(Debug, Clone)]
struct Append {
    cmd: CommandId,
    members: Batch<Member>,
    expected_last: u64,
    first: u64,
    last: u64,
    /// The checksum of the event record at `last`.
    event_checksum: u32,
    /// The fold of the checksums of the event records at `first..=last`, in order
    /// ([`record::fold_checksum`]): what the re-read after an unknown outcome compares.
    event_fold: u64,
    snapshot_checksum: Option<u32>,
    /// The chain value after the last event (its tag; zero for a plaintext journal).
    chain: Chain,
}

impl Member {
    /// The requests of `members`, in order.
    fn requests(members: &[Member]) -> Vec<RequestId> {
        members.iter().map(|m| m.request).collect()
    }
}

impl Append {
    /// The requests it carries, in order.
    fn requests(&self) -> Vec<RequestId> {
        Member::requests(&self.members)
    }
}

/// Why the state is being rebuilt, and what to report once it is.
enum Rebuild {
    /// The first recovery.
    Start,
    /// Nothing of `requests` was written: restore the state up to the last durable seq, then
    /// report `error` for each (a conflict also stops the journal).
    Undo {
        requests: Vec<RequestId>,
        error: PersistError,
    },
    /// The outcome of `append` is unknown: re-read the log to learn whether it landed.
    Resolve { append: Append, reason: String },
    /// `append` landed, and another writer appended after it (the head is `actual`): restore
    /// the state up to the append's last seq, report it persisted, then stop for the conflict.
    Landed { append: Append, actual: u64 },
}

/// What the journal is doing. The public [`Phase`] is derived from it.
///
/// The rebuild phases keep their (large) state boxed: the phase is moved out and back on every
/// completion, and the phases of the hot path (ready, appending) stay a few words.
enum Op<E, C> {
    Recovering {
        recovery: Box<Recovery<E, C>>,
        why: Box<Rebuild>,
        attempt: u32,
    },
    Ready,
    Appending(Append),
    Snapshotting {
        cmd: CommandId,
        seq: u64,
        request: Option<RequestId>,
    },
    Compacting {
        cmd: CommandId,
        up_to: u64,
    },
    Pruning {
        cmd: CommandId,
        keep: usize,
    },
    /// Waiting until `until` to retry a rebuild whose reads failed.
    Waiting {
        until: Duration,
        why: Box<Rebuild>,
        attempt: u32,
    },
    Stopped(StopReason),
}

/// Decides, after an append, whether to snapshot the state at the given seq.
type SnapshotPredicate<E> = Box<dyn Fn(&E, u64) -> bool + Send>;

/// One persistent entity — a stream of events and its snapshots — as a pure state machine.
///
/// See the [crate documentation](crate) for the run loop. The journal does not own the entity's
/// state: every input that may change it takes `&mut E`, and the caller passes the same state
/// each time. Until [`JournalEvent::Recovered`] the state's content is irrelevant: recovery
/// replaces it.
///
/// Requests (persists and on-demand snapshots) are handled in the order they were made; at most
/// one storage command is in flight. Persist requests queued while a command is in flight are
/// coalesced into the next append (up to [`JournalConfig::max_append`]), each reported by its
/// own [`JournalEvent::Persisted`], in request order.
pub struct Journal<E: Entity, C = Borsh> {
    config: JournalConfig,
    initial: Box<dyn Fn() -> E + Send>,
    snapshot_when: Option<SnapshotPredicate<E>>,
    op: Op<E, C>,
    last_seq: u64,
    snapshot_seq: u64,
    /// The snapshot seq compaction and retention last ran after (0 before the first time).
    housekept_seq: u64,
    requests: VecDeque<Request<E::Event>>,
    command: Option<Command>,
    events: VecDeque<JournalEvent>,
    next_command: u64,
    next_request: u64,
    encryption: Option<Encryption>,
    chain: Chain,
    expected_head: Option<HeadCommitment>,
    /// Where plaintext records are encoded before they are copied into shared buffers.
    scratch: Vec<u8>,
}

/// The most capacity the encoding scratch buffer keeps between records (a larger record's
/// buffer is let go).
const SCRATCH_KEPT: usize = 64 << 10;

impl<E, C> Journal<E, C>
where
    E: Entity,
    C: Codec<E> + Codec<E::Event>,
{
    /// A journal for `config.stream()`, starting recovery at once (the first
    /// [`Command::LoadSnapshot`] is ready to poll). `initial` builds the state of an entity with
    /// no snapshot; it is called again whenever the state is rebuilt from the log.
    pub fn new(config: JournalConfig, initial: impl Fn() -> E + Send + 'static) -> Self {
        let mut journal = Self {
            config,
            initial: Box::new(initial),
            snapshot_when: None,
            op: Op::Ready,
            last_seq: 0,
            snapshot_seq: 0,
            housekept_seq: 0,
            requests: VecDeque::new(),
            command: None,
            events: VecDeque::new(),
            next_command: 0,
            next_request: 0,
            encryption: None,
            chain: [0; CHAIN_LEN],
            expected_head: None,
            scratch: Vec::new(),
        };
        journal.start_recovery(Rebuild::Start, 1);
        journal
    }

    /// Also snapshot (Full strategy) after any append for which `when(state, last_seq)` is true.
    /// It is asked once per append, with the state and seq after its last event (an append
    /// may carry several coalesced requests).
    pub fn with_snapshot_predicate(
        mut self,
        when: impl Fn(&E, u64) -> bool + Send + 'static,
    ) -> Self {
        self.snapshot_when = Some(Box::new(when));
        self
    }

    /// Seals every record this journal writes with the primary key of `keys`, under a fresh
    /// nonce from `random`, and opens only sealed records (see [`seal`](crate::seal)). Call it
    /// right after [`new`](Self::new), before feeding the first completion.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use persevere_core::seal::{ChaChaRandom, Key, KeyId, KeyRing};
    /// use persevere_core::{Entity, Journal, JournalConfig};
    /// # #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
    /// # struct Counter(u64);
    /// # impl Entity for Counter {
    /// #     type Event = u64;
    /// #     type Error = String;
    /// #     fn apply(&mut self, n: &u64) -> Result<(), String> { self.0 += n; Ok(()) }
    /// # }
    /// let keys = Arc::new(KeyRing::new(KeyId(1), Key::from_bytes([42; 32])));
    /// // Adapters seed the generator with 32 bytes from the OS.
    /// let random = ChaChaRandom::from_seed([7; 32]);
    /// let journal = Journal::<Counter>::new(
    ///     JournalConfig::new("counter").with_store_id("main"),
    ///     Counter::default,
    /// )
    /// .with_encryption(keys, random);
    /// assert!(journal.is_encrypted());
    /// ```
    pub fn with_encryption(
        mut self,
        keys: Arc<KeyRing>,
        random: impl Randomness + 'static,
    ) -> Self {
        self.encryption = Some(Encryption {
            keys,
            random: Box::new(random),
        });
        self
    }

    /// Applies replayed pages at most `n` events at a time, pausing between slices (see
    /// [`JournalConfig::replay_slice`]); also for the recovery already started by
    /// [`new`](Self::new). For a driver that calls [`handle_replay`](Self::handle_replay).
    pub fn with_replay_slice(mut self, n: usize) -> Self {
        self.config.replay_slice = Some(n.max(1));
        if let Op::Recovering { recovery, .. } = &mut self.op {
            recovery.set_slice(n);
        }
        self
    }

    /// Fails recovery with [`RecoveryError::HeadMismatch`] unless the recovered head is exactly
    /// `head` (a [`HeadCommitment`] kept outside the store): detects a rollback of the whole
    /// stream to an older copy, which no record can reveal by itself. Encrypted journals only:
    /// a plaintext journal's chain is always zero, so only the seq is compared.
    pub fn expect_head(mut self, head: HeadCommitment) -> Self {
        self.expected_head = Some(head);
        self
    }

    /// Whether records are sealed.
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// The last durable seq and the chain value at it, to keep outside the store and give to
    /// [`expect_head`](Self::expect_head) on the next open. `None` for a plaintext journal.
    pub fn head_commitment(&self) -> Option<HeadCommitment> {
        self.encryption.as_ref().map(|_| HeadCommitment {
            seq: self.last_seq,
            chain: self.chain,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &JournalConfig {
        &self.config
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        match &self.op {
            Op::Recovering { why, .. } if matches!(**why, Rebuild::Start) => Phase::Recovering,
            Op::Recovering { .. } | Op::Waiting { .. } => Phase::Fenced,
            Op::Ready => Phase::Ready,
            Op::Appending(_)
            | Op::Snapshotting { .. }
            | Op::Compacting { .. }
            | Op::Pruning { .. } => Phase::Persisting,
            Op::Stopped(_) => Phase::Stopped,
        }
    }

    /// The last durable (acknowledged) seq; 0 before the first event.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The seq of the newest snapshot known durable, if any.
    pub fn snapshot_seq(&self) -> Option<u64> {
        (self.snapshot_seq > 0).then_some(self.snapshot_seq)
    }

    /// Why the journal stopped, if it did.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        match &self.op {
            Op::Stopped(reason) => Some(reason),
            _ => None,
        }
    }

    // ----- inputs -----

    /// Persists one event: it is applied to `state` and appended when its turn comes (with the
    /// other requests queued beside it, if a write is in flight), and
    /// [`JournalEvent::Persisted`] or [`JournalEvent::PersistFailed`] reports the outcome under
    /// the returned id. Fails at once only if the journal is stopped.
    #[inline]
    pub fn handle_persist(
        &mut self,
        event: E::Event,
        state: &mut E,
    ) -> Result<RequestId, PersistError> {
        self.enqueue(|id| Request::Persist {
            id,
            events: Batch::from(event),
        })
        .inspect(|_| self.advance(state))
    }

    /// Persists a batch atomically: all of it becomes durable and applied, or none of it.
    pub fn handle_persist_all(
        &mut self,
        events: impl IntoIterator<Item = E::Event>,
        state: &mut E,
    ) -> Result<RequestId, PersistError> {
        self.handle_persist_batch(events.into_iter().collect(), state)
    }

    /// [`handle_persist_all`](Self::handle_persist_all) of a [`Batch`] as it is (one event is
    /// persisted as [`handle_persist`](Self::handle_persist) persists it).
    #[inline]
    pub fn handle_persist_batch(
        &mut self,
        events: Batch<E::Event>,
        state: &mut E,
    ) -> Result<RequestId, PersistError> {
        if events.is_empty() {
            return Err(PersistError::Rejected(Rejection::Empty));
        }
        self.enqueue(|id| Request::Persist { id, events })
            .inspect(|_| self.advance(state))
    }

    /// Requests a snapshot of the state after every earlier request; reported by
    /// [`JournalEvent::SnapshotSaved`] or [`JournalEvent::SnapshotFailed`] with the returned id.
    /// A state already covered by the newest snapshot is reported saved at once.
    pub fn handle_snapshot_request(&mut self, state: &mut E) -> Result<RequestId, PersistError> {
        self.request_snapshot(state, AtHead::Keep)
    }

    /// Requests a snapshot of the state, as [`handle_snapshot_request`](Self::handle_snapshot_request)
    /// does, written even when the newest snapshot is at the same seq: the store replaces that
    /// one. For a state that is not the one the log recovers to, which becomes the durable state
    /// at the head (a purge making the initial state durable writes one). On an empty stream
    /// there is nothing to replace, and it is reported saved at once.
    pub fn handle_snapshot_replacing(&mut self, state: &mut E) -> Result<RequestId, PersistError> {
        self.request_snapshot(state, AtHead::Replace)
    }

    /// Queues a snapshot request doing `at_head` and starts what the journal can.
    fn request_snapshot(
        &mut self,
        state: &mut E,
        at_head: AtHead,
    ) -> Result<RequestId, PersistError> {
        self.enqueue(|id| Request::Snapshot { id, at_head })
            .inspect(|_| self.advance(state))
    }

    /// Feeds back the result of the command `id` (the one last polled). `now` is the driver's
    /// monotonic clock, used to schedule re-reads after failures.
    ///
    /// A completion under another id (or before the command was polled) is refused with
    /// [`HandleError::UnexpectedCompletion`] and changes nothing. A completion of the wrong shape
    /// for its command (say [`Completion::Events`] answering an append) is a store breaking its
    /// contract: it is consumed as [`StorageError::Failed`], an unknown outcome — a write is
    /// fenced and resolved by re-reading the log, a read fails like any failed read — so the
    /// journal is never left waiting for an answer that will not come.
    pub fn handle_completion(
        &mut self,
        now: Duration,
        id: CommandId,
        result: Result<Completion, StorageError>,
        state: &mut E,
    ) -> Result<(), HandleError> {
        let in_flight = self.in_flight();
        if in_flight != Some(id) || self.command.is_some() {
            return Err(HandleError::UnexpectedCompletion {
                got: id,
                expected: in_flight.filter(|_| self.command.is_none()),
            });
        }
        let mut result = result;
        if let Ok(completion) = &result {
            let answers = match &self.op {
                Op::Recovering { recovery, .. } => recovery.accepts(completion),
                _ => matches!(completion, Completion::Done),
            };
            if !answers {
                // A store that answers with the wrong shape broke the contract: what it did is
                // unknown. A write takes the fencing path, a read fails like any failed read.
                let reason = format!(
                    "the store answered {id} with a completion of the wrong shape ({})",
                    completion.kind()
                );
                tracing::error!(stream = %self.config.stream, %reason, "wrong completion");
                result = Err(StorageError::Failed(reason));
            }
        }
        // The id is checked: from here on every completion is consumed.
        match mem::replace(&mut self.op, Op::Ready) {
            Op::Recovering {
                mut recovery,
                why,
                attempt,
            } => {
                let reader = Reader {
                    keys: self.encryption.as_ref().map(|e| &*e.keys),
                    store: &self.config.store_id,
                    stream: &self.config.stream,
                };
                let ids = &mut self.next_command;
                let progress = recovery.handle(result, state, &*self.initial, ids, reader);
                self.on_progress(now, progress, recovery, why, attempt, state);
            }
            Op::Appending(append) => self.on_appended(append, result.map(drop), state),
            Op::Snapshotting { seq, request, .. } => match result {
                Ok(_) => {
                    self.snapshot_seq = self.snapshot_seq.max(seq);
                    tracing::debug!(stream = %self.config.stream, seq, "snapshot saved");
                    self.events
                        .push_back(JournalEvent::SnapshotSaved { request, seq });
                    self.housekeep(seq, true);
                }
                Err(error) => {
                    tracing::warn!(stream = %self.config.stream, seq, %error, "snapshot failed");
                    self.events.push_back(JournalEvent::SnapshotFailed {
                        request,
                        seq,
                        reason: error.to_string(),
                    });
                }
            },
            Op::Compacting { up_to, .. } => match result {
                Ok(_) => {
                    self.events.push_back(JournalEvent::Compacted { up_to });
                    self.housekeep(up_to, false);
                }
                Err(error) => self.housekeeping_failed(error),
            },
            Op::Pruning { keep, .. } => match result {
                Ok(_) => self
                    .events
                    .push_back(JournalEvent::SnapshotsPruned { kept: keep }),
                Err(error) => self.housekeeping_failed(error),
            },
            op @ (Op::Ready | Op::Waiting { .. } | Op::Stopped(_)) => {
                // Nothing is in flight in these phases, so the id check above returned already.
                self.op = op;
            }
        }
        self.advance(state);
        Ok(())
    }

    /// Feeds the driver's clock when the deadline from [`poll_timeout`](Self::poll_timeout)
    /// has passed. Calling it early or without a deadline does nothing.
    pub fn handle_timeout(&mut self, now: Duration) {
        let due = matches!(&self.op, Op::Waiting { until, .. } if *until <= now);
        if !due {
            return;
        }
        if let Op::Waiting { why, attempt, .. } = mem::replace(&mut self.op, Op::Ready) {
            self.start_recovery(*why, attempt);
        }
    }

    /// Applies the next slice of a page being replayed, once
    /// [`poll_replay`](Self::poll_replay) says one is waiting (see
    /// [`JournalConfig::replay_slice`]); does nothing otherwise. A driver on an async executor
    /// lets other tasks run before it calls this, so that no long page holds a worker.
    pub fn handle_replay(&mut self, now: Duration, state: &mut E) {
        let paused = matches!(&self.op, Op::Recovering { recovery, .. } if recovery.is_paused());
        if !paused {
            return;
        }
        if let Op::Recovering {
            mut recovery,
            why,
            attempt,
        } = mem::replace(&mut self.op, Op::Ready)
        {
            let reader = Reader {
                keys: self.encryption.as_ref().map(|e| &*e.keys),
                store: &self.config.store_id,
                stream: &self.config.stream,
            };
            let progress = recovery.resume(state, &mut self.next_command, reader);
            self.on_progress(now, progress, recovery, why, attempt, state);
        }
        self.advance(state);
    }

    fn on_progress(
        &mut self,
        now: Duration,
        progress: Progress,
        recovery: Box<Recovery<E, C>>,
        why: Box<Rebuild>,
        attempt: u32,
        state: &mut E,
    ) {
        match progress {
            Progress::Next(command) => {
                self.command = Some(command);
                self.op = Op::Recovering {
                    recovery,
                    why,
                    attempt,
                };
            }
            Progress::Paused => {
                self.op = Op::Recovering {
                    recovery,
                    why,
                    attempt,
                };
            }
            Progress::Done(found) => self.on_recovered(*why, found, state),
            Progress::Failed(error) => self.on_recovery_failed(now, why, attempt, error),
        }
    }

    // ----- outputs -----

    /// Whether a page of replayed events is partly applied and the rest waits for
    /// [`handle_replay`](Self::handle_replay) (only with [`JournalConfig::replay_slice`] set).
    /// Check after every `handle_*`, with [`poll_command`](Self::poll_command).
    #[must_use]
    pub fn poll_replay(&self) -> bool {
        matches!(&self.op, Op::Recovering { recovery, .. } if recovery.is_paused())
    }

    /// The next storage command to execute, if any. Call after every `handle_*` until it returns
    /// `None`; execute the command and feed its result to
    /// [`handle_completion`](Self::handle_completion) under its id.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.command.take()
    }

    /// The next thing that happened, if any. Call after every `handle_*` until it returns `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<JournalEvent> {
        self.events.pop_front()
    }

    /// When the journal wants [`handle_timeout`](Self::handle_timeout) called, on the same
    /// clock as the `now` it is given. Check after every `handle_*`; a new value replaces the
    /// previous one.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        match &self.op {
            Op::Waiting { until, .. } => Some(*until),
            _ => None,
        }
    }

    // ----- transitions -----

    fn in_flight(&self) -> Option<CommandId> {
        match &self.op {
            // A paused replay has no command in flight.
            Op::Recovering { recovery, .. } if recovery.is_paused() => None,
            Op::Recovering { recovery, .. } => Some(recovery.cmd),
            Op::Appending(append) => Some(append.cmd),
            Op::Snapshotting { cmd, .. } | Op::Compacting { cmd, .. } | Op::Pruning { cmd, .. } => {
                Some(*cmd)
            }
            Op::Ready | Op::Waiting { .. } | Op::Stopped(_) => None,
        }
    }

    fn enqueue(
        &mut self,
        request: impl FnOnce(RequestId) -> Request<E::Event>,
    ) -> Result<RequestId, PersistError> {
        if let Op::Stopped(reason) = &self.op {
            return Err(PersistError::Rejected(Rejection::Stopped(reason.clone())));
        }
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.requests.push_back(request(id));
        Ok(id)
    }

    fn issue(&mut self, command: impl FnOnce(CommandId) -> Command) -> CommandId {
        self.next_command += 1;
        let id = CommandId(self.next_command);
        self.command = Some(command(id));
        id
    }

    /// Starts queued requests while the journal is ready. Every turn starts a command or
    /// answers a request; in debug builds a turn that does neither (a bug, which would spin
    /// here) panics, so that a test fails at once rather than hang.
    fn advance(&mut self, state: &mut E) {
        while matches!(self.op, Op::Ready) {
            #[cfg(debug_assertions)]
            let queued = self.requests.len();
            match self.requests.front() {
                Some(Request::Persist { .. }) => self.start_append(state),
                Some(Request::Snapshot { .. }) => {
                    if let Some(Request::Snapshot { id, at_head }) = self.requests.pop_front() {
                        self.start_snapshot(Some(id), state, at_head);
                    }
                }
                None => return,
            }
            #[cfg(debug_assertions)]
            assert!(
                !matches!(self.op, Op::Ready) || self.requests.len() < queued,
                "a queued request was neither started nor answered"
            );
        }
    }

    /// Starts one append with the persist requests at the front of the queue: as many as fit
    /// the cap ([`JournalConfig::max_append`]; the first always goes), up to the next snapshot
    /// request. Each request is encoded and applied in turn; one that cannot be encoded, or
    /// whose first event `apply` refuses, is rejected alone and the others go on. A refusal
    /// after a request's first event leaves part of it applied: the requests taken so far go
    /// back to the queue, and the state is rebuilt from the durable log before the refusal is
    /// reported (they are applied again after it). If no request is left, nothing is issued.
    fn start_append(&mut self, state: &mut E) {
        let expected_last = self.last_seq;
        let (max_events, max_bytes) = self.config.max_append_size();
        // The queue is worked on in place (out of `self` while records are encoded): requests
        // `..taken` are consumed, taken into the append or rejected alone (`rejected`, which
        // allocates on that path only).
        let mut queue = mem::take(&mut self.requests);
        let mut taken = 0;
        let mut rejected: Vec<usize> = Vec::new();
        let mut records: Batch<StoredRecord> = match queue.front() {
            Some(Request::Persist { events, .. }) => Batch::with_capacity(events.len()),
            _ => Batch::new(),
        };
        let mut bytes = 0usize;
        let mut members: Batch<Member> = Batch::new();
        let mut event_checksum = 0;
        let mut event_fold = record::CHECKSUM_FOLD;
        let mut chain = self.chain;
        // The most events the append can hold: its last seq stays below `u64::MAX`, a seq no
        // journal writes (so recovery can tell one there is damage).
        let room = (u64::MAX - 1).saturating_sub(expected_last);
        // The last seq taken into the append so far: `records` holds `last - expected_last`.
        let mut last = expected_last;
        'requests: while let Some(Request::Persist { id, events }) = queue.get(taken) {
            let (id, events) = (*id, &events[..]);
            let mark = (last - expected_last) as usize;
            if last > expected_last && mark + events.len() > max_events {
                break;
            }
            if (mark as u64).saturating_add(events.len() as u64) > room {
                let error = PersistError::Rejected(Rejection::SeqExhausted {
                    last_seq: expected_last,
                });
                self.fail(id, error);
                rejected.push(taken);
                taken += 1;
                continue;
            }
            let first = last + 1;
            let mut request_chain = chain;
            let mut request_checksum = event_checksum;
            let mut request_fold = event_fold;
            let mut request_bytes = 0usize;
            for (seq, event) in (first..).zip(events) {
                match self.encode_record(
                    RecordKind::Event,
                    E::EVENT_VERSION,
                    seq,
                    &request_chain,
                    event,
                ) {
                    Ok((encoded, checksum, tag)) => {
                        request_checksum = checksum;
                        request_fold = record::fold_checksum(request_fold, checksum);
                        request_chain = tag;
                        request_bytes += encoded.len();
                        records.push(StoredRecord {
                            seq,
                            bytes: encoded,
                        });
                    }
                    Err(error) => {
                        records.truncate(mark);
                        self.fail(id, PersistError::Rejected(Rejection::Encode(error)));
                        rejected.push(taken);
                        taken += 1;
                        continue 'requests;
                    }
                }
            }
            if last > expected_last && bytes + request_bytes > max_bytes {
                // Over the cap: it heads the next append (nothing of it is applied yet).
                records.truncate(mark);
                break;
            }
            for (i, event) in events.iter().enumerate() {
                if let Err(refusal) = state.apply(event) {
                    let error = PersistError::Rejected(Rejection::Refused(Refusal::new(refusal)));
                    records.truncate(mark);
                    // `apply` leaves the state unchanged when it refuses, so a refusal of the
                    // first event needs no undo; a later one must undo the events applied before
                    // it, and with them those of the requests taken before this one, which stay
                    // queued (to be applied again after the rebuild).
                    if i == 0 {
                        self.fail(id, error);
                        rejected.push(taken);
                        taken += 1;
                        continue 'requests;
                    }
                    rejected.push(taken);
                    for index in rejected.into_iter().rev() {
                        queue.remove(index);
                    }
                    self.requests = queue;
                    return self.undo(vec![id], error);
                }
            }
            last += events.len() as u64;
            bytes += request_bytes;
            chain = request_chain;
            event_checksum = request_checksum;
            event_fold = request_fold;
            members.push(Member {
                request: id,
                first,
                last,
            });
            taken += 1;
        }
        for _ in 0..taken {
            queue.pop_front();
        }
        self.requests = queue;
        if members.is_empty() {
            return;
        }
        let first = expected_last + 1;
        let mut snapshot = None;
        let mut snapshot_checksum = None;
        if self.config.strategy == Strategy::Light {
            match self.encode_record(
                RecordKind::Snapshot,
                E::SNAPSHOT_VERSION,
                last,
                &chain,
                state,
            ) {
                Ok((encoded, checksum, _)) => {
                    snapshot = Some(StoredRecord {
                        seq: last,
                        bytes: encoded,
                    });
                    snapshot_checksum = Some(checksum);
                }
                Err(error) => {
                    return self.undo(
                        Member::requests(&members),
                        PersistError::Rejected(Rejection::Encode(error)),
                    );
                }
            }
        }
        let cmd = self.issue(|id| Command::Append {
            id,
            expected_last,
            events: records,
            snapshot,
        });
        self.op = Op::Appending(Append {
            cmd,
            members,
            expected_last,
            first,
            last,
            event_checksum,
            event_fold,
            snapshot_checksum,
            chain,
        });
    }

    /// Encodes (and, if the journal is encrypted, seals) one record. `chain` is the tag of the
    /// event before an event, or the chain value a snapshot stores. Returns the bytes, the
    /// checksum and the record's tag (zero when not sealed).
    fn encode_record<T>(
        &mut self,
        kind: RecordKind,
        type_version: u32,
        seq: u64,
        chain: &Chain,
        value: &T,
    ) -> Result<(SharedBytes, u32, Chain), CodecError>
    where
        C: Codec<T>,
    {
        let Some(encryption) = self.encryption.as_mut() else {
            // Encoded into the journal's scratch buffer, then copied into one exact-size
            // shared allocation: no per-record vector, and no slack kept by the store.
            self.scratch.clear();
            let checksum = record::encode_value_into::<C, T>(
                kind,
                type_version,
                seq,
                value,
                &mut self.scratch,
            )?;
            let bytes = SharedBytes::from(&self.scratch[..]);
            if self.scratch.capacity() > SCRATCH_KEPT {
                self.scratch = Vec::new();
            }
            return Ok((bytes, checksum, [0; CHAIN_LEN]));
        };
        let at = Binding {
            store: &self.config.store_id,
            stream: &self.config.stream,
            kind,
            codec: <C as Codec<T>>::ID,
            seq,
        };
        let sealed = seal::seal(
            &encryption.keys,
            &mut *encryption.random,
            &at,
            type_version,
            chain,
            |out| C::encode(value, out),
        )?;
        Ok((sealed.bytes.into(), sealed.checksum, sealed.tag))
    }

    fn on_appended(&mut self, append: Append, outcome: Result<(), StorageError>, state: &E) {
        match outcome {
            Ok(()) => self.acknowledge(append, state),
            Err(StorageError::Rejected(reason)) => self.undo(
                append.requests(),
                PersistError::Rejected(Rejection::Storage(reason)),
            ),
            Err(StorageError::Conflict { expected, actual }) => self.undo(
                append.requests(),
                PersistError::Conflict { expected, actual },
            ),
            Err(StorageError::Damaged { reason, .. }) => self.undo(
                append.requests(),
                PersistError::Rejected(Rejection::Storage(reason)),
            ),
            Err(StorageError::Failed(reason)) => {
                tracing::warn!(
                    stream = %self.config.stream,
                    seq = append.last,
                    %reason,
                    "append outcome unknown: fencing and re-reading the log"
                );
                self.events.push_back(JournalEvent::Fenced {
                    reason: format!(
                        "append of {}..={} failed: {reason}",
                        append.first, append.last
                    ),
                });
                self.start_recovery(Rebuild::Resolve { append, reason }, 1);
            }
        }
    }

    /// The append is durable: report it, then snapshot if one is due.
    fn acknowledge(&mut self, append: Append, state: &E) {
        self.last_seq = append.last;
        self.chain = append.chain;
        self.report_persisted(&append);
        match self.config.strategy {
            Strategy::Light => {
                self.snapshot_seq = append.last;
                self.housekeep(append.last, true);
            }
            Strategy::Full => {
                let every = self
                    .config
                    .snapshot_every
                    .is_some_and(|n| self.last_seq - self.snapshot_seq >= n);
                let asked = self
                    .snapshot_when
                    .as_ref()
                    .is_some_and(|when| when(state, self.last_seq));
                if every || asked {
                    self.start_snapshot(None, state, AtHead::Keep);
                }
            }
        }
    }

    /// Reports every request of a durable append persisted, in request order.
    fn report_persisted(&mut self, append: &Append) {
        for member in append.members.iter() {
            self.events.push_back(JournalEvent::Persisted {
                request: member.request,
                first_seq: member.first,
                last_seq: member.last,
            });
        }
    }

    /// Reports every request of an append that wrote nothing failed with `error`.
    fn fail_all(&mut self, requests: impl IntoIterator<Item = RequestId>, error: PersistError) {
        for request in requests {
            self.fail(request, error.clone());
        }
    }

    fn start_snapshot(&mut self, request: Option<RequestId>, state: &E, at_head: AtHead) {
        let seq = self.last_seq;
        if seq == self.snapshot_seq && (at_head == AtHead::Keep || seq == 0) {
            self.events
                .push_back(JournalEvent::SnapshotSaved { request, seq });
            return;
        }
        let chain = self.chain;
        match self.encode_record(
            RecordKind::Snapshot,
            E::SNAPSHOT_VERSION,
            seq,
            &chain,
            state,
        ) {
            Ok((bytes, _, _)) => {
                let cmd = self.issue(|id| Command::SaveSnapshot {
                    id,
                    snapshot: StoredRecord::new(seq, bytes),
                });
                self.op = Op::Snapshotting { cmd, seq, request };
            }
            Err(error) => self.events.push_back(JournalEvent::SnapshotFailed {
                request,
                seq,
                reason: error.to_string(),
            }),
        }
    }

    /// After a durable snapshot at `seq` (`compact`: the snapshot was just saved), once it is
    /// `housekeep_every` events past the last housekeeping: compaction (if configured), then
    /// retention. After a compaction at `seq` (`compact` false): retention.
    fn housekeep(&mut self, seq: u64, compact: bool) {
        if compact {
            if seq
                < self
                    .housekept_seq
                    .saturating_add(self.config.housekeep_every)
            {
                return;
            }
            self.housekept_seq = seq;
        }
        if compact && self.config.compact_on_snapshot {
            let cmd = self.issue(|id| Command::DeleteEvents { id, up_to: seq });
            self.op = Op::Compacting { cmd, up_to: seq };
        } else if let Some(keep) = self.config.keep_snapshots {
            let keep = keep.get();
            let cmd = self.issue(|id| Command::DeleteSnapshots { id, keep });
            self.op = Op::Pruning { cmd, keep };
        }
    }

    fn housekeeping_failed(&mut self, error: StorageError) {
        tracing::warn!(stream = %self.config.stream, %error, "housekeeping failed");
        self.events.push_back(JournalEvent::HousekeepingFailed {
            reason: error.to_string(),
        });
    }

    /// Reports a request that wrote nothing and changed nothing.
    fn fail(&mut self, request: RequestId, error: PersistError) {
        self.events
            .push_back(JournalEvent::PersistFailed { request, error });
    }

    /// Nothing of `requests` was written but the state has (some of) their events applied:
    /// rebuild the state up to the last durable seq, then report `error` for each.
    fn undo(&mut self, requests: Vec<RequestId>, error: PersistError) {
        let which = requests
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        tracing::debug!(stream = %self.config.stream, requests = %which, %error, "undoing applied events");
        self.events.push_back(JournalEvent::Fenced {
            reason: format!("undoing {which}: {error}"),
        });
        self.start_recovery(Rebuild::Undo { requests, error }, 1);
    }

    fn start_recovery(&mut self, why: Rebuild, attempt: u32) {
        let (until, probe) = match &why {
            Rebuild::Start => (None, None),
            Rebuild::Undo { .. } => (Some(self.last_seq), None),
            Rebuild::Landed { append, .. } => (Some(append.last), None),
            Rebuild::Resolve { append, .. } => (
                None,
                Some(Probe::new(
                    append.first,
                    append.last,
                    append.event_checksum,
                    append.event_fold,
                    self.encryption.as_ref().map(|_| append.chain),
                    append.snapshot_checksum,
                )),
            ),
        };
        self.next_command += 1;
        let (recovery, command) = Recovery::start(
            CommandId(self.next_command),
            until,
            probe,
            self.config.read_batch,
            self.config.replay_slice,
        );
        self.command = Some(command);
        self.op = Op::Recovering {
            recovery: Box::new(recovery),
            why: Box::new(why),
            attempt,
        };
    }

    fn on_recovered(&mut self, why: Rebuild, found: Recovered, state: &E) {
        for (seq, reason) in found.skipped {
            self.events
                .push_back(JournalEvent::SnapshotSkipped { seq, reason });
        }
        self.last_seq = found.last_seq;
        self.snapshot_seq = found.snapshot_seq.unwrap_or(0);
        self.chain = found.chain;
        match why {
            Rebuild::Start => {
                if let Some(expected) = self.expected_head {
                    let chain_matches = expected.chain == found.chain;
                    if expected.seq != found.last_seq || !chain_matches {
                        let error = RecoveryError::HeadMismatch {
                            expected_seq: expected.seq,
                            found_seq: found.last_seq,
                            chain_matches,
                        };
                        tracing::error!(stream = %self.config.stream, %error, "recovery failed");
                        self.events
                            .push_back(JournalEvent::RecoveryFailed(error.clone()));
                        return self.stop(StopReason::Recovery(error));
                    }
                }
                tracing::debug!(
                    stream = %self.config.stream,
                    last_seq = found.last_seq,
                    snapshot_seq = ?found.snapshot_seq,
                    replayed = found.replayed,
                    "recovered"
                );
                self.events.push_back(JournalEvent::Recovered {
                    last_seq: found.last_seq,
                    snapshot_seq: found.snapshot_seq,
                    replayed: found.replayed,
                });
            }
            Rebuild::Undo { requests, error } => {
                let conflict = match &error {
                    PersistError::Conflict { expected, actual } => Some(StopReason::Conflict {
                        expected: *expected,
                        actual: *actual,
                    }),
                    _ => None,
                };
                self.fail_all(requests, error);
                if let Some(reason) = conflict {
                    self.stop(reason);
                }
            }
            Rebuild::Resolve { append, reason } => {
                let seen = found.probe.and_then(|probe| probe.seen());
                self.resolve(append, reason, found.last_seq, seen, state);
            }
            Rebuild::Landed { append, actual } => {
                tracing::warn!(
                    stream = %self.config.stream,
                    seq = append.last,
                    actual,
                    "failed append had landed, then another writer appended"
                );
                self.report_persisted(&append);
                self.stop(StopReason::Conflict {
                    expected: append.last,
                    actual,
                });
            }
        }
    }

    /// Classifies an append whose outcome was unknown by what the re-read found: the head
    /// (`found.last_seq`) and the probe of the append's positions (see `Probe`: every position
    /// `first..=last` is compared, by a fold of the records' checksums).
    ///
    /// | found                                                   | outcome                        |
    /// |---------------------------------------------------------|--------------------------------|
    /// | head below the expected last seq                        | acknowledged events lost: stop |
    /// | our records at our positions, head at our last seq      | `Persisted`, go on             |
    /// | our records at our positions, head beyond it            | `Persisted`, then stop (conflict) |
    /// | another writer's record at any of our positions         | `Conflict`, stop               |
    /// | nothing at our positions, head the expected last seq    | `Failed { landed: Some(false) }`, go on |
    /// | head inside our positions (an atomic append of ours would reach its last seq) | `Conflict`, stop |
    /// | head at or past our last seq, our positions unreadable (compacted under a snapshot not provably ours) | `Failed { landed: None }`, stop |
    fn resolve(
        &mut self,
        append: Append,
        reason: String,
        head: u64,
        seen: Option<bool>,
        state: &E,
    ) {
        let stream = &self.config.stream;
        if head < append.expected_last {
            // Events acknowledged earlier are gone: nothing here can be trusted.
            let error = RecoveryError::MissingTail {
                last: head,
                head: append.expected_last,
            };
            self.fail_all(
                append.requests(),
                PersistError::Failed {
                    reason,
                    landed: None,
                },
            );
            return self.stop(StopReason::Recovery(error));
        }
        match seen {
            Some(true) if head == append.last => {
                tracing::info!(%stream, seq = append.last, "failed append had landed");
                self.acknowledge(append, state);
            }
            Some(true) => {
                // Ours landed and another writer appended after it: the state holds its events
                // too. Rebuild up to our last seq, then report.
                self.start_recovery(
                    Rebuild::Landed {
                        append,
                        actual: head,
                    },
                    1,
                );
            }
            None if head == append.expected_last => {
                tracing::info!(%stream, seq = append.last, "failed append had not landed");
                self.fail_all(
                    append.requests(),
                    PersistError::Failed {
                        reason,
                        landed: Some(false),
                    },
                );
            }
            // Another writer's record is at one of our positions, or the head stops inside our
            // positions (ours is atomic and would reach its last seq): ours did not land.
            Some(false) => self.taken_over(append, head),
            None if head < append.last => self.taken_over(append, head),
            None => {
                // The head is at or past our last seq and our positions cannot be read (or, in
                // plaintext, only in part, with a last record identical to ours): another
                // writer exists, and whether ours landed is unknown.
                tracing::warn!(%stream, seq = append.last, head, "outcome of a failed append unknown");
                self.fail_all(
                    append.requests(),
                    PersistError::Failed {
                        reason,
                        landed: None,
                    },
                );
                self.stop(StopReason::Conflict {
                    expected: append.expected_last,
                    actual: head,
                });
            }
        }
    }

    /// Another writer's events are at the positions of `append`, which did not land: restore
    /// the state before it, report the conflict and stop.
    fn taken_over(&mut self, append: Append, head: u64) {
        tracing::warn!(stream = %self.config.stream, seq = append.last, head, "another writer took our positions");
        self.last_seq = append.expected_last;
        self.undo(
            append.requests(),
            PersistError::Conflict {
                expected: append.expected_last,
                actual: head,
            },
        );
    }

    fn on_recovery_failed(
        &mut self,
        now: Duration,
        why: Box<Rebuild>,
        attempt: u32,
        error: RecoveryError,
    ) {
        // How the request the rebuild was for is answered if it gives up: a write known to have
        // landed is still reported persisted.
        let answer: Result<Append, (Vec<RequestId>, PersistError)> = match &*why {
            Rebuild::Start => {
                tracing::error!(stream = %self.config.stream, %error, "recovery failed");
                self.events
                    .push_back(JournalEvent::RecoveryFailed(error.clone()));
                return self.stop(StopReason::Recovery(error));
            }
            Rebuild::Undo { requests, error } => Err((requests.clone(), error.clone())),
            Rebuild::Resolve { append, reason } => Err((
                append.requests(),
                PersistError::Failed {
                    reason: reason.clone(),
                    landed: None,
                },
            )),
            Rebuild::Landed { append, .. } => Ok(append.clone()),
        };
        if let RecoveryError::Storage(reason) = &error {
            if attempt < self.config.reread_attempts {
                let delay = self.config.reread_backoff * 2u32.saturating_pow(attempt - 1);
                tracing::warn!(stream = %self.config.stream, attempt, %reason, ?delay, "re-read failed, retrying");
                self.op = Op::Waiting {
                    until: now + delay,
                    why,
                    attempt: attempt + 1,
                };
                return;
            }
            self.answer(answer);
            let reason = match &*why {
                // Another writer's events were already found after ours: whatever the reads
                // say now, that stop is final, never one a resume gets past.
                Rebuild::Landed { append, actual } => StopReason::Conflict {
                    expected: append.last,
                    actual: *actual,
                },
                _ => StopReason::Unresolved {
                    attempts: attempt,
                    last_error: reason.clone(),
                },
            };
            return self.stop(reason);
        }
        self.answer(answer);
        self.stop(StopReason::Recovery(error));
    }

    fn answer(&mut self, answer: Result<Append, (Vec<RequestId>, PersistError)>) {
        match answer {
            Ok(append) => self.report_persisted(&append),
            Err((requests, error)) => self.fail_all(requests, error),
        }
    }

    /// Stops for good: every queued request is answered.
    fn stop(&mut self, reason: StopReason) {
        tracing::error!(stream = %self.config.stream, %reason, "journal stopped");
        self.command = None;
        for request in mem::take(&mut self.requests) {
            let rejected = Rejection::Stopped(reason.clone());
            self.events.push_back(match request {
                Request::Persist { id, .. } => JournalEvent::PersistFailed {
                    request: id,
                    error: PersistError::Rejected(rejected),
                },
                Request::Snapshot { id, .. } => JournalEvent::SnapshotFailed {
                    request: Some(id),
                    seq: self.last_seq,
                    reason: rejected.to_string(),
                },
            });
        }
        self.events.push_back(JournalEvent::Stopped(reason.clone()));
        self.op = Op::Stopped(reason);
    }
}
