//! The quarantine folder: what open decides not to use is moved (or, for a torn tail, copied)
//! to `quarantine/` inside the store directory, with a note saying why and when, never
//! destroyed. Names: `quarantine/{unix millis}-{n}-{file name}` and the same with `.note`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::vfs::Vfs;

/// The quarantine folder's name.
pub(crate) const DIR: &str = "quarantine";

fn target(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{DIR}/{millis}-{n}-{name}")
}

fn note(vfs: &dyn Vfs, kept: &str, why: &str) -> io::Result<()> {
    let when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = format!("{why}\nset aside at unix time {when} by persevere-file\n");
    let mut file = vfs.open(&format!("{kept}.note"), true)?;
    file.truncate(0)?;
    file.write_at(text.as_bytes(), 0)?;
    file.sync()
}

/// Creates the quarantine folder if absent and makes its entry in the store directory durable.
fn create(vfs: &dyn Vfs) -> io::Result<()> {
    vfs.create_dir(DIR)?;
    vfs.sync_dir()
}

/// Moves the file `name` into the quarantine folder with a note; returns its new name. Both
/// directories are synced: the quarantine folder first (the file's new entry), then the store
/// directory (its old entry gone), so that no crash loses the file from both.
pub(crate) fn move_file(vfs: &dyn Vfs, name: &str, why: &str) -> io::Result<String> {
    create(vfs)?;
    let kept = target(name);
    note(vfs, &kept, why)?;
    vfs.rename(name, &kept)?;
    vfs.sync_subdir(DIR)?;
    vfs.sync_dir()?;
    Ok(kept)
}

/// Copies `bytes` (cut from the file `name`) into the quarantine folder with a note, durably
/// (the copy and the quarantine folder's entries synced); returns the copy's name. The caller
/// then cuts the original.
pub(crate) fn keep_bytes(vfs: &dyn Vfs, name: &str, bytes: &[u8], why: &str) -> io::Result<String> {
    create(vfs)?;
    let kept = target(name);
    note(vfs, &kept, why)?;
    let mut file = vfs.open(&kept, true)?;
    file.truncate(0)?;
    file.write_at(bytes, 0)?;
    file.sync()?;
    vfs.sync_subdir(DIR)?;
    Ok(kept)
}
