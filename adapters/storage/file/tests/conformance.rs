//! The file journal against the storage contract's conformance kit, including durability
//! across a close and reopen of the same directory.

use persevere_file::FileStore;

#[test]
fn file_store_passes_the_conformance_kit() {
    let report = persevere_conformance::run_reopenable(
        "file",
        || tempfile::tempdir().expect("a temporary directory"),
        |dir| FileStore::open_or_create(dir.path()).expect("the store opens"),
    );
    assert!(
        report.results.len() >= 35,
        "{} cases ran",
        report.results.len()
    );
}
