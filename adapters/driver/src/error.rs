//! The one error type of the driver's API.

use persevere_core::{HandleError, PersistError, RecoveryError, StopReason};
use thiserror::Error;

/// Why a call on a [`Persistent`](crate::Persistent) entity failed. The variants carry the
/// core's typed failures unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A persist request failed: rejected (nothing written, go on), conflict (another writer,
    /// the journal stopped) or failed (see `landed`).
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// Recovery could not produce a state; the journal is stopped.
    #[error("recovery failed: {0}")]
    Recovery(#[from] RecoveryError),
    /// A snapshot could not be written; the state and the log are unaffected.
    #[error("snapshot at seq {seq} failed: {reason}")]
    Snapshot {
        /// The seq it would have covered.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The journal stopped for good before answering the request.
    #[error("the journal stopped: {0}")]
    Stopped(StopReason),
    /// The driver fed the journal a completion it did not expect (a bug in the driver or the
    /// store, e.g. a store answering with the wrong completion kind).
    #[error("driver error: {0}")]
    Driver(#[from] HandleError),
    /// The operating system could not seed the nonce generator of an encrypted journal.
    #[error("no randomness from the operating system: {0}")]
    Entropy(String),
    /// The journal stopped on a storage failure was recovered before this request, and the log
    /// holds events past the ones the caller was told are durable (a write whose outcome was
    /// unknown had landed). The state now includes them; this request was not made, so that
    /// a retry made without looking cannot apply the same change twice. Look, then go on.
    #[error("recovered after a storage failure: events {} to {last_seq} had landed although their outcome was reported unknown; the state includes them and this request was not made", acknowledged + 1)]
    Landed {
        /// The last seq the caller had been told is durable.
        acknowledged: u64,
        /// The last durable seq, now in the state.
        last_seq: u64,
    },
    /// The journal went idle without answering the request (a bug in the driver or the core).
    #[error("the journal went idle without answering the request")]
    Unanswered,
    /// The stream already has a live writer in this process (on this backend): two writers of
    /// one stream are never open at once. Close the other, or take it over
    /// ([`Claim::TakeOver`](crate::Claim::TakeOver)) for a supervised restart.
    #[error("stream {stream} already has a live writer in this process")]
    Owned {
        /// The stream.
        stream: String,
    },
    /// A newer writer took the stream over ([`Claim::TakeOver`](crate::Claim::TakeOver)): this
    /// one writes nothing more. A request it had already accepted and not yet sent to the store
    /// fails with [`PersistError::Rejected`] giving this reason; nothing of it is written.
    #[error("stream {stream} was taken over by a newer writer; this one writes nothing more")]
    Superseded {
        /// The stream.
        stream: String,
    },
    /// The state was asked for while a request of this entity was still unsettled (its future
    /// was dropped — a `timeout`, a `select!` — after its command was sent): the state may hold
    /// events that are not acknowledged, so it is not shown. Settle first
    /// ([`Persistent::settle`](crate::Persistent::settle) or any request), then read it.
    #[error("stream {stream}: a request is still unsettled (its call was dropped mid-flight); settle before reading the state")]
    Unsettled {
        /// The stream.
        stream: String,
    },
    /// The state was asked for after the journal stopped on a failure that leaves it unknown:
    /// a write whose outcome stayed unknown after every re-read (the state may hold its events
    /// although they are not acknowledged), or a recovery that failed part-way (the state may
    /// miss acknowledged events). It is not shown. Once the store can be read again,
    /// [`Persistent::resume`](crate::Persistent::resume) (or the next request) recovers it from
    /// the log; a recovery that failed on the log's content needs the store repaired first.
    #[error("stream {stream}: the journal stopped ({reason}), so its state may not be the acknowledged one and is not shown; resume it once the store can be read")]
    StateUnknown {
        /// The stream.
        stream: String,
        /// Why the journal stopped.
        reason: StopReason,
    },
    /// The entity's task behind a [`PersistentHandle`](crate::PersistentHandle) is gone (its
    /// runtime shut down, or it ended on a panic): the request was not answered, and may or
    /// may not have been persisted. Open the entity again to learn its durable state.
    #[error("stream {stream}: the entity's task is gone; the request's outcome is unknown, open the entity again")]
    Closed {
        /// The stream.
        stream: String,
    },
}
