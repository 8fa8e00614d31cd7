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

/// Creates segment `number` (replacing any file of that name), writes its header and makes both
/// durable.
pub(crate) fn create(vfs: &dyn Vfs, number: u64, floor: u64) -> io::Result<Segment> {
    let mut file = vfs.open(&name(number), true)?;
    file.truncate(0)?;
    file.write_at(&SegmentHeader { number, floor }.encode(), 0)?;
    file.sync()?;
    vfs.sync_dir()?;
    Ok(Segment {
        file,
        len: SEGMENT_HEADER_LEN as u64,
    })
}

/// How a scan of a segment's frames ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Every byte belongs to an intact frame.
    Clean,
    /// From `at` on the bytes are no intact frame, and no intact frame follows: an interrupted
    /// write.
    Torn { at: u64 },
    /// At `at` the bytes are no intact frame, yet an intact frame follows (or the segment is not
    /// the last): the log is damaged.
    Corrupt { at: u64, reason: &'static str },
}

/// How much of a segment a scan holds in memory at once (more only for a larger frame); tiny
/// under test so that frames straddle windows.
#[cfg(not(test))]
const WINDOW: usize = 8 << 20;
#[cfg(test)]
const WINDOW: usize = 100;

/// Walks the frames of a segment of `len` bytes after its header, calling
/// `each(window, window_offset, payload_start, payload_end, frame_offset)` (payload positions
/// index `window`, which starts at file offset `window_offset`); stops at the first bad frame.
/// `last` says whether this is the newest segment, the only one a crash can leave torn.
pub(crate) fn scan_frames<E>(
    file: &dyn VfsFile,
    len: u64,
    last: bool,
    io_err: impl Fn(io::Error) -> E,
    mut each: impl FnMut(&[u8], u64, usize, usize, u64) -> Result<(), E>,
) -> Result<End, E> {
    let mut buf: Vec<u8> = Vec::new();
    let mut base = 0u64;
    let mut pos = SEGMENT_HEADER_LEN as u64;
    let load = |buf: &mut Vec<u8>, at: u64, want: usize| -> io::Result<()> {
        let n = (len - at).min(want.max(WINDOW) as u64) as usize;
        buf.resize(n, 0);
        file.read_at(buf, at)
    };
    while pos < len {
        let rel = (pos - base) as usize;
        let reason = match frame::scan(&buf, rel) {
            Scan::Frame {
                payload: (start, end),
                next,
            } => {
                each(&buf, base, start, end, pos)?;
                pos = base + next as u64;
                continue;
            }
            Scan::Incomplete => {
                let need = buf
                    .get(rel..)
                    .and_then(frame::needed)
                    .unwrap_or(frame::FRAME_HEADER_LEN);
                let have = buf.len().saturating_sub(rel);
                if base + (buf.len() as u64) < len && have < need {
                    load(&mut buf, pos, need).map_err(&io_err)?;
                    base = pos;
                    continue;
                }
                "incomplete frame"
            }
            Scan::Bad(reason) => reason,
        };
        if last {
            let mut rest = vec![0u8; (len - pos) as usize];
            file.read_at(&mut rest, pos).map_err(&io_err)?;
            if !frame::any_frame_after(&rest, 1) {
                return Ok(End::Torn { at: pos });
            }
        }
        return Ok(End::Corrupt { at: pos, reason });
    }
    Ok(End::Clean)
}
