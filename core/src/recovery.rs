//! Recovery: newest readable snapshot, then a paged replay of the events after it.
//!
//! The same machine rebuilds the state after a failed or undone write, optionally only `until` a
//! seq (to restore exactly the state before a write) and optionally watching one position to
//! learn whether a write whose outcome was unknown landed.

use std::borrow::Cow;
use std::marker::PhantomData;

use crate::codec::Codec;
use crate::command::{Command, CommandId, Completion, StorageError, StoredRecord};
use crate::entity::Entity;
use crate::error::RecoveryError;
use crate::record::{self, RecordKind};
use crate::seal::{self, Binding, Chain, KeyRing, SealError, CHAIN_LEN};

/// What recovery needs to open sealed records: the keys (none for a plaintext journal) and
/// where the records belong.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub(crate) keys: Option<&'a KeyRing>,
    pub(crate) store: &'a str,
    pub(crate) stream: &'a str,
}

/// A record's payload in the codec's encoding and, for a sealed record, what its seal holds.
struct Payload<'a> {
    bytes: Cow<'a, [u8]>,
    /// `None` for a plaintext record, whose tag and chain value are zero.
    seal: Option<Sealed>,
}

/// A sealed record's tag, and the chain value it carries.
struct Sealed {
    tag: Chain,
    chain: Chain,
}

impl Reader<'_> {
    /// Opens `rec` (filed under `seq` as `kind`) if the journal is encrypted; `chain` is the
    /// expected chain value (events).
    #[inline(always)]
    fn open<'r>(
        &self,
        rec: &record::Record<'r>,
        kind: RecordKind,
        seq: u64,
        codec: u8,
        chain: &Chain,
    ) -> Result<Payload<'r>, RecoveryError> {
        let fail = |source| RecoveryError::Open { kind, seq, source };
        match (self.keys, rec.sealed) {
            (None, false) => Ok(Payload {
                bytes: Cow::Borrowed(rec.payload),
                seal: None,
            }),
            (None, true) => Err(fail(SealError::NoKeys)),
            (Some(_), false) => Err(fail(SealError::NotSealed)),
            (Some(keys), true) => {
                let at = Binding {
                    store: self.store,
                    stream: self.stream,
                    kind,
                    codec,
                    seq,
                };
                let opened =
                    seal::open_payload(keys, &at, rec.header.type_version, chain, rec.payload)
                        .map_err(fail)?;
                Ok(Payload {
                    bytes: Cow::Owned(opened.plaintext),
                    seal: Some(Sealed {
                        tag: opened.tag,
                        chain: opened.chain,
                    }),
                })
            }
        }
    }
}

/// Why a snapshot could not be used: `Soft` falls back to an older one, `Hard` stops recovery.
enum Unreadable {
    Soft(String),
    Hard(RecoveryError),
}

/// A write whose landing recovery checks, by the checksums of the records it would have left.
///
/// A probing recovery first reads the event at `seq` directly (so a snapshot at or past `seq`
/// cannot hide it), then recovers as usual; the replay and the snapshot it loads are checked too.
/// Only conclusive observations set `seen`: our event or our Light snapshot at `seq` (ours
/// landed: an append is atomic), or another event at `seq` (ours did not). Another snapshot at
/// `seq` proves nothing: a writer that recovered after our write may have snapshotted there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The last seq of the write.
    pub(crate) seq: u64,
    /// Checksum of the event record at `seq`.
    pub(crate) event_checksum: u32,
    /// Checksum of the snapshot written with it (Light strategy).
    pub(crate) snapshot_checksum: Option<u32>,
    /// Whether the event at `seq` was seen, and whether it was ours (`None`: not seen).
    pub(crate) seen: Option<bool>,
}

impl Probe {
    /// Records what was found at `seq`, unless something conclusive was found already.
    fn observe(&mut self, ours: bool) {
        if self.seen.is_none() {
            self.seen = Some(ours);
        }
    }
}

/// What a finished recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) last_seq: u64,
    pub(crate) snapshot_seq: Option<u64>,
    pub(crate) replayed: u64,
    pub(crate) skipped: Vec<(u64, String)>,
    pub(crate) probe: Option<Probe>,
    /// The chain value at `last_seq`.
    pub(crate) chain: Chain,
}

/// The result of feeding one completion to a recovery.
pub(crate) enum Progress {
    /// Execute this command next.
    Next(Command),
    /// The state is rebuilt.
    Done(Recovered),
    /// Recovery failed.
    Failed(RecoveryError),
    /// A slice of a page was applied; the rest waits for [`Recovery::resume`].
    Paused,
}

/// A page of events being replayed a slice at a time.
struct Page {
    records: Vec<StoredRecord>,
    /// The next record to apply.
    at: usize,
    /// The head the store reported with the page.
    head: u64,
    /// Whether the page was full (more events may follow it in the log).
    full: bool,
}

enum Step {
    /// Reading the probed position directly (the first step of a probing recovery).
    Probe {
        before: Option<u64>,
    },
    Snapshot {
        before: Option<u64>,
    },
    Events,
    /// Applying a page a slice at a time; no command in flight.
    Replaying,
}

pub(crate) struct Recovery<E, C> {
    pub(crate) cmd: CommandId,
    step: Step,
    until: Option<u64>,
    read_batch: usize,
    /// The most events applied per input (`usize::MAX`: a whole page).
    slice: usize,
    page: Option<Page>,
    snapshot_seq: Option<u64>,
    next: u64,
    replayed: u64,
    skipped: Vec<(u64, String)>,
    probe: Option<Probe>,
    chain: Chain,
    _types: PhantomData<fn() -> (E, C)>,
}

/// Decodes `stored` and checks that it is a `kind` record at its seq in codec `codec_id`. The
/// replay's hot path: the error is built apart, only when there is one.
#[inline(always)]
fn decode_checked(
    stored: &StoredRecord,
    kind: RecordKind,
    codec_id: u8,
) -> Result<record::Record<'_>, RecoveryError> {
    match record::decode_valid(&stored.bytes) {
        Some(rec)
            if rec.header.kind == kind
                && rec.header.seq == stored.seq
                && rec.header.codec == codec_id =>
        {
            Ok(rec)
        }
        _ => Err(envelope_error(stored, kind, codec_id)),
    }
}

/// Why [`decode_checked`] refused `stored`: it does not decode, or it is not what the reader
/// expects there.
#[cold]
#[inline(never)]
fn envelope_error(stored: &StoredRecord, kind: RecordKind, codec_id: u8) -> RecoveryError {
    let seq = stored.seq;
    let rec = match record::decode(&stored.bytes) {
        Ok(rec) => rec,
        Err(source) => return RecoveryError::Corrupt { kind, seq, source },
    };
    let detail = if rec.header.kind != kind {
        format!("envelope holds a {:?}", rec.header.kind)
    } else if rec.header.seq != seq {
        format!("envelope seq is {}", rec.header.seq)
    } else {
        // What is left: `decode_valid` accepts exactly what `decode` accepts.
        format!(
            "codec {} where the journal uses {codec_id}",
            rec.header.codec
        )
    };
    RecoveryError::Mismatch { kind, seq, detail }
}

impl<E, C> Recovery<E, C>
where
    E: Entity,
    C: Codec<E> + Codec<E::Event>,
{
    /// Starts a recovery; returns it and its first command.
    pub(crate) fn start(
        cmd: CommandId,
        until: Option<u64>,
        probe: Option<Probe>,
        read_batch: usize,
        slice: Option<usize>,
    ) -> (Self, Command) {
        let before = until.map(|u| u + 1);
        let step = match probe {
            Some(_) => Step::Probe { before },
            None => Step::Snapshot { before },
        };
        let command = match probe {
            Some(probe) => Command::ReadEvents {
                id: cmd,
                from: probe.seq,
                limit: 1,
            },
            None => Command::LoadSnapshot { id: cmd, before },
        };
        let recovery = Self {
            cmd,
            step,
            until,
            read_batch,
            slice: slice.unwrap_or(usize::MAX).max(1),
            page: None,
            snapshot_seq: None,
            next: 1,
            replayed: 0,
            skipped: Vec::new(),
            probe,
            chain: [0; CHAIN_LEN],
            _types: PhantomData,
        };
        (recovery, command)
    }

    /// Whether `completion` answers the command in flight.
    pub(crate) fn accepts(&self, completion: &Completion) -> bool {
        matches!(
            (&self.step, completion),
            (Step::Snapshot { .. }, Completion::Snapshot(_))
                | (Step::Events | Step::Probe { .. }, Completion::Events { .. })
        )
    }

    /// Feeds the completion of the command in flight (its shape checked with
    /// [`accepts`](Self::accepts)). `ids` hands out the next command id.
    pub(crate) fn handle(
        &mut self,
        result: Result<Completion, StorageError>,
        state: &mut E,
        initial: &dyn Fn() -> E,
        ids: &mut u64,
        reader: Reader<'_>,
    ) -> Progress {
        let completion = match result {
            Ok(completion) => Ok(completion),
            Err(StorageError::Damaged { seq, reason }) => Err((seq, reason)),
            Err(error) => return Progress::Failed(RecoveryError::Storage(error.to_string())),
        };
        let progress = match (&self.step, completion) {
            // A damaged record at the probed position: the replay meets it and says so.
            (Step::Probe { before }, Err(_)) => Ok(Some(Step::Snapshot { before: *before })),
            (Step::Probe { before }, Ok(Completion::Events { records, .. })) => {
                let before = *before;
                self.on_probe(&records);
                Ok(Some(Step::Snapshot { before }))
            }
            (Step::Snapshot { before }, Err((seq, reason))) => {
                let before = *before;
                self.on_damaged_snapshot(before, seq, reason)
            }
            (Step::Events, Err((seq, reason))) => Err(RecoveryError::Decode {
                seq,
                reason: format!("the store cannot read the event: {reason}"),
            }),
            (Step::Snapshot { before }, Ok(Completion::Snapshot(found))) => {
                let before = *before;
                self.on_snapshot(before, found, state, initial, reader)
            }
            (Step::Events, Ok(Completion::Events { records, head })) => {
                let full = records.len() >= self.read_batch;
                self.page = Some(Page {
                    records,
                    at: 0,
                    head,
                    full,
                });
                self.on_events(state, reader)
            }
            _ => Err(RecoveryError::Storage(
                "the completion does not answer the command".into(),
            )),
        };
        self.progress(progress, ids)
    }

    /// Applies later pages at most `n` events at a time.
    pub(crate) fn set_slice(&mut self, n: usize) {
        self.slice = n.max(1);
    }

    /// Whether a page is partly applied, waiting for [`resume`](Self::resume).
    pub(crate) fn is_paused(&self) -> bool {
        matches!(self.step, Step::Replaying)
    }

    /// Applies the next slice of a paused page (nothing when not paused).
    pub(crate) fn resume(&mut self, state: &mut E, ids: &mut u64, reader: Reader<'_>) -> Progress {
        if !self.is_paused() {
            return Progress::Paused;
        }
        let progress = self.on_events(state, reader);
        self.progress(progress, ids)
    }

    fn progress(
        &mut self,
        progress: Result<Option<Step>, RecoveryError>,
        ids: &mut u64,
    ) -> Progress {
        match progress {
            Ok(Some(Step::Replaying)) => {
                self.step = Step::Replaying;
                Progress::Paused
            }
            Ok(Some(step)) => {
                *ids += 1;
                self.cmd = CommandId(*ids);
                let command = match step {
                    Step::Probe { before } | Step::Snapshot { before } => Command::LoadSnapshot {
                        id: self.cmd,
                        before,
                    },
                    Step::Events | Step::Replaying => Command::ReadEvents {
                        id: self.cmd,
                        from: self.next,
                        limit: self.read_batch,
                    },
                };
                self.step = step;
                Progress::Next(command)
            }
            Ok(None) => Progress::Done(Recovered {
                last_seq: self.next - 1,
                snapshot_seq: self.snapshot_seq,
                replayed: self.replayed,
                skipped: std::mem::take(&mut self.skipped),
                probe: self.probe,
                chain: self.chain,
            }),
            Err(error) => Progress::Failed(error),
        }
    }

    fn on_snapshot(
        &mut self,
        before: Option<u64>,
        found: Option<StoredRecord>,
        state: &mut E,
        initial: &dyn Fn() -> E,
        reader: Reader<'_>,
    ) -> Result<Option<Step>, RecoveryError> {
        let Some(stored) = found else {
            *state = initial();
            self.next = 1;
            self.chain = [0; CHAIN_LEN];
            return Ok(Some(Step::Events));
        };
        if before.is_some_and(|before| stored.seq >= before) {
            return Err(RecoveryError::Mismatch {
                kind: RecordKind::Snapshot,
                seq: stored.seq,
                detail: format!("asked for a snapshot below {before:?}"),
            });
        }
        match self.decode_snapshot(&stored, reader) {
            Ok((snapshot, checksum, chain)) => {
                *state = snapshot;
                self.snapshot_seq = Some(stored.seq);
                self.next = stored.seq + 1;
                self.chain = chain;
                // Our Light snapshot was written atomically with our events: finding it proves
                // they landed. Another snapshot here proves nothing (see `Probe`).
                if let Some(probe) = self.probe.as_mut().filter(|p| p.seq == stored.seq) {
                    if probe.snapshot_checksum == Some(checksum) {
                        probe.observe(true);
                    }
                }
                Ok(Some(Step::Events))
            }
            Err(Unreadable::Hard(error)) => {
                tracing::error!(seq = stored.seq, %error, "snapshot cannot be opened");
                Err(error)
            }
            Err(Unreadable::Soft(reason)) => {
                tracing::warn!(seq = stored.seq, %reason, "snapshot unreadable, falling back");
                self.skipped.push((stored.seq, reason));
                Ok(Some(Step::Snapshot {
                    before: Some(stored.seq),
                }))
            }
        }
    }

    /// The answer to the probe's direct read: the event at the probed seq, if any, is ours or
    /// another writer's. An undecodable record there decides nothing (the replay reports it).
    fn on_probe(&mut self, records: &[StoredRecord]) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        let found = records.iter().find(|r| r.seq == probe.seq);
        if let Some(rec) = found.and_then(|stored| record::decode(&stored.bytes).ok()) {
            let ours = rec.checksum == probe.event_checksum;
            probe.observe(ours);
        }
    }

    /// The store found a snapshot at `seq` but could not read it (a damaged or missing file):
    /// fall back to an older one, exactly as for a snapshot that does not decode.
    fn on_damaged_snapshot(
        &mut self,
        before: Option<u64>,
        seq: u64,
        reason: String,
    ) -> Result<Option<Step>, RecoveryError> {
        if before.is_some_and(|before| seq >= before) {
            return Err(RecoveryError::Mismatch {
                kind: RecordKind::Snapshot,
                seq,
                detail: format!("a damaged snapshot reported at or above {before:?}"),
            });
        }
        tracing::warn!(seq, %reason, "the store cannot read a snapshot, falling back");
        self.skipped.push((seq, reason));
        Ok(Some(Step::Snapshot { before: Some(seq) }))
    }

    fn decode_snapshot(
        &self,
        stored: &StoredRecord,
        reader: Reader<'_>,
    ) -> Result<(E, u32, Chain), Unreadable> {
        let soft = |e: &dyn std::fmt::Display| Unreadable::Soft(e.to_string());
        let codec = <C as Codec<E>>::ID;
        let rec = decode_checked(stored, RecordKind::Snapshot, codec).map_err(|e| soft(&e))?;
        let payload = reader
            .open(
                &rec,
                RecordKind::Snapshot,
                stored.seq,
                codec,
                &[0; CHAIN_LEN],
            )
            .map_err(Unreadable::Hard)?;
        let value = if rec.header.type_version == E::SNAPSHOT_VERSION {
            <C as Codec<E>>::decode(&payload.bytes).map_err(|e| soft(&e))?
        } else {
            E::upcast_snapshot(rec.header.type_version, &payload.bytes).map_err(|e| soft(&e))?
        };
        let chain = payload.seal.map_or([0; CHAIN_LEN], |seal| seal.chain);
        Ok((value, rec.checksum, chain))
    }

    /// Applies the next slice of the page being replayed; pauses if records remain.
    fn on_events(
        &mut self,
        state: &mut E,
        reader: Reader<'_>,
    ) -> Result<Option<Step>, RecoveryError> {
        let Some(mut page) = self.page.take() else {
            return Err(RecoveryError::Storage("no page to replay".into()));
        };
        let end = page.records.len().min(page.at.saturating_add(self.slice));
        let head = page.head;
        let records = page.records.get(page.at..end).unwrap_or_default();
        page.at = end;
        for stored in records {
            // Past `until` once every event up to it is replayed; a record beyond it while
            // events up to it are missing (say compacted under a snapshot that proved
            // unreadable) is a sequence error, never the end of the rebuild.
            if self
                .until
                .is_some_and(|until| stored.seq > until && self.next > until)
            {
                return self.finish(head, true);
            }
            if stored.seq != self.next {
                return Err(self.sequence_error(stored.seq));
            }
            let codec = <C as Codec<E::Event>>::ID;
            let rec = decode_checked(stored, RecordKind::Event, codec)?;
            let payload = reader.open(&rec, RecordKind::Event, stored.seq, codec, &self.chain)?;
            let event = if rec.header.type_version == E::EVENT_VERSION {
                <C as Codec<E::Event>>::decode(&payload.bytes).map_err(|e| e.to_string())
            } else {
                E::upcast_event(rec.header.type_version, &payload.bytes).map_err(|e| e.to_string())
            }
            .map_err(|reason| RecoveryError::Decode {
                seq: stored.seq,
                reason,
            })?;
            state.apply(&event).map_err(|e| RecoveryError::Refused {
                seq: stored.seq,
                reason: e.to_string(),
            })?;
            if let Some(probe) = self.probe.as_mut().filter(|p| p.seq == stored.seq) {
                let ours = probe.event_checksum == rec.checksum;
                probe.observe(ours);
            }
            // A plaintext journal's chain stays zero.
            if let Some(seal) = payload.seal {
                self.chain = seal.tag;
            }
            self.next += 1;
            self.replayed += 1;
        }
        if page.at < page.records.len() {
            self.page = Some(page);
            return Ok(Some(Step::Replaying));
        }
        if page.full {
            return Ok(Some(Step::Events));
        }
        self.finish(head, false)
    }

    fn sequence_error(&self, found: u64) -> RecoveryError {
        if found < self.next {
            return RecoveryError::OutOfOrder {
                expected: self.next,
                found,
            };
        }
        match self.skipped.first() {
            Some((seq, reason)) if self.replayed == 0 => RecoveryError::SnapshotUnrecoverable {
                seq: *seq,
                reason: reason.clone(),
                resumes_at: found,
            },
            _ => RecoveryError::Gap {
                expected: self.next,
                found,
            },
        }
    }

    fn finish(&self, head: u64, stopped_at_until: bool) -> Result<Option<Step>, RecoveryError> {
        let last = self.next - 1;
        if let Some(until) = self.until {
            if stopped_at_until || last == until {
                return Ok(None);
            }
            return Err(RecoveryError::MissingTail { last, head: until });
        }
        if let Some(snapshot) = self.snapshot_seq.filter(|&s| s > head) {
            return Err(RecoveryError::SnapshotBeyondHead { snapshot, head });
        }
        if last > head {
            return Err(RecoveryError::HeadBehind { last, head });
        }
        if last < head {
            return Err(self.sequence_error_at_tail(head));
        }
        Ok(None)
    }

    fn sequence_error_at_tail(&self, head: u64) -> RecoveryError {
        match self.skipped.first() {
            Some((seq, reason)) if self.replayed == 0 => RecoveryError::SnapshotUnrecoverable {
                seq: *seq,
                reason: reason.clone(),
                resumes_at: head + 1,
            },
            _ => RecoveryError::MissingTail {
                last: self.next - 1,
                head,
            },
        }
    }
}
