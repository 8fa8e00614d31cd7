//! # persevere-file
//!
//! The embedded default storage of persevere: a crash-safe event journal in one directory,
//! implementing [`persevere_core::Store`] with group commit.
//!
//! ```no_run
//! let store = persevere_file::FileStore::open("data/journal")?;
//! // or, from a URL key:
//! let store = persevere_file::FileStore::open_url("file:///var/lib/app/journal")?;
//! # Ok::<(), persevere_file::FileError>(())
//! ```
//!
//! # Guarantees
//!
//! - **Durable before acknowledged**: each [`Store::execute`](persevere_core::Store::execute)
//!   call encodes all of its writes (appends, snapshots, deletions, from any number of streams)
//!   into one checksummed frame, writes it and calls fdatasync once — group commit — before
//!   answering any of them.
//! - **Atomic batches**: a frame is visible whole or not at all (its CRC-32 covers header and
//!   payload), so an append's events and its snapshot land together.
//! - **Streams never bleed**: every operation names its stream in full; `a`, `a.b`, `a/b` and
//!   `a_b` are four streams.
//! - **Recovery** at open replays the log into an in-memory index. An interrupted write at the
//!   end of the newest segment (bytes that are no intact frame, with no intact frame after
//!   them) is truncated, logged with `tracing::warn!` and reported by
//!   [`FileStore::torn_tail`]. Damage anywhere else fails closed with [`FileError::Corrupt`],
//!   naming the file and the offset: records after damage are never silently dropped.
//! - **Fencing**: a failed write or fdatasync fences the store: every later command fails with
//!   [`StorageError::Failed`](persevere_core::StorageError::Failed) and fdatasync is never
//!   retried on the same handle; reopening recovers a consistent prefix.
//! - **One opener**: an exclusive `flock` on the directory; a second opener gets
//!   [`FileError::Locked`].
//! - **Compaction and retention** (`DeleteEvents`, `DeleteSnapshots`) are logged operations
//!   (durable low-water marks); once enough space is reclaimable the log is rewritten into one
//!   segment holding every stream's head, mark, live events and snapshots (temporary file,
//!   fsync, rename, directory fsync), and the old segments are removed. A stream's head
//!   survives compaction.
//!
//! # Snapshots in the log
//!
//! Snapshots are records of the log like events, inside the same checksummed, fdatasync'd
//! frames, rather than separate files written with temp file + rename. This is as safe —
//! a snapshot is never visible until its frame is complete and durable, and a torn frame is
//! never exposed — and it is what makes a Light append (events + snapshot) atomic without a
//! second commit record, and lets the snapshots of a thousand entities share one fdatasync
//! instead of costing three syncs each. Compaction rewrites with the temp + rename protocol.
//!
//! # Layout
//!
//! A directory holds `LOCK`, and segments `{n:016x}.log`: a 32-byte header (magic, number,
//! floor, CRC) then frames (see the `frame` and `batch` modules' docs in the source). Unix
//! only (`flock`, `fdatasync`).
#![forbid(unsafe_code)]

mod batch;
mod error;
mod frame;
mod index;
mod lock;
mod segment;
mod store;
mod url;
mod vfs;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use error::FileError;
pub use store::{FileOptions, FileStore, Stats, TornTail};
pub use url::parse_url;
