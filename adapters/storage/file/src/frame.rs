//! The on-disk framing: segment headers, checksummed frames and the little-endian fields inside.
//!
//! A segment file starts with a [`SEGMENT_HEADER_LEN`]-byte header:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `PSVLOG01` |
//! | 8..16 | segment number (u64 LE) |
//! | 16..24 | floor: segments numbered below it are obsolete (u64 LE) |
//! | 24..28 | reserved, zero |
//! | 28..32 | CRC-32 of bytes 0..28 |
//!
//! then a sequence of frames, each:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `0x4D524650` (LE) |
//! | 4..8 | payload length `n` (u32 LE) |
//! | 8..12 | CRC-32 of bytes 0..8 (the length can be trusted before the payload is read) |
//! | 12..12+n | payload |
//! | 12+n..16+n | CRC-32 of the header and the payload |

/// The magic opening every segment file.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"PSVLOG01";
/// The length of a segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = 32;
/// The magic opening every frame.
pub(crate) const FRAME_MAGIC: u32 = 0x4D52_4650;
/// The length of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 12;
/// The length of a frame trailer (the checksum).
pub(crate) const FRAME_TRAILER_LEN: usize = 4;
/// The largest payload a frame may claim (1 GiB).
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// The segment's number (also in its file name).
    pub number: u64,
    /// Segments numbered below `floor` are obsolete (replaced by a compacted segment).
    pub floor: u64,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(SEGMENT_MAGIC);
        out[8..16].copy_from_slice(&self.number.to_le_bytes());
        out[16..24].copy_from_slice(&self.floor.to_le_bytes());
        let crc = crc32fast::hash(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a header, or says why it is not one.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let bytes = bytes
            .get(..SEGMENT_HEADER_LEN)
            .ok_or("segment header is incomplete")?;
        if &bytes[0..8] != SEGMENT_MAGIC {
            return Err("bad segment magic");
        }
        if crc32fast::hash(&bytes[0..28]) != u32_at(bytes, 28) {
            return Err("segment header checksum mismatch");
        }
        if u32_at(bytes, 24) != 0 {
            return Err("unknown segment header flags");
        }
        Ok(Self {
            number: u64_at(bytes, 8),
            floor: u64_at(bytes, 16),
        })
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// A frame under construction: header space reserved, payload appended, sealed at the end.
#[derive(Debug)]
pub(crate) struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    /// An empty frame.
    pub fn new() -> Self {
        Self {
            buf: vec![0u8; FRAME_HEADER_LEN],
        }
    }

    /// The bytes so far (header space included); a payload position is an index into this.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The position the next payload byte will take, from the frame's start.
    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    /// Appends raw bytes.
    pub fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a u8.
    pub fn put_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a u32 LE.
    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a u64 LE.
    pub fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Overwrites a u32 LE at `at` (a position returned by [`pos`](Self::pos)).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Appends a length-prefixed byte string.
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        self.put_u32(bytes.len() as u32);
        self.put(bytes);
    }

    /// Fills in the header and appends the checksum; returns the complete frame.
    pub fn seal(mut self) -> Vec<u8> {
        let len = (self.buf.len() - FRAME_HEADER_LEN) as u32;
        self.buf[0..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
        self.buf[4..8].copy_from_slice(&len.to_le_bytes());
        let hcrc = crc32fast::hash(&self.buf[0..8]);
        self.buf[8..12].copy_from_slice(&hcrc.to_le_bytes());
        let crc = crc32fast::hash(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// What lies at a position of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scan {
    /// An intact frame: its payload is `data[payload.0..payload.1]`; the next frame starts at
    /// `next`.
    Frame {
        /// Payload start and end.
        payload: (usize, usize),
        /// The next frame's position.
        next: usize,
    },
    /// The frame runs past the end of the data (an incomplete write).
    Incomplete,
    /// The bytes are not an intact frame.
    Bad(&'static str),
}

/// Reads the frame at `pos` of `data`.
pub(crate) fn scan(data: &[u8], pos: usize) -> Scan {
    let Some(header) = data.get(pos..pos + FRAME_HEADER_LEN) else {
        return Scan::Incomplete;
    };
    if u32_at(header, 0) != FRAME_MAGIC {
        return Scan::Bad("bad frame magic");
    }
    if crc32fast::hash(&header[0..8]) != u32_at(header, 8) {
        return Scan::Bad("frame header checksum mismatch");
    }
    let len = u32_at(header, 4) as usize;
    if len > MAX_FRAME {
        return Scan::Bad("frame length out of range");
    }
    let end = pos + FRAME_HEADER_LEN + len;
    let Some(trailer) = data.get(end..end + FRAME_TRAILER_LEN) else {
        return Scan::Incomplete;
    };
    if crc32fast::hash(&data[pos..end]) != u32_at(trailer, 0) {
        return Scan::Bad("frame checksum mismatch");
    }
    Scan::Frame {
        payload: (pos + FRAME_HEADER_LEN, end),
        next: end + FRAME_TRAILER_LEN,
    }
}

/// The whole length of the frame whose (intact) header opens `bytes`.
pub(crate) fn needed(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..FRAME_HEADER_LEN)?;
    let len = u32_at(header, 4) as usize;
    (u32_at(header, 0) == FRAME_MAGIC
        && crc32fast::hash(&header[0..8]) == u32_at(header, 8)
        && len <= MAX_FRAME)
        .then_some(FRAME_HEADER_LEN + len + FRAME_TRAILER_LEN)
}

/// Whether an intact frame starts anywhere in `data` at or after `from`.
pub(crate) fn any_frame_after(data: &[u8], from: usize) -> bool {
    let magic = FRAME_MAGIC.to_le_bytes();
    let mut pos = from;
    while pos + FRAME_HEADER_LEN <= data.len() {
        match data[pos..].windows(4).position(|w| w == magic) {
            None => return false,
            Some(found) => {
                pos += found;
                if let Scan::Frame { .. } = scan(data, pos) {
                    return true;
                }
                pos += 1;
            }
        }
    }
    false
}

/// A bounds-checked little-endian reader over a payload; every read fails with a reason instead
/// of panicking on short or bad data.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `data[pos..end]` positioned at `pos` (positions stay absolute).
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Self { data, pos }
    }

    /// Whether everything was read.
    pub fn is_done(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let out = self.data.get(self.pos..end).ok_or("truncated payload")?;
        self.pos = end;
        Ok(out)
    }

    /// Reads a u8.
    pub fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    /// Reads a u32 LE.
    pub fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32_at(self.take(4)?, 0))
    }

    /// Reads a u64 LE.
    pub fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64_at(self.take(8)?, 0))
    }

    /// Reads a length-prefixed byte string; returns its absolute start and length.
    pub fn bytes(&mut self) -> Result<(usize, u32), &'static str> {
        let len = self.u32()?;
        let start = self.pos;
        self.take(len as usize)?;
        Ok((start, len))
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, &'static str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| "stream id is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_frame_scans_back_and_every_prefix_is_incomplete() {
        let mut frame = FrameBuf::new();
        frame.put_bytes(b"hello");
        let bytes = frame.seal();
        assert_eq!(
            scan(&bytes, 0),
            Scan::Frame {
                payload: (FRAME_HEADER_LEN, bytes.len() - 4),
                next: bytes.len()
            }
        );
        for cut in 0..bytes.len() {
            assert!(
                matches!(scan(&bytes[..cut], 0), Scan::Incomplete | Scan::Bad(_)),
                "cut {cut}"
            );
        }
        assert!(any_frame_after(&bytes, 0));
        assert!(!any_frame_after(&bytes, 1));
    }

    #[test]
    fn segment_header_round_trips_and_rejects_flips() {
        let header = SegmentHeader {
            number: 7,
            floor: 3,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for i in 0..bytes.len() * 8 {
            let mut flipped = bytes;
            flipped[i / 8] ^= 1 << (i % 8);
            assert!(SegmentHeader::decode(&flipped).is_err(), "bit {i}");
        }
    }
}
