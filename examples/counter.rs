//! The main example: a durable counter, driven by the core alone over the file journal.
//!
//! Each run opens the store in DATA_DIR (default: `counter-data` in the current directory),
//! recovers the counter, persists ten increments of 1 and prints `counter = N`: N counts every
//! increment ever persisted there, so a second run prints ten more than the first.
//!
//! There is no executor here: the journal is a pure state machine and the loop in `drive` is
//! its whole run-loop contract — execute each command it emits, feed the result back by id,
//! drain its events. The async adapters do the same on tokio, smol or async-std.
//!
//! Run with `cargo run --example counter -- [DATA_DIR]`.

use std::time::Instant;

use persevere_core::{Journal, JournalConfig, JournalEvent, Store, StreamCommand};
use persevere_examples::{data_dir, Counter};
use persevere_file::FileStore;

/// Runs the journal until it has nothing left to do; returns what it reported.
fn drive(
    journal: &mut Journal<Counter>,
    store: &mut FileStore,
    state: &mut Counter,
    epoch: Instant,
) -> Result<Vec<JournalEvent>, Box<dyn std::error::Error>> {
    let stream: std::sync::Arc<str> = journal.config().stream().into();
    let mut events = Vec::new();
    loop {
        events.extend(std::iter::from_fn(|| journal.poll_event()));
        let Some(command) = journal.poll_command() else {
            return Ok(events);
        };
        let batch = vec![StreamCommand {
            stream: stream.clone(),
            command,
        }];
        for (id, result) in store.execute(batch) {
            journal.handle_completion(epoch.elapsed(), id, result, state)?;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = data_dir();
    let epoch = Instant::now();
    let mut store = FileStore::open(&dir)?;
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
        let request = journal.handle_persist(1, &mut state)?;
        for event in drive(&mut journal, &mut store, &mut state, epoch)? {
            match event {
                JournalEvent::PersistFailed { request: r, error } if r == request => {
                    return Err(error.into())
                }
                _ => {}
            }
        }
    }
    println!("counter = {}", state.value);
    Ok(())
}
