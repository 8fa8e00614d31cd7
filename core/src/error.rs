//! The journal's typed failures.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use thiserror::Error;

use crate::codec::CodecError;
use crate::command::CommandId;
use crate::record::{RecordError, RecordKind};
use crate::seal::SealError;

/// Why nothing was written for a persist request. The state is as before; the journal goes on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The batch held no event.
    #[error("empty batch")]
    Empty,
    /// An event or the snapshot could not be encoded.
    #[error("encoding failed: {0}")]
    Encode(CodecError),
    /// `apply` refused an event: the entity's own error, to downcast.
    #[error("apply refused the event: {0}")]
    Refused(Refusal),
    /// The storage refused the write and wrote nothing.
    #[error("storage refused the write: {0}")]
    Storage(String),
    /// The journal is stopped and accepts no more requests.
    #[error("the journal is stopped: {0}")]
    Stopped(StopReason),
    /// The batch does not fit below `u64::MAX`, a seq no journal writes: the stream's last
    /// seq is `last_seq`, and it cannot grow by as many events as the batch holds.
    #[error("no seq left for the batch: the stream's last seq is {last_seq}")]
    SeqExhausted {
        /// The stream's last seq.
        last_seq: u64,
    },
}

/// Why `apply` refused an event: the entity's own [`Entity::Error`](crate::Entity::Error)
/// value, so a caller can match its own error type, and its message.
///
/// Cheap to clone (the value is shared). Two refusals are equal when they hold the same error
/// type with the same message.
///
/// ```
/// use persevere_core::Refusal;
///
/// #[derive(Debug, PartialEq)]
/// struct InsufficientFunds { missing: u64 }
/// impl std::fmt::Display for InsufficientFunds {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "{} missing", self.missing)
///     }
/// }
///
/// let refusal = Refusal::new(InsufficientFunds { missing: 5 });
/// assert_eq!(refusal.downcast_ref(), Some(&InsufficientFunds { missing: 5 }));
/// assert!(refusal.downcast_ref::<String>().is_none());
/// assert_eq!(refusal.to_string(), "5 missing");
/// ```
#[derive(Clone)]
pub struct Refusal {
    error: Arc<dyn Any + Send + Sync>,
    type_id: TypeId,
    type_name: &'static str,
    message: String,
}

impl Refusal {
    /// Wraps an entity's refusal.
    pub fn new<T: fmt::Display + Send + Sync + 'static>(error: T) -> Self {
        Self {
            message: error.to_string(),
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            error: Arc::new(error),
        }
    }

    /// The entity's error, if it is a `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.error.downcast_ref()
    }

    /// Whether the entity's error is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.type_id == TypeId::of::<T>()
    }

    /// The error's message (its `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The name of the error's type, for diagnostics.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field("type", &self.type_name)
            .field("message", &self.message)
            .finish()
    }
}

impl PartialEq for Refusal {
    fn eq(&self, other: &Self) -> bool {
        self.type_id == other.type_id && self.message == other.message
    }
}

impl Eq for Refusal {}

impl std::error::Error for Refusal {}

/// What became of a persist request that did not succeed.
///
/// Each class says what was written, which is always exact. What it says of the state ("as
/// before") relies on rebuilding the state from the log; if that rebuild cannot read the log
/// (a read error after every retry, a record the store reports damaged), the journal reports
/// the class and then stops with [`StopReason::Recovery`] or [`StopReason::Unresolved`]: the
/// state is then not restored and must be discarded — open the journal again.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Nothing was written; the state is as before; the journal goes on.
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// Another writer appended to the stream. Nothing of this request was written: the store
    /// refused the append because the head was not the expected one, or, after an unknown
    /// outcome, the re-read found another writer's events at this request's positions. The state
    /// is as before (rebuilt up to the journal's own last event) and the journal is stopped:
    /// never overwrite another writer.
    #[error("conflict: expected head {expected}, found {actual}; the journal is stopped")]
    Conflict {
        /// The head this journal expected.
        expected: u64,
        /// The head found.
        actual: u64,
    },
    /// The storage failed. `landed` says what the journal learnt by re-reading the log:
    /// `Some(false)` — the log ends where the write would have started and nothing is at its
    /// positions: it did not land, the state is as before, the journal goes on and a retry is
    /// safe; `None` — the outcome could not be learnt (the re-read kept failing, acknowledged
    /// events are missing, or another writer compacted the write's positions away) and the
    /// journal is stopped (open it again to recover the durable truth). A write found to have
    /// landed is reported persisted instead — then, if another writer appended after it, the
    /// journal stops with [`StopReason::Conflict`]; another writer's events found at the write's
    /// positions are a [`Conflict`](Self::Conflict).
    #[error("storage failed ({reason}); landed: {landed:?}")]
    Failed {
        /// What the storage said.
        reason: String,
        /// Whether the write landed, when known.
        landed: Option<bool>,
    },
}

/// Why recovery could not produce a state. Nothing is guessed: the journal stops.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// Reading from storage failed.
    #[error("storage read failed: {0}")]
    Storage(String),
    /// A record's envelope is damaged.
    #[error("{kind:?} record at seq {seq} is corrupt: {source}")]
    Corrupt {
        /// What kind of record was being read.
        kind: RecordKind,
        /// The seq the storage filed it under.
        seq: u64,
        /// The envelope error.
        source: RecordError,
    },
    /// A record is not what the storage filed it as (other kind, other seq, other codec).
    #[error("record filed as {kind:?} seq {seq} does not match its envelope: {detail}")]
    Mismatch {
        /// The kind expected.
        kind: RecordKind,
        /// The seq the storage filed it under.
        seq: u64,
        /// What differs.
        detail: String,
    },
    /// A sealed record could not be opened where it was read (or a plaintext record was found in
    /// an encrypted journal): a missing key, a wrong key, or a record changed, moved, replayed or
    /// swapped in from another stream or store. Never silently skipped, even for a snapshot.
    #[error("{kind:?} record at seq {seq} cannot be opened: {source}")]
    Open {
        /// What kind of record was being read.
        kind: RecordKind,
        /// The seq the storage filed it under.
        seq: u64,
        /// Why it cannot be opened.
        source: SealError,
    },
    /// The recovered head is not the one the application committed to
    /// ([`Journal::expect_head`](crate::Journal::expect_head)): the stream was rolled back,
    /// truncated or forked.
    #[error("recovered head is seq {found_seq}, the committed head is seq {expected_seq} (chain values {})", if *.chain_matches { "match" } else { "differ" })]
    HeadMismatch {
        /// The committed seq.
        expected_seq: u64,
        /// The recovered seq.
        found_seq: u64,
        /// Whether the chain values agree.
        chain_matches: bool,
    },
    /// An event payload could not be decoded or upcast.
    #[error("event {seq} cannot be decoded: {reason}")]
    Decode {
        /// The event's seq.
        seq: u64,
        /// What went wrong.
        reason: String,
    },
    /// `apply` refused a stored event.
    #[error("apply refused stored event {seq}: {reason}")]
    Refused {
        /// The event's seq.
        seq: u64,
        /// The refusal.
        reason: String,
    },
    /// A seq is missing from the log.
    #[error("gap in the log: expected event {expected}, found {found}")]
    Gap {
        /// The seq expected next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// A seq came twice or went backwards.
    #[error("out-of-order event: expected {expected}, found {found}")]
    OutOfOrder {
        /// The seq expected next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The log ends before the head the storage reports: events are missing at the tail.
    #[error("log ends at {last} but the stream head is {head}")]
    MissingTail {
        /// The last event read.
        last: u64,
        /// The stream's head.
        head: u64,
    },
    /// The log holds events beyond the head the storage reports.
    #[error("log holds event {last} beyond the stream head {head}")]
    HeadBehind {
        /// The last event read.
        last: u64,
        /// The stream's head.
        head: u64,
    },
    /// A snapshot covers events the log never had (the log was truncated or rolled back).
    #[error("snapshot at seq {snapshot} is beyond the stream head {head}")]
    SnapshotBeyondHead {
        /// The snapshot's seq.
        snapshot: u64,
        /// The stream's head.
        head: u64,
    },
    /// A snapshot cannot be read and the events it covers were compacted, so there is no way to
    /// rebuild the state without it.
    #[error("snapshot at seq {seq} is unreadable ({reason}) and the events it covers were compacted (the log resumes at {resumes_at})")]
    SnapshotUnrecoverable {
        /// The unreadable snapshot's seq.
        seq: u64,
        /// Why it is unreadable.
        reason: String,
        /// The first event present after the fallback point.
        resumes_at: u64,
    },
}

/// Why a journal stopped for good.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StopReason {
    /// Recovery failed.
    #[error("recovery failed: {0}")]
    Recovery(RecoveryError),
    /// Another writer appended to the stream.
    #[error("another writer appended to the stream (expected head {expected}, found {actual})")]
    Conflict {
        /// The head this journal expected.
        expected: u64,
        /// The head found.
        actual: u64,
    },
    /// A write's outcome could not be learnt after every retry of the re-read.
    #[error("outcome of a failed write unknown after {attempts} re-reads: {last_error}")]
    Unresolved {
        /// How many re-reads were tried.
        attempts: u32,
        /// The last error.
        last_error: String,
    },
}

/// A misuse of the journal's input methods (not a storage or data failure).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandleError {
    /// A completion whose id is not the command in flight.
    #[error("unexpected completion {got}, the command in flight is {expected:?}")]
    UnexpectedCompletion {
        /// The id received.
        got: CommandId,
        /// The id in flight, if any.
        expected: Option<CommandId>,
    },
}
