//! The durable counter on tokio, through the async driver and the file journal.
//!
//! Each run recovers the counter from DATA_DIR (default: `counter-data`), persists ten
//! increments of 1 and prints `counter = N` last: a second run prints ten more than the first.
//! The journal's commands run on the runtime's blocking pool, group-committed.
//!
//! Run with `cargo run --example counter_tokio -- [DATA_DIR]`.
//! DATA_DIR may be a SQLite URL instead: `cargo run --example counter_tokio -- sqlite://counter.db`.

use persevere_examples::{count_ten, data_dir, ExampleError};
use persevere_tokio::Tokio;

fn main() -> Result<(), ExampleError> {
    let data_dir = data_dir();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let value = runtime.block_on(count_ten(
        Tokio::from_handle(runtime.handle().clone()),
        &data_dir,
    ))?;
    println!("counter = {value}");
    Ok(())
}
