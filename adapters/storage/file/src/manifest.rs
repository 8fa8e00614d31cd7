//! The identity file `STORE`: which store a directory holds (its id, chosen at creation) and
//! the newest segment it has created, so that open can tell a deleted segment — or a whole
//! deleted log — from a fresh store.
//!
//! | bytes | field |
//! |---|---|
//! | 0..6 | magic `PSVSTR` |
//! | 6..8 | format version (u16 LE) |
//! | 8..16 | store id (u64 LE) |
//! | 16..24 | newest segment created (u64 LE; 0 before the first) |
//! | 24..32 | segment of the last clean shutdown (u64 LE; 0: none) |
//! | 32..40 | that segment's length at the clean shutdown (u64 LE) |
//! | 40..44 | reserved, zero |
//! | 44..48 | CRC-32 of bytes 0..44 |
//!
//! It is replaced atomically (temporary file `STORE.tmp`, fsync, rename, directory fsync) after
//! each new segment is durable, so the newest segment on disk is the recorded one or, after a
//! crash between the two steps, the one after it. A clean shutdown records where the log
//! ended (after its close marker): a log found shorter than that was cut, which open refuses.

use std::io;

use crate::frame::{u32_at, u64_at, version_after, FORMAT};
use crate::vfs::Vfs;

/// The identity file's name.
pub(crate) const NAME: &str = "STORE";
/// Its temporary name while being replaced.
pub(crate) const TEMP: &str = "STORE.tmp";
const MAGIC: &[u8; 6] = b"PSVSTR";
const LEN: usize = 48;

/// The identity file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// The store id.
    pub store: u64,
    /// The newest segment created.
    pub newest: u64,
    /// Where the log ended at the last clean shutdown: segment (0: none) and length.
    pub closed: (u64, u64),
}

/// Why `STORE` could not be read.
#[derive(Debug)]
pub(crate) enum ManifestError {
    /// Not readable as an identity file.
    Bad(&'static str),
    /// Another format version.
    Version(u16),
    /// The file could not be read.
    Io(io::Error),
}

impl Manifest {
    fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0..6].copy_from_slice(MAGIC);
        out[6..8].copy_from_slice(&FORMAT.to_le_bytes());
        out[8..16].copy_from_slice(&self.store.to_le_bytes());
        out[16..24].copy_from_slice(&self.newest.to_le_bytes());
        out[24..32].copy_from_slice(&self.closed.0.to_le_bytes());
        out[32..40].copy_from_slice(&self.closed.1.to_le_bytes());
        let crc = crc32fast::hash(&out[0..44]);
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes an identity file.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let version =
            version_after(bytes, MAGIC).ok_or(ManifestError::Bad("bad identity file magic"))?;
        // The magic and version are the one layout every format keeps: another version is
        // named as such before anything else is read.
        if version != FORMAT {
            return Err(ManifestError::Version(version));
        }
        if bytes.len() != LEN || crc32fast::hash(&bytes[0..44]) != u32_at(bytes, 44) {
            return Err(ManifestError::Bad("identity file checksum mismatch"));
        }
        if u32_at(bytes, 40) != 0 {
            return Err(ManifestError::Bad("unknown identity file flags"));
        }
        Ok(Self {
            store: u64_at(bytes, 8),
            newest: u64_at(bytes, 16),
            closed: (u64_at(bytes, 24), u64_at(bytes, 32)),
        })
    }

    /// Reads `STORE`.
    pub fn read(vfs: &dyn Vfs) -> Result<Self, ManifestError> {
        let file = vfs.open(NAME, false).map_err(ManifestError::Io)?;
        let len = file.len().map_err(ManifestError::Io)?;
        let mut bytes = vec![0u8; len.min(4096) as usize];
        file.read_at(&mut bytes, 0).map_err(ManifestError::Io)?;
        Self::decode(&bytes)
    }

    /// Replaces `STORE` atomically and durably.
    pub fn write(&self, vfs: &dyn Vfs) -> io::Result<()> {
        let mut file = vfs.open(TEMP, true)?;
        file.truncate(0)?;
        file.write_at(&self.encode(), 0)?;
        file.sync()?;
        vfs.rename(TEMP, NAME)?;
        vfs.sync_dir()
    }
}

/// A new store id: from the OS-seeded hasher keys, the time and the process id. Not a secret
/// in the cryptographic sense, but unpredictable to the writer of an event payload, which is
/// what keeps payload bytes from passing as frames (see the `frame` module).
pub(crate) fn new_store_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    match h.finish() {
        0 => 1,
        id => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_rejects_flips() {
        let m = Manifest {
            store: 5,
            newest: 9,
            closed: (9, 100),
        };
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes).ok(), Some(m));
        for i in 0..LEN * 8 {
            let mut flipped = bytes;
            flipped[i / 8] ^= 1 << (i % 8);
            assert!(Manifest::decode(&flipped).is_err(), "bit {i}");
        }
        assert_ne!(new_store_id(), new_store_id());
    }
}
