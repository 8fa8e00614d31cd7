//! # persevere-core
//!
//! The sans-IO heart of persevere: durable, event-sourced state for one entity as a pure,
//! synchronous state machine. A [`Journal`] decides *what* must be read and written — persist,
//! rollback, snapshot-every-N, compaction, retention, recovery — and emits it as [`Command`]s;
//! a driver decides *how* (which executor, which storage) and feeds the results back. The core
//! has no async, no IO, no clock and no OS randomness: time comes in as an argument.
//!
//! # The run loop
//!
//! Inputs are `handle_*` methods; outputs are drained with `#[must_use]` `poll_*` methods. The
//! contract every driver follows:
//!
//! 1. After **every** `handle_*` call, drain [`Journal::poll_command`] and
//!    [`Journal::poll_event`] until they return `None`, and read [`Journal::poll_timeout`].
//! 2. Execute each command against storage and feed its result back with
//!    [`Journal::handle_completion`] under the command's id. A journal has at most one command
//!    in flight; completions are fed back in the order the commands were polled. Requests
//!    made while a command is in flight are queued, not refused: persist requests queued
//!    behind it are **coalesced** into the next [`Command::Append`] (see *Coalesced appends*
//!    below), so a driver that makes requests faster than storage completes them gets fewer,
//!    larger appends — one command and one completion for many requests.
//! 3. When the deadline from `poll_timeout` passes, call [`Journal::handle_timeout`].
//! 4. With [`JournalConfig::replay_slice`] set, a long page of replayed events is applied a
//!    slice at a time: while [`Journal::poll_replay`] is true, no command is in flight and the
//!    rest of the page waits for [`Journal::handle_replay`] (an async driver lets other tasks
//!    run first). Without it, pages are applied whole and this step never arises.
//! 5. Pass the same entity state to every call that takes `&mut E`.
//!
//! Each [`Command`] is answered by one [`Completion`] (or a [`StorageError`]):
//!
//! | command                         | completion                         |
//! |---------------------------------|------------------------------------|
//! | [`Command::LoadSnapshot`]       | [`Completion::Snapshot`]           |
//! | [`Command::ReadEvents`]         | [`Completion::Events`]             |
//! | [`Command::Append`], [`Command::SaveSnapshot`], [`Command::DeleteEvents`], [`Command::DeleteSnapshots`] | [`Completion::Done`] |
//!
//! One [`Command::Append`] may carry the events of several persist requests; its one
//! [`Completion::Done`] makes all of them durable, and the journal then reports one
//! [`JournalEvent::Persisted`] per request, in request order. An error completion answers all
//! of them alike (see *Coalesced appends*).
//!
//! When the contract is broken:
//!
//! - a completion under an id that is not the command in flight (or before the command was
//!   polled) is refused with [`HandleError::UnexpectedCompletion`] and changes nothing;
//! - a completion of the wrong shape (a store breaking its contract) is consumed as
//!   [`StorageError::Failed`]: a write's outcome is unknown, so the journal fences and re-reads
//!   the log; a read fails like any failed read. The journal is never left waiting;
//! - commands not polled, or completions not fed back, leave the journal waiting: nothing
//!   happens until they are; so does a paused replay never given
//!   [`Journal::handle_replay`].
//!
//! ```
//! use std::time::Duration;
//! use persevere_core::memory::MemoryStore;
//! use persevere_core::{Entity, Journal, JournalConfig, JournalEvent};
//!
//! #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
//! struct Counter { value: u64 }
//!
//! impl Entity for Counter {
//!     type Event = u64;
//!     type Error = String;
//!     fn apply(&mut self, n: &u64) -> Result<(), String> {
//!         self.value = self.value.checked_add(*n).ok_or("overflow")?;
//!         Ok(())
//!     }
//! }
//!
//! /// Drains the journal, executing its commands against an in-memory store.
//! fn drive(journal: &mut Journal<Counter>, store: &mut MemoryStore, state: &mut Counter) -> Vec<JournalEvent> {
//!     let mut events = Vec::new();
//!     loop {
//!         while let Some(event) = journal.poll_event() {
//!             events.push(event);
//!         }
//!         let Some(command) = journal.poll_command() else { break };
//!         let (id, result) = store.execute("counter", command);
//!         journal.handle_completion(Duration::ZERO, id, result, state).unwrap();
//!     }
//!     events
//! }
//!
//! let mut store = MemoryStore::new();
//! let mut state = Counter::default();
//! let mut journal = Journal::<Counter>::new(JournalConfig::new("counter"), Counter::default);
//! drive(&mut journal, &mut store, &mut state); // recovery of an empty stream
//!
//! let request = journal.handle_persist(2, &mut state).unwrap();
//! let events = drive(&mut journal, &mut store, &mut state);
//! assert!(events.contains(&JournalEvent::Persisted { request, first_seq: 1, last_seq: 1 }));
//!
//! // A second journal over the same store recovers the state.
//! let mut again = Counter::default();
//! let mut journal = Journal::<Counter>::new(JournalConfig::new("counter"), Counter::default);
//! drive(&mut journal, &mut store, &mut again);
//! assert_eq!(again.value, 2);
//! ```
//!
//! # Semantics
//!
//! - **persist / persist_all** ([`Journal::handle_persist`], [`Journal::handle_persist_all`]):
//!   the events are encoded, applied to the state (an `apply` that refuses rejects the request
//!   before anything is written), and appended atomically with the *expected* last seq. After
//!   [`JournalEvent::Persisted`] they are durable and applied. After a failure the state is
//!   exactly as before: the journal never clones the state; on the failure path only it
//!   rebuilds the state from the durable log (newest snapshot + replay).
//! - **failure classes** ([`PersistError`]): `Rejected` (nothing written, go on; an `apply`
//!   refusal carries the entity's own error in a [`Refusal`], to downcast), `Conflict`
//!   (another writer: the journal stops and never overwrites), `Failed` (outcome unknown: the
//!   journal is fenced, re-reads the log and learns whether the write landed — a write that
//!   landed is reported persisted, so a retry never applies an event twice; if another writer
//!   appended after it, the journal then stops. The re-read reads **every** position of the
//!   write (`first..=last`) directly, in pages of at most [`JournalConfig::read_batch`]
//!   events, and compares what it finds with what the write would have left: the checksum of
//!   the record at the last position and a fold, in order, of the checksums of the records at
//!   all of them (computed while encoding, with no allocation), and for a sealed journal the
//!   tag of the last record, which commits through the chain to every event before it. Ours
//!   there is `Persisted`; another writer's record at any position is a `Conflict`; nothing
//!   there with the head unmoved is `Failed { landed: Some(false) }`; positions another writer
//!   compacted away are unknown, `Failed { landed: None }`, and the journal stops. A Light
//!   snapshot counts as proof only when sealed (its own nonce, bound to the write's chain
//!   value): a plaintext snapshot encodes the state, which other events can reach.)
//! - **the limit of a plaintext re-read**: a plaintext record is deterministic (header, payload
//!   in the codec's encoding, CRC-32), and records carry no writer token. So if, after a
//!   `Failed` append, another writer appended **the same events, with the same type versions
//!   and codec, at exactly the same positions** (its first at our first seq, as many as ours),
//!   the log holds byte for byte what ours would have left: the re-read reports our requests
//!   `Persisted` (and goes on if the head is our last seq). The log and the state then agree
//!   (those events once each), but two writers' requests were acknowledged for one copy of
//!   them. Any difference at any position — another event, another order, fewer or more
//!   events — is told apart, barring a 2^-32 CRC collision per differing record. With
//!   encryption every record has a fresh random nonce, so identical appends differ. Changing
//!   this for plaintext would take a per-writer token in the record format, which version 1
//!   does not have.
//! - **coalesced appends**: persist requests queued while a command is in flight go into the
//!   next append together, in request order, up to [`JournalConfig::max_append`] (default
//!   1024 events and 4 MiB of event records; the first request always goes, a request is
//!   never split; a snapshot request ends the batch). Each request's events are encoded and
//!   applied in turn: one that cannot be encoded, or whose first event `apply` refuses, is
//!   `Rejected` alone and the others still go (a refusal later in a request first rebuilds
//!   the state, then the others are applied again). The append is one atomic write, so it
//!   succeeds or fails as a whole: `Rejected` or `Conflict` fails every request in it with that
//!   class and rebuilds the state to the last durable seq; `Failed` fences the journal, and the
//!   re-read of the append's positions decides for all of them — each reported
//!   `Persisted` if it landed, none acknowledged if it did not, none applied twice. Snapshots
//!   are taken per append: every-N and the predicate are checked once after it, and a
//!   [`Strategy::Light`] append carries one snapshot, at its last seq.
//! - **snapshots**: every N events (default 100), on demand, or when a predicate says so
//!   ([`Strategy::Full`]); or with every append in the same atomic command
//!   ([`Strategy::Light`]). **Compaction** deletes events covered by a durable snapshot;
//!   **retention** keeps the newest N snapshots.
//! - **recovery**: newest readable snapshot + replay. An unreadable snapshot falls back to an
//!   older one or a full replay, unless the events it covers were compacted
//!   ([`RecoveryError::SnapshotUnrecoverable`]). Gaps, duplicates, out-of-order seqs, a log
//!   shorter than its head, and a snapshot beyond the head are errors. A journal writes seqs up
//!   to `u64::MAX - 1` (a batch that would reach further is `Rejected` with
//!   [`Rejection::SeqExhausted`]), so a record at `u64::MAX` is damage: a snapshot there is
//!   skipped like an unreadable one, an event there is a [`RecoveryError::Mismatch`].
//! - **records** ([`record`]): a versioned envelope with a CRC-32; any byte string decodes to a
//!   record or a typed error. **Schema evolution**: each record carries its type version, and
//!   [`Entity::upcast_event`] / [`Entity::upcast_snapshot`] read older ones.
//!
//! - **encryption at rest** ([`seal`]): with [`Journal::with_encryption`], every record is
//!   sealed with XChaCha20-Poly1305 under a fresh random nonce from the journal's
//!   [`Randomness`](seal::Randomness) input, bound to its store, stream, seq and key id.
//!
//! # Features
//!
//! - `serde`: the [`Json`] codec.
//! - `testkit`: [`testkit::Harness`], a synchronous in-memory executor with fault injection, to
//!   unit-test an entity's persistence and recovery without IO.
#![forbid(unsafe_code)]

mod batch;
mod bytes;
pub mod codec;
pub mod command;
pub mod config;
mod crc;
pub mod entity;
pub mod error;
mod journal;
pub mod location;
pub mod memory;
pub mod output;
pub mod record;
mod recovery;
pub mod seal;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use batch::Batch;
pub use bytes::SharedBytes;
#[cfg(feature = "serde")]
pub use codec::Json;
pub use codec::{Borsh, Codec, CodecError};
pub use command::{Command, CommandId, Completion, StorageError, StoredRecord};
pub use config::{JournalConfig, Strategy};
pub use entity::{Entity, UpcastError};
pub use error::{HandleError, PersistError, RecoveryError, Refusal, Rejection, StopReason};
pub use journal::Journal;
pub use output::{JournalEvent, Phase, RequestId};
pub use store::{CommandResult, Repair, Store, StreamCommand};
