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

/// Something a store repaired or set aside when it opened (or reopened): bytes it decided not
/// to use, such as the torn tail of an interrupted write. Drivers report every repair to the
/// application (an API and a warning naming the streams); nothing is destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Repair {
    /// What was repaired and why, in an operator's words, naming the file.
    pub what: String,
    /// Where the set-aside bytes are kept (a quarantine file), if anywhere.
    pub kept_at: Option<String>,
    /// The streams whose data was involved, as far as the store can tell (empty: none known).
    pub streams: Vec<Arc<str>>,
}

impl Repair {
    /// A repair report.
    ///
    /// ```
    /// let repair = persevere_core::Repair::new("cut a torn tail", None, vec!["a".into()]);
    /// assert_eq!(repair.streams.len(), 1);
    /// ```
    pub fn new(what: impl Into<String>, kept_at: Option<String>, streams: Vec<Arc<str>>) -> Self {
        Self {
            what: what.into(),
            kept_at,
            streams,
        }
    }
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        if let Some(at) = &self.kept_at {
            write!(f, " (kept at {at})")?;
        }
        if !self.streams.is_empty() {
            write!(f, "; streams involved: {:?}", self.streams)?;
        }
        Ok(())
    }
}

/// A storage backend. See the [module documentation](self) for the contract.
pub trait Store: Send + 'static {
    /// Executes `batch` and returns one result per command, in the same order.
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult>;

    /// Executes one command on `stream`: the same as a batch of one, for a driver that runs a
    /// cheap store inline, one command at a time. The default calls [`execute`](Self::execute);
    /// a store may override it to spare the batch and result vectors and the stream's
    /// reference count (the answer must be the same).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use persevere_core::memory::MemoryStore;
    /// use persevere_core::{Command, CommandId, Completion, Store};
    /// let mut store = MemoryStore::new();
    /// let read = Command::ReadEvents { id: CommandId(1), from: 1, limit: 10 };
    /// let stream: Arc<str> = "a".into();
    /// let (id, result) = Store::execute_one(&mut store, &stream, read);
    /// assert_eq!((id, result), (CommandId(1), Ok(Completion::Events { records: vec![], head: 0 })));
    /// ```
    fn execute_one(&mut self, stream: &Arc<str>, command: Command) -> CommandResult {
        let id = command.id();
        let command = StreamCommand {
            stream: Arc::clone(stream),
            command,
        };
        self.execute(vec![command]).pop().unwrap_or_else(|| {
            (
                id,
                Err(StorageError::Failed(format!(
                    "the store returned no result for {id}"
                ))),
            )
        })
    }

    /// What the store repaired or set aside when it was opened, and at every reopen since.
    /// None by default.
    fn repairs(&self) -> &[Repair] {
        &[]
    }

    /// Why the store refuses every command, if it does: a failed log write or sync fenced it,
    /// and only [`reopen`](Self::reopen) can tell what is durable. `None` by default.
    fn fenced(&self) -> Option<String> {
        None
    }

    /// Leaves the fenced state by reopening the store's files (re-reading what is durable,
    /// keeping its exclusive hold on them). Drivers call it, with backoff, while
    /// [`fenced`](Self::fenced) says so. By default a store cannot reopen.
    fn reopen(&mut self) -> Result<(), StorageError> {
        Err(StorageError::Failed(
            "this store cannot reopen itself".into(),
        ))
    }
}

impl Store for MemoryStore {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        batch
            .into_iter()
            .map(|StreamCommand { stream, command }| MemoryStore::execute(self, &stream, command))
            .collect()
    }

    fn execute_one(&mut self, stream: &Arc<str>, command: Command) -> CommandResult {
        MemoryStore::execute(self, stream, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::StoredRecord;

    fn append(id: u64, expected_last: u64, byte: u8) -> Command {
        Command::Append {
            id: CommandId(id),
            expected_last,
            events: StoredRecord::new(expected_last + 1, vec![byte]).into(),
            snapshot: None,
        }
    }

    /// `execute_one` on a borrowed stream answers exactly as a batch of one, and writes to the
    /// stream it is given, never to another.
    #[test]
    fn execute_one_is_a_batch_of_one_on_its_own_stream() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "a/b".into());
        let mut one = MemoryStore::new();
        let mut batched = MemoryStore::new();
        for (id, stream, expected_last, byte) in [(1, &a, 0, 1), (2, &b, 0, 2), (3, &a, 1, 3)] {
            let single = Store::execute_one(&mut one, stream, append(id, expected_last, byte));
            let batch = Store::execute(
                &mut batched,
                vec![StreamCommand {
                    stream: Arc::clone(stream),
                    command: append(id, expected_last, byte),
                }],
            );
            assert_eq!(vec![single], batch);
        }
        // A conflict is answered the same way, and writes nothing.
        let single = Store::execute_one(&mut one, &b, append(4, 0, 9));
        assert_eq!(
            single,
            (
                CommandId(4),
                Err(StorageError::Conflict {
                    expected: 0,
                    actual: 1
                })
            )
        );
        assert_eq!(one, batched);
        let bytes = |store: &MemoryStore, stream: &str| {
            store.stream(stream).map(|s| {
                s.events
                    .values()
                    .map(|bytes| bytes.as_slice().to_vec())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(bytes(&one, "a"), Some(vec![vec![1], vec![3]]));
        assert_eq!(bytes(&one, "a/b"), Some(vec![vec![2]]));
    }
}
