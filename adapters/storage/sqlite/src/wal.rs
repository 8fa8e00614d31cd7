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
        let file = match &self.file {
            Some(file) => file,
            None => match OpenOptions::new().write(true).open(&self.path) {
                Ok(file) => self.file.insert(file),
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Reserve::NoLog),
                Err(error) => return Err(error),
            },
        };
        let used = HEADER.saturating_add(frames.saturating_mul(self.frame));
        let low_water = used.saturating_add(LOW_WATER);
        if self.len >= low_water {
            return Ok(Reserve::Enough);
        }
        let len = file.metadata()?.len();
        self.len = len;
        if len >= low_water {
            return Ok(Reserve::Enough);
        }
        let chunk = len.clamp(MIN_CHUNK, MAX_CHUNK);
        let to = used
            .max(len)
            .saturating_add(chunk)
            .max(low_water)
            .next_multiple_of(4096);
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
