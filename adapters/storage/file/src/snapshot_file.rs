//! Large snapshots in files of their own, written with the atomic protocol: temporary file,
//! fsync, rename into place; the directory fsync follows before the log frame referencing the
//! file is written, so a referenced file is always whole and durable. The reference in the log
//! carries the file's length and CRC-32, checked on every read.

use std::io;

use crate::vfs::Vfs;

/// The file name of snapshot file `id`.
pub(crate) fn name(id: u64) -> String {
    format!("{id:016x}.snap")
}

/// The id a file name holds, if it is a snapshot file's.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".snap")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Writes `bytes` as snapshot file `id`: temporary file, fsync, rename. The caller syncs the
/// directory before referencing the file.
pub(crate) fn write(vfs: &dyn Vfs, id: u64, bytes: &[u8]) -> io::Result<()> {
    let tmp = format!("{}.tmp", name(id));
    let mut file = vfs.open(&tmp, true)?;
    file.truncate(0)?;
    file.write_at(bytes, 0)?;
    file.sync()?;
    vfs.rename(&tmp, &name(id))
}

/// Reads snapshot file `id`, checking its length and checksum against the log's reference.
pub(crate) fn read(vfs: &dyn Vfs, id: u64, len: u32, crc: u32) -> io::Result<Vec<u8>> {
    let file = vfs.open(&name(id), false)?;
    let damaged = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "snapshot file {} is damaged: {what}",
                vfs.path(&name(id)).display()
            ),
        )
    };
    if file.len()? != u64::from(len) {
        return Err(damaged("wrong length"));
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_at(&mut bytes, 0)?;
    if crc32fast::hash(&bytes) != crc {
        return Err(damaged("checksum mismatch"));
    }
    Ok(bytes)
}
