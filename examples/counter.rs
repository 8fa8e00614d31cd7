//! The main example: a durable counter, driven by the core alone over the file journal.
//!
//! Each run opens the store in DATA_DIR (default: `counter-data` in the current directory;
//! the first run creates it), recovers the counter, persists ten increments of 1 and prints
//! `counter = N`: N counts every increment ever persisted there, so a second run prints ten
//! more than the first.
//!
//! There is no executor here: the journal is a pure state machine and `drive` is its whole
//! run-loop contract — drain its events; execute each command it emits and feed the result
//! back by id; when it has no command, sleep until the deadline `poll_timeout` names and call
//! `handle_timeout` (after a failed write the journal re-reads the log later, on a timer);
//! stop only when it has neither. A store that fenced itself after a failed write is reopened
//! before it is given the next command (the journal's re-read timer paces the attempts). The
//! async adapters do the same on tokio, smol or async-std.
//!
//! A persist that fails (a full disk, say) ends the run with a non-zero exit status and the
//! number of acknowledged increments on stderr: the state is never printed with an increment
//! that was not acknowledged.
//!
//! Run with `cargo run --example counter -- [DATA_DIR]`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use persevere_core::{
    Journal, JournalConfig, JournalEvent, RequestId, StorageError, Store, StreamCommand,
};
use persevere_examples::{data_dir, Counter, ExampleError};
use persevere_file::FileStore;

/// Runs the journal until it has nothing left to do, timers included; returns its events.
pub(crate) fn drive(
    journal: &mut Journal<Counter>,
    store: &mut impl Store,
    state: &mut Counter,
    epoch: Instant,
) -> Result<Vec<JournalEvent>, ExampleError> {
    let stream: Arc<str> = journal.config().stream().into();
    let mut events = Vec::new();
    loop {
        events.extend(std::iter::from_fn(|| journal.poll_event()));
        if let Some(command) = journal.poll_command() {
            let id = command.id();
            let results = match reopened(store) {
                Ok(()) => store.execute(vec![StreamCommand {
                    stream: Arc::clone(&stream),
                    command,
                }]),
                Err(error) => vec![(id, Err(error))],
            };
            for (id, result) in results {
                journal.handle_completion(epoch.elapsed(), id, result, state)?;
            }
            continue;
        }
        let Some(deadline) = journal.poll_timeout() else {
            return Ok(events);
        };
        std::thread::sleep(deadline.saturating_sub(epoch.elapsed()));
        journal.handle_timeout(epoch.elapsed().max(deadline));
    }
}

/// Reopens the store if a failed write fenced it; reports what the reopen repaired.
fn reopened(store: &mut impl Store) -> Result<(), StorageError> {
    let Some(reason) = store.fenced() else {
        return Ok(());
    };
    let known = store.repairs().len();
    store.reopen()?;
    eprintln!("the store reopened after: {reason}");
    report_repairs(&store.repairs()[known.min(store.repairs().len())..]);
    Ok(())
}

fn report_repairs(repairs: &[persevere_core::Repair]) {
    for repair in repairs {
        eprintln!("warning: the store repaired or set aside data: {repair}");
    }
}

/// Persists one increment and waits for its outcome.
pub(crate) fn increment(
    journal: &mut Journal<Counter>,
    store: &mut impl Store,
    state: &mut Counter,
    epoch: Instant,
) -> Result<(), ExampleError> {
    let request: RequestId = journal.handle_persist(1, state)?;
    for event in drive(journal, store, state, epoch)? {
        match event {
            JournalEvent::Persisted { request: r, .. } if r == request => return Ok(()),
            JournalEvent::PersistFailed { request: r, error } if r == request => {
                return Err(error.into())
            }
            _ => {}
        }
    }
    Err("the journal went idle without answering the persist".into())
}

fn run() -> Result<u64, ExampleError> {
    let dir = data_dir();
    if persevere_examples::is_postgres_url(&dir) {
        return run_on(persevere_postgres::PostgresStore::open(&dir)?, &dir);
    }
    run_on(FileStore::open_or_create(&dir)?, &dir)
}

fn run_on(mut store: impl Store, dir: &str) -> Result<u64, ExampleError> {
    let epoch = Instant::now();
    report_repairs(store.repairs());
    let mut state = Counter::default();
    let mut journal = Journal::<Counter>::new(
        JournalConfig::new("counter").snapshot_every(Some(25)),
        Counter::default,
    );
    for event in drive(&mut journal, &mut store, &mut state, epoch)? {
        if let JournalEvent::RecoveryFailed(error) = event {
            return Err(error.into());
        }
    }
    println!("recovered counter = {} from {dir}", state.value);
    for _ in 0..10 {
        if let Err(error) = increment(&mut journal, &mut store, &mut state, epoch) {
            // Only what the journal acknowledged is reported: never the failed increment.
            eprintln!(
                "persist failed; {} increments are durable in {dir}",
                journal.last_seq()
            );
            return Err(error);
        }
    }
    Ok(state.value)
}

fn main() -> ExitCode {
    match run() {
        Ok(value) => {
            println!("counter = {value}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
