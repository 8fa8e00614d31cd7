//! The CRC-32 (ISO-HDLC) every record carries: computed when a record is written and checked
//! when it is read, so it runs once per record on both paths.
//!
//! Most records are small (an event's header, a few bytes of payload and the checksum: about
//! 32 bytes). `crc32fast` checksums them with its portable tables, 16 bytes at a time and then
//! one byte at a time: for a 28-byte body that is one wide step and twelve dependent narrow
//! ones. A body shorter than [`SMALL`] is checksummed here instead, eight bytes at a time
//! (then four, then one), which takes four steps for the same body; a longer one goes to
//! `crc32fast`, whose carry-less multiply wins from there on.

/// Bodies shorter than this are checksummed with [`TABLES`]; longer ones by `crc32fast`
/// (whose carry-less multiply path starts at 128 bytes).
const SMALL: usize = 128;

/// The reflected CRC-32 polynomial (ISO-HDLC, as in zlib and `crc32fast`).
const POLYNOMIAL: u32 = 0xEDB8_8320;

/// `TABLES[k][b]`: the CRC register's change from byte `b` followed by `k` zero bytes, so that
/// eight bytes are folded in with eight independent lookups (slice-by-8).
static TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut tables = [[0; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut byte = 0;
        while byte < 256 {
            let previous = tables[k - 1][byte];
            tables[k][byte] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            byte += 1;
        }
        k += 1;
    }
    tables
}

/// The CRC-32 (ISO-HDLC) of `bytes`, as `crc32fast::hash` computes it.
#[inline]
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    Crc32::new().bytes(bytes).finish()
}

/// A CRC-32 (ISO-HDLC) being computed, fed in order. A writer that has just stored a value
/// feeds it as a word ([`word`](Self::word), [`half`](Self::half)) rather than reading its bytes
/// back: a wide load of bytes just written by narrower stores waits for them to reach the
/// cache, which costs more than the checksum itself.
#[derive(Clone, Copy)]
pub(crate) struct Crc32(u32);

impl Crc32 {
    #[inline]
    pub(crate) fn new() -> Self {
        Self(!0)
    }

    /// Feeds eight bytes, the little-endian bytes of `word`.
    #[inline]
    pub(crate) fn word(self, word: u64) -> Self {
        let t = &TABLES;
        let x = word ^ u64::from(self.0);
        Self(
            t[7][(x & 0xff) as usize]
                ^ t[6][((x >> 8) & 0xff) as usize]
                ^ t[5][((x >> 16) & 0xff) as usize]
                ^ t[4][((x >> 24) & 0xff) as usize]
                ^ t[3][((x >> 32) & 0xff) as usize]
                ^ t[2][((x >> 40) & 0xff) as usize]
                ^ t[1][((x >> 48) & 0xff) as usize]
                ^ t[0][(x >> 56) as usize],
        )
    }

    /// Feeds four bytes, the little-endian bytes of `half`.
    #[inline]
    pub(crate) fn half(self, half: u32) -> Self {
        let t = &TABLES;
        let x = half ^ self.0;
        Self(
            t[3][(x & 0xff) as usize]
                ^ t[2][((x >> 8) & 0xff) as usize]
                ^ t[1][((x >> 16) & 0xff) as usize]
                ^ t[0][(x >> 24) as usize],
        )
    }

    /// Feeds `bytes`: eight at a time (then four, then one) below [`SMALL`], else through
    /// `crc32fast`.
    #[inline]
    pub(crate) fn bytes(self, bytes: &[u8]) -> Self {
        if bytes.len() >= SMALL {
            return self.large(bytes);
        }
        let mut crc = self;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut le = [0; 8];
            le.copy_from_slice(word);
            crc = crc.word(u64::from_le_bytes(le));
        }
        let mut rest = words.remainder();
        if let Some((half, after)) = rest.split_first_chunk::<4>() {
            crc = crc.half(u32::from_le_bytes(*half));
            rest = after;
        }
        for &byte in rest {
            crc = Self((crc.0 >> 8) ^ TABLES[0][((crc.0 ^ u32::from(byte)) & 0xff) as usize]);
        }
        crc
    }

    /// The checksum of what was fed.
    #[inline]
    pub(crate) fn finish(self) -> u32 {
        !self.0
    }

    /// `crc32fast`, from this checksum on (for a large body, its asking the CPU which
    /// implementation to use costs nothing in comparison).
    #[cold]
    fn large(self, bytes: &[u8]) -> Self {
        let mut hasher = crc32fast::Hasher::new_with_initial(self.finish());
        hasher.update(bytes);
        Self(!hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_checksums_as_crc32fast_does() {
        // The check value of CRC-32/ISO-HDLC, then crc32fast's answer for every length on
        // both sides of the switch, from every alignment, over bytes with every bit pattern.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let bytes: Vec<u8> = (0..400u32)
            .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 13) as u8)
            .collect();
        for start in 0..8 {
            for len in 0..bytes.len() - start {
                let body = &bytes[start..start + len];
                assert_eq!(crc32(body), crc32fast::hash(body), "{start}+{len}");
            }
        }
        // Fed in pieces, words included, as a writer feeds a record it has just stored.
        let crc = Crc32::new()
            .word(u64::from_le_bytes(bytes[..8].try_into().unwrap()))
            .half(u32::from_le_bytes(bytes[8..12].try_into().unwrap()))
            .bytes(&bytes[12..20])
            .bytes(&bytes[20..]);
        assert_eq!(crc.finish(), crc32fast::hash(&bytes));
        let ones = [0xff; SMALL + 9];
        for len in 0..ones.len() {
            assert_eq!(crc32(&ones[..len]), crc32fast::hash(&ones[..len]), "{len}");
        }
    }
}
