//! # persevere-async-std
//!
//! Runs persevere's async driver on [async-std](https://docs.rs/async-std): [`AsyncStd`]
//! supplies spawn, spawn_blocking and a timer, and nothing else.
//!
//! async-std is discontinued upstream (1.13.2 is its last release). It still works and this
//! crate supports it, but new code should prefer `persevere-tokio` or `persevere-smol`.
//!
//! ```
//! use persevere_core::{Entity, JournalConfig};
//! use persevere_driver::{Backend, Persistent};
//! use persevere_memory::Memory;
//! use persevere_async_std::AsyncStd;
//!
//! #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
//! struct Counter { value: u64 }
//!
//! impl Entity for Counter {
//!     type Event = u64;
//!     type Error = String;
//!     fn apply(&mut self, n: &u64) -> Result<(), String> { self.value += n; Ok(()) }
//! }
//!
//! async_std::task::block_on(async {
//!     let backend = Backend::inline(AsyncStd, Memory::new());
//!     let mut counter = Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default).await?;
//!     counter.persist(1).await?;
//!     assert_eq!(counter.state()?.value, 1);
//!     Ok::<(), persevere_driver::Error>(())
//! }).unwrap();
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use persevere_driver::{BlockingWork, Runtime, Task};

/// The async-std [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    fn spawn(&self, task: Task) {
        drop(async_std::task::spawn(task));
    }

    fn spawn_blocking(&self, work: BlockingWork) {
        drop(async_std::task::spawn_blocking(work));
    }

    fn sleep(&self, duration: Duration) -> Task {
        Box::pin(async_std::task::sleep(duration))
    }
}
