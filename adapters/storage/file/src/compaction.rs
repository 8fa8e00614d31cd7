//! Compaction in bounded steps beside the commit path.
//!
//! When enough of the log is reclaimable, the active segment is sealed (say it is segment
//! `a`): the index at that moment is the state the log holds up to the end of `a`. Each
//! stream's part of it — head, compaction mark, snapshots, where its live events lie — is
//! noted (a few words per stream and segment, never the events), and the live records are
//! copied, a bounded number of bytes after each group commit, into the temporary file of a
//! replacement of segment `a` with floor `a`: first a checkpoint of every stream (its mark as
//! its head, and its snapshots), then its live events as appends of at most [`CHUNK`] bytes
//! each, segment by segment (each segment is read once; a stream of any size is copied
//! without holding it in memory, and frames stay small), then a seal. Writers keep committing to the segments after `a` meanwhile, and
//! their deletions and snapshot changes replay after it. Once complete, the file is fsynced,
//! renamed over segment `a`, the directory fsynced; the index moves the noted streams'
//! records to it, and the segments below `a` are removed (a crash before their removal
//! leaves them below the floor, which open sets aside). A crash before the rename leaves the
//! log as it was, plus a temporary file open sets aside.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::Instant;

use persevere_core::{StorageError, StoredRecord};

use crate::batch::{self, Placement, SnapIn};
use crate::frame::{FrameBuf, SegmentHeader, GROUP_START, MAX_FRAME, SEGMENT_HEADER_LEN};
use crate::index::{Loc, Marker, Run, SnapLoc, RECORD_OVERHEAD};
use crate::segment::{self, Segment};
use crate::store::{FileStore, Pending};
use crate::vfs::VfsFile;

/// The payload size the copy aims at per frame.
const CHUNK: usize = 1 << 20;

/// Bytes a step copies before letting the next group commit run, by default (tiny in unit
/// tests, so that compactions span many commits there).
#[cfg(not(test))]
pub(crate) const STEP: u64 = 512 << 10;
#[cfg(test)]
pub(crate) const STEP: u64 = 300;

/// The copy fsyncs its file after this many bytes (so the final fsync is short).
const SYNC_EVERY: u64 = 8 << 20;

/// Whether a compaction is under way.
pub(crate) enum Compaction {
    /// None.
    Idle,
    /// Copying live records into the replacement of a sealed segment.
    Copying(Box<Job>),
}

/// One stream as of the sealed segment's end.
struct Noted {
    name: Arc<str>,
    head: u64,
    low_water: u64,
    runs: VecDeque<Run>,
    snapshots: Vec<(u64, SnapLoc)>,
}

/// Where the copy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Writing the checkpoint of stream `next`.
    Checkpoints,
    /// Copying the events of stream `next` from `seq`.
    Events,
    /// Every record is copied: seal, sync, rename, switch.
    Finish,
}

/// A compaction under way.
pub(crate) struct Job {
    /// The sealed segment being replaced.
    target: u64,
    file: Box<dyn VfsFile>,
    off: u64,
    chain: u32,
    streams: Vec<Noted>,
    stage: Stage,
    next: usize,
    /// The segments holding noted live events, in order, and the one being copied.
    segs: Vec<u64>,
    seg_i: usize,
    /// The next seq to copy, per noted stream.
    seqs: Vec<u64>,
    /// Event bytes copied, per noted stream.
    copied: Vec<u64>,
    /// Where each snapshot in the log was copied to.
    moved: HashMap<(u64, u64), Loc>,
    unsynced: u64,
    written: u64,
    reported: u64,
    before: u64,
    started: Instant,
}

/// A compaction failure: before the replacement was in place (nothing changed), or after
/// (the log's state is unknown: fence).
pub(crate) enum CompactError {
    Before(io::Error),
    After(io::Error),
}

impl FileStore {
    /// Starts a compaction when enough is reclaimable, or takes the next step of the one under
    /// way. A failure is logged and retried after a growing number of commits; it never fences
    /// the store (the batch before it was durable), unless it happened after the replacement
    /// segment was renamed into place.
    pub(crate) fn maybe_compact(&mut self) {
        let result = match self.compaction {
            Compaction::Copying(_) => self
                .compact_step(self.options.compact_step_bytes)
                .map(|_| ()),
            Compaction::Idle => {
                if self.compact_wait > 0 {
                    self.compact_wait -= 1;
                    return;
                }
                let live = self.index.live_bytes;
                let reclaimable = self
                    .total_bytes()
                    .saturating_sub(live)
                    .saturating_sub(self.baseline);
                if reclaimable < self.options.compact_min_bytes || reclaimable < live {
                    return;
                }
                self.compact_start().and_then(|()| {
                    self.compact_step(self.options.compact_step_bytes)
                        .map(|_| ())
                })
            }
        };
        match result {
            Ok(()) => {}
            Err(CompactError::Before(error)) => {
                self.compact_abort();
                self.stats.failed_compactions += 1;
                self.compact_wait = self.compact_backoff;
                tracing::warn!(%error, retry_after_commits = self.compact_wait, "compaction failed; the log is unchanged and compaction will be retried");
                self.compact_backoff = (self.compact_backoff * 2).min(4096);
            }
            Err(CompactError::After(error)) => {
                self.compact_abort();
                self.fence("compaction", &error);
            }
        }
    }

    /// Compacts now, to completion: every live event and snapshot (and every stream's head and
    /// compaction mark) up to the end of the active segment, which is sealed first, is
    /// rewritten into a replacement of it, and the older segments are dropped. Finishes a
    /// compaction under way first. Runs by itself, in bounded steps between group commits,
    /// when enough space is reclaimable (see [`FileOptions::compact_min_bytes`](crate::FileOptions::compact_min_bytes)).
    /// A failure before the replacement is in place changes nothing (the store stays open);
    /// one after fences the store.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use persevere_core::{Command, CommandId, Store, StoredRecord, StreamCommand};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut store = persevere_file::FileStore::create(dir.path()).unwrap();
    /// let append = |id, seq| StreamCommand {
    ///     stream: Arc::from("s"),
    ///     command: Command::Append {
    ///         id: CommandId(id),
    ///         expected_last: seq - 1,
    ///         events: vec![StoredRecord::new(seq, vec![0u8; 100])],
    ///         snapshot: None,
    ///     },
    /// };
    /// store.execute(vec![append(1, 1)]);
    /// store.execute(vec![append(2, 2)]);
    /// let delete = Command::DeleteEvents { id: CommandId(3), up_to: 1 };
    /// store.execute(vec![StreamCommand { stream: Arc::from("s"), command: delete }]);
    /// store.compact().unwrap();
    /// assert_eq!(store.stats().compactions, 1);
    /// ```
    pub fn compact(&mut self) -> Result<(), StorageError> {
        if let Some(reason) = &self.fenced {
            return Err(StorageError::Failed(reason.clone()));
        }
        let mut result = Ok(());
        let mut started = false;
        loop {
            if matches!(self.compaction, Compaction::Idle) {
                if started {
                    break;
                }
                started = true;
                if let Err(e) = self.compact_start() {
                    result = Err(e);
                    break;
                }
            }
            match self.compact_step(u64::MAX) {
                Ok(_) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        match result {
            Ok(()) => Ok(()),
            Err(CompactError::Before(error)) => {
                self.compact_abort();
                self.stats.failed_compactions += 1;
                tracing::warn!(%error, "compaction failed; the log is unchanged");
                Err(StorageError::Failed(format!(
                    "compaction failed, the log is unchanged: {error}"
                )))
            }
            Err(CompactError::After(error)) => {
                self.compact_abort();
                self.fence("compaction", &error);
                Err(StorageError::Failed(format!("compaction failed: {error}")))
            }
        }
    }

    /// Whether a compaction is under way (copying between group commits).
    pub fn compacting(&self) -> bool {
        matches!(self.compaction, Compaction::Copying(_))
    }

    /// Drops a compaction under way and its temporary file (the log is unchanged by it).
    pub(crate) fn compact_abort(&mut self) {
        if let Compaction::Copying(job) = std::mem::replace(&mut self.compaction, Compaction::Idle)
        {
            let tmp = segment::temp_name(job.target);
            drop(job);
            match self.vfs.remove(&tmp) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    tracing::warn!(%error, file = %self.vfs.path(&tmp).display(), "could not remove the file of an abandoned compaction; the next open sets it aside");
                }
                _ => {}
            }
        }
    }

    /// Seals the active segment and notes every stream's state as of its end.
    fn compact_start(&mut self) -> Result<(), CompactError> {
        let max = self.options.frame_max.min(MAX_FRAME) as u64;
        let too_big = self.index.streams.iter().find(|(name, s)| {
            let snapshots: u64 = s
                .snapshots
                .values()
                .map(|l| match l {
                    SnapLoc::Log(l) => u64::from(l.len) + 13,
                    SnapLoc::File { .. } => 25,
                })
                .sum();
            snapshots + name.len() as u64 + 64 > max
        });
        if let Some((name, _)) = too_big {
            tracing::warn!(stream = %name, "compaction skipped: a stream's snapshots exceed one log frame");
            return Ok(());
        }
        self.roll().map_err(CompactError::After)?;
        let target = self.active - 1;
        let mut streams: Vec<Noted> = self
            .index
            .streams
            .iter()
            .map(|(name, s)| Noted {
                name: Arc::clone(name),
                head: s.head,
                low_water: s.low_water,
                runs: s.runs.clone(),
                snapshots: s.snapshots.iter().map(|(&q, &l)| (q, l)).collect(),
            })
            .collect();
        streams.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let tmp = segment::temp_name(target);
        let header = SegmentHeader {
            store: self.store_id,
            number: target,
            floor: target,
        }
        .encode();
        let file = self
            .vfs
            .open(&tmp, true)
            .and_then(|mut f| {
                f.truncate(0)?;
                f.write_at(&header, 0)?;
                Ok(f)
            })
            .map_err(CompactError::Before)?;
        let live = self.index.live_bytes;
        tracing::info!(
            segment = target,
            streams = streams.len(),
            live_bytes = live,
            log_bytes = self.total_bytes(),
            "compaction started"
        );
        let copied = vec![0; streams.len()];
        let seqs: Vec<u64> = streams.iter().map(|n| n.low_water + 1).collect();
        let mut segs: Vec<u64> = streams
            .iter()
            .flat_map(|n| n.runs.iter().map(|r| r.seg))
            .collect();
        segs.sort_unstable();
        segs.dedup();
        self.compaction = Compaction::Copying(Box::new(Job {
            target,
            file,
            off: SEGMENT_HEADER_LEN as u64,
            chain: SegmentHeader::chain(&header),
            streams,
            stage: Stage::Checkpoints,
            next: 0,
            segs,
            seg_i: 0,
            seqs,
            copied,
            moved: HashMap::new(),
            unsynced: 0,
            written: 0,
            reported: 0,
            before: self.total_bytes(),
            started: Instant::now(),
        }));
        Ok(())
    }

    /// Copies at least `budget` bytes (or to the end); finishes the compaction when
    /// everything is copied. Returns whether it finished.
    fn compact_step(&mut self, budget: u64) -> Result<bool, CompactError> {
        let Compaction::Copying(mut job) =
            std::mem::replace(&mut self.compaction, Compaction::Idle)
        else {
            return Ok(true);
        };
        let tmp = segment::temp_name(job.target);
        let result = self.copy(&mut job, budget);
        match result {
            Ok(()) if job.stage == Stage::Finish => {
                let finished = self.finish(*job);
                if let Err(CompactError::Before(_)) = &finished {
                    let _ = self.vfs.remove(&tmp);
                }
                finished.map(|()| true)
            }
            Ok(()) => {
                self.compaction = Compaction::Copying(job);
                Ok(false)
            }
            Err(error) => {
                drop(job);
                let _ = self.vfs.remove(&tmp);
                Err(CompactError::Before(error))
            }
        }
    }

    /// Writes one frame to the replacement file.
    fn put_frame(&self, job: &mut Job, frame: FrameBuf) -> io::Result<()> {
        let flags = if job.off == SEGMENT_HEADER_LEN as u64 {
            GROUP_START
        } else {
            0
        };
        let (bytes, crc) = frame.seal(self.store_id, job.chain, flags);
        job.file.write_at(&bytes, job.off)?;
        job.off += bytes.len() as u64;
        job.chain = crc;
        job.written += bytes.len() as u64;
        job.unsynced += bytes.len() as u64;
        if job.unsynced >= SYNC_EVERY {
            job.file.sync()?;
            job.unsynced = 0;
        }
        if job.written - job.reported >= 256 << 20 {
            job.reported = job.written;
            tracing::info!(
                segment = job.target,
                copied_bytes = job.written,
                streams_done = job.next,
                streams = job.streams.len(),
                "compaction progress"
            );
        }
        Ok(())
    }

    fn copy(&mut self, job: &mut Job, budget: u64) -> io::Result<()> {
        let until = job.written.saturating_add(budget);
        let none = Pending::none();
        while job.written < until && job.stage != Stage::Finish {
            match job.stage {
                Stage::Checkpoints => {
                    // Several streams' checkpoints per frame.
                    let mut frame = FrameBuf::new();
                    frame.put_u32(0);
                    let mut count = 0u32;
                    let place = Placement {
                        seg: job.target,
                        at: job.off,
                    };
                    while job.next < job.streams.len() && frame.pos() < CHUNK {
                        let n = &job.streams[job.next];
                        let max = self.options.frame_max.min(MAX_FRAME);
                        let need: usize = n
                            .snapshots
                            .iter()
                            .map(|(_, l)| match l {
                                SnapLoc::Log(l) => l.len as usize + 13,
                                SnapLoc::File { .. } => 25,
                            })
                            .sum::<usize>()
                            + n.name.len()
                            + 64;
                        if count > 0 && frame.pos() + need > max {
                            break;
                        }
                        batch::checkpoint_start(&mut frame, &n.name, n.low_water, n.low_water, 0);
                        batch::checkpoint_snapshots(&mut frame, n.snapshots.len() as u32);
                        for &(seq, loc) in &n.snapshots {
                            match loc {
                                SnapLoc::Log(l) => {
                                    let bytes =
                                        self.read_locs(&[l], &none)?.pop().unwrap_or_default();
                                    let to = batch::checkpoint_snapshot(
                                        &mut frame,
                                        place,
                                        seq,
                                        SnapIn::Inline(&bytes),
                                    );
                                    if let SnapLoc::Log(to) = to {
                                        job.moved.insert((l.seg, l.off), to);
                                    }
                                }
                                SnapLoc::File { id, len, crc } => {
                                    batch::checkpoint_snapshot(
                                        &mut frame,
                                        place,
                                        seq,
                                        SnapIn::File { id, len, crc },
                                    );
                                }
                            }
                        }
                        count += 1;
                        job.next += 1;
                    }
                    if count > 0 {
                        frame.patch_u32(crate::frame::FRAME_HEADER_LEN, count);
                        self.put_frame(job, frame)?;
                    }
                    if job.next >= job.streams.len() {
                        job.stage = Stage::Events;
                        job.next = 0;
                        job.seg_i = 0;
                    }
                }
                Stage::Events => {
                    // Segment by segment (each one's positions loaded once), each stream's
                    // events in it in seq order.
                    let Some(&seg) = job.segs.get(job.seg_i) else {
                        job.stage = Stage::Finish;
                        continue;
                    };
                    let Some(n) = job.streams.get(job.next) else {
                        job.seg_i += 1;
                        job.next = 0;
                        continue;
                    };
                    let i = n.runs.partition_point(|r| r.seg < seg);
                    let in_seg = n.runs.get(i).filter(|r| r.seg == seg).map(|r| {
                        let last = n.runs.get(i + 1).map_or(n.head, |next| next.first - 1);
                        (r.first.max(job.seqs[job.next]), last)
                    });
                    let Some((first, last)) = in_seg.filter(|(f, l)| f <= l) else {
                        job.next += 1;
                        continue;
                    };
                    // One append of at most CHUNK bytes (or one event, if larger).
                    let name = Arc::clone(&n.name);
                    let mut records = Vec::new();
                    let mut size = 0usize;
                    let mut seq = first;
                    'read: while seq <= last && size < CHUNK {
                        let upto = last.min(seq + 63);
                        for bytes in self.read_in(&name, &[seg], seq, upto, &none)? {
                            if size > 0 && size + bytes.len() > CHUNK {
                                break 'read;
                            }
                            size += bytes.len() + RECORD_OVERHEAD as usize;
                            records.push(StoredRecord { seq, bytes });
                            seq += 1;
                        }
                    }
                    let mut frame = FrameBuf::new();
                    frame.put_u32(1);
                    let place = Placement {
                        seg: job.target,
                        at: job.off,
                    };
                    batch::append(&mut frame, place, &name, first - 1, &records, None);
                    job.copied[job.next] += size as u64;
                    job.seqs[job.next] = seq;
                    self.put_frame(job, frame)?;
                }
                Stage::Finish => {}
            }
        }
        Ok(())
    }

    /// Seals and syncs the replacement, renames it over the sealed segment, and moves the
    /// index over to it.
    fn finish(&mut self, mut job: Job) -> Result<(), CompactError> {
        let target = job.target;
        let tmp = segment::temp_name(target);
        let seal = batch::marker(Marker::Seal);
        let (bytes, chain) = seal.seal(self.store_id, job.chain, GROUP_START);
        job.file
            .write_at(&bytes, job.off)
            .and_then(|()| job.file.sync())
            .map_err(CompactError::Before)?;
        job.off += bytes.len() as u64;
        job.chain = chain;
        self.vfs
            .rename(&tmp, &segment::name(target))
            .map_err(CompactError::Before)?;
        self.vfs.sync_dir().map_err(CompactError::After)?;
        // The replacement is durable: move the index over, then drop the old segments.
        self.floor = target;
        for (i, n) in job.streams.iter().enumerate() {
            let Some(s) = self.index.streams.get_mut(&n.name) else {
                continue;
            };
            let mut runs: VecDeque<Run> =
                s.runs.iter().filter(|r| r.seg > target).copied().collect();
            if n.head > n.low_water {
                runs.push_front(Run {
                    seg: target,
                    first: n.low_water + 1,
                    bytes: job.copied[i],
                });
            }
            s.runs = runs;
            crate::index::trim_runs(s);
            for loc in s.snapshots.values_mut() {
                if let SnapLoc::Log(l) = loc {
                    if l.seg <= target {
                        let to = job.moved.get(&(l.seg, l.off)).copied().ok_or_else(|| {
                            CompactError::After(io::Error::other(
                                "a snapshot of the compacted segments was not copied",
                            ))
                        })?;
                        *l = to;
                    }
                }
            }
        }
        self.index.live_bytes = self
            .index
            .streams
            .values()
            .map(|s| {
                s.live_event_bytes()
                    + s.snapshots
                        .values()
                        .map(|l| match l {
                            SnapLoc::Log(l) => u64::from(l.len) + RECORD_OVERHEAD,
                            SnapLoc::File { .. } => 0,
                        })
                        .sum::<u64>()
            })
            .sum();
        self.index.fine.retain(|&n, _| n > target);
        let old: Vec<u64> = self.segments.range(..target).map(|(&n, _)| n).collect();
        for n in &old {
            self.segments.remove(n);
        }
        self.segments.insert(
            target,
            Segment {
                file: job.file,
                len: job.off,
                chain: job.chain,
            },
        );
        for n in &old {
            if let Err(error) = self.vfs.remove(&segment::name(*n)) {
                tracing::warn!(%error, file = %self.vfs.path(&segment::name(*n)).display(), "could not remove a segment replaced by compaction; the next open sets it aside");
            }
        }
        if let Err(error) = self.vfs.sync_dir() {
            tracing::warn!(%error, "syncing the directory after compaction failed");
        }
        let marker = if self.active_sealed {
            Some(Marker::Seal)
        } else if self.closed && self.active_len() > SEGMENT_HEADER_LEN as u64 {
            Some(Marker::Close)
        } else {
            None
        };
        self.write_checkpoint(marker);
        let after = self.total_bytes();
        self.baseline = after.saturating_sub(self.index.live_bytes);
        self.stats.compactions += 1;
        tracing::info!(
            segment = target,
            bytes_before = job.before,
            bytes_after = after,
            copied_bytes = job.written,
            segments_removed = old.len(),
            millis = job.started.elapsed().as_millis() as u64,
            "compacted the log"
        );
        Ok(())
    }
}
