//! The durable counter on smol, through the async driver and the file journal.
//!
//! Each run recovers the counter from DATA_DIR (default: `counter-data`), persists ten
//! increments of 1 and prints `counter = N` last: a second run prints ten more than the first.
//! The journal's commands run on the runtime's blocking pool, group-committed.
//!
//! Run with `cargo run --example counter_smol -- [DATA_DIR]`.
//! DATA_DIR may be a SQLite URL instead: `cargo run --example counter_smol -- sqlite://counter.db`.

use persevere_examples::{count_ten, data_dir, ExampleError};
use persevere_smol::Smol;

fn main() -> Result<(), ExampleError> {
    let data_dir = data_dir();
    let value = smol::block_on(count_ten(Smol, &data_dir))?;
    println!("counter = {value}");
    Ok(())
}
