//! Storage commands the journal emits, and the completions it expects back.

use std::fmt;

use thiserror::Error;

use crate::{Batch, SharedBytes};

/// Correlates a [`Command`] with its completion. Ids increase by one per command of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandId(pub u64);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One encoded record and its sequence number, as stored and as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The sequence number (for a snapshot: the last event it covers).
    pub seq: u64,
    /// The complete envelope ([`crate::record`]), in a shared buffer: cloning a record or
    /// handing it out of a store copies no bytes (but those of a record small enough to be
    /// held in the handle, [`SharedBytes::INLINE`]).
    pub bytes: SharedBytes,
}

impl StoredRecord {
    /// A record of `bytes` (a `Vec<u8>` is taken without a copy) at `seq`.
    ///
    /// ```
    /// use persevere_core::StoredRecord;
    /// let record = StoredRecord::new(1, b"envelope".to_vec());
    /// assert_eq!(record.bytes, b"envelope"[..]);
    /// ```
    pub fn new(seq: u64, bytes: impl Into<SharedBytes>) -> Self {
        Self {
            seq,
            bytes: bytes.into(),
        }
    }
}

/// A storage operation on the journal's stream, to be executed by the driver.
///
/// Every command carries an id; execute it and feed the result back with
/// [`Journal::handle_completion`](crate::Journal::handle_completion) under the same id. The
/// expected [`Completion`] is given for each variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Load the newest snapshot whose seq is below `before` (any snapshot when `None`).
    /// Completes with [`Completion::Snapshot`].
    LoadSnapshot {
        /// The correlation id.
        id: CommandId,
        /// Exclusive upper bound on the snapshot's seq.
        before: Option<u64>,
    },
    /// Read up to `limit` events with seq `>= from`, in seq order.
    /// Completes with [`Completion::Events`].
    ReadEvents {
        /// The correlation id.
        id: CommandId,
        /// The first seq wanted.
        from: u64,
        /// The most events to return.
        limit: usize,
    },
    /// Atomically append `events` (and `snapshot`, if any) — all of it or nothing — if and only if
    /// the stream's head is `expected_last`; otherwise fail with [`StorageError::Conflict`].
    /// Acknowledge only once durable. Completes with [`Completion::Done`].
    Append {
        /// The correlation id.
        id: CommandId,
        /// The head the stream must have (0 for an empty stream).
        expected_last: u64,
        /// Events with contiguous seqs `expected_last + 1 ..` (one event is held without a
        /// heap allocation of its own).
        events: Batch<StoredRecord>,
        /// A snapshot at the last event's seq, written in the same atomic step (Light strategy).
        snapshot: Option<StoredRecord>,
    },
    /// Durably store a snapshot (replacing one with the same seq). Completes with
    /// [`Completion::Done`].
    SaveSnapshot {
        /// The correlation id.
        id: CommandId,
        /// The snapshot record.
        snapshot: StoredRecord,
    },
    /// Delete events with seq `<= up_to`; the stream's head does not move. Completes with
    /// [`Completion::Done`].
    DeleteEvents {
        /// The correlation id.
        id: CommandId,
        /// The last seq to delete.
        up_to: u64,
    },
    /// Delete all snapshots but the newest `keep`. Completes with [`Completion::Done`].
    DeleteSnapshots {
        /// The correlation id.
        id: CommandId,
        /// How many of the newest snapshots to keep (at least one).
        keep: usize,
    },
}

impl Command {
    /// The command's correlation id.
    pub fn id(&self) -> CommandId {
        match self {
            Command::LoadSnapshot { id, .. }
            | Command::ReadEvents { id, .. }
            | Command::Append { id, .. }
            | Command::SaveSnapshot { id, .. }
            | Command::DeleteEvents { id, .. }
            | Command::DeleteSnapshots { id, .. } => *id,
        }
    }

    /// Whether the command changes the store.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Command::LoadSnapshot { .. } | Command::ReadEvents { .. }
        )
    }
}

/// The successful result of a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Completion {
    /// The answer to [`Command::LoadSnapshot`].
    Snapshot(Option<StoredRecord>),
    /// The answer to [`Command::ReadEvents`].
    Events {
        /// The events, in seq order.
        records: Vec<StoredRecord>,
        /// The highest seq ever appended to the stream (0 if none); compaction does not lower it.
        head: u64,
    },
    /// The answer to every write command.
    Done,
}

impl Completion {
    /// The variant's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Completion::Snapshot(_) => "Snapshot",
            Completion::Events { .. } => "Events",
            Completion::Done => "Done",
        }
    }
}

/// A failed [`Command`], classified by what is known about its effect.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Nothing was written.
    #[error("storage rejected the command, nothing was written: {0}")]
    Rejected(String),
    /// The stream's head is not the expected one: another writer exists. Nothing was written.
    #[error("conflict: expected head {expected}, the stream's head is {actual}")]
    Conflict {
        /// The head the command expected.
        expected: u64,
        /// The head found.
        actual: u64,
    },
    /// The outcome is unknown: the write may or may not have landed.
    #[error("storage failed, outcome unknown: {0}")]
    Failed(String),
    /// A read found the record at `seq` but cannot return it: its bytes are damaged or its file
    /// is missing. Nothing was written, and the store stays usable. For
    /// [`Command::LoadSnapshot`] the journal falls back to an older snapshot (or a full replay)
    /// when the events it covers are still in the log; for events it is a recovery error.
    #[error("the record at seq {seq} is damaged: {reason}")]
    Damaged {
        /// The seq of the damaged record (for a snapshot: the last event it covers).
        seq: u64,
        /// What is wrong, naming the file where there is one.
        reason: String,
    },
}
