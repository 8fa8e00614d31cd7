//! Benchmarks of the async driver on every runtime; see `benches/runtimes.rs`.
