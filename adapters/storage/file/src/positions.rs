//! Rebuilding where each event of a segment lies ([`SegFine`]) by scanning the segment: the
//! in-memory index keeps positions only for the active segment and a few recently read ones.

use std::io;

use crate::batch;
use crate::frame::{SegmentHeader, SEGMENT_HEADER_LEN};
use crate::index::{seq_after, Op, SegFine};
use crate::segment::{self, End};
use crate::vfs::VfsFile;

/// Why a segment's positions could not be collected.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// Reading failed.
    Io(io::Error),
    /// The bytes at `at` are no intact frame (or do not decode).
    Damaged { at: u64, reason: String },
}

impl From<ScanError> for io::Error {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Io(e) => e,
            ScanError::Damaged { at, reason } => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("damaged at offset {at}: {reason}"),
            ),
        }
    }
}

/// Scans the first `len` bytes of segment `seg` of store `store`, verifying every frame, and
/// collects the positions of every event it holds. Bytes that are not intact frames are
/// damage (a sealed segment, or the acknowledged part of the active one, is whole).
pub(crate) fn scan(
    file: &dyn VfsFile,
    len: u64,
    store: u64,
    seg: u64,
) -> Result<SegFine, ScanError> {
    let bad = |reason: String| ScanError::Damaged { at: 0, reason };
    let mut head = [0u8; SEGMENT_HEADER_LEN];
    file.read_at(&mut head, 0).map_err(ScanError::Io)?;
    let header = SegmentHeader::decode(&head).map_err(|_| bad("its header is damaged".into()))?;
    if header.store != store || header.number != seg {
        return Err(bad("its header names another store or segment".into()));
    }
    let mut fine = SegFine::default();
    let (end, _) = segment::scan_frames(
        file,
        (SEGMENT_HEADER_LEN as u64, SegmentHeader::chain(&head)),
        len,
        store,
        false,
        ScanError::Io,
        |seen| {
            let (start, end) = seen.payload;
            let ops = batch::decode(seen.data, seen.base, start, end, seg).map_err(|r| {
                ScanError::Damaged {
                    at: seen.at,
                    reason: format!("the frame does not decode: {r}"),
                }
            })?;
            for op in ops {
                let (stream, after, events) = match op {
                    Op::Append {
                        stream,
                        expected_last,
                        events,
                        ..
                    } => (stream, expected_last, events),
                    Op::Checkpoint {
                        stream,
                        low_water,
                        events,
                        ..
                    } => (stream, low_water, events),
                    _ => continue,
                };
                if seq_after(after, events.len()).is_none() {
                    return Err(ScanError::Damaged {
                        at: seen.at,
                        reason: format!(
                            "{} events of stream {stream:?} after seq {after} pass the largest seq",
                            events.len()
                        ),
                    });
                }
                fine.add(&stream, after + 1, &events);
            }
            Ok(())
        },
    )?;
    match end {
        End::Clean => Ok(fine),
        End::Torn { at } => Err(ScanError::Damaged {
            at,
            reason: "no intact frame inside the acknowledged part of the segment".into(),
        }),
        End::Corrupt { at, reason } => Err(ScanError::Damaged {
            at,
            reason: reason.into(),
        }),
    }
}
