//! The storage contract: what every backend (memory, file, SQLite, PostgreSQL) executes.
//!
//! A backend implements [`Store`]: it executes a batch of [`Command`]s from many streams and
//! answers each one. The rules every implementation keeps (and the conformance kit checks):
//!
//! - an acknowledged append is durable (fsync, `synchronous=FULL`, commit) and atomic for its
//!   batch of events and optional snapshot: all of it or nothing;
//! - an append whose `expected_last` is not the stream's head fails with
//!   [`StorageError::Conflict`] and writes nothing;
//! - reads return events in seq order from a given seq; the head is the highest seq ever
//!   appended and is not lowered by compaction;
//! - streams never bleed into each other: `a`, `a.b`, `a/b` and `a_b` are four streams;
//! - **group commit**: the writes of one [`Store::execute`] call share one durability step
//!   (one fsync or one transaction); none of them is acknowledged before all are durable;
//! - commands of one stream take effect in batch order.
//!
//! Implementations may block (file IO, SQLite): drivers call them on a blocking pool, never on
//! an async worker thread.

use std::sync::Arc;

use crate::command::{Command, CommandId, Completion, StorageError};
use crate::memory::MemoryStore;

/// A command addressed to one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCommand {
    /// The stream id.
    pub stream: Arc<str>,
    /// The command.
    pub command: Command,
}

/// The answer to one [`StreamCommand`].
pub type CommandResult = (CommandId, Result<Completion, StorageError>);

/// A storage backend. See the [module documentation](self) for the contract.
pub trait Store: Send + 'static {
    /// Executes `batch` and returns one result per command, in the same order.
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult>;
}

impl Store for MemoryStore {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        batch
            .into_iter()
            .map(|StreamCommand { stream, command }| MemoryStore::execute(self, &stream, command))
            .collect()
    }
}
