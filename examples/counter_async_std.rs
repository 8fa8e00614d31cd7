//! The durable counter on async-std (discontinued upstream at 1.13.2, still supported), through the async driver and the file journal.
//!
//! Each run recovers the counter from DATA_DIR (default: `counter-data`), persists ten
//! increments of 1 and prints `counter = N` last: a second run prints ten more than the first.
//! The journal's commands run on the runtime's blocking pool, group-committed.
//!
//! Run with `cargo run --example counter_async_std -- [DATA_DIR]`.
//! DATA_DIR may be a SQLite URL instead: `cargo run --example counter_async_std -- sqlite://counter.db`.

use persevere_async_std::AsyncStd;
use persevere_examples::{count_ten, data_dir, ExampleError};

fn main() -> Result<(), ExampleError> {
    let data_dir = data_dir();
    let value = async_std::task::block_on(count_ten(AsyncStd, &data_dir))?;
    println!("counter = {value}");
    Ok(())
}
