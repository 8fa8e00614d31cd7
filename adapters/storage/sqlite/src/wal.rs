//! The write-ahead log kept allocated ahead of the writer.
//!
//! With `synchronous=FULL` every commit syncs the write-ahead log. A commit whose frames land
//! past the end of the file also changes the file's size and its block map, so its sync must
//! commit the file system's journal as well as the data; a commit that writes inside the file
//! syncs its data alone. SQLite appends to the log until a checkpoint lets it start again from
//! the beginning (it deletes the log when the last connection closes), so without help every
//! commit of a new or freshly opened store extends the file.
//!
//! Before a write transaction, [`WalReserve::ensure`] keeps at least [`LOW_WATER`] bytes of
//! zeros written and synced past the end of the frames in use, growing the file by a chunk at a
//! time (its own size, between [`MIN_CHUNK`] and [`MAX_CHUNK`]): one journal commit per chunk
//! instead of one per commit. SQLite's recovery stops at the first frame that is not valid,
//! and a zero frame never is (its page number is 0, its salt not the log's), so the zeros are
//! read as the end of the log, exactly like the stale frames a reused log holds; only bytes
//! past the file's end are written, while the transaction holds SQLite's write lock (no other
//! writer can be appending frames there).
//!
//! Growing the reserve on the commit path still costs the commit that finds it short (its
//! zeros written and synced before its own frames), and a log's first pass would write every
//! byte twice there. So when the log has a checkpoint size, the store writes the whole pass at
//! open ([`WalReserve::ensure_len`] with [`WalReserve::pass_len`], under the write lock too):
//! the frames up to the checkpoint, the last transaction's overshoot and the low water mark.
//! After the checkpoint SQLite starts the log again from its beginning, inside that pass, so
//! [`WalReserve::ensure`] finds enough and no commit grows the file, unless the log outgrows
//! its pass (a reader holding the checkpoint back, a transaction larger than [`LOW_WATER`], a
//! pass larger than [`MAX_PASS`]).
//!
//! The file's length is remembered rather than asked for before every transaction: on a Linux
//! kernel with multigrain timestamps (ext4 here: measured) a `stat` of the file makes
//! its next write take a new, fine-grained modification time, and an
//! `fsync` (what SQLite calls) then commits the file system's journal for it. The length is
//! read again only when the remembered one looks short.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of the log's header.
const HEADER: u64 = 32;
/// Bytes of a frame's header (the page follows).
const FRAME_HEADER: u64 = 24;
/// Zeros kept written past the frames in use before a write transaction begins: a batch of
/// 1,000 one-event appends writes about 800 KiB of log.
pub(crate) const LOW_WATER: u64 = 1 << 20;
/// The smallest growth of the file.
pub(crate) const MIN_CHUNK: u64 = 1 << 20;
/// The largest growth of the file (the zeros are written and synced before the transaction).
pub(crate) const MAX_CHUNK: u64 = 8 << 20;
/// Zeros written per `pwrite`.
const ZEROS: usize = 256 << 10;
/// The most zeros written at open ([`WalReserve::pass_len`]): past it, the log's first pass
/// grows on the commit path, by chunks.
pub(crate) const MAX_PASS: u64 = 16 << 20;

/// Keeps the write-ahead log of one database allocated ahead of its writer.
#[derive(Debug)]
pub(crate) struct WalReserve {
    /// The `-wal` file.
    path: PathBuf,
    /// Opened at the first write (SQLite creates the file).
    file: Option<File>,
    /// Bytes of one frame: the page size and the frame's header.
    frame: u64,
    /// The file's length when last read or grown (SQLite may have extended it since; a
    /// checkpoint that truncates it is rare and only costs speed until it is read again).
    len: u64,
}

/// What [`WalReserve::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserve {
    /// Enough zeros were already past the frames in use.
    Enough,
    /// The file grew from one length to another.
    Grew { from: u64, to: u64 },
    /// There is no log file (yet): nothing to reserve.
    NoLog,
}

impl WalReserve {
    /// The reserve of the database at `db`, whose pages are `page_size` bytes.
    pub(crate) fn new(db: &Path, page_size: u64) -> Self {
        let mut name = db.as_os_str().to_owned();
        name.push("-wal");
        Self {
            path: PathBuf::from(name),
            file: None,
            frame: page_size + FRAME_HEADER,
            len: 0,
        }
    }

    /// The `-wal` file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// With `frames` frames in the log, makes sure at least [`LOW_WATER`] bytes of zeros follow
    /// them, written and synced. Call it inside a write transaction (SQLite's write lock held),
    /// with the frame count read just before it began.
    pub(crate) fn ensure(&mut self, frames: u64) -> io::Result<Reserve> {
        let used = self.used(frames);
        let low_water = used.saturating_add(LOW_WATER);
        self.grow(low_water, |len| {
            let chunk = len.clamp(MIN_CHUNK, MAX_CHUNK);
            used.max(len).saturating_add(chunk).max(low_water)
        })
    }

    /// With `frames` frames in the log, makes sure the file is at least `bytes` long (and
    /// [`LOW_WATER`] bytes past the frames), its new bytes zeros written and synced: the whole
    /// pass of a log checkpointed at a known size, written once before the first commit needs
    /// it. Call it like [`ensure`](Self::ensure), under SQLite's write lock.
    pub(crate) fn ensure_len(&mut self, frames: u64, bytes: u64) -> io::Result<Reserve> {
        let want = self.used(frames).saturating_add(LOW_WATER).max(bytes);
        self.grow(want, |_| want)
    }

    /// The file's length that holds a whole pass of a log checkpointed at `pages` frames: the
    /// header, the frames, the last transaction's overshoot past them (up to [`LOW_WATER`]) and
    /// the [`LOW_WATER`] mark, at most [`MAX_PASS`].
    pub(crate) fn pass_len(&self, pages: u32) -> u64 {
        self.used(u64::from(pages))
            .saturating_add(2 * LOW_WATER)
            .min(MAX_PASS)
    }

    /// The bytes of the log's header and `frames` frames.
    fn used(&self, frames: u64) -> u64 {
        HEADER.saturating_add(frames.saturating_mul(self.frame))
    }

    /// Unless the file is already `want` bytes long, writes zeros from its end to
    /// `target(its length)` (rounded up to 4 KiB) and syncs them.
    ///
    /// Only bytes past the file's end, read under the write lock, are written: every frame
    /// SQLite has written lies before it, so no frame is ever overwritten.
    fn grow(&mut self, want: u64, target: impl FnOnce(u64) -> u64) -> io::Result<Reserve> {
        let file = match &self.file {
            Some(file) => file,
            None => match OpenOptions::new().write(true).open(&self.path) {
                Ok(file) => self.file.insert(file),
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Reserve::NoLog),
                Err(error) => return Err(error),
            },
        };
        if self.len >= want {
            return Ok(Reserve::Enough);
        }
        let len = file.metadata()?.len();
        self.len = len;
        if len >= want {
            return Ok(Reserve::Enough);
        }
        let to = target(len).max(want).next_multiple_of(4096);
        let zeros = vec![0u8; ZEROS];
        let mut at = len;
        while at < to {
            let n = usize::try_from(to - at).map_or(ZEROS, |n| n.min(ZEROS));
            file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        file.sync_data()?;
        self.len = to;
        Ok(Reserve::Grew { from: len, to })
    }
}
