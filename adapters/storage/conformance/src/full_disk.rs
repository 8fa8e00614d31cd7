//! A disk that fills, then has space again, for tests that run a real store in a child process
//! (Unix only).
//!
//! The child is the calling test binary itself, run again by [`run_child`] through
//! `sh -c 'trap "" XFSZ; exec …'` with [`CHILD_ENV`] naming a fresh store directory, so that
//! `SIGXFSZ` is ignored and a write past the soft `RLIMIT_FSIZE` fails with `EFBIG` instead of
//! killing the process. In the child, [`fill`] lowers the soft limit to just above the largest
//! file of the store (the disk is full a few writes later) and [`free`] raises it back to the
//! hard limit (there is space again). The limit holds for the whole process, which is why it
//! is only ever set in a child of its own.
//!
//! ```no_run
//! use persevere_conformance::full_disk;
//!
//! /// The child's work (a `#[test]` of its own); does nothing in the parent.
//! fn full_disk_child() {
//!     let Some(dir) = full_disk::child_dir() else { return };
//!     // … open a store in `dir`, write, then:
//!     full_disk::fill(&dir, 1024).unwrap();
//!     // … writes fail; then:
//!     full_disk::free().unwrap();
//!     // … writes go on.
//!     println!("{}", full_disk::CHILD_DONE);
//! }
//!
//! /// The test (a `#[test]`): runs the child on a fresh directory.
//! fn a_full_disk_is_survived() {
//!     if full_disk::child_dir().is_some() {
//!         return;
//!     }
//!     let dir = std::env::temp_dir().join("full-disk-example");
//!     let stdout = full_disk::run_child("full_disk_child", &dir).unwrap();
//!     println!("{stdout}");
//! }
//! # full_disk_child();
//! # a_full_disk_is_survived();
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The variable that marks the child and names its store directory.
pub const CHILD_ENV: &str = "FULL_DISK_DIR";

/// The line a child prints last when all of its checks passed.
pub const CHILD_DONE: &str = "child done";

/// The store directory, when this process is the child; `None` in the parent.
pub fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_ENV).map(PathBuf::from)
}

/// The length of the largest file in `dir` (0 for none).
pub fn largest_file(dir: &Path) -> io::Result<u64> {
    let mut largest = 0;
    for entry in std::fs::read_dir(dir)? {
        largest = largest.max(entry?.metadata()?.len());
    }
    Ok(largest)
}

fn set_soft_limit(bytes: Option<u64>) -> io::Result<()> {
    let limit = getrlimit(Resource::Fsize);
    setrlimit(
        Resource::Fsize,
        Rlimit {
            current: bytes.or(limit.maximum),
            maximum: limit.maximum,
        },
    )
    .map_err(io::Error::from)
}

/// Fills the disk: no file of this process may grow past the largest file in `dir` plus
/// `headroom` bytes.
pub fn fill(dir: &Path, headroom: u64) -> io::Result<()> {
    set_soft_limit(Some(largest_file(dir)? + headroom))
}

/// Gives the space back: the soft limit up to the hard one.
pub fn free() -> io::Result<()> {
    set_soft_limit(None)
}

/// Runs the test `child_test` of the current test binary as the child, with `SIGXFSZ` ignored
/// and [`CHILD_ENV`] set to `dir`; returns its output once it succeeded and printed
/// [`CHILD_DONE`], or says what went wrong with both of its outputs.
pub fn run_child(child_test: &str, dir: &Path) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no test binary: {e}"))?;
    let output = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(exe)
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .output()
        .map_err(|e| format!("the child did not start: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() && stdout.contains(CHILD_DONE) {
        Ok(stdout)
    } else {
        Err(format!(
            "the child failed ({}):\n{stdout}\n{stderr}",
            output.status
        ))
    }
}
