//! The versioned, checksummed envelope every stored record travels in.
//!
//! # Format (version 1)
//!
//! All integers are little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | format version (`1`) |
//! | 1 | 1 | kind (`1` event, `2` snapshot) |
//! | 2 | 1 | codec id (`1` borsh, `2` JSON) |
//! | 3 | 1 | flags: `0` (plaintext) or [`FLAG_SEALED`]; any other value is refused |
//! | 4 | 4 | type version of the payload |
//! | 8 | 8 | sequence number (for a snapshot: the last event it covers) |
//! | 16 | 4 | payload length `n` |
//! | 20 | `n` | payload |
//! | 20 + n | 4 | CRC-32 (ISO-HDLC) of bytes `0 .. 20 + n` |
//!
//! A sealed record's payload is the encrypted form described in [`crate::seal`] (key id, nonce,
//! ciphertext and tag); its header stays in clear, and the CRC covers the sealed bytes.
//!
//! [`decode`] accepts any byte string and returns either a record or a typed [`RecordError`];
//! it never panics and never reads past the slice.

use thiserror::Error;

use crate::codec::{Codec, CodecError};
use crate::crc::{crc32, Crc32};

/// The envelope format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 20;
/// Bytes of envelope around a payload (header and checksum).
pub const OVERHEAD: usize = HEADER_LEN + 4;
/// The flags value of a sealed record: its payload is encrypted (see [`crate::seal`]).
pub const FLAG_SEALED: u8 = 0x01;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// One event.
    Event,
    /// A snapshot of the state after the event with the record's sequence number.
    Snapshot,
}

impl RecordKind {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            RecordKind::Event => 1,
            RecordKind::Snapshot => 2,
        }
    }

    #[inline]
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(RecordKind::Event),
            2 => Some(RecordKind::Snapshot),
            _ => None,
        }
    }
}

/// The fixed fields of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// What the record holds.
    pub kind: RecordKind,
    /// The codec id of the payload.
    pub codec: u8,
    /// The type version of the payload.
    pub type_version: u32,
    /// The sequence number.
    pub seq: u64,
}

/// A decoded record borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The fixed fields.
    pub header: RecordHeader,
    /// The payload bytes, still in the codec's encoding.
    pub payload: &'a [u8],
    /// The record's checksum (its last four bytes).
    pub checksum: u32,
    /// Whether the flags mark the payload sealed ([`FLAG_SEALED`]).
    pub sealed: bool,
}

/// Why a byte string is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Fewer bytes than the smallest record.
    #[error("record truncated: {len} bytes, a record has at least {OVERHEAD}")]
    Truncated {
        /// The length seen.
        len: usize,
    },
    /// The declared payload length does not match the bytes present.
    #[error(
        "record length mismatch: header declares a {declared}-byte payload, {actual} bytes present"
    )]
    Length {
        /// The payload length the header declares.
        declared: u64,
        /// The payload bytes actually present.
        actual: usize,
    },
    /// The checksum does not match: the bytes were changed.
    #[error("record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum in the record.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// A format version this crate does not read.
    #[error("unsupported record format version {0}")]
    Format(u8),
    /// An unknown record kind.
    #[error("unknown record kind {0}")]
    Kind(u8),
    /// Flags this format version does not define.
    #[error("unsupported record flags {0:#04x}")]
    Flags(u8),
}

/// Appends a record whose payload is produced by `payload` (which appends to the vector it is
/// given). Returns the record's checksum.
pub(crate) fn encode_with(
    kind: RecordKind,
    codec: u8,
    flags: u8,
    type_version: u32,
    seq: u64,
    out: &mut Vec<u8>,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<u32, CodecError> {
    let start = out.len();
    out.extend_from_slice(&[FORMAT_VERSION, kind.to_byte(), codec, flags]);
    out.extend_from_slice(&type_version.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    if let Err(error) = payload(out) {
        out.truncate(start);
        return Err(error);
    }
    let len = out.len() - start - HEADER_LEN;
    let len = u32::try_from(len).map_err(|_| {
        out.truncate(start);
        CodecError::new(format!(
            "payload of {len} bytes exceeds the 4 GiB record limit"
        ))
    })?;
    out[start + 16..start + HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    // The header is fed from the values just written, not read back (see `Crc32`).
    let lead = u32::from_le_bytes([FORMAT_VERSION, kind.to_byte(), codec, flags]);
    let checksum = Crc32::new()
        .word(u64::from(lead) | u64::from(type_version) << 32)
        .word(seq)
        .half(len)
        .bytes(&out[start + HEADER_LEN..])
        .finish();
    out.extend_from_slice(&checksum.to_le_bytes());
    Ok(checksum)
}

/// Encodes `value` with codec `C` into a new record. Returns the bytes and the checksum.
/// Encodes a record of `value` at the end of `out`; returns its checksum.
pub(crate) fn encode_value_into<C: Codec<T>, T>(
    kind: RecordKind,
    type_version: u32,
    seq: u64,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<u32, CodecError> {
    encode_with(kind, C::ID, 0, type_version, seq, out, |out| {
        C::encode(value, out)
    })
}

/// Encodes a record around an already encoded payload.
///
/// ```
/// use persevere_core::record::{self, RecordHeader, RecordKind};
/// let header = RecordHeader { kind: RecordKind::Event, codec: 1, type_version: 1, seq: 7 };
/// let bytes = record::encode(header, b"payload");
/// let decoded = record::decode(&bytes).unwrap();
/// assert_eq!(decoded.header, header);
/// assert_eq!(decoded.payload, b"payload");
/// ```
pub fn encode(header: RecordHeader, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(OVERHEAD + payload.len());
    // The closure cannot fail, and a slice in memory is far below the 4 GiB limit.
    let _ = encode_with(
        header.kind,
        header.codec,
        0,
        header.type_version,
        header.seq,
        &mut out,
        |out| {
            out.extend_from_slice(payload);
            Ok(())
        },
    );
    out
}

/// The fold of no checksum (see [`fold_checksum`]).
pub(crate) const CHECKSUM_FOLD: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds the `checksum` of the next record of a run into `fold` (start from
/// [`CHECKSUM_FOLD`]): an FNV-1a step over the checksum as one 32-bit word. It identifies a
/// run of records, in order, with no allocation: the journal folds the checksums of an append's
/// records while it encodes them, and a re-read folds those of the records it finds at the same
/// positions. For a fixed checksum each step is a bijection of `fold` (an xor, then a multiply
/// by an odd constant), so two runs whose checksums differ at exactly one position always fold
/// differently; runs differing at several positions collide with a chance of about 2^-64.
#[inline(always)]
pub(crate) fn fold_checksum(fold: u64, checksum: u32) -> u64 {
    (fold ^ u64::from(checksum)).wrapping_mul(0x0000_0100_0000_01b3)
}

#[inline]
fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[inline]
fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The checksum stored in a record's last four bytes, if it is long enough to have one.
pub fn stored_checksum(bytes: &[u8]) -> Option<u32> {
    (bytes.len() >= OVERHEAD).then(|| le_u32(bytes, bytes.len() - 4))
}

/// Decodes and verifies one record.
///
/// ```
/// use persevere_core::record::{decode, RecordError};
/// assert_eq!(decode(b"abc"), Err(RecordError::Truncated { len: 3 }));
/// ```
#[inline]
pub fn decode(bytes: &[u8]) -> Result<Record<'_>, RecordError> {
    match decode_valid(bytes) {
        Some(rec) => Ok(rec),
        None => decode_or_refuse(bytes),
    }
}

/// A valid record, read in one pass over its header with no error built (every replayed
/// record takes this path): [`decode`]'s verdict without its reason. `None` when any check
/// fails; [`decode`] then says which.
#[inline(always)]
pub(crate) fn decode_valid(bytes: &[u8]) -> Option<Record<'_>> {
    let body_len = bytes.len().checked_sub(4)?;
    let (body, stored) = bytes.split_at(body_len);
    let header: &[u8; HEADER_LEN] = body.first_chunk()?;
    let kind = RecordKind::from_byte(header[1])?;
    let valid = header[0] == FORMAT_VERSION
        && (header[3] == 0 || header[3] == FLAG_SEALED)
        && le_u32(header, 16) as usize == body_len - HEADER_LEN;
    let checksum = le_u32(stored, 0);
    if !valid || crc32(body) != checksum {
        return None;
    }
    Some(Record {
        header: RecordHeader {
            kind,
            codec: header[2],
            type_version: le_u32(header, 4),
            seq: le_u64(header, 8),
        },
        payload: &body[HEADER_LEN..],
        checksum,
        sealed: header[3] == FLAG_SEALED,
    })
}

/// [`decode`] checking one thing at a time, to report the first that is wrong.
#[cold]
#[inline(never)]
fn decode_or_refuse(bytes: &[u8]) -> Result<Record<'_>, RecordError> {
    if bytes.len() < OVERHEAD {
        return Err(RecordError::Truncated { len: bytes.len() });
    }
    let body = &bytes[..bytes.len() - 4];
    let stored = le_u32(bytes, bytes.len() - 4);
    let declared = u64::from(le_u32(bytes, 16));
    let actual = body.len() - HEADER_LEN;
    if declared != actual as u64 {
        return Err(RecordError::Length { declared, actual });
    }
    let computed = crc32(body);
    if computed != stored {
        return Err(RecordError::Checksum { stored, computed });
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(RecordError::Format(bytes[0]));
    }
    let kind = RecordKind::from_byte(bytes[1]).ok_or(RecordError::Kind(bytes[1]))?;
    if bytes[3] != 0 && bytes[3] != FLAG_SEALED {
        return Err(RecordError::Flags(bytes[3]));
    }
    Ok(Record {
        header: RecordHeader {
            kind,
            codec: bytes[2],
            type_version: le_u32(bytes, 4),
            seq: le_u64(bytes, 8),
        },
        payload: &body[HEADER_LEN..],
        checksum: stored,
        sealed: bytes[3] == FLAG_SEALED,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode(
            RecordHeader {
                kind: RecordKind::Snapshot,
                codec: 1,
                type_version: 3,
                seq: 42,
            },
            b"hello",
        )
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let bytes = sample();
        assert_eq!(bytes.len(), OVERHEAD + 5);
        let record = decode(&bytes).unwrap();
        assert_eq!(record.header.kind, RecordKind::Snapshot);
        assert_eq!(record.header.type_version, 3);
        assert_eq!(record.header.seq, 42);
        assert_eq!(record.payload, b"hello");
        assert_eq!(Some(record.checksum), stored_checksum(&bytes));
    }

    #[test]
    fn a_checksum_fold_tells_runs_apart_by_any_one_position_and_by_order() {
        let fold = |run: &[u32]| run.iter().fold(CHECKSUM_FOLD, |f, &c| fold_checksum(f, c));
        let run: Vec<u32> = (0..64u32)
            .map(|i| i.wrapping_mul(0x9E37_79B9) ^ 0xA5A5)
            .collect();
        let whole = fold(&run);
        for at in 0..run.len() {
            for flip in [1, 0x8000_0000, 0xFFFF_FFFF, 0x0001_0000] {
                let mut other = run.clone();
                other[at] ^= flip;
                assert_ne!(fold(&other), whole, "position {at}, flip {flip:#x}");
            }
            // One position fewer or more.
            assert_ne!(fold(&run[..at]), whole, "a prefix of {at}");
        }
        let mut swapped = run.clone();
        swapped.swap(3, 9);
        assert_ne!(fold(&swapped), whole, "order counts");
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = sample();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut copy = bytes.clone();
                copy[i] ^= 1 << bit;
                assert!(
                    decode(&copy).is_err(),
                    "flip of bit {bit} at byte {i} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn the_one_pass_check_accepts_exactly_what_the_step_by_step_check_accepts() {
        let agree = |bytes: &[u8]| {
            assert_eq!(
                decode_valid(bytes),
                decode_or_refuse(bytes).ok(),
                "{bytes:?}"
            );
        };
        let bytes = sample();
        agree(&bytes);
        assert!(decode_valid(&bytes).is_some());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut copy = bytes.clone();
                copy[i] ^= 1 << bit;
                agree(&copy);
            }
        }
        for len in 0..bytes.len() {
            agree(&bytes[..len]);
        }
        // Every value of every checked header byte, the checksum made right again.
        for at in [0, 1, 3, 16] {
            for value in 0..=u8::MAX {
                let mut copy = bytes[..bytes.len() - 4].to_vec();
                copy[at] = value;
                let crc = crc32fast::hash(&copy);
                copy.extend_from_slice(&crc.to_le_bytes());
                agree(&copy);
                if at == 3 && value == FLAG_SEALED {
                    assert!(decode_valid(&copy).is_some_and(|r| r.sealed));
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn unknown_format_kind_and_flags_are_typed_errors() {
        let reseal = |mutate: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = sample();
            bytes.truncate(bytes.len() - 4);
            mutate(&mut bytes);
            let crc = crc32fast::hash(&bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
            decode(&bytes).map(|_| ())
        };
        assert_eq!(reseal(&|b| b[0] = 9), Err(RecordError::Format(9)));
        assert_eq!(reseal(&|b| b[1] = 7), Err(RecordError::Kind(7)));
        assert_eq!(reseal(&|b| b[3] = 2), Err(RecordError::Flags(2)));
        assert_eq!(reseal(&|b| b[3] = 0x81), Err(RecordError::Flags(0x81)));
        assert_eq!(
            reseal(&|b| b[16] = 9),
            Err(RecordError::Length {
                declared: 9,
                actual: 5
            })
        );
    }
}
