//! The counter on tokio, through the async driver: open, persist ten increments, print the
//! counter.
//!
//! Run with `cargo run --example counter_tokio -- [DATA_DIR]`.
//!
//! **In-memory for now**: until the embedded file journal lands, this example stores its
//! events in the in-memory backend, so nothing survives the process and every run prints
//! `counter = 10`. `DATA_DIR` is accepted (and ignored) so the command line will not change
//! once the file journal replaces the memory backend.

use persevere_core::JournalConfig;
use persevere_driver::{Backend, Persistent};
use persevere_examples::Counter;
use persevere_memory::Memory;
use persevere_tokio::Tokio;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if let Some(data_dir) = std::env::args().nth(1) {
            println!("DATA_DIR {data_dir} is not used yet");
        }
        println!(
            "storage: in-memory, nothing is recovered across runs until the file journal lands"
        );
        let backend = Backend::inline(Tokio::current(), Memory::new());
        let mut counter =
            Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default)
                .await?;
        println!("recovered counter = {}", counter.state().value);
        for _ in 0..10 {
            counter.persist(1).await?;
        }
        println!("counter = {}", counter.state().value);
        Ok(())
    })
}
