//! kameo-persistence's snapshot file in a key's directory: found, copied aside and imported
//! once.
//!
//! kameo-persistence keeps a key's snapshot in `DIR/index.bin` (postcard). The first open of
//! the key imports it, in three durable steps, so that a crash at any point is recognised at
//! the next open:
//!
//! 1. the bytes are copied to `index.bin.imported` (written aside, synced, renamed into place);
//! 2. the decoded snapshot is saved in the key's journal (durable before it returns);
//! 3. `index.bin` is removed — its bytes are in `index.bin.imported`, checked identical.
//!
//! An open that finds persevere state and an `index.bin` identical to `index.bin.imported`
//! finishes step 3 (a crash after step 2); any other `index.bin` beside persevere state is a
//! conflict, never ignored.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use url::Url;

use crate::scheme;

/// kameo-persistence's snapshot file in a key's directory.
pub(crate) const SNAPSHOT_FILE: &str = "index.bin";
/// Where an imported `index.bin` is kept.
pub(crate) const IMPORTED_FILE: &str = "index.bin.imported";
/// The copy being written.
const IMPORTING_FILE: &str = "index.bin.imported.tmp";

/// The directory of a `file` key of the kameo-persistence API; `None` for other schemes.
pub(crate) fn key_dir(key: &Url) -> Option<PathBuf> {
    if key.scheme() != "file" {
        return None;
    }
    let (location, _) = scheme::locate_key(key).ok()?;
    persevere_file::parse_url(&location).ok()
}

/// What a key's directory holds of kameo-persistence's files.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Whether the directory exists.
    pub(crate) exists: bool,
    /// The bytes of `index.bin`, if it exists.
    pub(crate) snapshot: Option<Vec<u8>>,
    /// The bytes of `index.bin.imported`, if it exists.
    pub(crate) imported: Option<Vec<u8>>,
}

/// Reads kameo-persistence's files in `dir` (missing ones are `None`).
pub(crate) fn inspect(dir: &Path) -> io::Result<Found> {
    Ok(Found {
        exists: dir.try_exists()?,
        snapshot: read_if_present(&dir.join(SNAPSHOT_FILE))?,
        imported: read_if_present(&dir.join(IMPORTED_FILE))?,
    })
}

fn read_if_present(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Step 1: keeps `bytes` (those of `index.bin`) durably in `index.bin.imported`.
pub(crate) fn keep_copy(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = dir.join(IMPORTING_FILE);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, dir.join(IMPORTED_FILE))?;
    sync_dir(dir)
}

/// Step 3: removes `index.bin`, once its bytes are in `index.bin.imported` (checked here).
pub(crate) fn retire(dir: &Path) -> io::Result<()> {
    let found = inspect(dir)?;
    match (found.snapshot, found.imported) {
        (Some(snapshot), Some(imported)) if snapshot == imported => {
            fs::remove_file(dir.join(SNAPSHOT_FILE))?;
            sync_dir(dir)
        }
        (None, _) => Ok(()),
        _ => Err(io::Error::other(
            "index.bin differs from its imported copy; it was left in place",
        )),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_retired_only_when_its_copy_is_identical() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path();
        assert!(inspect(dir).expect("inspect").snapshot.is_none());
        fs::write(dir.join(SNAPSHOT_FILE), b"state").expect("write");
        assert!(retire(dir).is_err(), "no copy: kept");
        keep_copy(dir, b"other").expect("copy");
        assert!(retire(dir).is_err(), "another copy: kept");
        assert_eq!(fs::read(dir.join(SNAPSHOT_FILE)).expect("kept"), b"state");
        keep_copy(dir, b"state").expect("copy");
        retire(dir).expect("retire");
        let found = inspect(dir).expect("inspect");
        assert_eq!(found.snapshot, None);
        assert_eq!(found.imported.as_deref(), Some(&b"state"[..]));
        assert!(!dir.join(IMPORTING_FILE).exists());
    }
}
