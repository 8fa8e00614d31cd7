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

use persevere_conformance::full_disk::{self, CHILD_ENV};
use persevere_core::{Entity, JournalConfig, PersistError};
use persevere_driver::{Backend, Error, Persistent, StoreHealth};
use persevere_file::FileStore;
use persevere_tokio::Tokio;

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
        full_disk::fill(dir, 512).unwrap();
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
        full_disk::free().unwrap();
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
    println!("{}", full_disk::CHILD_DONE);
}

#[cfg(unix)]
#[test]
fn a_full_disk_fails_persists_clearly_and_they_go_on_once_there_is_space() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stdout = full_disk::run_child("full_disk_child", &dir.path().join("store"))
        .unwrap_or_else(|failure| panic!("{failure}"));
    println!("{stdout}");
}
