//! The main example on a disk that fills: it exits non-zero when a persist fails, reports only
//! acknowledged increments, and the next run (with space again) recovers exactly those.
//!
//! The disk "fills" through a lowered soft `RLIMIT_FSIZE` (with `SIGXFSZ` ignored, so a write
//! past it fails with `EFBIG`), set by `sh` before it execs the example: no root, no mount.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The example binary, built now (`cargo test --test` alone does not build examples) in the
/// profile this test was built in.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-p", "persevere-examples", "--example", name]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "building the {name} example failed");
    dir.join("examples").join(name)
}

/// Runs the counter example on `data`, with file sizes limited to `blocks` × 512 bytes.
fn counter(example: &Path, data: &Path, blocks: Option<u64>) -> Output {
    let limit = blocks.map_or("unlimited".to_owned(), |b| b.to_string());
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -S -f {limit} && trap '' XFSZ && exec \"$0\" \"$@\""
        ))
        .arg(example)
        .arg(data)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The number in the line of `output` that starts with `prefix`.
fn number_after(output: &str, prefix: &str) -> Option<u64> {
    let line = output.lines().find_map(|l| l.strip_prefix(prefix))?;
    line.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

fn largest_file(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

#[cfg(unix)]
#[test]
fn the_counter_exits_non_zero_on_a_full_disk_and_loses_nothing_acknowledged() {
    let counter_example = example("counter");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = counter(&counter_example, &data, None);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(number_after(&text(&first.stdout), "counter = "), Some(10));

    // Room for a few more increments, not ten.
    let blocks = largest_file(&data) / 512 + 1;
    let full = counter(&counter_example, &data, Some(blocks));
    let (stdout, stderr) = (text(&full.stdout), text(&full.stderr));
    assert!(!full.status.success(), "{stdout}{stderr}");
    assert!(
        !stdout.lines().any(|l| l.starts_with("counter = ")),
        "{stdout}"
    );
    assert!(stderr.contains("error: storage failed"), "{stderr}");
    let durable = number_after(&stderr, "persist failed; ").unwrap();
    assert!((10..20).contains(&durable), "{stderr}");

    // Space again: the next run recovers exactly the acknowledged increments and goes on.
    let again = counter(&counter_example, &data, None);
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        number_after(&stdout, "recovered counter = "),
        Some(durable),
        "{stdout}"
    );
    assert_eq!(
        number_after(&stdout, "counter = "),
        Some(durable + 10),
        "{stdout}"
    );
}
