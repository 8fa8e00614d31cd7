//! # persevere-file
//!
//! The embedded default storage of persevere: a crash-safe event journal in one directory,
//! implementing [`persevere_core::Store`] with group commit.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("journal");
//! // Creation is explicit; opening a missing store is an error, never a fresh empty store.
//! let store = persevere_file::FileStore::create(&path)?;
//! drop(store);
//! let store = persevere_file::FileStore::open(&path)?;
//! drop(store);
//! // Or both, for a store that may not exist yet (URL keys do this too):
//! let store = persevere_file::FileStore::open_or_create(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - **Durable before acknowledged**: each [`Store::execute`](persevere_core::Store::execute)
//!   call encodes all of its writes (appends, snapshots, deletions, from any number of streams)
//!   into one checksummed frame — or several, written together, when they exceed
//!   [`FileOptions::frame_max`] — and calls fdatasync once (group commit) before answering any
//!   of them. Only a single write larger than a frame is rejected.
//! - **Atomic writes**: each command's records lie in one frame, visible whole or not at all,
//!   so an append's events and its snapshot land together. A group commit split across
//!   frames is atomic per command, not as a whole: a crash during its write may leave a prefix
//!   of its commands (none of them acknowledged).
//! - **Streams never bleed**: every operation names its stream in full; `a`, `a.b`, `a/b` and
//!   `a_b` are four streams.
//! - **Every file names its store**: an id chosen at creation is in the identity file `STORE`,
//!   in every segment header and every snapshot file header, and is mixed into every frame's
//!   header checksum. A file of another store is refused with [`FileError::Foreign`]; a file of
//!   another format version with [`FileError::NewerFormat`] ("written by a newer version of
//!   persevere (format N)") or [`FileError::OlderFormat`].
//! - **Complete logs only**: segments are numbered without gaps from the floor (the newest
//!   compacted segment); every segment but the newest ends with a seal frame; `STORE` records
//!   the newest segment created and, at a clean shutdown, where the log ended. A missing
//!   segment, a deleted newest segment, a segment cut (even at a frame boundary) or a log shorter
//!   than its clean end is refused with [`FileError::Missing`], naming the file. A directory
//!   with segments or snapshot files but no `STORE` is refused too: open never turns a damaged
//!   store into an empty one.
//! - **Torn or damaged**: frames are chained (each frame's CRC starts from the previous
//!   frame's), and each group commit's first frame is flagged. At open, a frame that is not
//!   intact is
//!   - **damage** ([`FileError::Corrupt`], naming file and offset) when anything proves it was
//!     durable: a later group commit (found by a header checksum that needs the store id, so
//!     payload bytes cannot forge one, and searched only after the bad frame's end when its
//!     header is intact — never inside its own payload), a close marker (written at a clean
//!     shutdown), the clean end recorded in `STORE`, or a newer segment;
//!   - a **torn tail** otherwise: the interrupted last write. It is cut, the cut bytes are
//!     copied to `quarantine/` first, and the cut is a [`Repair`](persevere_core::Repair)
//!     naming the file, where the bytes are kept and the streams the frame named (as far as its
//!     bytes can be decoded), logged with `tracing::warn!`.
//!
//!   **The one ambiguous case** is the last frame (or last group commit) written before a
//!   crash: damage to it, or a cut exactly at its start, cannot be told from a write that
//!   never completed, so it may have been acknowledged and still be gone — cut and reported
//!   when any of its bytes remain, silently absent when the cut falls exactly on its start.
//!   A journal that remembers its head closes this gap: `Journal::expect_head` (in
//!   `persevere-core`), given the head the application kept outside the store (see
//!   `Journal::head_commitment`), fails recovery with `RecoveryError::HeadMismatch` when the
//!   log ends anywhere else — in particular before the last seq it saw acknowledged.
//! - **Nothing is deleted that is not proved to be the store's own garbage**: what open does
//!   not use — a torn tail, a temporary file of the store's own naming (`*.log.tmp`,
//!   `*.snap.tmp`, `STORE.tmp`), a segment below the floor, a snapshot file of this store no
//!   frame references — is moved to `quarantine/{time}-{n}-{name}` with a `.note` saying why
//!   and when, and reported by [`Store::repairs`](persevere_core::Store::repairs). Files the
//!   store did not write (any other name, or a snapshot file of another store) are never
//!   touched. With [`Recovery::Strict`] open refuses ([`FileError::NeedsRepair`]) instead.
//! - **Faults stay where they happen**: a large snapshot's file that cannot be written fails
//!   that command only (the other commands of the batch commit); a failed compaction is
//!   logged and retried after a growing number of commits, and the store stays open. A failed
//!   log write or fdatasync **fences** the store: every later command fails with
//!   [`StorageError::Failed`](persevere_core::StorageError::Failed), fdatasync is never
//!   retried on the same handle, [`Store::fenced`](persevere_core::Store::fenced) says why, and
//!   [`Store::reopen`](persevere_core::Store::reopen) recovers in place (keeping the lock) from
//!   what is durable. The bytes of the failed write may still sit in the page cache (after a
//!   failed fdatasync the kernel may mark them clean without writing them): reopen first cuts
//!   the active segment back to the end the store made durable, keeping the cut bytes in
//!   quarantine and reporting the cut as a repair, so a journal re-reading its log never takes
//!   them for a write that landed. A store that panicked inside `execute` is fenced the same way.
//! - **Snapshot damage falls back**: a missing or damaged snapshot file does not stop open;
//!   loading it answers [`StorageError::Damaged`](persevere_core::StorageError::Damaged) naming
//!   the file, and the journal falls back to an older snapshot or a full replay (or reports a
//!   clear error when the events it covered were compacted).
//! - **One writer**: an exclusive `flock` on the store directory itself (not on a file in it,
//!   which could be removed); a second opener gets [`FileError::Locked`]. Before each commit
//!   the active segment's open file is compared (device and inode) with the file its name
//!   leads to: a segment removed or replaced under a running store fences it instead of
//!   taking acknowledged writes.
//! - **Compaction and retention** (`DeleteEvents`, `DeleteSnapshots`) are logged operations
//!   (durable low-water marks); once enough space is reclaimable the active segment is sealed
//!   and everything live up to its end — every stream's head, mark, snapshots and live events,
//!   the events as appends of at most 1 MiB so a stream of any size is never held in memory —
//!   is copied into a replacement of that segment (temporary file, fsync, rename, directory
//!   fsync), which becomes the floor; the older segments are then removed (they are the
//!   store's own, replaced). The copy runs off the commit path, on a worker thread of the
//!   store with its own file handles (sealed segments are never written, so it reads them
//!   beside the commit thread), while writers keep committing to the segments after it; no
//!   commit waits for it. Installing the result (the rename, the removals, the index switch)
//!   is done between commits, or by the worker itself when no `execute` runs, so an idle
//!   store completes its compaction too; closing the store stops a copy under way and
//!   removes its temporary file. It logs its start, its progress and its end at `INFO`
//!   ([`FileStore::compacting`] says whether one is under way). A stream's head survives
//!   compaction. Sealing the active segment is a log write: its failure fences like any
//!   other; a failure of the copy leaves the log unchanged (logged, counted in
//!   [`Stats::failed_compactions`], retried later).
//!
//! - **Open reads a checkpoint, not the history**: the index (every stream's head, compaction
//!   mark, snapshots, and which segments hold its events) is written to the checkpoint file
//!   `INDEX` after each segment is sealed, after each compaction and at a clean shutdown.
//!   Open loads it when it can be trusted (this store's id, its checksum, the floor and the
//!   lengths of the segments it covers, and the checksum of the frame it stands after all
//!   match the log; otherwise it is ignored, logged, and the whole log replayed) and replays
//!   only the log after it — nothing after a clean shutdown, the newest segment after a
//!   crash. The newest segment is always read whole (verifying every frame); an older
//!   segment the checkpoint covers is verified when it is first read, and damage found then
//!   fails that stream's read ([`StorageError::Damaged`](persevere_core::StorageError::Damaged),
//!   naming the file and offset; the store and its other streams go on), never answering
//!   other bytes. A one-line summary is logged at
//!   `INFO` and kept in [`FileStore::open_summary`]. Stores without `INDEX` (written before
//!   it existed) open by replay and get one at their next clean shutdown.
//! - **The index does not grow with events**: each stream's live events are kept as runs of
//!   contiguous seqs, one per segment they lie in; where each event lies inside a segment is
//!   held only for the active segment and a few recently read ones, and rebuilt by scanning
//!   the segment when needed.
//!
//! # Snapshots
//!
//! A snapshot smaller than [`FileOptions::snapshot_file_min`] (64 KiB by default) is a record
//! of the log like an event, inside the same checksummed, fdatasync'd frame: it is never
//! visible before its frame is complete and durable, a Light append (events + snapshot) is
//! atomic, and the snapshots of a thousand entities share one fdatasync instead of costing
//! three syncs each. A larger snapshot is written to its own file (with a header naming the
//! store and the file) with the atomic protocol — temporary file, fsync, rename, directory
//! fsync — and only then referenced (with its length and CRC-32) from the batch's frame, so
//! it too appears atomically with its batch. Files no longer referenced are removed after the
//! commit that dropped them; leftovers are set aside at the next open. A snapshot longer than
//! 4 GiB − 1 bytes (its length is a u32 in the log) is refused with
//! [`StorageError::Rejected`](persevere_core::StorageError::Rejected), never cut.
//!
//! # Layout (format 2)
//!
//! A directory holds `STORE` (the identity file: store id, newest segment, clean end),
//! `INDEX` (the optional index checkpoint, see the `checkpoint` module),
//! segments `{n:016x}.log` — a 48-byte header (magic, format, store id, number, floor, CRC)
//! then chained frames (see the `frame`, `batch` and `manifest` modules' docs in the source)
//! — large snapshots `{id:016x}.snap`, and `quarantine/`. Unix only (`flock`, `fdatasync`).
#![forbid(unsafe_code)]

mod batch;
mod checkpoint;
mod compaction;
mod compaction_worker;
mod error;
mod frame;
mod index;
mod lock;
mod manifest;
mod open;
mod positions;
mod quarantine;
mod segment;
mod snapshot_file;
mod store;
mod url;
mod vfs;

#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod compaction_tests;
#[cfg(test)]
mod crafted_tests;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod index_tests;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(test)]
mod tests;

pub use error::FileError;
pub use open::{IndexCheckpoint, OpenSummary};
pub use store::{FileOptions, FileStore, Recovery, Stats, TornTail};
pub use url::{parse_url, url_options};
