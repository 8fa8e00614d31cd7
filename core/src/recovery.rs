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

/// A write whose landing recovery checks, by the records it would have left at its positions.
///
/// An append is atomic: it landed if and only if its records are at `first..=last`. A probing
/// recovery first reads those positions directly (in pages of at most the read batch, so a
/// snapshot at or past them cannot hide them), then recovers as usual; the replay and the
/// snapshot it loads are checked too. Only conclusive observations set `seen` (the first wins):
///
/// - the record at `last` is not our last record (another checksum; sealed, another tag):
///   ours did not land;
/// - it is, and every position `first..=last` was read in order: ours landed if the fold of
///   their checksums ([`record::fold_checksum`]) is the fold of ours, and did not otherwise
///   (another writer's events before a last event identical to ours);
/// - it is, sealed, with earlier positions unread (compacted): ours landed. A sealed record
///   covers a random nonce, so no other writer's record has its checksum and tag, and an
///   event's tag commits, through the chain, to every event before it;
/// - sealed, our Light snapshot (our checksum) at `last`, bound to our chain value: ours landed.
///
/// Inconclusive: plaintext positions missing (compacted) or unreadable before an identical last
/// record; every plaintext snapshot (it encodes the state, which other events can reach: another
/// writer's may be byte-identical to ours); another sealed snapshot at `last` (a writer that
/// recovered after our write may have snapshotted there). Two plaintext appends of the same
/// events at the same positions leave the same bytes and are not told apart (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The first seq of the write.
    first: u64,
    /// The last seq of the write.
    last: u64,
    /// Checksum of the event record at `last`.
    last_checksum: u32,
    /// The fold of the checksums of the event records at `first..=last`, in order.
    events: u64,
    /// The tag of the event record at `last`, for a sealed journal (`None`: plaintext).
    tag: Option<Chain>,
    /// Checksum of the snapshot written with it (Light strategy).
    snapshot_checksum: Option<u32>,
    /// Whether the write was seen, and whether it was ours (`None`: nothing conclusive yet).
    seen: Option<bool>,
    /// The direct read: the next position it expects and the fold of the positions before it;
    /// `None` once a position was missing or unreadable (or the read is over).
    read: Option<(u64, u64)>,
    /// The replay's fold of the positions from `first` on (`None` until it replays `first`).
    replayed: Option<u64>,
}

impl Probe {
    /// A probe of the write of event records at `first..=last` whose checksums fold to
    /// `events`, the last one's checksum being `last_checksum` and, sealed, its tag `tag`;
    /// `snapshot_checksum` is that of its Light snapshot.
    pub(crate) fn new(
        first: u64,
        last: u64,
        last_checksum: u32,
        events: u64,
        tag: Option<Chain>,
        snapshot_checksum: Option<u32>,
    ) -> Self {
        Self {
            first,
            last,
            last_checksum,
            events,
            tag,
            snapshot_checksum,
            seen: None,
            read: Some((first, record::CHECKSUM_FOLD)),
            replayed: None,
        }
    }

    /// Whether the write was seen, and whether it was ours (`None`: not seen).
    pub(crate) fn seen(&self) -> Option<bool> {
        self.seen
    }

    /// Records what was found, unless something conclusive was found already.
    fn observe(&mut self, ours: bool) {
        if self.seen.is_none() {
            self.seen = Some(ours);
        }
    }

    /// The record at `last` has `checksum` and (sealed) `tag`; `fold` is the fold of every
    /// position `first..=last`, if all of them were read in order.
    fn at_last(&mut self, checksum: u32, tag: Option<Chain>, fold: Option<u64>) {
        let ours = checksum == self.last_checksum && self.tag.is_none_or(|t| tag == Some(t));
        match fold {
            _ if !ours => self.observe(false),
            Some(fold) => self.observe(fold == self.events),
            // Sealed, our last record proves the append (see the type's docs); plaintext,
            // another writer's may be byte-identical to it.
            None if self.tag.is_some() => self.observe(true),
            None => {}
        }
    }

    /// The next direct read (from, limit), if the positions are not all read yet.
    fn next_read(&self, read_batch: usize) -> Option<(u64, usize)> {
        if self.seen.is_some() {
            return None;
        }
        let (at, _) = self.read.filter(|&(at, _)| at <= self.last)?;
        let left = usize::try_from(self.last - at).map_or(usize::MAX, |n| n.saturating_add(1));
        Some((at, left.min(read_batch.max(1))))
    }

    /// A page of the direct read of our positions.
    fn on_read(&mut self, records: &[StoredRecord]) {
        for stored in records {
            if stored.seq > self.last {
                break;
            }
            // Any byte string: an undecodable record (or one filed elsewhere) is unreadable here
            // (the replay reports it).
            let rec = record::decode_valid(&stored.bytes)
                .filter(|rec| rec.header.kind == RecordKind::Event && rec.header.seq == stored.seq);
            self.read = match (self.read, &rec) {
                (Some((at, fold)), Some(rec)) if stored.seq == at => {
                    Some((at, record::fold_checksum(fold, rec.checksum)))
                }
                _ => None,
            };
            if stored.seq == self.last {
                let fold = self.read.map(|(_, fold)| fold);
                self.read = None;
                if let Some(rec) = rec {
                    let tag = rec.sealed.then(|| seal::stored_tag(rec.payload)).flatten();
                    self.at_last(rec.checksum, tag, fold);
                }
                return;
            }
            // Below `last`: the next position is in range.
            self.read = self.read.map(|(at, fold)| (at + 1, fold));
        }
    }

    /// The replay applied the event at `seq` (its record's `checksum` and, sealed, its verified
    /// `tag`).
    #[inline]
    fn on_replayed(&mut self, seq: u64, checksum: u32, tag: Option<Chain>) {
        if seq < self.first || seq > self.last || self.seen.is_some() {
            return;
        }
        let fold = if seq == self.first {
            Some(record::CHECKSUM_FOLD)
        } else {
            self.replayed
        };
        self.replayed = fold.map(|fold| record::fold_checksum(fold, checksum));
        if seq == self.last {
            self.at_last(checksum, tag, self.replayed);
        }
    }

    /// Recovery loaded a snapshot at `seq` with `checksum`, bound (sealed) to `chain`.
    fn on_snapshot(&mut self, seq: u64, checksum: u32, chain: &Chain) {
        // Sealed only: our Light snapshot (its nonce is ours alone), bound to the chain value
        // after our last event, was written atomically with our events. A plaintext snapshot
        // proves nothing (see the type's docs).
        let ours = seq == self.last
            && self.snapshot_checksum == Some(checksum)
            && self.tag.as_ref() == Some(chain);
        if ours {
            self.observe(true);
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
    /// Reading the probed positions directly (the first step of a probing recovery): `limit`
    /// events from `from`.
    Probe {
        before: Option<u64>,
        from: u64,
        limit: usize,
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

/// Why a record at seq `u64::MAX` is refused: a journal's last event is at most `u64::MAX - 1`
/// (it refuses a batch that would reach further), so nothing it wrote is there.
const LAST_SEQ_UNWRITTEN: &str = "seq u64::MAX is past the last seq a journal writes";

/// The error for an event at seq `u64::MAX` (see [`LAST_SEQ_UNWRITTEN`]).
#[cold]
#[inline(never)]
fn last_seq_error(seq: u64) -> RecoveryError {
    RecoveryError::Mismatch {
        kind: RecordKind::Event,
        seq,
        detail: LAST_SEQ_UNWRITTEN.to_owned(),
    }
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
        // Every seq is below `u64::MAX + 1`: no bound then.
        let before = until.and_then(|u| u.checked_add(1));
        let (step, command) = match probe.and_then(|probe| probe.next_read(read_batch)) {
            Some((from, limit)) => (
                Step::Probe {
                    before,
                    from,
                    limit,
                },
                Command::ReadEvents {
                    id: cmd,
                    from,
                    limit,
                },
            ),
            None => (
                Step::Snapshot { before },
                Command::LoadSnapshot { id: cmd, before },
            ),
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
            // A damaged record at a probed position: the replay meets it and says so.
            (Step::Probe { before, .. }, Err(_)) => Ok(Some(Step::Snapshot { before: *before })),
            (Step::Probe { before, .. }, Ok(Completion::Events { records, .. })) => {
                let before = *before;
                Ok(Some(self.on_probe(before, &records)))
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
                    Step::Probe { from, limit, .. } => Command::ReadEvents {
                        id: self.cmd,
                        from,
                        limit,
                    },
                    Step::Snapshot { before } => Command::LoadSnapshot {
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
        let Some(next) = stored.seq.checked_add(1) else {
            // No journal writes seq `u64::MAX` (its last event would be there): a snapshot filed
            // there is damaged, skipped like any unreadable one.
            return Ok(self.skip_snapshot(stored.seq, LAST_SEQ_UNWRITTEN.to_owned()));
        };
        match self.decode_snapshot(&stored, reader) {
            Ok((snapshot, checksum, chain)) => {
                *state = snapshot;
                self.snapshot_seq = Some(stored.seq);
                self.next = next;
                self.chain = chain;
                if let Some(probe) = self.probe.as_mut() {
                    probe.on_snapshot(stored.seq, checksum, &chain);
                }
                Ok(Some(Step::Events))
            }
            Err(Unreadable::Hard(error)) => {
                tracing::error!(seq = stored.seq, %error, "snapshot cannot be opened");
                Err(error)
            }
            Err(Unreadable::Soft(reason)) => Ok(self.skip_snapshot(stored.seq, reason)),
        }
    }

    /// Skips the unreadable snapshot at `seq`: recovery falls back to an older one.
    fn skip_snapshot(&mut self, seq: u64, reason: String) -> Option<Step> {
        tracing::warn!(seq, %reason, "snapshot unreadable, falling back");
        self.skipped.push((seq, reason));
        Some(Step::Snapshot { before: Some(seq) })
    }

    /// A page of the probe's direct read of the write's positions (see [`Probe`]); the next
    /// step is another page, or the snapshot load that starts the recovery proper.
    fn on_probe(&mut self, before: Option<u64>, records: &[StoredRecord]) -> Step {
        let Some(probe) = self.probe.as_mut() else {
            return Step::Snapshot { before };
        };
        let at = probe.read.map(|(at, _)| at);
        probe.on_read(records);
        // Another page only after progress (a store returning nothing new ends the read).
        match probe.next_read(self.read_batch) {
            Some((from, limit)) if Some(from) != at => Step::Probe {
                before,
                from,
                limit,
            },
            _ => Step::Snapshot { before },
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
            let Some(next) = self.next.checked_add(1) else {
                return Err(last_seq_error(stored.seq));
            };
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
            if let Some(probe) = self.probe.as_mut() {
                probe.on_replayed(
                    stored.seq,
                    rec.checksum,
                    payload.seal.as_ref().map(|s| s.tag),
                );
            }
            // A plaintext journal's chain stays zero.
            if let Some(seal) = payload.seal {
                self.chain = seal.tag;
            }
            self.next = next;
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
            // `head` is `u64::MAX` (never a journal's) without the `+ 1`: the events are missing.
            Some((seq, reason)) if self.replayed == 0 && head < u64::MAX => {
                RecoveryError::SnapshotUnrecoverable {
                    seq: *seq,
                    reason: reason.clone(),
                    resumes_at: head + 1,
                }
            }
            _ => RecoveryError::MissingTail {
                last: self.next - 1,
                head,
            },
        }
    }
}
