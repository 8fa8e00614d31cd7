//! The index checkpoint `INDEX`: the in-memory index as of a place in the log, so that open
//! reads it and replays only what follows instead of the whole history.
//!
//! It holds no event positions: those of the active segment are rebuilt at open by scanning
//! it (which also verifies every frame of it), those of sealed segments when they are read.
//!
//! It is an optional file: a store without one (every store written before it existed, or one
//! whose checkpoint is damaged, of another store, or stale) is opened by replaying its log, as
//! before, and gets a checkpoint at its next clean shutdown. It is never trusted blindly: it
//! must carry this store's id, its checksum must hold, the compaction floor and every segment
//! it covers must be the ones on disk (the covered segments with the same lengths), and the
//! frame it ends after must be the one in the log (its checksum is compared with the one the
//! checkpoint records). Anything else and open ignores it (logging why) and replays the log.
//!
//! Written (temporary file `INDEX.tmp`, fsync, rename) at a clean shutdown, after each segment
//! is sealed and after each compaction; a crash leaves the old checkpoint, or none, or a
//! leftover temporary file (set aside at open like every temporary file of the store).
//!
//! | field | encoding |
//! |---|---|
//! | magic, version | `PSVIDX`, u16 LE (1) |
//! | store id | u64 |
//! | position | segment u64, length u64, chain u32 (the CRC of the frame ending there, or of the segment header), marker u8 (0 none, 1 seal, 2 close) |
//! | floor | u64 |
//! | segments | u32 count, each number u64 and length u64 (from the floor up to the position's segment, which is listed with its length at the position) |
//! | streams | u64 count, each: id (u32 length, bytes), head u64, low_water u64, runs (u32 count, each segment u64, first seq u64, bytes u64), snapshots (u32 count, each seq u64 then flag 1 + segment u64, offset u64, length u32, or flag 2 + file id u64, length u32, CRC u32) |
//! | checksum | CRC-32 of everything before |

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::Arc;

use crate::frame::{u32_at, version_after, Reader};
use crate::index::{Index, Loc, Marker, Run, SnapLoc, StreamState};
use crate::vfs::Vfs;

/// The checkpoint's file name.
pub(crate) const NAME: &str = "INDEX";
/// Its temporary name while being replaced.
pub(crate) const TEMP: &str = "INDEX.tmp";
const MAGIC: &[u8; 6] = b"PSVIDX";
const VERSION: u16 = 1;

/// Where a checkpoint stands in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// The segment.
    pub seg: u64,
    /// Its length covered.
    pub len: u64,
    /// The chain value there (the last frame's trailer, or the header's CRC).
    pub chain: u32,
    /// The marker the covered log ends with.
    pub marker: Option<Marker>,
}

/// A decoded checkpoint.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    pub store: u64,
    pub position: Position,
    pub floor: u64,
    /// Every segment from the floor to the position's, with its length.
    pub segments: Vec<(u64, u64)>,
    pub index: Index,
}

struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Encodes the checkpoint of `index` at `position`.
pub(crate) fn encode(
    store: u64,
    position: Position,
    floor: u64,
    segments: &[(u64, u64)],
    index: &Index,
) -> Vec<u8> {
    let mut o = Out(Vec::with_capacity(1 << 16));
    o.0.extend_from_slice(MAGIC);
    o.0.extend_from_slice(&VERSION.to_le_bytes());
    o.u64(store);
    o.u64(position.seg);
    o.u64(position.len);
    o.u32(position.chain);
    o.u8(match position.marker {
        None => 0,
        Some(Marker::Seal) => 1,
        Some(Marker::Close) => 2,
    });
    o.u64(floor);
    o.u32(segments.len() as u32);
    for &(n, len) in segments {
        o.u64(n);
        o.u64(len);
    }
    o.u64(index.streams.len() as u64);
    for (name, s) in &index.streams {
        o.str(name);
        o.u64(s.head);
        o.u64(s.low_water);
        o.u32(s.runs.len() as u32);
        for r in &s.runs {
            o.u64(r.seg);
            o.u64(r.first);
            o.u64(r.bytes);
        }
        o.u32(s.snapshots.len() as u32);
        for (&seq, loc) in &s.snapshots {
            o.u64(seq);
            match *loc {
                SnapLoc::Log(l) => {
                    o.u8(1);
                    o.u64(l.seg);
                    o.u64(l.off);
                    o.u32(l.len);
                }
                SnapLoc::File { id, len, crc } => {
                    o.u8(2);
                    o.u64(id);
                    o.u32(len);
                    o.u32(crc);
                }
            }
        }
    }
    let crc = crc32fast::hash(&o.0);
    o.u32(crc);
    o.0
}

/// Decodes a checkpoint, or says why it is not one.
pub(crate) fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    match version_after(bytes, MAGIC) {
        Some(VERSION) => {}
        Some(v) => return Err(format!("checkpoint version {v}")),
        None => return Err("not a checkpoint (bad magic)".into()),
    }
    let body = bytes.len().checked_sub(4).ok_or("truncated")?;
    if crc32fast::hash(&bytes[..body]) != u32_at(bytes, body) {
        return Err("checksum mismatch".into());
    }
    let mut r = Reader::new(&bytes[..body], MAGIC.len() + 2);
    let store = r.u64()?;
    let seg = r.u64()?;
    let len = r.u64()?;
    let chain = r.u32()?;
    let marker = match r.u8()? {
        0 => None,
        1 => Some(Marker::Seal),
        2 => Some(Marker::Close),
        _ => return Err("bad marker".into()),
    };
    let floor = r.u64()?;
    let mut segments = Vec::new();
    for _ in 0..r.u32()? {
        segments.push((r.u64()?, r.u64()?));
    }
    let mut index = Index::default();
    for _ in 0..r.u64()? {
        let name: Arc<str> = Arc::from(r.str()?);
        let head = r.u64()?;
        let low_water = r.u64()?;
        let mut runs = VecDeque::new();
        for _ in 0..r.u32()? {
            let run = Run {
                seg: r.u64()?,
                first: r.u64()?,
                bytes: r.u64()?,
            };
            index.live_bytes = index
                .live_bytes
                .checked_add(run.bytes)
                .ok_or("its live byte count overflows")?;
            runs.push_back(run);
        }
        let mut snapshots = BTreeMap::new();
        for _ in 0..r.u32()? {
            let seq = r.u64()?;
            let loc = match r.u8()? {
                1 => {
                    let loc = Loc {
                        seg: r.u64()?,
                        off: r.u64()?,
                        len: r.u32()?,
                    };
                    index.live_bytes = index
                        .live_bytes
                        .checked_add(u64::from(loc.len) + crate::index::RECORD_OVERHEAD)
                        .ok_or("its live byte count overflows")?;
                    SnapLoc::Log(loc)
                }
                2 => SnapLoc::File {
                    id: r.u64()?,
                    len: r.u32()?,
                    crc: r.u32()?,
                },
                _ => return Err("bad snapshot flag".into()),
            };
            snapshots.insert(seq, loc);
        }
        let state = StreamState {
            head,
            low_water,
            runs,
            snapshots,
        };
        if index.streams.insert(name, state).is_some() {
            return Err("a stream listed twice".into());
        }
    }
    if !r.is_done() {
        return Err("trailing bytes".into());
    }
    Ok(Checkpoint {
        store,
        position: Position {
            seg,
            len,
            chain,
            marker,
        },
        floor,
        segments,
        index,
    })
}

/// Replaces the checkpoint atomically (temporary file, fsync, rename). The directory is not
/// synced: a checkpoint whose rename is lost leaves the older one, which open brings up to
/// date (or ignores as stale).
pub(crate) fn write(vfs: &dyn Vfs, bytes: &[u8]) -> io::Result<()> {
    let mut file = vfs.open(TEMP, true)?;
    file.truncate(0)?;
    file.write_at(bytes, 0)?;
    file.sync()?;
    vfs.rename(TEMP, NAME)
}

/// Reads the checkpoint file, if there is one.
pub(crate) fn read(vfs: &dyn Vfs) -> io::Result<Option<Vec<u8>>> {
    let file = match vfs.open(NAME, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.len()?;
    let mut bytes = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
    file.read_at(&mut bytes, 0)?;
    Ok(Some(bytes))
}
