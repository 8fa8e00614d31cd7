//! A durable persist whose fdatasync fails is never acknowledged on the strength of bytes that
//! sit in the page cache only. The backend reopens the fenced file store, which cuts the write
//! whose sync failed; the journal's re-read then finds it not written, so the persist fails
//! and the state is as before — where, without the cut, the re-read took the unsynced event for
//! a write that landed and acknowledged what a power loss then took away.

use std::time::Duration;

use futures::executor::block_on;
use persevere_core::JournalConfig;
use persevere_driver::{Backend, BlockingWork, Error, Persistent, Runtime, Task};
use persevere_file::sim::SimDisk;
use persevere_file::{FileOptions, FileStore};
use persevere_tests::{Entry, Ledger};

struct Threads;

impl Runtime for Threads {
    fn spawn(&self, task: Task) {
        std::thread::spawn(move || block_on(task));
    }
    fn spawn_blocking(&self, work: BlockingWork) {
        std::thread::spawn(work);
    }
    fn sleep(&self, duration: Duration) -> Task {
        Box::pin(async move { std::thread::sleep(duration) })
    }
}

fn open(disk: &SimDisk) -> Persistent<Ledger> {
    let store = FileStore::open_sim(disk.clone(), FileOptions::default()).expect("the disk opens");
    let backend = Backend::inline(Threads, store);
    block_on(Persistent::open(
        &backend,
        JournalConfig::new("ledger"),
        Ledger::default,
    ))
    .expect("the stream opens")
}

#[test]
fn a_persist_whose_sync_failed_is_not_acknowledged_and_the_store_goes_on() {
    let disk = SimDisk::new();
    let mut ledger = open(&disk);
    for id in 1..=5 {
        block_on(ledger.persist(Entry::Add(id))).expect("persisted");
    }
    // The append's write goes through; its sync, the next file operation, fails.
    disk.fail_at(disk.ops() + 2);
    let failed = block_on(ledger.persist(Entry::Add(6)));
    assert!(
        matches!(failed, Err(Error::Persist(_))),
        "a write whose sync failed was reported {failed:?}"
    );
    assert_eq!(ledger.state().expect("settled").ids, [1, 2, 3, 4, 5]);
    // The store reopened (and reported the cut); the log goes on from the durable head.
    assert_eq!(
        block_on(ledger.persist(Entry::Add(7))).expect("persisted"),
        6..=6
    );
    let repairs = ledger.repairs();
    assert!(
        repairs.iter().any(|r| r.what.contains("fdatasync failed")),
        "{repairs:?}"
    );
    // What a power loss now leaves holds every acknowledged event, and nothing else.
    disk.crash_at(disk.ops() + 1);
    let _ = block_on(ledger.persist(Entry::Add(8)));
    drop(ledger);
    let durable = disk.images().into_iter().next().expect("the durable image");
    let recovered = open(&SimDisk::from_image(&durable));
    assert_eq!(recovered.state().expect("settled").ids, [1, 2, 3, 4, 5, 7]);
}
