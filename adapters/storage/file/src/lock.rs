//! The exclusive lock that makes one directory one store: a second opener, in this process or
//! another, gets [`FileError::Locked`] instead of a corrupted log.

use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use crate::FileError;

/// The name of the lock file inside the store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// An exclusive `flock` on the directory's lock file, released when dropped (or when the process
/// dies).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock, failing at once if another opener holds it.
    pub fn acquire(dir: &Path) -> Result<Self, FileError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| FileError::Io {
                op: "opening the lock file",
                path: path.clone(),
                source,
            })?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Self { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(FileError::Locked {
                path: dir.to_owned(),
            }),
            Err(errno) => Err(FileError::Io {
                op: "locking the store directory",
                path,
                source: errno.into(),
            }),
        }
    }
}
