//! The in-memory index: per stream, its head, its compaction low-water mark, its snapshots, and
//! which segments hold its live events — as runs of contiguous seqs, one per segment, so its
//! size grows with streams and segments, never with events. Where each event lies inside a
//! segment (the [`SegFine`] positions) is held only for the active segment and a few recently
//! read ones, and rebuilt from the segment itself when needed. Rebuilt at open by replaying
//! the log's operations (or loaded from the checkpoint file and brought up to date) through
//! the same [`Index::apply`] the live path uses.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
/// Where a record's bytes lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    /// The segment number.
    pub seg: u64,
    /// The byte offset in the segment file.
    pub off: u64,
    /// The record's length.
    pub len: u32,
}

/// Where a snapshot lies: in the log, or in a file of its own (large snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnapLoc {
    /// A record of the log.
    Log(Loc),
    /// The file `{id:016x}.snap`, of `len` bytes with CRC-32 `crc`.
    File { id: u64, len: u32, crc: u32 },
}

/// Bytes a live record costs on disk besides its own (its length prefix).
pub(crate) const RECORD_OVERHEAD: u64 = 4;

/// A frame that marks a place in the log rather than writing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// The segment ends here (written before the next segment is created).
    Seal,
    /// A clean shutdown: every frame before it was acknowledged.
    Close,
}

/// One committed write, as logged and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Events `expected_last + 1 ..` (and a snapshot at the last one).
    Append {
        stream: Arc<str>,
        expected_last: u64,
        events: Vec<Loc>,
        snapshot: Option<SnapLoc>,
    },
    /// A snapshot at `seq`, replacing one at the same seq.
    SaveSnapshot {
        stream: Arc<str>,
        seq: u64,
        snapshot: SnapLoc,
    },
    /// Events with seq `<= up_to` deleted.
    DeleteEvents { stream: Arc<str>, up_to: u64 },
    /// All snapshots but the newest `keep` deleted.
    DeleteSnapshots { stream: Arc<str>, keep: u64 },
    /// A stream's whole state, as written by compaction.
    Checkpoint {
        stream: Arc<str>,
        head: u64,
        low_water: u64,
        events: Vec<Loc>,
        snapshots: Vec<(u64, SnapLoc)>,
    },
    /// A marker (seal or close): changes no stream.
    Marker(Marker),
}

/// A run of a stream's live seqs that lie in one segment: from `first` to the next run's
/// `first` (or the stream's head).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// The segment number.
    pub seg: u64,
    /// The run's first seq.
    pub first: u64,
    /// Bytes of its records in the log (with their overhead), for the compaction trigger.
    pub bytes: u64,
}

/// Records of one stream lying back to back in one frame: seqs `first .. first + count`,
/// their length prefixes and bytes filling `span` bytes from offset `off` of the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// The first seq.
    pub first: u64,
    /// The file offset of the first record's length prefix.
    pub off: u64,
    /// How many records.
    pub count: u32,
    /// Their bytes, prefixes included.
    pub span: u32,
}

/// The largest span of one [`Extent`]: a read of one event never reads more than this.
const EXTENT_MAX: u64 = 1 << 20;

/// Where each event of one segment lies: every stream's extents, in seq order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegFine {
    /// Extents by stream.
    pub streams: HashMap<Arc<str>, Vec<Extent>>,
    /// When it was last used (for the cache of sealed segments' positions).
    pub used: u64,
}

impl SegFine {
    /// Adds the records `locs` (one operation's events, back to back in one frame), the first
    /// being seq `first`.
    pub fn add(&mut self, stream: &Arc<str>, first: u64, locs: &[Loc]) {
        if locs.is_empty() {
            return;
        }
        let list = self.streams.entry(Arc::clone(stream)).or_default();
        for (seq, loc) in (first..).zip(locs) {
            let start = loc.off - RECORD_OVERHEAD;
            let end = loc.off + u64::from(loc.len);
            match list.last_mut() {
                Some(e)
                    if e.first + u64::from(e.count) == seq
                        && e.off + u64::from(e.span) == start
                        && end - e.off <= EXTENT_MAX =>
                {
                    e.count += 1;
                    e.span = (end - e.off) as u32;
                }
                _ => list.push(Extent {
                    first: seq,
                    off: start,
                    count: 1,
                    span: (end - start) as u32,
                }),
            }
        }
    }

    /// The extents of `stream` holding seqs from `from` on.
    pub fn from(&self, stream: &str, from: u64) -> &[Extent] {
        let Some(list) = self.streams.get(stream) else {
            return &[];
        };
        let i = list.partition_point(|e| e.first + u64::from(e.count) <= from);
        &list[i..]
    }
}

/// One stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamState {
    /// The highest seq ever appended.
    pub head: u64,
    /// Events with seq `<= low_water` are deleted.
    pub low_water: u64,
    /// Where the live events lie, contiguous from `low_water + 1` to `head`, in seq order
    /// (and segment order).
    pub runs: VecDeque<Run>,
    /// Snapshots by the seq they cover.
    pub snapshots: BTreeMap<u64, SnapLoc>,
}

impl StreamState {
    /// The last seq of run `i`.
    pub fn run_last(&self, i: usize) -> u64 {
        self.runs.get(i + 1).map_or(self.head, |r| r.first - 1)
    }

    /// Bytes of live records (with their overhead).
    pub fn live_event_bytes(&self) -> u64 {
        self.runs.iter().map(|r| r.bytes).sum()
    }
}

/// Every stream.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Streams by id.
    pub streams: HashMap<Arc<str>, StreamState>,
    /// Bytes of live records in the log (with their overhead), for the compaction trigger.
    pub live_bytes: u64,
    /// Snapshot files no longer referenced, to remove once the operation that dropped them is
    /// durable.
    pub dropped_files: Vec<u64>,
    /// The positions of the segments loaded: the active one's always, a few sealed ones' once
    /// read. Applied operations add to the segment they wrote to when it is loaded.
    pub fine: BTreeMap<u64, SegFine>,
    /// Counts uses of [`fine`](Self::fine) entries.
    pub tick: u64,
}

/// The seq after `n` events that follow seq `after` (`after + n + 1`), if it fits a u64: every
/// seq of those events, and the end of their range, can then be computed without overflow.
/// Seqs and counts read from disk are checked with it before any arithmetic.
pub(crate) fn seq_after(after: u64, n: usize) -> Option<u64> {
    after.checked_add(u64::try_from(n).ok()?)?.checked_add(1)
}

fn cost(loc: &Loc) -> u64 {
    u64::from(loc.len) + RECORD_OVERHEAD
}

fn snap_cost(loc: &SnapLoc) -> u64 {
    match loc {
        SnapLoc::Log(loc) => cost(loc),
        SnapLoc::File { .. } => 0,
    }
}

impl Index {
    fn add_snapshot(&mut self, stream: &Arc<str>, seq: u64, loc: SnapLoc) {
        self.live_bytes += snap_cost(&loc);
        let old = self
            .streams
            .get_mut(stream)
            .and_then(|s| s.snapshots.insert(seq, loc));
        if let Some(old) = old {
            self.drop_snapshot(&old);
        }
    }

    fn drop_snapshot(&mut self, loc: &SnapLoc) {
        self.live_bytes -= snap_cost(loc);
        if let SnapLoc::File { id, .. } = loc {
            self.dropped_files.push(*id);
        }
    }
}

/// Drops the runs (or the part of the first run) below the stream's low-water mark; returns
/// the bytes dropped. A run cut in its middle loses its bytes in proportion to its events cut
/// (the exact sizes are in the segment; the figure only triggers compaction).
pub(crate) fn trim_runs(s: &mut StreamState) -> u64 {
    let mut dropped = 0;
    while let Some(first) = s.runs.front().copied() {
        let last = s.run_last(0);
        if last <= s.low_water {
            dropped += first.bytes;
            s.runs.pop_front();
            continue;
        }
        if first.first <= s.low_water {
            let cut = s.low_water + 1 - first.first;
            let all = last + 1 - first.first;
            let part = (u128::from(first.bytes) * u128::from(cut) / u128::from(all)) as u64;
            dropped += part;
            if let Some(r) = s.runs.front_mut() {
                r.bytes -= part;
                r.first = s.low_water + 1;
            }
        }
        break;
    }
    dropped
}

impl Index {
    /// Records events `first ..` of `stream` lying at `locs` (one segment, back to back).
    fn add_events(&mut self, stream: &Arc<str>, first: u64, locs: &[Loc]) {
        let Some(seg) = locs.first().map(|l| l.seg) else {
            return;
        };
        let bytes: u64 = locs.iter().map(cost).sum();
        self.live_bytes += bytes;
        if let Some(s) = self.streams.get_mut(stream) {
            match s.runs.back_mut() {
                Some(r) if r.seg == seg => r.bytes += bytes,
                _ => s.runs.push_back(Run { seg, first, bytes }),
            }
        }
        if let Some(fine) = self.fine.get_mut(&seg) {
            fine.add(stream, first, locs);
        }
    }

    /// Applies a committed (or replayed) operation; fails, changing nothing, if it does not fit
    /// the current state (which a replayed log never does unless it is corrupt).
    pub fn apply(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::Marker(_) => {}
            Op::Append {
                stream,
                expected_last,
                events,
                snapshot,
            } => {
                let s = self.streams.entry(Arc::clone(&stream)).or_default();
                if s.head != expected_last {
                    return Err(format!(
                        "append expects head {expected_last}, the stream's head is {}",
                        s.head
                    ));
                }
                if events.is_empty() {
                    return Err("append without events".into());
                }
                let Some(after) = seq_after(expected_last, events.len()) else {
                    return Err(format!(
                        "append of {} events after seq {expected_last} passes the largest seq",
                        events.len()
                    ));
                };
                s.head = after - 1;
                self.add_events(&stream, expected_last + 1, &events);
                let s = self.streams.entry(Arc::clone(&stream)).or_default();
                let head = s.head;
                if let Some(loc) = snapshot {
                    self.add_snapshot(&stream, head, loc);
                }
            }
            Op::SaveSnapshot {
                stream,
                seq,
                snapshot,
            } => {
                self.streams.entry(Arc::clone(&stream)).or_default();
                self.add_snapshot(&stream, seq, snapshot);
            }
            Op::DeleteEvents { stream, up_to } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    let up_to = up_to.min(s.head);
                    if up_to > s.low_water {
                        s.low_water = up_to;
                        self.live_bytes -= trim_runs(s);
                    }
                }
            }
            Op::DeleteSnapshots { stream, keep } => {
                let mut dropped = Vec::new();
                if let Some(s) = self.streams.get_mut(&stream) {
                    while s.snapshots.len() as u64 > keep.max(1) {
                        if let Some((_, loc)) = s.snapshots.pop_first() {
                            dropped.push(loc);
                        }
                    }
                }
                for loc in dropped {
                    self.drop_snapshot(&loc);
                }
            }
            Op::Checkpoint {
                stream,
                head,
                low_water,
                events,
                snapshots,
            } => {
                if low_water > head
                    || head - low_water != events.len() as u64
                    || seq_after(head, 0).is_none()
                {
                    return Err(format!(
                        "checkpoint of head {head} and low-water mark {low_water} holds {} events",
                        events.len()
                    ));
                }
                if self.streams.contains_key(&stream) {
                    return Err("a second checkpoint of the same stream".into());
                }
                self.live_bytes += snapshots.iter().map(|(_, l)| snap_cost(l)).sum::<u64>();
                self.streams.insert(
                    Arc::clone(&stream),
                    StreamState {
                        head,
                        low_water,
                        runs: VecDeque::new(),
                        snapshots: snapshots.into_iter().collect(),
                    },
                );
                self.add_events(&stream, low_water + 1, &events);
            }
        }
        Ok(())
    }
}
