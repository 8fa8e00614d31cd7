//! # persevere-tokio
//!
//! Runs persevere's async driver on [tokio](https://tokio.rs): [`Tokio`] supplies spawn,
//! spawn_blocking and a timer, and nothing else. The runtime needs its time driver
//! (`enable_time` or `enable_all`).
//!
//! ```
//! use persevere_core::{Entity, JournalConfig};
//! use persevere_driver::{Backend, Persistent};
//! use persevere_memory::Memory;
//! use persevere_tokio::Tokio;
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
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! runtime.block_on(async {
//!     let backend = Backend::inline(Tokio::current(), Memory::new());
//!     let mut counter = Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default).await?;
//!     counter.persist(1).await?;
//!     assert_eq!(counter.state().value, 1);
//!     Ok::<(), persevere_driver::Error>(())
//! }).unwrap();
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use persevere_driver::{BlockingWork, Runtime, Task};
use tokio::runtime::Handle;

/// The tokio [`Runtime`]: tasks, blocking work and timers on one tokio runtime.
#[derive(Debug, Clone)]
pub struct Tokio {
    handle: Handle,
}

impl Tokio {
    /// The runtime the calling code runs in. Panics outside a tokio runtime.
    pub fn current() -> Self {
        Self::from_handle(Handle::current())
    }

    /// The runtime behind `handle`.
    pub fn from_handle(handle: Handle) -> Self {
        Self { handle }
    }
}

impl Runtime for Tokio {
    fn spawn(&self, task: Task) {
        drop(self.handle.spawn(task));
    }

    fn spawn_blocking(&self, work: BlockingWork) {
        drop(self.handle.spawn_blocking(work));
    }

    fn sleep(&self, duration: Duration) -> Task {
        let _entered = self.handle.enter();
        Box::pin(tokio::time::sleep(duration))
    }
}
