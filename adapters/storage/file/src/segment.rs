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

/// Reads a whole file.
pub(crate) fn read_all(file: &dyn VfsFile) -> io::Result<Vec<u8>> {
    let len = usize::try_from(file.len()?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
    let mut data = vec![0u8; len];
    file.read_at(&mut data, 0)?;
    Ok(data)
}

/// How a scan of a segment's frames ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Every byte belongs to an intact frame.
    Clean,
    /// From `at` on the bytes are no intact frame, and no intact frame follows: an interrupted
    /// write.
    Torn { at: usize },
    /// At `at` the bytes are no intact frame, yet an intact frame follows (or the segment is not
    /// the last): the log is damaged.
    Corrupt { at: usize, reason: &'static str },
}

/// Walks the frames of `data` after its header, calling `each(payload_start, payload_end,
/// frame_start)`; stops at the first bad frame. `last` says whether this is the newest segment,
/// the only one a crash can leave torn.
pub(crate) fn scan_frames<E>(
    data: &[u8],
    last: bool,
    mut each: impl FnMut(usize, usize, usize) -> Result<(), E>,
) -> Result<End, E> {
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < data.len() {
        let reason = match frame::scan(data, pos) {
            Scan::Frame {
                payload: (start, end),
                next,
            } => {
                each(start, end, pos)?;
                pos = next;
                continue;
            }
            Scan::Incomplete => "incomplete frame",
            Scan::Bad(reason) => reason,
        };
        if last && !frame::any_frame_after(data, pos + 1) {
            return Ok(End::Torn { at: pos });
        }
        return Ok(End::Corrupt { at: pos, reason });
    }
    Ok(End::Clean)
}
