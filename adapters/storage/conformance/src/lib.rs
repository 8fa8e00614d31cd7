//! # persevere-conformance
//!
//! The conformance kit of persevere's storage contract ([`persevere_core::store`]): every rule a
//! [`Store`] must keep, as a list of named cases any backend runs against itself. It covers
//! atomic batch appends with an expected last seq (`Conflict`, nothing written), ordered reads
//! with limits, head semantics (not lowered by compaction), snapshots (latest, before a bound,
//! replacement, retention), deletion, stream isolation (`a`, `a.b`, `a/b`, `a_b`), unknown
//! streams, append-with-snapshot atomicity (and the snapshot only at the batch's last seq),
//! results in batch order, many streams in one batch, many journals appending concurrently,
//! and — for persistent backends — durability across a close and reopen.
//!
//! # Running it against a backend
//!
//! An in-memory backend gives a way to open a fresh, empty store:
//!
//! ```
//! persevere_conformance::run("reference memory store", persevere_core::memory::MemoryStore::new);
//! ```
//!
//! A persistent backend also says how to reopen the same location, which enables the
//! durability cases: `fresh` makes a new location (e.g. a temporary directory, kept alive by
//! the returned value) and `open` opens a store there — the kit drops the store and calls
//! `open` again on the same location to check what survived.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use persevere_core::memory::MemoryStore;
//! # use persevere_core::{CommandResult, Store, StreamCommand};
//! # #[derive(Clone)]
//! # struct Shared(Arc<Mutex<MemoryStore>>);
//! # impl Store for Shared {
//! #     fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
//! #         Store::execute(&mut *self.0.lock().unwrap(), batch)
//! #     }
//! # }
//! // A "location" that outlives the store opened on it.
//! persevere_conformance::run_reopenable(
//!     "shared memory",
//!     || Arc::new(Mutex::new(MemoryStore::new())),
//!     |location| Shared(Arc::clone(location)),
//! );
//! ```
//!
//! [`run`] and [`run_reopenable`] panic with the names of the failed cases; [`check`] and
//! [`check_reopenable`] return a [`Report`] instead.
#![forbid(unsafe_code)]

#[cfg(unix)]
pub mod baseline;
mod case;
mod cases;
pub mod fixtures;
#[cfg(unix)]
pub mod full_disk;
#[cfg(unix)]
pub mod kill;
mod kit;
mod report;

pub use case::Case;
pub use report::{CaseResult, Report, Verdict};

use persevere_core::Store;

use crate::kit::{Opener, Reopenable, Single};

/// Every case of the kit, in the order they run.
pub fn cases() -> &'static [Case] {
    cases::ALL
}

/// Runs every case against stores made by `open` (each call: a new, empty store), skipping the
/// durability cases. Panics with the failed case names if any case fails.
pub fn run<S: Store>(name: &str, open: impl FnMut() -> S) -> Report {
    check(name, open).assert_passed()
}

/// Runs every case, including durability across a close and reopen: `fresh` makes a new,
/// empty location, `open` opens a store on a location (again after the previous store was
/// dropped). Panics with the failed case names if any case fails.
pub fn run_reopenable<L, S: Store>(
    name: &str,
    fresh: impl FnMut() -> L,
    open: impl FnMut(&L) -> S,
) -> Report {
    check_reopenable(name, fresh, open).assert_passed()
}

/// Like [`run`], returning the report without panicking.
pub fn check<S: Store>(name: &str, mut open: impl FnMut() -> S) -> Report {
    let mut opener = Single(move || -> Box<dyn Store> { Box::new(open()) });
    run_all(name, &mut opener)
}

/// Like [`run_reopenable`], returning the report without panicking.
pub fn check_reopenable<L, S: Store>(
    name: &str,
    fresh: impl FnMut() -> L,
    open: impl FnMut(&L) -> S,
) -> Report {
    let mut opener = Reopenable::new(fresh, open);
    run_all(name, &mut opener)
}

fn run_all(name: &str, opener: &mut dyn Opener) -> Report {
    let results = cases()
        .iter()
        .map(|case| CaseResult {
            name: case.name,
            verdict: case.run(opener),
        })
        .collect();
    Report {
        backend: name.to_owned(),
        results,
    }
}
