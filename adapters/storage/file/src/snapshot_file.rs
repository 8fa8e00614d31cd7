//! Large snapshots in files of their own, written with the atomic protocol: temporary file,
//! fsync, rename into place; the directory fsync follows before the log frame referencing the
//! file is written, so a referenced file is always whole and durable. The reference in the log
//! carries the snapshot's length and CRC-32, checked on every read.
//!
//! A snapshot file opens with a 32-byte header naming its store and itself:
//!
//! | bytes | field |
//! |---|---|
//! | 0..6 | magic `PSVSNP` |
//! | 6..8 | format version (u16 LE) |
//! | 8..16 | store id (u64 LE) |
//! | 16..24 | file id (u64 LE, also in its name) |
//! | 24..28 | reserved, zero |
//! | 28..32 | CRC-32 of bytes 0..28 |

use std::io;

use persevere_core::StorageError;

use crate::frame::{u32_at, u64_at, version_after, FORMAT};
use crate::vfs::Vfs;

const MAGIC: &[u8; 6] = b"PSVSNP";
/// The header's length.
pub(crate) const HEADER_LEN: usize = 32;

/// The largest snapshot the store keeps, in bytes: the log records a snapshot's length (in a
/// record's prefix, or in a snapshot file's reference) as a u32.
pub(crate) const MAX_LEN: u64 = u32::MAX as u64;

/// Where a snapshot goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// In the log, a record of its frame.
    Log,
    /// In a file of its own, referenced from the log.
    File,
}

/// Where a snapshot of `len` bytes goes: in the log when it is shorter than `file_min`, else
/// in a file of its own. One longer than [`MAX_LEN`] is refused (nothing of its command is
/// written), never cut.
pub(crate) fn place(len: usize, file_min: usize) -> Result<Place, StorageError> {
    if u64::try_from(len).map_or(true, |len| len > MAX_LEN) {
        return Err(StorageError::Rejected(format!(
            "a snapshot of {len} bytes is larger than the file store keeps ({MAX_LEN} bytes); \
             nothing of this command was written: make the snapshot smaller"
        )));
    }
    Ok(if len < file_min {
        Place::Log
    } else {
        Place::File
    })
}

/// The file name of snapshot file `id`.
pub(crate) fn name(id: u64) -> String {
    format!("{id:016x}.snap")
}

/// The temporary name snapshot file `id` is written under.
pub(crate) fn temp_name(id: u64) -> String {
    format!("{id:016x}.snap.tmp")
}

/// The id a file name holds, if it is a snapshot file's.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".snap")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn header(store: u64, id: u64) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..6].copy_from_slice(MAGIC);
    out[6..8].copy_from_slice(&FORMAT.to_le_bytes());
    out[8..16].copy_from_slice(&store.to_le_bytes());
    out[16..24].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&out[0..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The store a snapshot file's header names, if it is an intact header of this format.
pub(crate) fn owner(vfs: &dyn Vfs, id: u64) -> Option<u64> {
    let file = vfs.open(&name(id), false).ok()?;
    let mut bytes = [0u8; HEADER_LEN];
    file.read_at(&mut bytes, 0).ok()?;
    (version_after(&bytes, MAGIC) == Some(FORMAT)
        && crc32fast::hash(&bytes[0..28]) == u32_at(&bytes, 28)
        && u64_at(&bytes, 16) == id)
        .then(|| u64_at(&bytes, 8))
}

/// Writes `bytes` as snapshot file `id` of `store`: temporary file, fsync, rename. The caller
/// syncs the directory before referencing the file. On failure the temporary file is removed
/// (it is this call's own).
pub(crate) fn write(vfs: &dyn Vfs, store: u64, id: u64, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_name(id);
    let result = (|| {
        let mut file = vfs.open(&tmp, true)?;
        file.truncate(0)?;
        file.write_at(&header(store, id), 0)?;
        file.write_at(bytes, HEADER_LEN as u64)?;
        file.sync()?;
        vfs.rename(&tmp, &name(id))
    })();
    if result.is_err() {
        let _ = vfs.remove(&tmp);
    }
    result
}

/// Reads snapshot file `id` of `store`, checking its header, length and checksum against the
/// log's reference. `Err` says why the file cannot be used, naming it.
pub(crate) fn read(
    vfs: &dyn Vfs,
    store: u64,
    id: u64,
    len: u32,
    crc: u32,
) -> Result<Vec<u8>, String> {
    let path = vfs.path(&name(id));
    let damaged = |what: &str| format!("snapshot file {} {what}", path.display());
    let file = vfs
        .open(&name(id), false)
        .map_err(|e| damaged(&format!("cannot be opened: {e}")))?;
    let flen = file
        .len()
        .map_err(|e| damaged(&format!("cannot be read: {e}")))?;
    if flen != HEADER_LEN as u64 + u64::from(len) {
        return Err(damaged("is damaged: wrong length"));
    }
    let mut bytes = vec![0u8; HEADER_LEN + len as usize];
    file.read_at(&mut bytes, 0)
        .map_err(|e| damaged(&format!("cannot be read: {e}")))?;
    if bytes[..HEADER_LEN] != header(store, id) {
        return Err(damaged("has a damaged header or belongs to another store"));
    }
    if crc32fast::hash(&bytes[HEADER_LEN..]) != crc {
        return Err(damaged("is damaged: checksum mismatch"));
    }
    bytes.drain(..HEADER_LEN);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_longer_than_a_u32_is_refused_never_cut() {
        let over = usize::try_from(MAX_LEN + 1).expect("a 64-bit target");
        for file_min in [0, 64 << 10, over, usize::MAX] {
            assert!(
                matches!(place(over, file_min), Err(StorageError::Rejected(_))),
                "file_min {file_min}"
            );
            assert!(
                matches!(place(usize::MAX, file_min), Err(StorageError::Rejected(_))),
                "file_min {file_min}"
            );
        }
        let max = usize::try_from(MAX_LEN).expect("a 64-bit target");
        assert_eq!(place(max, 64 << 10), Ok(Place::File));
        assert_eq!(place(max, usize::MAX), Ok(Place::Log));
        assert_eq!(place(10, 64 << 10), Ok(Place::Log));
        assert_eq!(place(64 << 10, 64 << 10), Ok(Place::File));
    }
}
