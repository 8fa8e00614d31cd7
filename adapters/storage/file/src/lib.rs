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
//! # Snapshots
//!
//! A snapshot smaller than [`FileOptions::snapshot_file_min`] (64 KiB by default) is a record
//! of the log like an event, inside the same checksummed, fdatasync'd frame: it is never
//! visible before its frame is complete and durable, a Light append (events + snapshot) is
//! atomic, and the snapshots of a thousand entities share one fdatasync instead of costing
//! three syncs each. A larger snapshot is written to its own file with the atomic protocol —
//! temporary file, fsync, rename, directory fsync — and only then referenced (with its length
//! and CRC-32) from the batch's frame, so it too appears atomically with its batch; files no
//! longer referenced (retention, replacement, or a batch that never committed) are removed
//! after the commit or at the next open, and a referenced file that is missing or damaged is
//! an error, never an empty snapshot.
//!
//! # Layout
//!
//! A directory holds `LOCK`, segments `{n:016x}.log` — a 32-byte header (magic, number,
//! floor, CRC) then frames (see the `frame` and `batch` modules' docs in the source) — and
//! large snapshots `{id:016x}.snap`. Unix only (`flock`, `fdatasync`).
#![forbid(unsafe_code)]

mod batch;
mod error;
mod frame;
mod index;
mod lock;
mod manifest;
mod open;
mod quarantine;
mod segment;
mod snapshot_file;
mod store;
mod url;
mod vfs;

#[cfg(test)]
mod crash_tests;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(test)]
mod tests;

pub use error::FileError;
pub use store::{FileOptions, FileStore, Recovery, Stats, TornTail};
pub use url::parse_url;
