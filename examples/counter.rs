//! The main example: a counter whose state survives a crash.
//!
//! This version drives the core alone over the synchronous in-memory store: it persists ten
//! increments, simulates a crash, recovers from what was stored and prints the counter. The
//! store lives in memory, so nothing outlives the process.
//!
//! Run with `cargo run --example counter`.

use persevere_core::testkit::Harness;
use persevere_core::{Entity, JournalConfig};

/// The entity: a counter changed only by increments.
#[derive(Debug, Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter {
    value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;

    fn apply(&mut self, increment: &u64) -> Result<(), String> {
        self.value = self
            .value
            .checked_add(*increment)
            .ok_or_else(|| "counter overflow".to_owned())?;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = JournalConfig::new("counter").snapshot_every(Some(4));
    let mut counter = Harness::<Counter>::new(config, Counter::default);
    for _ in 0..10 {
        counter.persist(1)?;
    }
    println!("persisted 10 increments; simulating a crash");
    counter.crash();
    let recovered = counter.restart()?;
    println!("counter = {}", recovered.value);
    Ok(())
}
