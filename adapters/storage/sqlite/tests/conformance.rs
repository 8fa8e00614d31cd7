//! The SQLite store against the storage contract's conformance kit, including durability
//! across a close and reopen of the same database.

use persevere_sqlite::{Durability, SqliteOptions, SqliteStore};

#[test]
fn sqlite_store_passes_the_conformance_kit() {
    let report = persevere_conformance::run_reopenable(
        "sqlite",
        || tempfile::tempdir().expect("a temporary directory"),
        |dir| SqliteStore::open_or_create(dir.path().join("store.db")).expect("the store opens"),
    );
    assert!(
        report.results.len() >= 35,
        "{} cases ran",
        report.results.len()
    );
}

#[test]
fn sqlite_store_with_relaxed_durability_passes_the_conformance_kit() {
    persevere_conformance::run_reopenable(
        "sqlite, synchronous=NORMAL",
        || tempfile::tempdir().expect("a temporary directory"),
        |dir| {
            let mut options = SqliteOptions::default();
            options.durability = Durability::ProcessCrashOnly;
            SqliteStore::open_with(dir.path().join("store.db"), options).expect("the store opens")
        },
    );
}

#[test]
fn sqlite_store_checkpointing_at_every_page_passes_the_conformance_kit() {
    persevere_conformance::run_reopenable(
        "sqlite, a checkpoint at every page",
        || tempfile::tempdir().expect("a temporary directory"),
        |dir| {
            let mut options = SqliteOptions::default();
            options.checkpoint_pages = 1;
            SqliteStore::open_with(dir.path().join("store.db"), options).expect("the store opens")
        },
    );
}
