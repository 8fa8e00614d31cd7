//! [`FileStore`]: open and create, execute (group commit), compaction, fencing and reopen.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use persevere_core::{
    Command, CommandResult, Completion, Repair, SharedBytes, StorageError, Store, StoredRecord,
    StreamCommand,
};

use crate::batch::{self, Placement, SnapIn};
use crate::compaction::Stop;
use crate::compaction_worker::Pacing;
use crate::frame::{FrameBuf, FRAME_TRAILER_LEN, GROUP_START, MAX_FRAME, SEGMENT_HEADER_LEN};
use crate::index::{Index, Loc, Marker, Run, SegFine, SnapLoc};
use crate::manifest::Manifest;
use crate::open::{self, io_err, Loaded, Mode, OpenSummary};
use crate::quarantine;
use crate::segment::{self, Segment};
use crate::snapshot_file::{self, Place};
use crate::vfs::{DirMode, RealFs, Vfs};
use crate::FileError;

/// How many sealed segments' event positions the index keeps loaded (besides the active
/// segment's); others are rebuilt by scanning their segment when read.
pub(crate) const FINE_CACHE: usize = 4;

/// What open does with what it cannot use (a torn tail, a leftover temporary file, a segment
/// replaced by compaction, a snapshot file no frame references).
///
/// ```
/// use persevere_file::{FileError, FileOptions, FileStore, Recovery};
/// let dir = tempfile::tempdir().unwrap();
/// drop(FileStore::create(dir.path()).unwrap());
/// std::fs::write(dir.path().join("STORE.tmp"), b"left by a crash").unwrap();
/// let mut strict = FileOptions::default();
/// strict.recovery = Recovery::Strict;
/// assert!(matches!(FileStore::open_with(dir.path(), strict), Err(FileError::NeedsRepair { .. })));
/// let store = FileStore::open(dir.path()).unwrap(); // Recovery::Repair
/// assert_eq!(store.repairs().len(), 1);
/// assert!(store.repairs()[0].kept_at.as_ref().unwrap().contains("quarantine"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Recovery {
    /// Move it to the store's `quarantine/` folder (with a note of why and when), log a
    /// warning and report it through [`Store::repairs`]. Nothing is destroyed.
    #[default]
    Repair,
    /// Change nothing and refuse to open with [`FileError::NeedsRepair`].
    Strict,
}

/// Tuning of a [`FileStore`]. The defaults suit most uses.
///
/// ```
/// let mut options = persevere_file::FileOptions::default();
/// options.recovery = persevere_file::Recovery::Strict;
/// assert_eq!(options.segment_size, 64 << 20);
/// let dir = tempfile::tempdir().unwrap();
/// drop(persevere_file::FileStore::create_with(dir.path(), options.clone()).unwrap());
/// persevere_file::FileStore::open_with(dir.path(), options).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileOptions {
    /// A new segment is started once the active one holds this many bytes (default 64 MiB).
    pub segment_size: u64,
    /// Compaction rewrites the log once at least this many bytes are reclaimable *and* the
    /// reclaimable bytes are at least the live ones (default 16 MiB).
    pub compact_min_bytes: u64,
    /// Snapshots of at least this many bytes go to a file of their own (temporary file, fsync,
    /// rename, directory fsync, then referenced from the log); smaller ones go in the log and
    /// share its fdatasync (default 64 KiB).
    pub snapshot_file_min: usize,
    /// The largest frame payload (default and at most 1 GiB). A group commit larger than this
    /// is split across several frames written under one fdatasync; a single write larger than
    /// this is rejected.
    pub frame_max: usize,
    /// What open does with what it cannot use (default: [`Recovery::Repair`]).
    pub recovery: Recovery,
    /// How many bytes the compaction worker copies between two checks of whether it is asked
    /// to stop (default 512 KiB): closing or reopening the store waits for at most this much
    /// copying. The copy runs on its own thread, beside the commit path.
    pub compact_step_bytes: u64,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            compact_min_bytes: 16 << 20,
            snapshot_file_min: 64 << 10,
            frame_max: MAX_FRAME,
            recovery: Recovery::Repair,
            compact_step_bytes: crate::compaction::STEP,
        }
    }
}

/// What open found and cut at the end of the log: an interrupted write, never acknowledged
/// (unless a journal remembers it: see the crate docs). The bytes are kept in the quarantine
/// folder, and the cut is also one of [`Store::repairs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file that was truncated.
    pub file: PathBuf,
    /// The offset it was truncated at.
    pub offset: u64,
    /// How many bytes were cut (and copied to quarantine).
    pub dropped_bytes: u64,
}

/// Counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `execute` calls that wrote (each one group commit: one write, one fdatasync).
    pub commits: u64,
    /// Write commands acknowledged by those commits.
    pub writes: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Compactions that failed (logged, retried later; the store stays open).
    pub failed_compactions: u64,
}

/// Whether an `execute` is running: a store found `Executing` on entry panicked inside the
/// last one, and its index may name bytes that were never written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Executing,
}

/// A crash-safe, group-committing event journal in one directory.
///
/// Every stream's events and snapshots go to one append-only, segmented log of checksummed,
/// chained frames; each [`Store::execute`] call writes all of its writes (one frame, or
/// several when they exceed [`FileOptions::frame_max`]) and makes them durable with one
/// fdatasync before any of them is acknowledged. An in-memory index (stream → head, compaction
/// mark, seq → location) is rebuilt at open. See the [crate docs](crate) for the format and
/// the recovery rules.
///
/// ```
/// use std::sync::Arc;
/// use persevere_core::{Command, CommandId, Completion, Store, StoredRecord, StreamCommand};
/// let dir = tempfile::tempdir().unwrap();
/// let mut store = persevere_file::FileStore::create(dir.path()).unwrap();
/// let append = Command::Append {
///     id: CommandId(1),
///     expected_last: 0,
///     events: StoredRecord::new(1, b"hello".to_vec()).into(),
///     snapshot: None,
/// };
/// let results = store.execute(vec![StreamCommand { stream: Arc::from("greeter"), command: append }]);
/// assert_eq!(results, vec![(CommandId(1), Ok(Completion::Done))]);
/// drop(store);
/// let mut store = persevere_file::FileStore::open(dir.path()).unwrap();
/// assert!(store.repairs().is_empty());
/// let read = Command::ReadEvents { id: CommandId(2), from: 1, limit: 10 };
/// let results = store.execute(vec![StreamCommand { stream: Arc::from("greeter"), command: read }]);
/// let Ok(Completion::Events { records, head }) = &results[0].1 else { panic!() };
/// assert_eq!((records.len(), *head), (1, 1));
/// ```
pub struct FileStore {
    pub(crate) vfs: Arc<dyn Vfs>,
    // Boxed: the store sits in enums and futures of the layers above; keep it small.
    pub(crate) options: Box<FileOptions>,
    pub(crate) store_id: u64,
    pub(crate) index: Box<Index>,
    pub(crate) segments: BTreeMap<u64, Segment>,
    pub(crate) active: u64,
    pub(crate) floor: u64,
    /// The newest segment the identity file records.
    pub(crate) newest_recorded: u64,
    /// The active segment ends with a seal: the next write starts a new segment.
    pub(crate) active_sealed: bool,
    /// The log ends with a close marker (nothing written since).
    pub(crate) closed: bool,
    /// Bytes that are neither live records nor reclaimable, as of the last compaction.
    pub(crate) baseline: u64,
    pub(crate) fenced: Option<String>,
    pub(crate) phase: Phase,
    pub(crate) repairs: Vec<Repair>,
    pub(crate) torn_tail: Option<Box<TornTail>>,
    pub(crate) stats: Stats,
    /// The id of the next snapshot file; `None` once the last id is taken.
    pub(crate) next_snapshot_file: Option<u64>,
    /// Commits to let pass before trying a failed compaction again.
    pub(crate) compact_wait: u64,
    /// The wait after the next failure (doubles, up to 4096 commits).
    pub(crate) compact_backoff: u64,
    /// What the last open (or reopen) read.
    pub(crate) summary: Box<OpenSummary>,
    /// Where the newest index checkpoint stands (segment, offset), if known.
    pub(crate) checkpoint_at: Option<(u64, u64)>,
    /// A compaction under way, if any.
    pub(crate) compaction: crate::compaction::Compaction,
    /// Held by every entry point that uses the log (`execute`, `compact`, `reopen`, close);
    /// the compaction worker installs its result itself only when it can take it.
    pub(crate) dir_lock: Arc<Mutex<()>>,
    /// How the compaction worker is paced: free on real stores, in lockstep with the commits
    /// over the simulated disk (deterministic file operations).
    pub(crate) pacing: Pacing,
    /// Tests: the compaction worker waits once it has copied this many bytes, until released.
    pub(crate) compact_hold: Option<u64>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.vfs.path(""))
            .field("store_id", &format_args!("{:016x}", self.store_id))
            .field("streams", &self.index.streams.len())
            .field("segments", &self.segments.keys().collect::<Vec<_>>())
            .field("fenced", &self.fenced)
            .finish_non_exhaustive()
    }
}

/// The segments holding seqs `first..=last` according to `runs`, in order.
pub(crate) fn segments_of(
    runs: &std::collections::VecDeque<Run>,
    first: u64,
    last: u64,
) -> Vec<u64> {
    let from = runs.partition_point(|r| r.first <= first).saturating_sub(1);
    let mut segs: Vec<u64> = Vec::new();
    for r in runs.range(from..) {
        if r.first > last {
            break;
        }
        if segs.last() != Some(&r.seg) {
            segs.push(r.seg);
        }
    }
    segs
}

/// Whether an operation on `stream` holding records of these lengths still fits the frame.
fn fits(
    frame: &FrameBuf,
    max: usize,
    stream: &str,
    records: impl IntoIterator<Item = usize>,
) -> bool {
    let records: usize = records
        .into_iter()
        .map(|len| len.saturating_add(4))
        .fold(0, usize::saturating_add);
    frame
        .pos()
        .saturating_add(stream.len() + 64)
        .saturating_add(records)
        <= max.min(MAX_FRAME)
}

fn too_large(max: usize) -> StorageError {
    StorageError::Rejected(format!(
        "the write does not fit one log frame ({} bytes)",
        max.min(MAX_FRAME)
    ))
}

/// The frames one `execute` is building: written together, under one fdatasync.
pub(crate) struct Pending {
    seg: u64,
    start: u64,
    /// Each frame's offset in the segment, its bytes so far, and its operation count.
    frames: Vec<(u64, FrameBuf, u32)>,
}

impl Pending {
    fn new(seg: u64, at: u64) -> Self {
        let mut frame = FrameBuf::new();
        frame.put_u32(0);
        Self {
            seg,
            start: at,
            frames: vec![(at, frame, 0)],
        }
    }

    fn last(&mut self) -> &mut (u64, FrameBuf, u32) {
        if self.frames.is_empty() {
            *self = Self::new(self.seg, self.start);
        }
        let i = self.frames.len() - 1;
        &mut self.frames[i]
    }

    fn frame(&mut self) -> &FrameBuf {
        &self.last().1
    }

    fn count(&mut self) -> u32 {
        self.last().2
    }

    /// The current frame and where it will lie; counts one operation in it.
    fn current(&mut self) -> (&mut FrameBuf, Placement) {
        let seg = self.seg;
        let last = self.last();
        last.2 += 1;
        (&mut last.1, Placement { seg, at: last.0 })
    }

    /// Starts the next frame.
    fn next_frame(&mut self) {
        let (at, frame, _) = self.last();
        let at = *at + (frame.pos() + FRAME_TRAILER_LEN) as u64;
        let mut frame = FrameBuf::new();
        frame.put_u32(0);
        self.frames.push((at, frame, 0));
    }

    fn is_pending(&self, loc: &Loc) -> bool {
        loc.seg == self.seg && loc.off >= self.start
    }

    /// The bytes of a record in a pending frame.
    fn get(&self, loc: &Loc) -> Option<&[u8]> {
        if !self.is_pending(loc) {
            return None;
        }
        let (at, frame, _) = self.frames.iter().rev().find(|(at, _, _)| *at <= loc.off)?;
        let from = usize::try_from(loc.off - at).ok()?;
        frame.bytes().get(from..from.checked_add(loc.len as usize)?)
    }

    /// Seals the frames (the first starts a group commit); returns the bytes, the chain value
    /// after them, and how many operations they hold.
    fn seal(self, store: u64, mut chain: u32) -> (Vec<u8>, u32, u32) {
        let mut out = Vec::new();
        let mut ops = 0;
        for (i, (_, mut frame, count)) in self.frames.into_iter().enumerate() {
            if count == 0 {
                continue;
            }
            ops += count;
            frame.patch_u32(crate::frame::FRAME_HEADER_LEN, count);
            let flags = if i == 0 { GROUP_START } else { 0 };
            let (bytes, crc) = frame.seal(store, chain, flags);
            chain = crc;
            out.extend_from_slice(&bytes);
        }
        (out, chain, ops)
    }
}

impl FileStore {
    /// Opens the existing store in `dir` with the default [`FileOptions`], taking an exclusive
    /// lock on it and recovering its log. A missing directory, or one that holds no store, is
    /// [`FileError::NotAStore`]: use [`create`](Self::create) or
    /// [`open_or_create`](Self::open_or_create) to start one.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// assert!(matches!(
    ///     persevere_file::FileStore::open(dir.path()),
    ///     Err(persevere_file::FileError::NotAStore { .. })
    /// ));
    /// persevere_file::FileStore::create(dir.path()).unwrap();
    /// persevere_file::FileStore::open(dir.path()).unwrap();
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, FileError> {
        Self::open_with(dir, FileOptions::default())
    }

    /// Opens the existing store in `dir` with `options`.
    pub fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, FileError> {
        Self::at(dir.as_ref(), options, Mode::Open)
    }

    /// Creates a new store in `dir` (creating the directory if absent). A directory that holds
    /// a store, or the remains of one, is [`FileError::AlreadyAStore`].
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = persevere_file::FileStore::create(dir.path().join("journal")).unwrap();
    /// drop(store);
    /// assert!(persevere_file::FileStore::create(dir.path().join("journal")).is_err());
    /// ```
    pub fn create(dir: impl AsRef<Path>) -> Result<Self, FileError> {
        Self::create_with(dir, FileOptions::default())
    }

    /// Creates a new store in `dir` with `options`.
    pub fn create_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, FileError> {
        Self::at(dir.as_ref(), options, Mode::Create)
    }

    /// Opens the store in `dir`, or creates one if the directory is missing or holds no store
    /// file (no identity file, segment or snapshot file). A directory with a store's remains
    /// but no identity file is still an error, never a fresh store.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// drop(persevere_file::FileStore::open_or_create(dir.path()).unwrap());
    /// drop(persevere_file::FileStore::open_or_create(dir.path()).unwrap());
    /// ```
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self, FileError> {
        Self::open_or_create_with(dir, FileOptions::default())
    }

    /// Opens or creates the store in `dir` with `options`.
    pub fn open_or_create_with(
        dir: impl AsRef<Path>,
        options: FileOptions,
    ) -> Result<Self, FileError> {
        Self::at(dir.as_ref(), options, Mode::OpenOrCreate)
    }

    /// Opens — or creates, like [`open_or_create`](Self::open_or_create) — the store a
    /// `file://` URL names (see [`parse_url`](crate::parse_url)). URL keys name a store by
    /// where it lives, so the first use creates it.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let url = format!("file://{}", dir.path().join("s").display());
    /// drop(persevere_file::FileStore::open_url(&url).unwrap());
    /// persevere_file::FileStore::open(dir.path().join("s")).unwrap();
    /// ```
    pub fn open_url(url: &str) -> Result<Self, FileError> {
        Self::open_or_create(crate::parse_url(url)?)
    }

    fn at(dir: &Path, options: FileOptions, mode: Mode) -> Result<Self, FileError> {
        let dir_mode = match mode {
            Mode::Open => DirMode::Existing,
            Mode::Create | Mode::OpenOrCreate => DirMode::CreateIfAbsent,
        };
        let vfs = RealFs::open(dir, dir_mode)?;
        Self::open_vfs_mode(Arc::new(vfs), options, mode, Pacing::Free)
    }

    /// What open (and every reopen since) repaired or set aside: the same list as
    /// [`Store::repairs`]. Empty when the store was clean.
    pub fn repairs(&self) -> &[Repair] {
        &self.repairs
    }

    /// What open cut at the end of the log, if anything (also one of the
    /// [`repairs`](Self::repairs)).
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_deref()
    }

    /// Whether a failed write fenced the store: every command now fails until
    /// [`Store::reopen`] succeeds.
    pub fn is_fenced(&self) -> bool {
        self.fenced.is_some()
    }

    /// The store's id, chosen at creation and written in every segment and snapshot file.
    pub fn store_id(&self) -> u64 {
        self.store_id
    }

    /// Counters since open.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// What the last open (or [`reopen`](Store::reopen)) read: segments, streams, bytes,
    /// how much of the log it replayed and whether the index checkpoint was used.
    pub fn open_summary(&self) -> &OpenSummary {
        &self.summary
    }

    /// Writes the index checkpoint at the end of the log (after a seal, a close marker or a
    /// compaction: `marker` is the one the log ends with). A failure is logged: the previous
    /// checkpoint (or none) stays, and open replays a little more.
    pub(crate) fn write_checkpoint(&mut self, marker: Option<Marker>) {
        let Some(seg) = self.segments.get(&self.active) else {
            return;
        };
        let position = crate::checkpoint::Position {
            seg: self.active,
            len: seg.len,
            chain: seg.chain,
            marker,
        };
        let segments: Vec<(u64, u64)> = self.segments.iter().map(|(&n, s)| (n, s.len)).collect();
        let started = std::time::Instant::now();
        let bytes =
            crate::checkpoint::encode(self.store_id, position, self.floor, &segments, &self.index);
        match crate::checkpoint::write(&*self.vfs, &bytes) {
            Ok(()) => {
                self.checkpoint_at = Some((position.seg, position.len));
                tracing::debug!(
                    segment = position.seg,
                    offset = position.len,
                    bytes = bytes.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "wrote the index checkpoint"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "writing the index checkpoint failed; open will replay more of the log")
            }
        }
    }

    /// Opens a store over a simulated disk (feature `sim`), creating it if the disk is empty,
    /// for crash and fault simulations. Its compactions run on the calling thread, a bounded
    /// step after each group commit, so that its file operations come in a fixed order.
    #[cfg(any(test, feature = "sim"))]
    pub fn open_sim(disk: crate::sim::SimDisk, options: FileOptions) -> Result<Self, FileError> {
        Self::open_vfs_mode(
            Arc::new(disk),
            options,
            Mode::OpenOrCreate,
            Pacing::Lockstep,
        )
    }

    #[cfg(test)]
    pub(crate) fn open_vfs(
        vfs: Arc<dyn Vfs>,
        options: FileOptions,
        pacing: Pacing,
    ) -> Result<Self, FileError> {
        Self::open_vfs_mode(vfs, options, Mode::OpenOrCreate, pacing)
    }

    fn open_vfs_mode(
        vfs: Arc<dyn Vfs>,
        options: FileOptions,
        mode: Mode,
        pacing: Pacing,
    ) -> Result<Self, FileError> {
        let loaded = open::load(&*vfs, &options, mode)?;
        let mut store = Self {
            vfs,
            options: Box::new(options),
            store_id: loaded.store_id,
            index: Box::default(),
            segments: BTreeMap::new(),
            active: 0,
            floor: 0,
            newest_recorded: 0,
            active_sealed: false,
            closed: true,
            baseline: 0,
            fenced: None,
            phase: Phase::Idle,
            repairs: Vec::new(),
            torn_tail: None,
            stats: Stats::default(),
            next_snapshot_file: Some(1),
            compact_wait: 0,
            compact_backoff: 1,
            summary: Box::new(loaded.summary.clone()),
            checkpoint_at: None,
            compaction: crate::compaction::Compaction::Idle,
            dir_lock: Arc::new(Mutex::new(())),
            pacing,
            compact_hold: None,
        };
        store.install(loaded)?;
        Ok(store)
    }

    /// Takes over what open rebuilt; starts a segment when there is none or the newest is
    /// sealed.
    fn install(&mut self, loaded: Loaded) -> Result<(), FileError> {
        self.compact_stop(Stop::Drop);
        // Fenced until whole: a failure below leaves a half-built store, whose drop must write
        // nothing (its newest segment may end with a seal that nothing may follow).
        self.fenced = Some("the store's files are being opened; reopen it if this persists".into());
        let Loaded {
            store_id,
            index,
            segments,
            active,
            floor,
            newest_recorded,
            clean_end: _,
            repairs,
            torn_tail,
            next_snapshot_file,
            active_sealed,
            closed,
            summary,
        } = loaded;
        self.checkpoint_at = match summary.checkpoint {
            crate::IndexCheckpoint::Used { segment, offset } => Some((segment, offset)),
            _ => None,
        };
        *self.summary = summary;
        self.store_id = store_id;
        *self.index = index;
        self.segments = segments;
        self.active = active;
        self.floor = floor;
        self.newest_recorded = newest_recorded;
        self.repairs.extend(repairs);
        if torn_tail.is_some() {
            self.torn_tail = torn_tail.map(Box::new);
        }
        self.next_snapshot_file = next_snapshot_file;
        self.active_sealed = active_sealed;
        self.closed = closed;
        self.baseline = 0;
        self.phase = Phase::Idle;
        if self.active == 0 || self.active_sealed {
            let n = self.active + 1;
            self.start_segment(n)
                .map_err(io_err(&*self.vfs, "creating", &segment::name(n)))?;
        }
        self.fenced = None;
        Ok(())
    }

    /// Creates segment `n` after the (sealed or absent) active one, and records it in the
    /// identity file.
    fn start_segment(&mut self, n: u64) -> io::Result<()> {
        let seg = segment::create(&*self.vfs, self.store_id, n, self.floor)?;
        self.segments.insert(n, seg);
        self.index.fine.insert(n, SegFine::default());
        self.active = n;
        self.trim_fine(n);
        self.active = n;
        self.active_sealed = false;
        Manifest {
            store: self.store_id,
            newest: n,
            closed: (0, 0),
        }
        .write(&*self.vfs)?;
        self.newest_recorded = n;
        Ok(())
    }

    pub(crate) fn fence(&mut self, what: &str, error: &io::Error) {
        self.compact_cancel();
        tracing::error!(%error, dir = %self.vfs.path("").display(), "{what} failed: the store is fenced until reopened");
        self.fenced = Some(format!(
            "{what} failed ({error}); the store is fenced: reopen it to recover"
        ));
    }

    /// Writes a marker frame (a seal or a close marker) at the end of the active segment and
    /// makes it durable. Nothing is ever written after a seal: a sealed segment is an error.
    fn write_marker(&mut self, marker: Marker) -> io::Result<()> {
        if self.active_sealed {
            return Err(io::Error::other(format!(
                "{} is sealed: nothing may be written after its seal",
                self.vfs.path(&segment::name(self.active)).display()
            )));
        }
        let store = self.store_id;
        let seg = self
            .segments
            .get_mut(&self.active)
            .ok_or_else(|| io::Error::other("no active segment"))?;
        let (bytes, chain) = batch::marker(marker).seal(store, seg.chain, GROUP_START);
        seg.file.write_at(&bytes, seg.len)?;
        seg.file.sync()?;
        seg.len += bytes.len() as u64;
        seg.chain = chain;
        Ok(())
    }

    /// Seals the active segment and starts the next.
    pub(crate) fn roll(&mut self) -> io::Result<()> {
        if !self.active_sealed {
            self.write_marker(Marker::Seal)?;
            self.active_sealed = true;
            self.write_checkpoint(Some(Marker::Seal));
        }
        self.start_segment(self.active + 1)
    }

    pub(crate) fn active_len(&self) -> u64 {
        self.segments.get(&self.active).map_or(0, |s| s.len)
    }

    /// Cuts the active segment back to the end this store made durable, before a reopen reads
    /// the directory again. Bytes after it are those of a log write that failed (its write, or
    /// its sync, which then never ran or failed): the kernel may have marked them clean without
    /// writing them, so they sit in the page cache only, and a journal re-reading the log would
    /// take them for a write that landed.
    /// They are kept in quarantine and the cut is reported. A segment that is no longer the
    /// file its name leads to is left alone (the open deals with what is there).
    fn cut_unsynced_tail(&mut self) -> io::Result<Option<Repair>> {
        if self.check_active().is_err() {
            return Ok(None);
        }
        let name = segment::name(self.active);
        let Some(seg) = self.segments.get_mut(&self.active) else {
            return Ok(None);
        };
        let len = seg.file.len()?;
        if len <= seg.len {
            return Ok(None);
        }
        let dropped = len - seg.len;
        let mut bytes = vec![0; usize::try_from(dropped).map_err(io::Error::other)?];
        seg.file.read_at(&mut bytes, seg.len)?;
        let what = format!(
            "{}: cut {dropped} bytes at offset {}: a log write whose write or fdatasync failed, never acknowledged",
            self.vfs.path(&name).display(),
            seg.len
        );
        let kept = quarantine::keep_bytes(&*self.vfs, &name, &bytes, &what)?;
        seg.file.truncate(seg.len)?;
        seg.file.sync()?;
        let streams = bytes
            .get(crate::frame::FRAME_HEADER_LEN..)
            .map(batch::streams_in)
            .unwrap_or_default();
        let kept = self.vfs.path(&kept).display().to_string();
        tracing::warn!(what = %what, kept_at = %kept, streams = ?streams, "the file store cut a log write that failed");
        Ok(Some(Repair::new(what, Some(kept), streams)))
    }

    /// Whether the active segment is still the file its name leads to: a segment removed or
    /// replaced under a running store must fence it, never take acknowledged writes.
    fn check_active(&self) -> io::Result<()> {
        let name = segment::name(self.active);
        let seg = self
            .segments
            .get(&self.active)
            .ok_or_else(|| io::Error::other("no active segment"))?;
        let open = seg.file.id()?;
        match self.vfs.file_id(&name) {
            Ok(on_disk) if on_disk == open => Ok(()),
            Ok(_) => Err(io::Error::other(format!(
                "the active segment {} was replaced by another file",
                self.vfs.path(&name).display()
            ))),
            Err(e) => Err(io::Error::other(format!(
                "the active segment {} is gone ({e})",
                self.vfs.path(&name).display()
            ))),
        }
    }

    /// Executes one batch: reads answer at their place in the batch, writes are encoded into
    /// frames, which are written and made durable (one fdatasync) before anything is
    /// acknowledged.
    fn run(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        if let Some(reason) = &self.fenced {
            return batch
                .into_iter()
                .map(|c| (c.command.id(), Err(StorageError::Failed(reason.clone()))))
                .collect();
        }
        if (self.active_len() >= self.options.segment_size || self.active_sealed)
            && batch.iter().any(|c| c.command.is_write())
        {
            if let Err(error) = self.roll() {
                self.fence("starting a new segment", &error);
                return self.run(batch);
            }
        }
        let max = self.options.frame_max;
        let mut pending = Pending::new(self.active, self.active_len());
        let mut dir_sync = false;
        let mut results = Vec::with_capacity(batch.len());
        for StreamCommand { stream, command } in batch {
            let id = command.id();
            let mut op = None;
            // Whether the write fits the current frame, else a new one (the batch is split
            // across frames under one fdatasync), else no frame at all.
            let room = |pending: &mut Pending, records: &[usize]| -> bool {
                if fits(pending.frame(), max, &stream, records.iter().copied()) {
                    return true;
                }
                if pending.count() > 0
                    && fits(&FrameBuf::new(), max, &stream, records.iter().copied())
                {
                    pending.next_frame();
                    return true;
                }
                false
            };
            let result = match command {
                Command::LoadSnapshot { before, .. } => {
                    self.load_snapshot(&stream, before, &pending)
                }
                Command::ReadEvents { from, limit, .. } => {
                    self.read_events(&stream, from, limit, &pending)
                }
                Command::Append {
                    expected_last,
                    events,
                    snapshot,
                    ..
                } => {
                    let head = self.index.streams.get(&stream).map_or(0, |s| s.head);
                    let after = crate::index::seq_after(expected_last, events.len());
                    let placed = snapshot
                        .as_ref()
                        .map(|s| {
                            snapshot_file::place(s.bytes.len(), self.options.snapshot_file_min)
                        })
                        .transpose();
                    let inline_snapshot = snapshot
                        .as_ref()
                        .filter(|_| matches!(placed, Ok(Some(Place::Log))));
                    let sizes: Vec<usize> = events
                        .iter()
                        .chain(inline_snapshot)
                        .map(|r| r.bytes.len())
                        .collect();
                    if head != expected_last {
                        Err(StorageError::Conflict {
                            expected: expected_last,
                            actual: head,
                        })
                    } else if events.is_empty()
                        || after.is_none()
                        || !events
                            .iter()
                            .zip(expected_last + 1..)
                            .all(|(r, s)| r.seq == s)
                        || snapshot
                            .as_ref()
                            .is_some_and(|s| s.seq.checked_add(1) != after)
                    {
                        Err(StorageError::Rejected(
                            "append must hold contiguous events after the head (below the largest seq), and a snapshot at the last one".into(),
                        ))
                    } else if let Err(refused) = placed {
                        Err(refused)
                    } else if !room(&mut pending, &sizes) {
                        Err(too_large(max))
                    } else {
                        self.place_snapshot(
                            &stream,
                            snapshot.as_ref().map(|s| &s.bytes[..]),
                            &mut dir_sync,
                        )
                        .map(|snap| {
                            let (frame, place) = pending.current();
                            op = Some(batch::append(
                                frame,
                                place,
                                &stream,
                                expected_last,
                                &events,
                                snap,
                            ));
                            Completion::Done
                        })
                    }
                }
                Command::SaveSnapshot { snapshot, .. } => {
                    let len = snapshot.bytes.len();
                    match snapshot_file::place(len, self.options.snapshot_file_min) {
                        Err(refused) => Err(refused),
                        Ok(placed) => {
                            let inline = if placed == Place::Log { len } else { 0 };
                            if !room(&mut pending, &[inline]) {
                                Err(too_large(max))
                            } else {
                                self.place_snapshot(&stream, Some(&snapshot.bytes), &mut dir_sync)
                                    .map(|snap| {
                                        op = snap.map(|snap| {
                                            let (frame, place) = pending.current();
                                            batch::save_snapshot(
                                                frame,
                                                place,
                                                &stream,
                                                snapshot.seq,
                                                snap,
                                            )
                                        });
                                        Completion::Done
                                    })
                            }
                        }
                    }
                }
                Command::DeleteEvents { up_to, .. } => {
                    if let Some(s) = self.index.streams.get(&stream) {
                        if up_to.min(s.head) > s.low_water && room(&mut pending, &[]) {
                            let (frame, _) = pending.current();
                            op = Some(batch::delete_events(frame, &stream, up_to));
                        }
                    }
                    Ok(Completion::Done)
                }
                Command::DeleteSnapshots { keep, .. } => {
                    if let Some(s) = self.index.streams.get(&stream) {
                        if s.snapshots.len() > keep.max(1) && room(&mut pending, &[]) {
                            let (frame, _) = pending.current();
                            op = Some(batch::delete_snapshots(frame, &stream, keep as u64));
                        }
                    }
                    Ok(Completion::Done)
                }
                _ => Err(StorageError::Rejected(
                    "command not supported by this store".into(),
                )),
            };
            if let Some(op) = op {
                if let Err(reason) = self.index.apply(op) {
                    // Validated above; reaching this is a bug, and the index may be off.
                    self.fence("indexing a write", &io::Error::other(reason));
                }
            }
            results.push((id, result));
        }
        let mut committed = false;
        let (bytes, chain, count) = pending.seal(
            self.store_id,
            self.segments.get(&self.active).map_or(0, |s| s.chain),
        );
        if count > 0 && self.fenced.is_none() {
            let synced = if dir_sync {
                // Snapshot files were renamed into place: make their names durable first.
                self.vfs.sync_dir()
            } else {
                Ok(())
            };
            let written = synced.and_then(|()| self.check_active()).and_then(|()| {
                let at = self.active_len();
                match self.segments.get_mut(&self.active) {
                    Some(seg) => seg
                        .file
                        .write_at(&bytes, at)
                        .and_then(|()| seg.file.sync())
                        .map(|()| {
                            seg.len += bytes.len() as u64;
                            seg.chain = chain;
                        }),
                    None => Err(io::Error::other("no active segment")),
                }
            });
            match written {
                Ok(()) => {
                    committed = true;
                    self.closed = false;
                    self.remove_dropped_files();
                    self.stats.commits += 1;
                    self.stats.writes += u64::from(count);
                    self.maybe_compact();
                }
                Err(error) => self.fence("appending to the log", &error),
            }
        }
        // Files dropped by writes that did not commit must stay.
        self.index.dropped_files.clear();
        if let (Some(reason), false) = (&self.fenced, committed) {
            return results
                .into_iter()
                .map(|(id, _)| (id, Err(StorageError::Failed(reason.clone()))))
                .collect();
        }
        results
    }

    /// A large snapshot's file could not be written: that command fails, nothing of it is in
    /// the log, and the store stays open.
    fn snapshot_file_failed(&self, stream: &str, error: &io::Error) -> StorageError {
        tracing::warn!(%stream, %error, "writing a snapshot file failed: that command fails, the store stays open");
        StorageError::Failed(format!(
            "writing a snapshot file of stream {stream:?} failed ({error}); nothing of this command was logged"
        ))
    }

    /// The records at `locs`: each run of nearby records in one segment is read with one
    /// call into one buffer, and every record is a slice of it (no per-record copy).
    pub(crate) fn read_locs(
        &self,
        locs: &[Loc],
        pending: &Pending,
    ) -> io::Result<Vec<SharedBytes>> {
        const RUN_MAX: u64 = 1 << 20;
        const GAP_MAX: u64 = 64 << 10;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "index points outside the log");
        let mut out = Vec::with_capacity(locs.len());
        let mut i = 0;
        while i < locs.len() {
            let loc = locs[i];
            if pending.is_pending(&loc) {
                out.push(SharedBytes::from(pending.get(&loc).ok_or_else(bad)?));
                i += 1;
                continue;
            }
            let start = loc.off;
            let mut end = loc.off + u64::from(loc.len);
            let mut j = i + 1;
            while let Some(next) = locs.get(j) {
                let next_end = next.off + u64::from(next.len);
                if next.seg != loc.seg
                    || next.off < end
                    || next.off - end > GAP_MAX
                    || next_end - start > RUN_MAX
                    || pending.is_pending(next)
                {
                    break;
                }
                end = next_end;
                j += 1;
            }
            let seg = self.segments.get(&loc.seg).ok_or_else(bad)?;
            let mut buf = vec![0u8; usize::try_from(end - start).map_err(|_| bad())?];
            seg.file.read_at(&mut buf, start)?;
            let run = SharedBytes::from(buf);
            for l in &locs[i..j] {
                let from = (l.off - start) as usize;
                out.push(
                    run.slice_checked(from..from + l.len as usize)
                        .ok_or_else(bad)?,
                );
            }
            i = j;
        }
        Ok(out)
    }

    /// What a failed read of `stream` from `first` answers: damaged bytes (found verifying a
    /// segment the checkpoint covered, or an index naming bytes that are not there) are
    /// [`StorageError::Damaged`] — that stream's read fails, the store and every other stream
    /// go on; any other error is [`StorageError::Failed`].
    fn read_failed(&self, stream: &str, first: u64, error: io::Error) -> StorageError {
        if error.kind() == io::ErrorKind::InvalidData {
            tracing::error!(
                stream,
                seq = first,
                %error,
                "reading events found damaged bytes; restore the file from a backup or set the stream aside"
            );
            return StorageError::Damaged {
                seq: first,
                reason: format!("reading stream {stream:?} found damage: {error}"),
            };
        }
        StorageError::Failed(format!("reading stream {stream:?} failed: {error}"))
    }

    fn read_events(
        &mut self,
        stream: &str,
        from: u64,
        limit: usize,
        pending: &Pending,
    ) -> Result<Completion, StorageError> {
        let Some(s) = self.index.streams.get(stream) else {
            return Ok(Completion::Events {
                records: Vec::new(),
                head: 0,
            });
        };
        let head = s.head;
        let first = from.max(s.low_water + 1);
        if first > head || limit == 0 {
            return Ok(Completion::Events {
                records: Vec::new(),
                head,
            });
        }
        let last = head.min(first.saturating_add(limit as u64 - 1));
        let bytes = self
            .read_range(stream, first, last, pending)
            .map_err(|e| self.read_failed(stream, first, e))?;
        Ok(Completion::Events {
            records: bytes
                .into_iter()
                .zip(first..)
                .map(|(bytes, seq)| StoredRecord { seq, bytes })
                .collect(),
            head,
        })
    }

    /// Makes sure the positions of segment `seg`'s events are loaded (scanning the segment if
    /// they are not), keeping at most [`FINE_CACHE`] sealed segments' positions.
    fn load_fine(&mut self, seg: u64) -> io::Result<()> {
        self.index.tick += 1;
        let tick = self.index.tick;
        if let Some(fine) = self.index.fine.get_mut(&seg) {
            fine.used = tick;
            return Ok(());
        }
        let segment = self.segments.get(&seg).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the index names segment {seg}, which is not open"),
            )
        })?;
        let started = std::time::Instant::now();
        let mut fine = crate::positions::scan(&*segment.file, segment.len, self.store_id, seg)
            .map_err(|e| {
                let e = io::Error::from(e);
                io::Error::new(
                    e.kind(),
                    format!("{}: {e}", self.vfs.path(&segment::name(seg)).display()),
                )
            })?;
        tracing::debug!(
            segment = seg,
            bytes = segment.len,
            micros = started.elapsed().as_micros() as u64,
            "loaded the positions of a segment's events"
        );
        fine.used = tick;
        self.index.fine.insert(seg, fine);
        self.trim_fine(seg);
        Ok(())
    }

    /// Drops the least recently used sealed segments' positions beyond [`FINE_CACHE`] (never
    /// the active segment's, nor `keep`'s).
    fn trim_fine(&mut self, keep: u64) {
        while self.index.fine.len() > FINE_CACHE + 1 {
            let active = self.active;
            let oldest = self
                .index
                .fine
                .iter()
                .filter(|(&n, _)| n != active && n != keep)
                .min_by_key(|(_, f)| f.used)
                .map(|(&n, _)| n);
            match oldest {
                Some(n) => self.index.fine.remove(&n),
                None => break,
            };
        }
    }

    /// The bytes of live events `first..=last` of `stream` (all present in the index).
    fn read_range(
        &mut self,
        stream: &str,
        first: u64,
        last: u64,
        pending: &Pending,
    ) -> io::Result<Vec<SharedBytes>> {
        let segs = match self.index.streams.get(stream) {
            Some(s) => segments_of(&s.runs, first, last),
            None => return Ok(Vec::new()),
        };
        self.read_in(stream, &segs, first, last, pending)
    }

    /// The bytes of events `first..=last` of `stream`, which lie in segments `segs`.
    pub(crate) fn read_in(
        &mut self,
        stream: &str,
        segs: &[u64],
        first: u64,
        last: u64,
        pending: &Pending,
    ) -> io::Result<Vec<SharedBytes>> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        // The extents to read: (where, first seq, count).
        let mut want: Vec<(Loc, u64, u32)> = Vec::new();
        let mut seq = first;
        for &seg in segs {
            self.load_fine(seg)?;
            let Some(fine) = self.index.fine.get(&seg) else {
                continue;
            };
            for e in fine.from(stream, seq) {
                if e.first > last || seq > last {
                    break;
                }
                if e.first > seq {
                    return Err(bad(format!(
                        "stream {stream:?}: event {seq} is not in segment {seg} where the index places it"
                    )));
                }
                want.push((
                    Loc {
                        seg,
                        off: e.off,
                        len: e.span,
                    },
                    e.first,
                    e.count,
                ));
                seq = e.first + u64::from(e.count);
            }
        }
        if seq <= last {
            return Err(bad(format!(
                "stream {stream:?}: event {seq} is in no segment the index names"
            )));
        }
        let locs: Vec<Loc> = want.iter().map(|w| w.0).collect();
        let spans = self.read_locs(&locs, pending)?;
        let mut out = Vec::with_capacity((last + 1 - first) as usize);
        for (span, (loc, e_first, count)) in spans.into_iter().zip(want) {
            let mut at = 0usize;
            for s in e_first..e_first + u64::from(count) {
                let len = span
                    .get(at..at + 4)
                    .map(|b| crate::frame::u32_at(b, 0) as usize)
                    .ok_or_else(|| {
                        bad(format!(
                            "segment {}: a record's length at offset {} is outside the log",
                            loc.seg, loc.off
                        ))
                    })?;
                let record = span.slice_checked(at + 4..at + 4 + len).ok_or_else(|| {
                    bad(format!(
                        "segment {}: a record at offset {} is outside the log",
                        loc.seg, loc.off
                    ))
                })?;
                at += 4 + len;
                if (first..=last).contains(&s) {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    fn load_snapshot(
        &mut self,
        stream: &str,
        before: Option<u64>,
        pending: &Pending,
    ) -> Result<Completion, StorageError> {
        let found = self
            .index
            .streams
            .get(stream)
            .and_then(|s| s.snapshots.range(..before.unwrap_or(u64::MAX)).next_back());
        let Some((&seq, &loc)) = found else {
            return Ok(Completion::Snapshot(None));
        };
        let bytes = self.read_snapshot(stream, seq, loc, pending)?;
        Ok(Completion::Snapshot(Some(StoredRecord { seq, bytes })))
    }

    /// Where a snapshot of `bytes` of `stream` goes (see [`snapshot_file::place`]): a large
    /// one is written to its own file now (temporary file, fsync, rename; the directory fsync
    /// comes before the frame is written, see `dir_sync`), a small one goes in the frame; one
    /// too large for the format is refused, never cut.
    fn place_snapshot<'a>(
        &mut self,
        stream: &str,
        bytes: Option<&'a [u8]>,
        dir_sync: &mut bool,
    ) -> Result<Option<SnapIn<'a>>, StorageError> {
        let Some(bytes) = bytes else { return Ok(None) };
        if snapshot_file::place(bytes.len(), self.options.snapshot_file_min)? == Place::Log {
            return Ok(Some(SnapIn::Inline(bytes)));
        }
        let len = u32::try_from(bytes.len())
            .map_err(|_| StorageError::Rejected("a snapshot too large for its file".into()))?;
        let Some(id) = self.next_snapshot_file else {
            return Err(StorageError::Rejected(format!(
                "no snapshot file id is left after {}: move that file out of the store directory \
                 (if the store does not use it) and reopen; nothing of this command was written",
                self.vfs.path(&snapshot_file::name(u64::MAX)).display()
            )));
        };
        self.next_snapshot_file = id.checked_add(1);
        snapshot_file::write(&*self.vfs, self.store_id, id, bytes)
            .map_err(|error| self.snapshot_file_failed(stream, &error))?;
        *dir_sync = true;
        Ok(Some(SnapIn::File {
            id,
            len,
            crc: crc32fast::hash(bytes),
        }))
    }

    /// A snapshot's bytes. A snapshot file that is missing or damaged is
    /// [`StorageError::Damaged`] (the journal falls back to an older snapshot or a full
    /// replay); a failed log read is answered as [`read_failed`](Self::read_failed) says.
    fn read_snapshot(
        &mut self,
        stream: &str,
        seq: u64,
        loc: SnapLoc,
        pending: &Pending,
    ) -> Result<SharedBytes, StorageError> {
        match loc {
            // The segment is verified (once) before its bytes are answered, as for events.
            SnapLoc::Log(loc) => Ok(self
                .load_fine(loc.seg)
                .and_then(|()| self.read_locs(&[loc], pending))
                .map_err(|e| self.read_failed(stream, seq, e))?
                .pop()
                .unwrap_or_default()),
            SnapLoc::File { id, len, crc } => {
                snapshot_file::read(&*self.vfs, self.store_id, id, len, crc)
                    .map(SharedBytes::from)
                    .map_err(|reason| {
                        tracing::warn!(%stream, seq, %reason, "a snapshot cannot be loaded");
                        StorageError::Damaged { seq, reason }
                    })
            }
        }
    }

    /// Removes the snapshot files the last (durable) commit dropped. A failure leaves an
    /// unreferenced file, which the next open removes.
    pub(crate) fn remove_dropped_files(&mut self) {
        for id in std::mem::take(&mut self.index.dropped_files) {
            let name = snapshot_file::name(id);
            if let Err(error) = self.vfs.remove(&name) {
                tracing::warn!(file = %self.vfs.path(&name).display(), %error, "could not remove a dropped snapshot file");
            }
        }
    }

    pub(crate) fn total_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.len).sum()
    }

    #[cfg(test)]
    pub(crate) fn snapshot_files(&self) -> usize {
        self.index
            .streams
            .values()
            .flat_map(|s| s.snapshots.values())
            .filter(|l| matches!(l, SnapLoc::File { .. }))
            .count()
    }

    #[cfg(test)]
    pub(crate) fn segment_numbers(&self) -> Vec<u64> {
        self.segments.keys().copied().collect()
    }
}

impl Store for FileStore {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        if self.phase == Phase::Executing {
            tracing::error!(dir = %self.vfs.path("").display(), "a previous execute panicked: the store is fenced until reopened");
            self.fenced = Some(
                "a previous execute panicked; the store is fenced: reopen it to recover".into(),
            );
        }
        let lock = Arc::clone(&self.dir_lock);
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.phase = Phase::Executing;
        if self.fenced.is_none() {
            // A compaction whose worker finished: its result goes in before this batch.
            self.advance_compaction();
        }
        let commits = self.stats.commits;
        let results = self.run(batch);
        self.phase = Phase::Idle;
        drop(guard);
        if self.pacing == Pacing::LockstepIdle && self.stats.commits > commits {
            // The step runs while no `execute` holds the lock, as an idle store's would.
            self.compact_step(self.options.compact_step_bytes);
        }
        results
    }

    fn repairs(&self) -> &[Repair] {
        &self.repairs
    }

    fn fenced(&self) -> Option<String> {
        self.fenced.clone()
    }

    /// Reopens the store's files in place (keeping the directory lock) and rebuilds the index
    /// from what is durable, after cutting the log write that failed (see
    /// `cut_unsynced_tail`); repairs it makes, that cut included, are added to [`Store::repairs`].
    fn reopen(&mut self) -> Result<(), StorageError> {
        let lock = Arc::clone(&self.dir_lock);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        // The worker is stopped (and its files gone) before the directory is read again.
        self.compact_stop(Stop::Drop);
        let loaded = self
            .cut_unsynced_tail()
            .map_err(|e| format!("cutting the write that failed: {e}"))
            .and_then(|cut| {
                self.repairs.extend(cut);
                open::load(&*self.vfs, &self.options, Mode::Open).map_err(|e| e.to_string())
            })
            .map_err(|error| {
                tracing::warn!(%error, "reopening the store failed; it stays fenced");
                StorageError::Failed(format!("reopening the store failed: {error}"))
            })?;
        self.segments.clear();
        if let Err(e) = self.install(loaded) {
            let reason = format!("reopening the store failed: {e}");
            self.fenced = Some(reason.clone());
            return Err(StorageError::Failed(reason));
        }
        tracing::info!(dir = %self.vfs.path("").display(), "reopened the store");
        Ok(())
    }
}

impl Drop for FileStore {
    /// A clean shutdown writes a close marker (every frame before it was acknowledged, so
    /// damage to any of them is corruption, never a torn tail) and records the log's end in
    /// the identity file (a log found shorter was cut).
    fn drop(&mut self) {
        let lock = Arc::clone(&self.dir_lock);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        // A compaction whose copy is complete is installed; one still copying is abandoned
        // (its worker stops at its next frame) and its temporary file removed.
        self.compact_stop(Stop::Keep);
        if self.fenced.is_none() && self.phase == Phase::Idle && !self.closed {
            let closed = self
                .check_active()
                .and_then(|()| self.write_marker(Marker::Close))
                .map(|()| self.write_checkpoint(Some(Marker::Close)))
                .and_then(|()| {
                    Manifest {
                        store: self.store_id,
                        newest: self.active,
                        closed: (self.active, self.active_len()),
                    }
                    .write(&*self.vfs)
                });
            if let Err(error) = closed {
                tracing::warn!(%error, "recording the clean shutdown failed");
            }
        } else if self.fenced.is_none()
            && self.phase == Phase::Idle
            && self.checkpoint_at != Some((self.active, self.active_len()))
        {
            // Nothing written since a clean shutdown, but no checkpoint stands at the end
            // (a store written before checkpoints existed): write one now.
            let marker = (self.active_len() > SEGMENT_HEADER_LEN as u64).then_some(Marker::Close);
            self.write_checkpoint(marker);
        }
    }
}
