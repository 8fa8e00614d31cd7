//! The baseline every durable benchmark compares against: the raw rate of a 64-byte `pwrite`
//! followed by `fdatasync`, measured in the directory the store under test uses, so a ratio
//! to it says what the store costs beyond the disk's own sync.
//!
//! ```
//! let dir = std::env::temp_dir();
//! let rate = persevere_conformance::baseline::raw_fdatasync(&dir, 3);
//! assert!(rate > 0.0);
//! ```

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

/// Appends `n` 64-byte records to a scratch file `raw.bin` in `dir`, each followed by
/// `fdatasync`, and returns the rate (syncs per second). The file is removed afterwards.
///
/// # Panics
///
/// When the scratch file cannot be created, written, synced or removed: a benchmark has no
/// figure to give then.
pub fn raw_fdatasync(dir: &Path, n: u32) -> f64 {
    let path = dir.join("raw.bin");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("raw file");
    let record = [0x5Au8; 64];
    let start = Instant::now();
    for i in 0..u64::from(n) {
        file.write_all_at(&record, i * 64).expect("write");
        file.sync_data().expect("fdatasync");
    }
    let rate = f64::from(n) / start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(path).expect("remove");
    rate
}
