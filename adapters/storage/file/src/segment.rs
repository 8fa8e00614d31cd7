//! Segment files: naming, creation, and the scan that replays one at open (torn tail or
//! corruption).

use std::io;

use crate::frame::{self, Scan, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::vfs::{Vfs, VfsFile};

/// An open segment.
pub(crate) struct Segment {
    /// The file, open for reading (and writing, for the active one).
    pub file: Box<dyn VfsFile>,
    /// Its valid length: where the next frame goes.
    pub len: u64,
    /// The chain value the next frame starts from (the last frame's trailer).
    pub chain: u32,
}

/// The file name of segment `n`.
pub(crate) fn name(n: u64) -> String {
    format!("{n:016x}.log")
}

/// The temporary name compaction writes segment `n` under before renaming it into place.
pub(crate) fn temp_name(n: u64) -> String {
    format!("{n:016x}.log.tmp")
}

/// The segment number a file name holds, if it is a segment's.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Creates segment `number` of store `store` (replacing any file of that name), writes its
/// header and makes both durable.
pub(crate) fn create(vfs: &dyn Vfs, store: u64, number: u64, floor: u64) -> io::Result<Segment> {
    let mut file = vfs.open(&name(number), true)?;
    file.truncate(0)?;
    let header = SegmentHeader {
        store,
        number,
        floor,
    }
    .encode();
    file.write_at(&header, 0)?;
    file.sync()?;
    vfs.sync_dir()?;
    Ok(Segment {
        file,
        len: SEGMENT_HEADER_LEN as u64,
        chain: SegmentHeader::chain(&header),
    })
}

/// How a scan of a segment's frames ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Every byte belongs to an intact frame.
    Clean,
    /// From `at` on the bytes are no intact frame, and nothing proves they were ever made
    /// durable (no group commit starts after them): an interrupted write.
    Torn { at: u64 },
    /// At `at` the bytes are no intact frame, yet a later group commit (or the segment's
    /// successor) proves they were durable: the log is damaged.
    Corrupt { at: u64, reason: &'static str },
}

/// How much of a segment a scan holds in memory at once (more only for a larger frame); tiny
/// under test so that frames straddle windows.
#[cfg(not(test))]
const WINDOW: usize = 8 << 20;
#[cfg(test)]
const WINDOW: usize = 100;

/// One intact frame met by [`scan_frames`].
pub(crate) struct Seen<'a> {
    /// The window of the segment the frame lies in.
    pub data: &'a [u8],
    /// The file offset of `data[0]`.
    pub base: u64,
    /// The payload's start and end in `data`.
    pub payload: (usize, usize),
    /// The frame's file offset.
    pub at: u64,
}

/// Walks the frames of segment `file` of `len` bytes from offset `start` (the header's end,
/// `chain` being the header's CRC, or the end of a frame whose trailer is `chain`),
/// calling `each` on every intact frame; stops at the first bad one. `last` says whether this
/// is the newest segment, the only one a crash can leave torn. Returns how the scan ended and
/// the chain value after the last intact frame.
pub(crate) fn scan_frames<E>(
    file: &dyn VfsFile,
    (start, mut chain): (u64, u32),
    len: u64,
    store: u64,
    last: bool,
    io_err: impl Fn(io::Error) -> E,
    mut each: impl FnMut(Seen<'_>) -> Result<(), E>,
) -> Result<(End, u32), E> {
    let mut buf: Vec<u8> = Vec::new();
    let mut base = 0u64;
    let mut pos = start.max(SEGMENT_HEADER_LEN as u64);
    let load = |buf: &mut Vec<u8>, at: u64, want: usize| -> io::Result<()> {
        let n = (len - at).min(want.max(WINDOW) as u64) as usize;
        buf.resize(n, 0);
        file.read_at(buf, at)
    };
    while pos < len {
        let rel = (pos - base) as usize;
        let (reason, frame_end) = match frame::scan(&buf, rel, store, chain) {
            Scan::Frame {
                payload, next, crc, ..
            } => {
                each(Seen {
                    data: &buf,
                    base,
                    payload,
                    at: pos,
                })?;
                chain = crc;
                pos = base + next as u64;
                continue;
            }
            Scan::Incomplete => {
                let intact = buf.get(rel..).and_then(|b| frame::needed(b, store));
                let need = intact.unwrap_or(frame::FRAME_HEADER_LEN);
                let have = buf.len().saturating_sub(rel);
                if base + (buf.len() as u64) < len && have < need {
                    load(&mut buf, pos, need).map_err(&io_err)?;
                    base = pos;
                    continue;
                }
                // An intact header claiming more bytes than there are: the frame's end lies
                // past the end of the file, and nothing can follow it.
                ("incomplete frame", intact.map(|n| pos + n as u64))
            }
            Scan::Bad { reason, end } => (reason, end.map(|e| base + e as u64)),
        };
        if last {
            // Search for a later group commit only after the bad frame: never inside its own
            // payload when its (intact) header says where it ends.
            let from = frame_end.unwrap_or(pos + 1).min(len);
            let mut rest = vec![0u8; (len - from) as usize];
            file.read_at(&mut rest, from).map_err(&io_err)?;
            if !frame::any_group_start_after(&rest, 0, store) {
                return Ok((End::Torn { at: pos }, chain));
            }
        }
        return Ok((End::Corrupt { at: pos, reason }, chain));
    }
    Ok((End::Clean, chain))
}
