//! # persevere-memory
//!
//! An in-memory storage backend for persevere: [`Memory`] implements the core's
//! [`Store`](persevere_core::Store) contract over the reference
//! [`MemoryStore`](persevere_core::memory::MemoryStore), can be shared by many journals (it is
//! a cheap, cloneable handle), and injects [`Fault`]s for tests: rejected, failed (landed or
//! not) and conflicting writes, failed reads, and a per-batch latency that stands in for an
//! fsync.
//!
//! Nothing outlives the process: use it for tests, caches and examples, not for data that must
//! survive a restart.
//!
//! ```
//! use persevere_core::{Command, CommandId, Completion, StorageError, Store, StoredRecord, StreamCommand};
//! use persevere_memory::{Fault, Memory};
//!
//! let memory = Memory::new();
//! let append = |id| StreamCommand {
//!     stream: "counter".into(),
//!     command: Command::Append {
//!         id: CommandId(id),
//!         expected_last: 0,
//!         events: StoredRecord::new(1, vec![1]).into(),
//!         snapshot: None,
//!     },
//! };
//! memory.inject(Fault::FailBeforeWrite);
//! let mut store = memory.clone();
//! let results = store.execute(vec![append(1)]);
//! assert!(matches!(results[0].1, Err(StorageError::Failed(_))));
//! let results = store.execute(vec![append(2)]);
//! assert_eq!(results[0].1, Ok(Completion::Done));
//! assert_eq!(memory.head("counter"), 1);
//! ```
#![forbid(unsafe_code)]

mod fault;
mod memory;

pub use fault::Fault;
pub use memory::Memory;
