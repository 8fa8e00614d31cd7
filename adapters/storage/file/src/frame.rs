//! The on-disk framing: segment headers, checksummed and chained frames, and the little-endian
//! fields inside.
//!
//! A segment file starts with a [`SEGMENT_HEADER_LEN`]-byte header:
//!
//! | bytes | field |
//! |---|---|
//! | 0..6 | magic `PSVLOG` |
//! | 6..8 | format version (u16 LE, [`FORMAT`]) |
//! | 8..16 | store id (u64 LE, chosen at creation) |
//! | 16..24 | segment number (u64 LE) |
//! | 24..32 | floor: segments numbered below it are obsolete (u64 LE) |
//! | 32..44 | reserved, zero |
//! | 44..48 | CRC-32 of bytes 0..44 |
//!
//! then a sequence of frames, each:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `0x4D524650` (LE) |
//! | 4..8 | payload length `n` (u32 LE) |
//! | 8..12 | flags (u32 LE): bit 0 = this frame starts a group commit (one fdatasync) |
//! | 12..16 | CRC-32 of the store id (8 bytes LE) then bytes 0..12: the length can be trusted before the payload is read, and bytes that were not written by this store never pass |
//! | 16..16+n | payload |
//! | 16+n..20+n | CRC-32 of the header and the payload, *started from the previous frame's trailer* (the first frame of a segment starts from the segment header's CRC): frames are chained, so a frame removed, moved or copied from elsewhere breaks the chain |

/// The on-disk format version this build writes and reads.
pub(crate) const FORMAT: u16 = 2;
/// The magic opening every segment file (before the format version).
pub(crate) const SEGMENT_MAGIC: &[u8; 6] = b"PSVLOG";
/// The magic of format 1 segments (the whole first 8 bytes).
pub(crate) const SEGMENT_MAGIC_V1: &[u8; 8] = b"PSVLOG01";
/// The length of a segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = 48;
/// The magic opening every frame.
pub(crate) const FRAME_MAGIC: u32 = 0x4D52_4650;
/// The length of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 16;
/// The length of a frame trailer (the checksum).
pub(crate) const FRAME_TRAILER_LEN: usize = 4;
/// The largest payload a frame may claim (1 GiB).
pub(crate) const MAX_FRAME: usize = 1 << 30;
/// Frame flag: the frame is the first of a group commit (written after the previous group's
/// fdatasync), so its presence proves every byte before it was durable.
pub(crate) const GROUP_START: u32 = 1;

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// The store the segment belongs to.
    pub store: u64,
    /// The segment's number (also in its file name).
    pub number: u64,
    /// Segments numbered below `floor` are obsolete (replaced by a compacted segment).
    pub floor: u64,
}

/// Why bytes are not a segment header of this format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not a header, or a damaged one.
    Bad(&'static str),
    /// A header of another format version.
    Version(u16),
}

/// Reads the format version of a versioned header: `magic` then a u16 (or format 1's `…01`).
pub(crate) fn version_after(bytes: &[u8], magic: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(magic)?;
    let v = rest.get(..2)?;
    if v == b"01" {
        return Some(1);
    }
    Some(u16::from_le_bytes([v[0], v[1]]))
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..6].copy_from_slice(SEGMENT_MAGIC);
        out[6..8].copy_from_slice(&FORMAT.to_le_bytes());
        out[8..16].copy_from_slice(&self.store.to_le_bytes());
        out[16..24].copy_from_slice(&self.number.to_le_bytes());
        out[24..32].copy_from_slice(&self.floor.to_le_bytes());
        let crc = crc32fast::hash(&out[0..44]);
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The chain value the segment's first frame starts from: the header's CRC.
    pub fn chain(bytes: &[u8; SEGMENT_HEADER_LEN]) -> u32 {
        u32_at(bytes, 44)
    }

    /// Decodes a header, or says why it is not one.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        if bytes.starts_with(SEGMENT_MAGIC_V1) {
            return Err(HeaderError::Version(1));
        }
        if let (Some(b"PSVLOG"), Some(v)) = (bytes.get(0..6), bytes.get(6..8)) {
            let version = u16::from_le_bytes([v[0], v[1]]);
            if version != FORMAT {
                return Err(HeaderError::Version(version));
            }
        }
        let bytes = bytes
            .get(..SEGMENT_HEADER_LEN)
            .ok_or(HeaderError::Bad("segment header is incomplete"))?;
        if &bytes[0..6] != SEGMENT_MAGIC {
            return Err(HeaderError::Bad("bad segment magic"));
        }
        // The magic and version are the one layout every format keeps: another version is
        // named as such before anything else is read.
        let version = u16::from_le_bytes([bytes[6], bytes[7]]);
        if version != FORMAT {
            return Err(HeaderError::Version(version));
        }
        if crc32fast::hash(&bytes[0..44]) != u32_at(bytes, 44) {
            return Err(HeaderError::Bad("segment header checksum mismatch"));
        }
        if bytes[32..44].iter().any(|&b| b != 0) {
            return Err(HeaderError::Bad("unknown segment header flags"));
        }
        Ok(Self {
            store: u64_at(bytes, 8),
            number: u64_at(bytes, 16),
            floor: u64_at(bytes, 24),
        })
    }
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn header_crc(store: u64, header: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&store.to_le_bytes());
    h.update(&header[0..12]);
    h.finalize()
}

fn trailer_crc(chain: u32, frame: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(chain);
    h.update(frame);
    h.finalize()
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

    /// Fills in the header (with `flags`) and appends the checksum chained from `chain`;
    /// returns the complete frame and its trailer (the next frame's chain value).
    pub fn seal(mut self, store: u64, chain: u32, flags: u32) -> (Vec<u8>, u32) {
        let len = (self.buf.len() - FRAME_HEADER_LEN) as u32;
        self.buf[0..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
        self.buf[4..8].copy_from_slice(&len.to_le_bytes());
        self.buf[8..12].copy_from_slice(&flags.to_le_bytes());
        let hcrc = header_crc(store, &self.buf);
        self.buf[12..16].copy_from_slice(&hcrc.to_le_bytes());
        let crc = trailer_crc(chain, &self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        (self.buf, crc)
    }
}

/// What lies at a position of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scan {
    /// An intact frame: its payload is `data[payload.0..payload.1]`; the next frame starts at
    /// `next`; `crc` is its trailer (the next chain value).
    Frame {
        /// Payload start and end.
        payload: (usize, usize),
        /// The next frame's position.
        next: usize,
        /// The frame's trailer.
        crc: u32,
        /// The frame's flags.
        flags: u32,
    },
    /// The frame runs past the end of the data (an incomplete write).
    Incomplete,
    /// The bytes are not an intact frame. `end`: where the frame ends, when its header is
    /// intact (its length can be trusted).
    Bad {
        /// What is wrong.
        reason: &'static str,
        /// The frame's end, from an intact header.
        end: Option<usize>,
    },
}

/// The whole length of the frame whose header opens `bytes`, if that header is intact.
pub(crate) fn needed(bytes: &[u8], store: u64) -> Option<usize> {
    let header = bytes.get(..FRAME_HEADER_LEN)?;
    let len = u32_at(header, 4) as usize;
    (u32_at(header, 0) == FRAME_MAGIC
        && header_crc(store, header) == u32_at(header, 12)
        && len <= MAX_FRAME)
        .then_some(FRAME_HEADER_LEN + len + FRAME_TRAILER_LEN)
}

/// Reads the frame at `pos` of `data`, whose chain value is `chain`.
pub(crate) fn scan(data: &[u8], pos: usize, store: u64, chain: u32) -> Scan {
    let Some(header) = data.get(pos..pos + FRAME_HEADER_LEN) else {
        return Scan::Incomplete;
    };
    if u32_at(header, 0) != FRAME_MAGIC {
        return Scan::Bad {
            reason: "bad frame magic",
            end: None,
        };
    }
    let Some(whole) = needed(header, store) else {
        return Scan::Bad {
            reason: "frame header checksum mismatch",
            end: None,
        };
    };
    let end = pos + whole - FRAME_TRAILER_LEN;
    let Some(trailer) = data.get(end..end + FRAME_TRAILER_LEN) else {
        return Scan::Incomplete;
    };
    let crc = u32_at(trailer, 0);
    if trailer_crc(chain, &data[pos..end]) != crc {
        return Scan::Bad {
            reason: "frame checksum mismatch",
            end: Some(pos + whole),
        };
    }
    Scan::Frame {
        payload: (pos + FRAME_HEADER_LEN, end),
        next: end + FRAME_TRAILER_LEN,
        crc,
        flags: u32_at(header, 8),
    }
}

/// Whether a frame header of this store that starts a group commit lies anywhere in `data` at or
/// after `from`: proof that the bytes before it were made durable (a group is written only
/// after the previous one's fdatasync). User bytes inside a payload cannot forge one without
/// the store id.
pub(crate) fn any_group_start_after(data: &[u8], from: usize, store: u64) -> bool {
    let magic = FRAME_MAGIC.to_le_bytes();
    let mut pos = from;
    while pos + FRAME_HEADER_LEN <= data.len() {
        match data[pos..].windows(4).position(|w| w == magic) {
            None => return false,
            Some(found) => {
                pos += found;
                if let Some(header) = data.get(pos..pos + FRAME_HEADER_LEN) {
                    if needed(header, store).is_some() && u32_at(header, 8) & GROUP_START != 0 {
                        return true;
                    }
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
        let (bytes, crc) = frame.seal(7, 99, GROUP_START);
        assert_eq!(
            scan(&bytes, 0, 7, 99),
            Scan::Frame {
                payload: (FRAME_HEADER_LEN, bytes.len() - 4),
                next: bytes.len(),
                crc,
                flags: GROUP_START,
            }
        );
        assert!(
            matches!(scan(&bytes, 0, 8, 99), Scan::Bad { .. }),
            "another store"
        );
        assert!(
            matches!(scan(&bytes, 0, 7, 98), Scan::Bad { .. }),
            "another chain"
        );
        for cut in 0..bytes.len() {
            assert!(
                matches!(
                    scan(&bytes[..cut], 0, 7, 99),
                    Scan::Incomplete | Scan::Bad { .. }
                ),
                "cut {cut}"
            );
        }
        assert!(any_group_start_after(&bytes, 0, 7));
        assert!(!any_group_start_after(&bytes, 0, 8));
        assert!(!any_group_start_after(&bytes, 1, 7));
    }

    #[test]
    fn segment_header_round_trips_and_rejects_flips() {
        let header = SegmentHeader {
            store: 11,
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
        let mut newer = bytes;
        newer[6..8].copy_from_slice(&3u16.to_le_bytes());
        let crc = crc32fast::hash(&newer[0..44]);
        newer[44..48].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&newer), Err(HeaderError::Version(3)));
        assert_eq!(
            SegmentHeader::decode(b"PSVLOG01xxxxxxxx"),
            Err(HeaderError::Version(1))
        );
    }
}
