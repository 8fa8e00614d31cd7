//! The baseline every durable benchmark compares against: the raw rate of a 64-byte `pwrite`
//! followed by `fdatasync`, measured in the directory the store under test uses, so a ratio
//! to it says what the store costs beyond the disk's own sync.
//!
//! ```
//! let dir = std::env::temp_dir();
//! let rate = persevere_conformance::baseline::raw_fdatasync(&dir, 3);
//! assert!(rate > 0.0);
//! ```
//!
//! A disk whose sync rate swings between runs is better compared one operation at a time:
//! [`RawAppend`] appends one record per [`RawAppend::append`], to be interleaved with the store's
//! own operations.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The record size of the baseline: a 64-byte event.
pub const RECORD: usize = 64;

/// A scratch file to which each [`append`](Self::append) adds one record and `fdatasync`s:
/// the file grows at every append, like a log. The file is removed when this is dropped.
///
/// ```
/// use persevere_conformance::baseline::{RawAppend, RECORD};
/// let dir = std::env::temp_dir();
/// let mut raw = RawAppend::create(&dir, "persevere-raw-append-doctest.bin", RECORD);
/// let took = raw.append();
/// assert!(took.as_nanos() > 0);
/// ```
#[derive(Debug)]
pub struct RawAppend {
    file: File,
    path: PathBuf,
    record: Vec<u8>,
    appended: u64,
}

impl RawAppend {
    /// Creates (or truncates) the scratch file `name` in `dir`, to append records of `bytes`.
    ///
    /// # Panics
    ///
    /// When the file cannot be created: a benchmark has no figure to give then.
    pub fn create(dir: &Path, name: &str, bytes: usize) -> Self {
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .expect("raw file");
        Self {
            file,
            path,
            record: vec![0x5A; bytes],
            appended: 0,
        }
    }

    /// Like [`create`](Self::create), with `records` records' worth of zeros written and synced
    /// first: the first `records` appends write inside the file, so their syncs need not commit
    /// a new file size (what a write-ahead log kept allocated ahead of its writer does).
    ///
    /// # Panics
    ///
    /// When the file cannot be created, written or synced.
    pub fn preallocated(dir: &Path, name: &str, bytes: usize, records: u64) -> Self {
        let raw = Self::create(dir, name, bytes);
        let zeros = vec![0u8; bytes];
        for i in 0..records {
            raw.file
                .write_all_at(&zeros, i * bytes as u64)
                .expect("write");
        }
        raw.file.sync_all().expect("sync");
        raw
    }

    /// Appends one record and `fdatasync`s the file; returns how long both took.
    ///
    /// # Panics
    ///
    /// When the write or the sync fails.
    pub fn append(&mut self) -> Duration {
        let start = Instant::now();
        let at = self.appended * self.record.len() as u64;
        self.file.write_all_at(&self.record, at).expect("write");
        self.file.sync_data().expect("fdatasync");
        self.appended += 1;
        start.elapsed()
    }
}

impl Drop for RawAppend {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Appends `n` 64-byte records to a scratch file `raw.bin` in `dir`, each followed by
/// `fdatasync`, and returns the rate (syncs per second). The file is removed afterwards.
///
/// # Panics
///
/// When the scratch file cannot be created, written or synced: a benchmark has no
/// figure to give then.
pub fn raw_fdatasync(dir: &Path, n: u32) -> f64 {
    let mut raw = RawAppend::create(dir, "raw.bin", RECORD);
    let start = Instant::now();
    for _ in 0..n {
        raw.append();
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}
