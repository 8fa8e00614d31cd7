//! The exclusive lock that makes one directory one store: a second opener, in this process or
//! another, gets [`FileError::Locked`] instead of a corrupted log.
//!
//! The lock is an `flock` on the store directory itself (its open file descriptor), not on a
//! file inside it: no file can be removed or replaced to defeat it (removing a stale `LOCK` file
//! is a common reflex). It is released when the store is dropped or the process dies.

use std::fs::File;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use crate::FileError;

/// Takes an exclusive `flock` on the open directory `handle`, failing at once if another opener
/// holds it.
pub(crate) fn acquire(dir: &Path, handle: &File) -> Result<(), FileError> {
    match flock(handle, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(FileError::Locked {
            path: dir.to_owned(),
        }),
        Err(errno) => Err(FileError::Io {
            op: "locking the store directory",
            path: dir.to_owned(),
            source: errno.into(),
        }),
    }
}
