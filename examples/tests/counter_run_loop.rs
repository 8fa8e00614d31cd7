//! The main example's run loop, on a store that fails a write and then cannot be reopened at
//! once: the journal re-reads on a timer, so the loop must sleep and call `handle_timeout`
//! until the outcome is known — the failed increment is then reported as not landed, and the
//! next one goes on.
#![allow(clippy::unwrap_used, dead_code)]

#[path = "../counter.rs"]
mod counter;

use std::time::{Duration, Instant};

use persevere_core::memory::MemoryStore;
use persevere_core::{
    Command, CommandResult, Journal, JournalConfig, StorageError, Store, StreamCommand,
};
use persevere_examples::Counter;

/// A memory store whose next append fails and fences it, and whose first reopens fail.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    fail_next_append: bool,
    failing_reopens: u32,
    fenced: Option<String>,
}

impl Store for Flaky {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        let append = batch
            .iter()
            .any(|c| matches!(c.command, Command::Append { .. }));
        if self.fenced.is_none() && !(append && self.fail_next_append) {
            return Store::execute(&mut self.inner, batch);
        }
        self.fail_next_append = false;
        let reason = self
            .fenced
            .get_or_insert_with(|| "disk full".into())
            .clone();
        batch
            .iter()
            .map(|c| (c.command.id(), Err(StorageError::Failed(reason.clone()))))
            .collect()
    }

    fn fenced(&self) -> Option<String> {
        self.fenced.clone()
    }

    fn reopen(&mut self) -> Result<(), StorageError> {
        if self.failing_reopens > 0 {
            self.failing_reopens -= 1;
            return Err(StorageError::Failed("still unreachable".into()));
        }
        self.fenced = None;
        Ok(())
    }
}

#[test]
fn the_run_loop_waits_out_the_re_read_timer_and_reports_the_outcome() {
    let epoch = Instant::now();
    let mut store = Flaky::default();
    let mut state = Counter::default();
    let mut journal = Journal::<Counter>::new(
        JournalConfig::new("counter").reread(5, Duration::from_millis(1)),
        Counter::default,
    );
    counter::drive(&mut journal, &mut store, &mut state, epoch).unwrap();
    counter::increment(&mut journal, &mut store, &mut state, epoch).unwrap();

    store.fail_next_append = true;
    store.failing_reopens = 2;
    let error = counter::increment(&mut journal, &mut store, &mut state, epoch).unwrap_err();
    assert!(error.to_string().contains("landed: Some(false)"), "{error}");
    assert_eq!((state.value, journal.last_seq()), (1, 1));

    counter::increment(&mut journal, &mut store, &mut state, epoch).unwrap();
    assert_eq!((state.value, journal.last_seq()), (2, 2));
}
