//! [`FileStore`]: open (recovery), execute (group commit), compaction.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use persevere_core::{
    Command, CommandResult, Completion, StorageError, Store, StoredRecord, StreamCommand,
};

use crate::batch::{self, Placement, SnapIn};
use crate::frame::{FrameBuf, SegmentHeader, MAX_FRAME, SEGMENT_HEADER_LEN};
use crate::index::{Index, Loc, Op, SnapLoc};
use crate::segment::{self, End, Segment};
use crate::snapshot_file;
use crate::vfs::{RealFs, Vfs};
use crate::FileError;

/// Tuning of a [`FileStore`]. The defaults suit most uses.
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
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            compact_min_bytes: 16 << 20,
            snapshot_file_min: 64 << 10,
        }
    }
}

/// What open found and cut at the end of the log: an interrupted write, never acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file that was truncated (or removed, when its header was incomplete).
    pub file: PathBuf,
    /// The offset it was truncated at.
    pub offset: u64,
    /// How many bytes were dropped.
    pub dropped_bytes: u64,
}

/// Counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `execute` calls that wrote (each one group commit: one frame, one fdatasync).
    pub commits: u64,
    /// Write commands acknowledged by those commits.
    pub writes: u64,
    /// Compactions run.
    pub compactions: u64,
}

/// A crash-safe, group-committing event journal in one directory.
///
/// Every stream's events and snapshots go to one append-only, segmented log of checksummed
/// frames; each [`Store::execute`] call writes one frame holding all of its writes and makes it
/// durable with one fdatasync before any of them is acknowledged. An in-memory index (stream →
/// head, compaction mark, seq → location) is rebuilt at open. See the [crate docs](crate) for the
/// format and the recovery rules.
///
/// ```
/// use std::sync::Arc;
/// use persevere_core::{Command, CommandId, Completion, Store, StoredRecord, StreamCommand};
/// let dir = tempfile::tempdir().unwrap();
/// let mut store = persevere_file::FileStore::open(dir.path()).unwrap();
/// let append = Command::Append {
///     id: CommandId(1),
///     expected_last: 0,
///     events: vec![StoredRecord { seq: 1, bytes: b"hello".to_vec() }],
///     snapshot: None,
/// };
/// let results = store.execute(vec![StreamCommand { stream: Arc::from("greeter"), command: append }]);
/// assert_eq!(results, vec![(CommandId(1), Ok(Completion::Done))]);
/// drop(store);
/// let mut store = persevere_file::FileStore::open(dir.path()).unwrap();
/// let read = Command::ReadEvents { id: CommandId(2), from: 1, limit: 10 };
/// let results = store.execute(vec![StreamCommand { stream: Arc::from("greeter"), command: read }]);
/// let Ok(Completion::Events { records, head }) = &results[0].1 else { panic!() };
/// assert_eq!((records.len(), *head), (1, 1));
/// ```
pub struct FileStore {
    vfs: Box<dyn Vfs>,
    options: FileOptions,
    index: Index,
    segments: BTreeMap<u64, Segment>,
    active: u64,
    floor: u64,
    /// Bytes that are neither live records nor reclaimable, as of the last compaction.
    baseline: u64,
    fenced: Option<String>,
    torn_tail: Option<TornTail>,
    stats: Stats,
    next_snapshot_file: u64,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.vfs.path(""))
            .field("streams", &self.index.streams.len())
            .field("segments", &self.segments.keys().collect::<Vec<_>>())
            .field("fenced", &self.fenced)
            .finish_non_exhaustive()
    }
}

fn io_err(vfs: &dyn Vfs, op: &'static str, name: &str) -> impl Fn(io::Error) -> FileError {
    let path = vfs.path(name);
    move |source| FileError::Io {
        op,
        path: path.clone(),
        source,
    }
}

/// Whether an operation on `stream` holding records of these lengths still fits the frame.
fn fits(frame: &FrameBuf, stream: &str, records: impl IntoIterator<Item = usize>) -> bool {
    let records: usize = records
        .into_iter()
        .map(|len| len.saturating_add(4))
        .fold(0, usize::saturating_add);
    frame
        .pos()
        .saturating_add(stream.len() + 64)
        .saturating_add(records)
        <= MAX_FRAME
}

fn too_large() -> StorageError {
    StorageError::Rejected(format!(
        "the write does not fit one log frame ({MAX_FRAME} bytes with the rest of its batch)"
    ))
}

impl FileStore {
    /// Opens the store in `dir` (created if absent) with the default [`FileOptions`], taking an
    /// exclusive lock on it and recovering its log.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, FileError> {
        Self::open_with(dir, FileOptions::default())
    }

    /// Opens the store in `dir` with `options`.
    pub fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, FileError> {
        let vfs = RealFs::open(dir.as_ref())?;
        Self::open_vfs(Box::new(vfs), options)
    }

    /// Opens the store a `file://` URL names (see [`parse_url`](crate::parse_url)).
    pub fn open_url(url: &str) -> Result<Self, FileError> {
        Self::open(crate::parse_url(url)?)
    }

    /// What open truncated at the end of the log, if anything.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// Whether a failed write fenced the store: every command now fails; reopen to recover.
    pub fn is_fenced(&self) -> bool {
        self.fenced.is_some()
    }

    /// Counters since open.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Opens a store over a simulated disk (feature `sim`), for crash and fault simulations.
    #[cfg(any(test, feature = "sim"))]
    pub fn open_sim(disk: crate::sim::SimDisk, options: FileOptions) -> Result<Self, FileError> {
        Self::open_vfs(Box::new(disk), options)
    }

    pub(crate) fn open_vfs(vfs: Box<dyn Vfs>, options: FileOptions) -> Result<Self, FileError> {
        let names = vfs.list().map_err(io_err(&*vfs, "listing", ""))?;
        let mut numbers = Vec::new();
        let mut snapshot_files = Vec::new();
        let mut removed = false;
        for name in &names {
            if name.ends_with(".tmp") {
                vfs.remove(name).map_err(io_err(&*vfs, "removing", name))?;
                removed = true;
            } else if let Some(n) = segment::parse_name(name) {
                numbers.push(n);
            } else if let Some(id) = snapshot_file::parse_name(name) {
                snapshot_files.push(id);
            }
        }
        numbers.sort_unstable();
        let mut torn_tail = None;
        // Headers: the newest segment may be a torn creation; find the floor.
        let mut headers = BTreeMap::new();
        for (i, &n) in numbers.iter().enumerate() {
            let name = segment::name(n);
            let file = vfs
                .open(&name, false)
                .map_err(io_err(&*vfs, "opening", &name))?;
            let len = file.len().map_err(io_err(&*vfs, "reading", &name))?;
            let mut head = vec![0u8; (len as usize).min(SEGMENT_HEADER_LEN)];
            file.read_at(&mut head, 0)
                .map_err(io_err(&*vfs, "reading", &name))?;
            match SegmentHeader::decode(&head) {
                Ok(h) if h.number == n && h.floor <= n => {
                    headers.insert(n, h);
                }
                Ok(_) => {
                    return Err(FileError::Corrupt {
                        file: vfs.path(&name),
                        offset: 0,
                        reason: "segment header does not match its file name".into(),
                    })
                }
                Err(reason) => {
                    let newest = i + 1 == numbers.len();
                    let torn = len < SEGMENT_HEADER_LEN as u64 || head.iter().all(|&b| b == 0);
                    if !(newest && torn && len <= SEGMENT_HEADER_LEN as u64) {
                        return Err(FileError::Corrupt {
                            file: vfs.path(&name),
                            offset: 0,
                            reason: reason.into(),
                        });
                    }
                    tracing::warn!(file = %vfs.path(&name).display(), "removing a segment whose creation was interrupted");
                    vfs.remove(&name)
                        .map_err(io_err(&*vfs, "removing", &name))?;
                    removed = true;
                    torn_tail = Some(TornTail {
                        file: vfs.path(&name),
                        offset: 0,
                        dropped_bytes: len,
                    });
                }
            }
        }
        let floor = headers.values().map(|h| h.floor).max().unwrap_or(0);
        let stale: Vec<u64> = headers.range(..floor).map(|(&n, _)| n).collect();
        for n in stale {
            headers.remove(&n);
            let name = segment::name(n);
            tracing::info!(file = %vfs.path(&name).display(), "removing a segment replaced by compaction");
            vfs.remove(&name)
                .map_err(io_err(&*vfs, "removing", &name))?;
            removed = true;
        }
        if removed {
            vfs.sync_dir().map_err(io_err(&*vfs, "syncing", ""))?;
        }
        // The log runs without a gap from segment 1, or from the compacted segment `floor`.
        for (expected, &n) in (floor.max(1)..).zip(headers.keys()) {
            if n != expected {
                return Err(FileError::Corrupt {
                    file: vfs.path(&segment::name(expected)),
                    offset: 0,
                    reason: "segment missing from the log".into(),
                });
            }
        }

        let mut store = Self {
            vfs,
            options,
            index: Index::default(),
            segments: BTreeMap::new(),
            active: 0,
            floor,
            baseline: 0,
            fenced: None,
            torn_tail,
            stats: Stats::default(),
            next_snapshot_file: 1,
        };
        let last = headers.keys().next_back().copied();
        for (&n, header) in &headers {
            store.replay(n, header, Some(n) == last)?;
        }
        store.index.dropped_files.clear();
        store.reconcile_snapshot_files(&snapshot_files)?;
        match last {
            Some(n) => store.active = n,
            None => {
                let seg = segment::create(&*store.vfs, 1, 0).map_err(io_err(
                    &*store.vfs,
                    "creating",
                    &segment::name(1),
                ))?;
                store.segments.insert(1, seg);
                store.active = 1;
            }
        }
        Ok(store)
    }

    fn replay(&mut self, n: u64, header: &SegmentHeader, last: bool) -> Result<(), FileError> {
        let name = segment::name(n);
        let mut file = self
            .vfs
            .open(&name, false)
            .map_err(io_err(&*self.vfs, "opening", &name))?;
        let file_len = file.len().map_err(io_err(&*self.vfs, "reading", &name))?;
        let compacted = header.floor == n;
        let mut seen_batch = false;
        let index = &mut self.index;
        let corrupt = |offset: u64, reason: String| FileError::Corrupt {
            file: self.vfs.path(&name),
            offset,
            reason,
        };
        let end = segment::scan_frames(
            &*file,
            file_len,
            last,
            io_err(&*self.vfs, "reading", &name),
            |data, base, start, end, at| {
                let ops =
                    batch::decode(data, base, start, end, n).map_err(|r| corrupt(at, r.into()))?;
                for op in ops {
                    let checkpoint = matches!(op, Op::Checkpoint { .. });
                    if checkpoint && (!compacted || seen_batch) {
                        return Err(corrupt(at, "checkpoint outside a compacted segment".into()));
                    }
                    seen_batch |= !checkpoint;
                    index
                        .apply(op)
                        .map_err(|r| corrupt(at, format!("operation does not fit the log: {r}")))?;
                }
                Ok(())
            },
        )?;
        let len = match end {
            End::Clean => file_len,
            End::Torn { at } => {
                let dropped = file_len - at;
                let path = self.vfs.path(&name);
                tracing::warn!(file = %path.display(), offset = at, dropped_bytes = dropped, "truncating the torn tail of the log (an interrupted, unacknowledged write)");
                file.truncate(at)
                    .and_then(|()| file.sync())
                    .map_err(io_err(&*self.vfs, "truncating", &name))?;
                self.torn_tail = Some(TornTail {
                    file: path,
                    offset: at,
                    dropped_bytes: dropped,
                });
                at
            }
            End::Corrupt { at, reason } => return Err(corrupt(at, reason.into())),
        };
        self.segments.insert(n, Segment { file, len });
        Ok(())
    }

    fn fence(&mut self, what: &str, error: &io::Error) {
        tracing::error!(%error, "{what} failed: the store is fenced until reopened");
        self.fenced = Some(format!(
            "{what} failed ({error}); the store is fenced: reopen it to recover"
        ));
    }

    fn roll(&mut self) -> io::Result<()> {
        let n = self.active + 1;
        let seg = segment::create(&*self.vfs, n, self.floor)?;
        self.segments.insert(n, seg);
        self.active = n;
        Ok(())
    }

    fn active_len(&self) -> u64 {
        self.segments.get(&self.active).map_or(0, |s| s.len)
    }

    /// Executes one batch: reads answer at their place in the batch, writes are encoded into
    /// one frame, which is written and made durable (one fdatasync) before anything is
    /// acknowledged.
    fn run(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        if let Some(reason) = &self.fenced {
            return batch
                .into_iter()
                .map(|c| (c.command.id(), Err(StorageError::Failed(reason.clone()))))
                .collect();
        }
        if self.active_len() >= self.options.segment_size
            && batch.iter().any(|c| c.command.is_write())
        {
            if let Err(error) = self.roll() {
                self.fence("starting a new segment", &error);
                return self.run(batch);
            }
        }
        let place = Placement {
            seg: self.active,
            at: self.active_len(),
        };
        let mut frame = FrameBuf::new();
        let count_at = frame.pos();
        frame.put_u32(0);
        let mut count = 0u32;
        let mut dir_sync = false;
        let mut results = Vec::with_capacity(batch.len());
        for StreamCommand { stream, command } in batch {
            let id = command.id();
            let mut op = None;
            let result = match command {
                Command::LoadSnapshot { before, .. } => {
                    self.load_snapshot(&stream, before, &frame, place)
                }
                Command::ReadEvents { from, limit, .. } => {
                    self.read_events(&stream, from, limit, &frame, place)
                }
                Command::Append {
                    expected_last,
                    events,
                    snapshot,
                    ..
                } => {
                    let head = self.index.streams.get(&stream).map_or(0, |s| s.head);
                    let last = expected_last + events.len() as u64;
                    if head != expected_last {
                        Err(StorageError::Conflict {
                            expected: expected_last,
                            actual: head,
                        })
                    } else if events.is_empty()
                        || !events
                            .iter()
                            .zip(expected_last + 1..)
                            .all(|(r, s)| r.seq == s)
                        || snapshot.as_ref().is_some_and(|s| s.seq != last)
                    {
                        Err(StorageError::Rejected(
                            "append must hold contiguous events after the head, and a snapshot at the last one".into(),
                        ))
                    } else if !fits(
                        &frame,
                        &stream,
                        events
                            .iter()
                            .chain(snapshot.as_ref())
                            .map(|r| r.bytes.len()),
                    ) {
                        Err(too_large())
                    } else {
                        match self
                            .place_snapshot(snapshot.as_ref().map(|s| &s.bytes[..]), &mut dir_sync)
                        {
                            Ok(snap) => {
                                op = Some(batch::append(
                                    &mut frame,
                                    place,
                                    &stream,
                                    expected_last,
                                    &events,
                                    snap,
                                ));
                                Ok(Completion::Done)
                            }
                            Err(error) => {
                                self.fence("writing a snapshot file", &error);
                                Err(StorageError::Failed(error.to_string()))
                            }
                        }
                    }
                }
                Command::SaveSnapshot { snapshot, .. } => {
                    if !fits(&frame, &stream, [snapshot.bytes.len()]) {
                        Err(too_large())
                    } else {
                        match self.place_snapshot(Some(&snapshot.bytes), &mut dir_sync) {
                            Ok(snap) => {
                                op = snap.map(|snap| {
                                    batch::save_snapshot(
                                        &mut frame,
                                        place,
                                        &stream,
                                        snapshot.seq,
                                        snap,
                                    )
                                });
                                Ok(Completion::Done)
                            }
                            Err(error) => {
                                self.fence("writing a snapshot file", &error);
                                Err(StorageError::Failed(error.to_string()))
                            }
                        }
                    }
                }
                Command::DeleteEvents { up_to, .. } => {
                    if let Some(s) = self.index.streams.get(&stream) {
                        if up_to.min(s.head) > s.low_water {
                            op = Some(batch::delete_events(&mut frame, &stream, up_to));
                        }
                    }
                    Ok(Completion::Done)
                }
                Command::DeleteSnapshots { keep, .. } => {
                    if let Some(s) = self.index.streams.get(&stream) {
                        if s.snapshots.len() > keep.max(1) {
                            op = Some(batch::delete_snapshots(&mut frame, &stream, keep as u64));
                        }
                    }
                    Ok(Completion::Done)
                }
                _ => Err(StorageError::Rejected(
                    "command not supported by this store".into(),
                )),
            };
            if let Some(op) = op {
                count += 1;
                if let Err(reason) = self.index.apply(op) {
                    // Validated above; reaching this is a bug, and the index may be off.
                    self.fence("indexing a write", &io::Error::other(reason));
                }
            }
            results.push((id, result));
        }
        let mut committed = false;
        if count > 0 && self.fenced.is_none() {
            frame.patch_u32(count_at, count);
            let bytes = frame.seal();
            let synced = if dir_sync {
                // Snapshot files were renamed into place: make their names durable first.
                self.vfs.sync_dir()
            } else {
                Ok(())
            };
            let written = match self.segments.get_mut(&self.active) {
                Some(seg) => synced
                    .and_then(|()| seg.file.write_at(&bytes, place.at))
                    .and_then(|()| seg.file.sync())
                    .map(|()| seg.len += bytes.len() as u64),
                None => Err(io::Error::other("no active segment")),
            };
            match written {
                Ok(()) => {
                    committed = true;
                    self.remove_dropped_files();
                    self.stats.commits += 1;
                    self.stats.writes += u64::from(count);
                    if let Err(error) = self.maybe_compact() {
                        // The batch is durable; only later commands are refused.
                        self.fence("compaction", &error);
                    }
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

    fn read_locs(
        &self,
        locs: &[Loc],
        frame: &FrameBuf,
        place: Placement,
    ) -> io::Result<Vec<Vec<u8>>> {
        const RUN_MAX: u64 = 1 << 20;
        const GAP_MAX: u64 = 64 << 10;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "index points outside the log");
        let mut out = Vec::with_capacity(locs.len());
        let mut i = 0;
        while i < locs.len() {
            let loc = locs[i];
            if loc.seg == place.seg && loc.off >= place.at {
                let from = usize::try_from(loc.off - place.at).map_err(|_| bad())?;
                let bytes = frame
                    .bytes()
                    .get(from..from + loc.len as usize)
                    .ok_or_else(bad)?;
                out.push(bytes.to_vec());
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
                    || (next.seg == place.seg && next.off >= place.at)
                {
                    break;
                }
                end = next_end;
                j += 1;
            }
            let seg = self.segments.get(&loc.seg).ok_or_else(bad)?;
            let mut buf = vec![0u8; usize::try_from(end - start).map_err(|_| bad())?];
            seg.file.read_at(&mut buf, start)?;
            for l in &locs[i..j] {
                let from = (l.off - start) as usize;
                out.push(
                    buf.get(from..from + l.len as usize)
                        .ok_or_else(bad)?
                        .to_vec(),
                );
            }
            i = j;
        }
        Ok(out)
    }

    fn read_failed(&self, stream: &str, error: io::Error) -> StorageError {
        StorageError::Failed(format!("reading stream {stream:?} failed: {error}"))
    }

    fn read_events(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
        frame: &FrameBuf,
        place: Placement,
    ) -> Result<Completion, StorageError> {
        let Some(s) = self.index.streams.get(stream) else {
            return Ok(Completion::Events {
                records: Vec::new(),
                head: 0,
            });
        };
        let first = from.max(s.low_water + 1);
        let available = (s.head + 1).saturating_sub(first);
        let count = usize::try_from(available).unwrap_or(usize::MAX).min(limit);
        let skip = usize::try_from(first - s.low_water - 1).unwrap_or(usize::MAX);
        let end = skip.saturating_add(count).min(s.events.len());
        let locs: Vec<Loc> = s.events.range(skip.min(end)..end).copied().collect();
        let bytes = self
            .read_locs(&locs, frame, place)
            .map_err(|e| self.read_failed(stream, e))?;
        Ok(Completion::Events {
            records: bytes
                .into_iter()
                .zip(first..)
                .map(|(bytes, seq)| StoredRecord { seq, bytes })
                .collect(),
            head: s.head,
        })
    }

    fn load_snapshot(
        &self,
        stream: &str,
        before: Option<u64>,
        frame: &FrameBuf,
        place: Placement,
    ) -> Result<Completion, StorageError> {
        let found = self
            .index
            .streams
            .get(stream)
            .and_then(|s| s.snapshots.range(..before.unwrap_or(u64::MAX)).next_back());
        let Some((&seq, &loc)) = found else {
            return Ok(Completion::Snapshot(None));
        };
        let bytes = self
            .read_snapshot(loc, frame, place)
            .map_err(|e| self.read_failed(stream, e))?;
        Ok(Completion::Snapshot(Some(StoredRecord { seq, bytes })))
    }

    /// Where a snapshot of `bytes` goes: a large one is written to its own file now (temporary
    /// file, fsync, rename; the directory fsync comes before the frame is written, see
    /// `dir_sync`), a small one goes in the frame.
    fn place_snapshot<'a>(
        &mut self,
        bytes: Option<&'a [u8]>,
        dir_sync: &mut bool,
    ) -> io::Result<Option<SnapIn<'a>>> {
        let Some(bytes) = bytes else { return Ok(None) };
        if bytes.len() < self.options.snapshot_file_min || bytes.len() > u32::MAX as usize {
            return Ok(Some(SnapIn::Inline(bytes)));
        }
        let id = self.next_snapshot_file;
        self.next_snapshot_file += 1;
        snapshot_file::write(&*self.vfs, id, bytes)?;
        *dir_sync = true;
        Ok(Some(SnapIn::File {
            id,
            len: bytes.len() as u32,
            crc: crc32fast::hash(bytes),
        }))
    }

    fn read_snapshot(
        &self,
        loc: SnapLoc,
        frame: &FrameBuf,
        place: Placement,
    ) -> io::Result<Vec<u8>> {
        match loc {
            SnapLoc::Log(loc) => Ok(self
                .read_locs(&[loc], frame, place)?
                .pop()
                .unwrap_or_default()),
            SnapLoc::File { id, len, crc } => snapshot_file::read(&*self.vfs, id, len, crc),
        }
    }

    /// Removes the snapshot files the last (durable) commit dropped. A failure leaves an
    /// unreferenced file, which the next open removes.
    fn remove_dropped_files(&mut self) {
        for id in std::mem::take(&mut self.index.dropped_files) {
            let name = snapshot_file::name(id);
            if let Err(error) = self.vfs.remove(&name) {
                tracing::warn!(file = %self.vfs.path(&name).display(), %error, "could not remove a dropped snapshot file");
            }
        }
    }

    /// At open: removes snapshot files the log does not reference (written by a batch that
    /// never committed, or dropped by one whose removal was interrupted), and fails closed if a
    /// referenced one is missing.
    fn reconcile_snapshot_files(&mut self, present: &[u64]) -> Result<(), FileError> {
        let referenced: std::collections::HashSet<u64> = self
            .index
            .streams
            .values()
            .flat_map(|s| s.snapshots.values())
            .filter_map(|l| match l {
                SnapLoc::File { id, .. } => Some(*id),
                SnapLoc::Log(_) => None,
            })
            .collect();
        let present_set: std::collections::HashSet<u64> = present.iter().copied().collect();
        if let Some(missing) = referenced.iter().find(|id| !present_set.contains(id)) {
            return Err(FileError::Corrupt {
                file: self.vfs.path(&snapshot_file::name(*missing)),
                offset: 0,
                reason: "a snapshot file the log references is missing".into(),
            });
        }
        let mut removed = false;
        for id in present.iter().filter(|id| !referenced.contains(id)) {
            let name = snapshot_file::name(*id);
            tracing::info!(file = %self.vfs.path(&name).display(), "removing an unreferenced snapshot file");
            self.vfs
                .remove(&name)
                .map_err(io_err(&*self.vfs, "removing", &name))?;
            removed = true;
        }
        if removed {
            self.vfs
                .sync_dir()
                .map_err(io_err(&*self.vfs, "syncing", ""))?;
        }
        self.next_snapshot_file = present.iter().chain(&referenced).max().map_or(1, |m| m + 1);
        Ok(())
    }

    fn total_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.len).sum()
    }

    fn maybe_compact(&mut self) -> io::Result<()> {
        let live = self.index.live_bytes;
        let reclaimable = self
            .total_bytes()
            .saturating_sub(live)
            .saturating_sub(self.baseline);
        if reclaimable >= self.options.compact_min_bytes && reclaimable >= live {
            self.compact_now()?;
        }
        Ok(())
    }

    /// Rewrites the log now: every live event and snapshot (and every stream's head and
    /// compaction mark) into one new segment, dropping the old ones. Runs by itself when enough
    /// space is reclaimable (see [`FileOptions::compact_min_bytes`]).
    pub fn compact(&mut self) -> Result<(), StorageError> {
        if let Some(reason) = &self.fenced {
            return Err(StorageError::Failed(reason.clone()));
        }
        self.compact_now().map_err(|error| {
            self.fence("compaction", &error);
            StorageError::Failed(format!("compaction failed: {error}"))
        })
    }

    /// Compaction protocol: start a new active segment `k + 1`; write the state of every stream
    /// as checkpoint frames into a temporary file with floor `k`; fsync it, rename it over
    /// segment `k`, fsync the directory; then remove the segments below `k`. A crash at any
    /// point leaves either the old segments (and a stray temporary file, removed at open) or
    /// the new segment `k`, whose floor makes open discard any segment below it.
    fn compact_now(&mut self) -> io::Result<()> {
        let too_big = self.index.streams.iter().find(|(name, s)| {
            !fits(
                &FrameBuf::new(),
                name,
                s.events
                    .iter()
                    .chain(s.snapshots.values().filter_map(|l| match l {
                        SnapLoc::Log(l) => Some(l),
                        SnapLoc::File { .. } => None,
                    }))
                    .map(|l| l.len as usize + 8),
            )
        });
        if let Some((name, _)) = too_big {
            tracing::warn!(stream = %name, "compaction skipped: a stream's live records exceed one log frame");
            return Ok(());
        }
        let before = self.total_bytes();
        self.roll()?;
        let k = self.active - 1;
        let tmp = segment::temp_name(k);
        let mut file = self.vfs.open(&tmp, true)?;
        file.truncate(0)?;
        file.write_at(
            &SegmentHeader {
                number: k,
                floor: k,
            }
            .encode(),
            0,
        )?;
        let mut off = SEGMENT_HEADER_LEN as u64;
        let mut names: Vec<Arc<str>> = self.index.streams.keys().cloned().collect();
        names.sort_unstable();
        let none = FrameBuf::new();
        let nowhere = Placement {
            seg: u64::MAX,
            at: u64::MAX,
        };
        let mut moved = Vec::with_capacity(names.len());
        for name in names {
            let Some(s) = self.index.streams.get(&name) else {
                continue;
            };
            let place = Placement { seg: k, at: off };
            let mut frame = FrameBuf::new();
            frame.put_u32(1);
            batch::checkpoint_start(
                &mut frame,
                &name,
                s.head,
                s.low_water,
                s.events.len() as u32,
            );
            let mut events = Vec::with_capacity(s.events.len());
            let locs: Vec<Loc> = s.events.iter().copied().collect();
            for chunk in locs.chunks(4096) {
                for bytes in self.read_locs(chunk, &none, nowhere)? {
                    events.push(batch::checkpoint_record(&mut frame, place, &bytes));
                }
            }
            batch::checkpoint_snapshots(&mut frame, s.snapshots.len() as u32);
            let mut snapshots = Vec::with_capacity(s.snapshots.len());
            for (&seq, &loc) in &s.snapshots {
                let snap = match loc {
                    SnapLoc::Log(loc) => {
                        let bytes = self
                            .read_locs(&[loc], &none, nowhere)?
                            .pop()
                            .unwrap_or_default();
                        batch::checkpoint_snapshot(&mut frame, place, seq, SnapIn::Inline(&bytes))
                    }
                    SnapLoc::File { id, len, crc } => batch::checkpoint_snapshot(
                        &mut frame,
                        place,
                        seq,
                        SnapIn::File { id, len, crc },
                    ),
                };
                snapshots.push((seq, snap));
            }
            let bytes = frame.seal();
            file.write_at(&bytes, off)?;
            off += bytes.len() as u64;
            moved.push((name, events, snapshots));
        }
        file.sync()?;
        self.vfs.rename(&tmp, &segment::name(k))?;
        self.vfs.sync_dir()?;
        // The new segment k is durable: switch the index over, then drop the old segments.
        self.floor = k;
        for (name, events, snapshots) in moved {
            if let Some(s) = self.index.streams.get_mut(&name) {
                s.events = events.into();
                s.snapshots = snapshots.into_iter().collect();
            }
        }
        let old: Vec<u64> = self.segments.range(..k).map(|(&n, _)| n).collect();
        self.segments.insert(k, Segment { file, len: off });
        for n in &old {
            self.segments.remove(n);
            self.vfs.remove(&segment::name(*n))?;
        }
        self.vfs.sync_dir()?;
        let after = self.total_bytes();
        self.baseline = after.saturating_sub(self.index.live_bytes);
        self.stats.compactions += 1;
        tracing::info!(
            bytes_before = before,
            bytes_after = after,
            segments_removed = old.len(),
            "compacted the log"
        );
        Ok(())
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
        self.run(batch)
    }
}
