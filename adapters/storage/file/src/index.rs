//! The in-memory index: per stream, its head, its compaction low-water mark, and where each live
//! event and snapshot lies on disk. Rebuilt at open by replaying the log's operations through
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

/// One stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamState {
    /// The highest seq ever appended.
    pub head: u64,
    /// Events with seq `<= low_water` are deleted; `events[i]` holds seq `low_water + 1 + i`.
    pub low_water: u64,
    /// Live events, contiguous from `low_water + 1` to `head`.
    pub events: VecDeque<Loc>,
    /// Snapshots by the seq they cover.
    pub snapshots: BTreeMap<u64, SnapLoc>,
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

impl Index {
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
                s.head += events.len() as u64;
                for loc in events {
                    self.live_bytes += cost(&loc);
                    s.events.push_back(loc);
                }
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
                    while s.low_water < up_to {
                        if let Some(loc) = s.events.pop_front() {
                            self.live_bytes -= cost(&loc);
                        }
                        s.low_water += 1;
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
                if low_water > head || head - low_water != events.len() as u64 {
                    return Err(format!(
                        "checkpoint of head {head} and low-water mark {low_water} holds {} events",
                        events.len()
                    ));
                }
                if self.streams.contains_key(&stream) {
                    return Err("a second checkpoint of the same stream".into());
                }
                self.live_bytes += events.iter().map(cost).sum::<u64>()
                    + snapshots.iter().map(|(_, l)| snap_cost(l)).sum::<u64>();
                self.streams.insert(
                    stream,
                    StreamState {
                        head,
                        low_water,
                        events: events.into(),
                        snapshots: snapshots.into_iter().collect(),
                    },
                );
            }
        }
        Ok(())
    }
}
