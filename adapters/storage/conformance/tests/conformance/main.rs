//! The kit against the in-memory backends, and against deliberately broken variants of the
//! memory store: every case must catch at least one of them.

mod broken;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use persevere_conformance::{cases, check, check_reopenable, Verdict};
use persevere_core::memory::MemoryStore;
use persevere_core::{CommandResult, Store, StreamCommand};
use persevere_memory::Memory;

use broken::{Broken, Flaw};

/// A memory store behind a location that outlives it, so it can be "reopened".
#[derive(Clone, Default)]
struct Reopened(Arc<Mutex<MemoryStore>>);

impl Store for Reopened {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        let mut store = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Store::execute(&mut *store, batch)
    }
}

#[test]
fn conformance_reference_memory_store() {
    let report = persevere_conformance::run("core MemoryStore", MemoryStore::new);
    assert!(report.passed() >= 35, "{report}");
}

#[test]
fn conformance_memory_backend() {
    persevere_conformance::run("persevere-memory", Memory::new);
}

#[test]
fn conformance_memory_backend_reopened() {
    let report = persevere_conformance::run_reopenable(
        "persevere-memory, reopened",
        Memory::new,
        Memory::clone,
    );
    assert!(
        report.results.iter().all(|r| r.verdict == Verdict::Passed),
        "{report}"
    );
}

#[test]
fn conformance_has_at_least_35_cases() {
    assert!(cases().len() >= 35, "{} cases", cases().len());
    let names: BTreeSet<_> = cases().iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases().len(), "case names are unique");
}

#[test]
fn conformance_kit_catches_every_broken_variant() {
    let mut caught: BTreeSet<&str> = BTreeSet::new();
    let mut silent = Vec::new();
    for flaw in Flaw::ALL {
        let report = check_reopenable(&format!("{flaw:?}"), Reopened::default, |location| {
            Broken::new(*flaw, location.clone())
        });
        let failed = report.failed();
        if failed.is_empty() {
            silent.push(*flaw);
        }
        caught.extend(failed);
    }
    assert!(
        silent.is_empty(),
        "variants the kit does not catch: {silent:?}"
    );
    let missed: Vec<_> = cases()
        .iter()
        .map(|c| c.name)
        .filter(|name| !caught.contains(name))
        .collect();
    assert!(
        missed.is_empty(),
        "cases that no broken variant fails (they do not bite): {missed:?}"
    );
}

#[test]
fn conformance_report_names_the_failed_cases() {
    let report = check("ignores expected last", || {
        Broken::new(Flaw::IgnoresExpectedLast, Reopened::default())
    });
    assert!(report.failed().contains(&"stale_expected_last_conflicts"));
    let text = report.to_string();
    assert!(
        text.contains("FAILED stale_expected_last_conflicts"),
        "{text}"
    );
}

#[test]
fn conformance_catches_a_store_filing_an_append_snapshot_under_another_seq() {
    let report = check("accepts a misplaced snapshot", || {
        Broken::new(Flaw::AcceptsMisplacedSnapshot, Reopened::default())
    });
    assert_eq!(
        report.failed(),
        vec!["append_with_a_snapshot_not_at_its_last_seq_writes_nothing"],
        "{report}"
    );
}
