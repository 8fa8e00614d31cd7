//! The exclusive lock that makes one directory one store: a second opener, in this process or
//! another, gets [`FileError::Locked`] instead of a corrupted log.
//!
//! The lock is an `flock` on the store directory itself (its open file descriptor), not on a
//! file inside it: no file can be removed or replaced to defeat it (removing a stale `LOCK` file
//! is a common reflex). It is released when the store is dropped or the process dies. A held
//! lock is tried again for a moment before the open fails (see [`acquire`]).

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use crate::FileError;

/// How long [`acquire`] keeps trying a lock that is held: long enough to outlast a child
/// process between its fork and its exec, short enough that a real second opener hears of it
/// at once.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Takes an exclusive `flock` on the open directory `handle`. A lock that is held is tried
/// again for up to [`LOCK_WAIT`] before [`FileError::Locked`]: a child process that another
/// thread of this process is starting shares this process's descriptors between its fork and
/// its exec — a store's locked directory among them — so a lock this process has just
/// released can outlive its store for that moment.
pub(crate) fn acquire(dir: &Path, handle: &File) -> Result<(), FileError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match flock(handle, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::WOULDBLOCK) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(FileError::Locked {
                    path: dir.to_owned(),
                })
            }
            Err(errno) => {
                return Err(FileError::Io {
                    op: "locking the store directory",
                    path: dir.to_owned(),
                    source: errno.into(),
                })
            }
        }
    }
}
