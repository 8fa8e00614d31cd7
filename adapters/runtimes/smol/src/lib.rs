//! # persevere-smol
//!
//! Runs persevere's async driver on [smol](https://docs.rs/smol): [`Smol`] supplies spawn
//! (smol's global executor), spawn_blocking (smol's blocking pool) and a timer, and nothing
//! else.
//!
//! ```
//! use persevere_core::{Entity, JournalConfig};
//! use persevere_driver::{Backend, Persistent};
//! use persevere_memory::Memory;
//! use persevere_smol::Smol;
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
//! smol::block_on(async {
//!     let backend = Backend::inline(Smol, Memory::new());
//!     let mut counter = Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default).await?;
//!     counter.persist(1).await?;
//!     assert_eq!(counter.state()?.value, 1);
//!     Ok::<(), persevere_driver::Error>(())
//! }).unwrap();
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use persevere_driver::{BlockingWork, Runtime, Task};

/// The smol [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl Runtime for Smol {
    fn spawn(&self, task: Task) {
        smol::spawn(task).detach();
    }

    fn spawn_blocking(&self, work: BlockingWork) {
        smol::unblock(work).detach();
    }

    fn sleep(&self, duration: Duration) -> Task {
        let timer = smol::Timer::after(duration);
        Box::pin(async move {
            timer.await;
        })
    }
}
