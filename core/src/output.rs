//! What the journal reports: its phase and the events drained with `poll_event`.

use std::fmt;

use crate::error::{PersistError, RecoveryError, StopReason};

/// Identifies a persist or snapshot request, in the order they were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request {}", self.0)
    }
}

/// The journal's phase, derived from what it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Loading the snapshot and replaying events (at start).
    Recovering,
    /// Idle: requests are handled at once.
    Ready,
    /// A write (append, snapshot, compaction, retention) is in flight.
    Persisting,
    /// A write failed or was undone: the journal is rebuilding the state from the durable log
    /// (or waiting to retry that) before it reuses any sequence number.
    Fenced,
    /// Stopped for good; see [`JournalEvent::Stopped`].
    Stopped,
}

/// Something that happened, drained with [`Journal::poll_event`](crate::Journal::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalEvent {
    /// Recovery finished: the state is the newest snapshot plus the replayed events.
    Recovered {
        /// The last durable seq (0 for a new stream).
        last_seq: u64,
        /// The seq of the snapshot the state started from, if any.
        snapshot_seq: Option<u64>,
        /// How many events were replayed.
        replayed: u64,
    },
    /// A newer snapshot could not be read and recovery fell back to an older one (or to the
    /// start of the log). The state is complete; the snapshot is reported for repair.
    SnapshotSkipped {
        /// The unreadable snapshot's seq.
        seq: u64,
        /// Why it is unreadable.
        reason: String,
    },
    /// The events of a request are durable and applied.
    Persisted {
        /// The request.
        request: RequestId,
        /// The first seq written.
        first_seq: u64,
        /// The last seq written.
        last_seq: u64,
    },
    /// A request failed; the error says what was written and what state remains.
    PersistFailed {
        /// The request.
        request: RequestId,
        /// What happened.
        error: PersistError,
    },
    /// A snapshot is durable.
    SnapshotSaved {
        /// The on-demand request it answers, if any.
        request: Option<RequestId>,
        /// The last event it covers.
        seq: u64,
    },
    /// A snapshot could not be written; the state and the log are unaffected.
    SnapshotFailed {
        /// The on-demand request it answers, if any.
        request: Option<RequestId>,
        /// The seq it would have covered.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// Events up to `up_to` were deleted (they are covered by a durable snapshot).
    Compacted {
        /// The last seq deleted.
        up_to: u64,
    },
    /// Snapshots beyond the newest `kept` were deleted.
    SnapshotsPruned {
        /// How many are kept.
        kept: usize,
    },
    /// A housekeeping write (compaction or retention) failed; nothing is lost, it is retried
    /// after the next snapshot.
    HousekeepingFailed {
        /// Why.
        reason: String,
    },
    /// The journal is fenced: it rebuilds the state from the durable log before going on.
    Fenced {
        /// Why.
        reason: String,
    },
    /// Recovery failed; the journal is stopped.
    RecoveryFailed(RecoveryError),
    /// The journal stopped for good.
    Stopped(StopReason),
}
