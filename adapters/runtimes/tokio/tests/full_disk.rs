//! A disk that fills, then has space again, under a `Persistent` entity on tokio over the real
//! file journal: persists fail with a clear error once the disk is full, no acknowledged event
//! is lost and none is invented, and once there is space again persisting goes on in the same
//! process — the backend reopens the fenced store.
//!
//! The disk fills through a lowered soft `RLIMIT_FSIZE`: a write past it fails with `EFBIG`
//! (`SIGXFSZ` is ignored), and raising the soft limit back gives the space back. The limit is
//! per process, so the work runs in a child: this test binary run again through
//! `sh -c 'trap "" XFSZ; exec …'` with `FULL_DISK_DIR` set, so that only [`full_disk_child`]
//! does anything. No root, no mount.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use persevere_core::{Entity, JournalConfig, PersistError};
use persevere_driver::{Backend, Error, Persistent, StoreHealth};
use persevere_file::FileStore;
use persevere_tokio::Tokio;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

const CHILD_ENV: &str = "FULL_DISK_DIR";

#[derive(Default, Debug, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter {
    value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.value += n;
        Ok(())
    }
}

/// Limits the size of every file this process writes to `bytes` (the soft limit only).
fn limit_file_size(bytes: u64) {
    let limit = getrlimit(Resource::Fsize);
    setrlimit(
        Resource::Fsize,
        Rlimit {
            current: Some(bytes),
            maximum: limit.maximum,
        },
    )
    .unwrap();
}

/// Gives the space back: the soft limit up to the hard one.
fn unlimit_file_size() {
    let limit = getrlimit(Resource::Fsize);
    setrlimit(
        Resource::Fsize,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .unwrap();
}

fn largest_file(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

fn config() -> JournalConfig {
    // Snapshots would write more files; this test is about the log.
    JournalConfig::new("counter").snapshot_every(None)
}

/// The child's work; does nothing unless run as the child.
#[test]
fn full_disk_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backend = Backend::new(Tokio::current(), FileStore::create(dir).unwrap());
        let mut counter = Persistent::<Counter>::open(&backend, config(), Counter::default)
            .await
            .unwrap();
        for _ in 0..5 {
            counter.persist(1).await.unwrap();
        }

        // The disk fills a few events from now: persist until a write fails.
        limit_file_size(largest_file(dir) + 512);
        let mut acknowledged = counter.last_seq();
        let error = loop {
            match counter.persist(1).await {
                Ok(range) => {
                    assert_eq!(*range.end(), acknowledged + 1);
                    acknowledged += 1;
                }
                Err(error) => break error,
            }
            assert!(acknowledged < 10_000, "the disk never filled");
        };
        println!("full after {acknowledged} events: {error}");
        assert!(acknowledged > 5, "{error}");
        assert!(
            matches!(
                &error,
                Error::Persist(PersistError::Failed { reason, landed: Some(false) })
                    if reason.contains("File too large")
            ),
            "{error:?}"
        );
        // Still full: every persist fails, nothing is applied.
        for _ in 0..3 {
            assert!(counter.persist(1).await.is_err());
        }
        assert_eq!(
            (counter.state().expect("settled").value, counter.last_seq()),
            (acknowledged, acknowledged)
        );

        // Space again: persisting goes on, without a restart.
        unlimit_file_size();
        let range = counter.persist(1).await.unwrap();
        assert_eq!(range, acknowledged + 1..=acknowledged + 1);
        counter.persist(1).await.unwrap();
        assert_eq!(counter.state().expect("settled").value, acknowledged + 2);
        assert_eq!(backend.health(), StoreHealth::Open);
        for repair in backend.repairs() {
            println!("repair: {repair}");
        }
        drop(counter);
        drop(backend);

        // Nothing acknowledged lost, nothing invented.
        let backend = Backend::new(Tokio::current(), FileStore::open(dir).unwrap());
        let again = Persistent::<Counter>::open(&backend, config(), Counter::default)
            .await
            .unwrap();
        assert_eq!(
            (again.state().expect("settled").value, again.last_seq()),
            (acknowledged + 2, acknowledged + 2)
        );
    });
    println!("child done");
}

#[cfg(unix)]
#[test]
fn a_full_disk_fails_persists_clearly_and_they_go_on_once_there_is_space() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "full_disk_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path().join("store"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("child done"), "{stdout}\n{stderr}");
    println!("{stdout}");
}
