//! The operations inside a frame: how each committed write is encoded, and decoded on replay.
//!
//! A frame's payload is `count: u32` followed by `count` operations, each a tag byte then:
//!
//! | tag | operation | fields |
//! |---|---|---|
//! | 1 | append | stream, expected_last u64, n u32, n × record, snapshot flag u8, [snapshot] |
//! | 2 | save snapshot | stream, seq u64, snapshot flag u8, snapshot |
//! | 3 | delete events | stream, up_to u64 |
//! | 4 | delete snapshots | stream, keep u64 |
//! | 5 | checkpoint | stream, head u64, low_water u64, n u32, n × record, m u32, m × (seq u64, flag u8, snapshot) |
//! | 6 | seal | (none): the segment ends here; a segment that is not the newest must end with it |
//! | 7 | close | (none): a clean shutdown; every frame before it was acknowledged |
//!
//! A stream is a u32 length and UTF-8 bytes; a record is a u32 length and its bytes. A snapshot
//! is, after its flag, a record (flag 1: in the log) or a file reference (flag 2: file id u64,
//! length u32, CRC-32 u32 of the file `{id:016x}.snap`); flag 0 means no snapshot. Event seqs
//! are implied (contiguous after `expected_last`, or after `low_water` in a checkpoint), so a
//! frame can never hold a gap. All operations of one frame commit together: the frame's
//! checksum makes a batch visible whole or not at all.

use std::sync::Arc;

use persevere_core::StoredRecord;

use crate::frame::{FrameBuf, Reader};
use crate::index::{Loc, Op, SnapLoc};

const APPEND: u8 = 1;
const SAVE_SNAPSHOT: u8 = 2;
const DELETE_EVENTS: u8 = 3;
const DELETE_SNAPSHOTS: u8 = 4;
const CHECKPOINT: u8 = 5;
const SEAL: u8 = 6;
const CLOSE: u8 = 7;

/// Encodes a marker frame's payload (a seal or a close marker).
pub(crate) fn marker(marker: crate::index::Marker) -> FrameBuf {
    let mut frame = FrameBuf::new();
    frame.put_u32(1);
    frame.put_u8(match marker {
        crate::index::Marker::Seal => SEAL,
        crate::index::Marker::Close => CLOSE,
    });
    frame
}

/// The streams a (possibly damaged) frame payload names, as far as it can be decoded: for
/// reports about bytes set aside.
pub(crate) fn streams_in(payload: &[u8]) -> Vec<Arc<str>> {
    let (mut ops, mut names) = (Vec::new(), Vec::new());
    let _ = decode_into(payload, 0, 0, payload.len(), 0, &mut ops, &mut names);
    names.sort_unstable();
    names.dedup();
    names
}

/// Where the frame under construction will lie: so records get their final locations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    /// The segment number.
    pub seg: u64,
    /// The frame's offset in the segment.
    pub at: u64,
}

impl Placement {
    fn record(&self, frame: &mut FrameBuf, bytes: &[u8]) -> Loc {
        frame.put_u32(bytes.len() as u32);
        let loc = Loc {
            seg: self.seg,
            off: self.at + frame.pos() as u64,
            len: bytes.len() as u32,
        };
        frame.put(bytes);
        loc
    }
}

/// A snapshot to encode: its bytes go in the log, or it was written to a file already.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SnapIn<'a> {
    /// In the log.
    Inline(&'a [u8]),
    /// In a file of its own.
    File { id: u64, len: u32, crc: u32 },
}

fn put_snapshot(frame: &mut FrameBuf, place: Placement, snapshot: SnapIn<'_>) -> SnapLoc {
    match snapshot {
        SnapIn::Inline(bytes) => {
            frame.put_u8(1);
            SnapLoc::Log(place.record(frame, bytes))
        }
        SnapIn::File { id, len, crc } => {
            frame.put_u8(2);
            frame.put_u64(id);
            frame.put_u32(len);
            frame.put_u32(crc);
            SnapLoc::File { id, len, crc }
        }
    }
}

fn put_stream(frame: &mut FrameBuf, stream: &str) {
    frame.put_bytes(stream.as_bytes());
}

/// Encodes an append.
pub(crate) fn append(
    frame: &mut FrameBuf,
    place: Placement,
    stream: &Arc<str>,
    expected_last: u64,
    events: &[StoredRecord],
    snapshot: Option<SnapIn<'_>>,
) -> Op {
    frame.put_u8(APPEND);
    put_stream(frame, stream);
    frame.put_u64(expected_last);
    frame.put_u32(events.len() as u32);
    let events = events
        .iter()
        .map(|r| place.record(frame, &r.bytes))
        .collect();
    let snapshot = match snapshot {
        Some(snapshot) => Some(put_snapshot(frame, place, snapshot)),
        None => {
            frame.put_u8(0);
            None
        }
    };
    Op::Append {
        stream: Arc::clone(stream),
        expected_last,
        events,
        snapshot,
    }
}

/// Encodes a snapshot save.
pub(crate) fn save_snapshot(
    frame: &mut FrameBuf,
    place: Placement,
    stream: &Arc<str>,
    seq: u64,
    snapshot: SnapIn<'_>,
) -> Op {
    frame.put_u8(SAVE_SNAPSHOT);
    put_stream(frame, stream);
    frame.put_u64(seq);
    let loc = put_snapshot(frame, place, snapshot);
    Op::SaveSnapshot {
        stream: Arc::clone(stream),
        seq,
        snapshot: loc,
    }
}

/// Encodes an event deletion.
pub(crate) fn delete_events(frame: &mut FrameBuf, stream: &Arc<str>, up_to: u64) -> Op {
    frame.put_u8(DELETE_EVENTS);
    put_stream(frame, stream);
    frame.put_u64(up_to);
    Op::DeleteEvents {
        stream: Arc::clone(stream),
        up_to,
    }
}

/// Encodes a snapshot deletion.
pub(crate) fn delete_snapshots(frame: &mut FrameBuf, stream: &Arc<str>, keep: u64) -> Op {
    frame.put_u8(DELETE_SNAPSHOTS);
    put_stream(frame, stream);
    frame.put_u64(keep);
    Op::DeleteSnapshots {
        stream: Arc::clone(stream),
        keep,
    }
}

/// Encodes a checkpoint header; the caller then adds the events with [`checkpoint_record`] and
/// the snapshots with [`checkpoint_snapshots`].
pub(crate) fn checkpoint_start(
    frame: &mut FrameBuf,
    stream: &str,
    head: u64,
    low_water: u64,
    events: u32,
) {
    frame.put_u8(CHECKPOINT);
    put_stream(frame, stream);
    frame.put_u64(head);
    frame.put_u64(low_water);
    frame.put_u32(events);
}

/// Starts a checkpoint's snapshot list.
pub(crate) fn checkpoint_snapshots(frame: &mut FrameBuf, count: u32) {
    frame.put_u32(count);
}

/// Adds one snapshot to a checkpoint.
pub(crate) fn checkpoint_snapshot(
    frame: &mut FrameBuf,
    place: Placement,
    seq: u64,
    snapshot: SnapIn<'_>,
) -> SnapLoc {
    frame.put_u64(seq);
    put_snapshot(frame, place, snapshot)
}

/// Decodes the operations of the frame whose payload is `data[start..end]`, `data` lying at
/// offset `base` of segment `seg`.
pub(crate) fn decode(
    data: &[u8],
    base: u64,
    start: usize,
    end: usize,
    seg: u64,
) -> Result<Vec<Op>, &'static str> {
    let mut ops = Vec::new();
    decode_into(data, base, start, end, seg, &mut ops, &mut Vec::new())?;
    Ok(ops)
}

fn decode_into(
    data: &[u8],
    base: u64,
    start: usize,
    end: usize,
    seg: u64,
    ops: &mut Vec<Op>,
    streams: &mut Vec<Arc<str>>,
) -> Result<(), &'static str> {
    let payload = data.get(..end).ok_or("frame out of range")?;
    let mut r = Reader::new(payload, start);
    let count = r.u32()?;
    let loc = |(off, len): (usize, u32)| Loc {
        seg,
        off: base + off as u64,
        len,
    };
    let snap = |r: &mut Reader<'_>, flag: u8| -> Result<SnapLoc, &'static str> {
        match flag {
            1 => Ok(SnapLoc::Log(loc(r.bytes()?))),
            2 => Ok(SnapLoc::File {
                id: r.u64()?,
                len: r.u32()?,
                crc: r.u32()?,
            }),
            _ => Err("bad snapshot flag"),
        }
    };
    for _ in 0..count {
        let tag = r.u8()?;
        match tag {
            SEAL => {
                ops.push(Op::Marker(crate::index::Marker::Seal));
                continue;
            }
            CLOSE => {
                ops.push(Op::Marker(crate::index::Marker::Close));
                continue;
            }
            _ => {}
        }
        let stream: Arc<str> = Arc::from(r.str()?);
        streams.push(Arc::clone(&stream));
        ops.push(match tag {
            APPEND => {
                let expected_last = r.u64()?;
                let n = r.u32()?;
                let mut events = Vec::new();
                for _ in 0..n {
                    events.push(loc(r.bytes()?));
                }
                let snapshot = match r.u8()? {
                    0 => None,
                    flag => Some(snap(&mut r, flag)?),
                };
                Op::Append {
                    stream,
                    expected_last,
                    events,
                    snapshot,
                }
            }
            SAVE_SNAPSHOT => {
                let seq = r.u64()?;
                let flag = r.u8()?;
                Op::SaveSnapshot {
                    stream,
                    seq,
                    snapshot: snap(&mut r, flag)?,
                }
            }
            DELETE_EVENTS => Op::DeleteEvents {
                stream,
                up_to: r.u64()?,
            },
            DELETE_SNAPSHOTS => Op::DeleteSnapshots {
                stream,
                keep: r.u64()?,
            },
            CHECKPOINT => {
                let head = r.u64()?;
                let low_water = r.u64()?;
                let n = r.u32()?;
                let mut events = Vec::new();
                for _ in 0..n {
                    events.push(loc(r.bytes()?));
                }
                let m = r.u32()?;
                let mut snapshots = Vec::new();
                for _ in 0..m {
                    let seq = r.u64()?;
                    let flag = r.u8()?;
                    snapshots.push((seq, snap(&mut r, flag)?));
                }
                Op::Checkpoint {
                    stream,
                    head,
                    low_water,
                    events,
                    snapshots,
                }
            }
            _ => return Err("unknown operation tag"),
        });
    }
    if !r.is_done() {
        return Err("trailing bytes in frame");
    }
    Ok(())
}
