//! The compaction worker: the thread that copies the live records into the replacement of a
//! sealed segment, off the commit path.
//!
//! It owns its file handles: the replacement's temporary file (created by the commit thread,
//! which owns its name) and its own handles on the sealed segments it reads, which no one
//! writes (sealed segments are immutable; the commit thread only reads them too, through its
//! own handles). It never touches the store's index: it copies what the commit thread noted
//! when it sealed the segment, and hands back where each record went.
//!
//! When every record is copied it writes the seal and fsyncs the file (the result is durable
//! before anything names it). Then, if no `execute` is running (it *tries* the store's
//! directory lock, never waits for it), it installs the result on disk itself — rename over the
//! sealed segment, directory fsync, removal of the segments below it (superseded by it), directory
//! fsync — so that an idle store completes its compaction; the commit thread then only moves its
//! index over, at its next `execute` (or at close). When an `execute` holds the lock, the
//! result waits, durable under its temporary name, and the commit thread installs it.
//!
//! It stops between frames when asked to ([`Shared::cancel`]): store close, reopen or fencing.
//!
//! It keeps out of the commits' way: its thread runs at a lower CPU priority, and it fsyncs
//! its file every MiB, so that a commit's fdatasync (which on a journaling file system may
//! have to wait for data written by the worker) never waits behind much of it.
//!
//! Over the simulated disk the same job is run by the commit thread itself, a step after each
//! group commit ([`Pacing`]), so that the crash sweeps see its file operations in a fixed
//! order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use persevere_core::{SharedBytes, StoredRecord};

use crate::batch::{self, Placement, SnapIn};
use crate::frame::{FrameBuf, GROUP_START, MAX_FRAME, SEGMENT_HEADER_LEN};
use crate::index::{Extent, Loc, Marker, Run, SegFine, SnapLoc, RECORD_OVERHEAD};
use crate::segment;
use crate::vfs::{Vfs, VfsFile};

/// The payload size the copy aims at per frame.
pub(crate) const CHUNK: usize = 1 << 20;

/// The copy fsyncs its file after this many bytes: small, so that a commit's fdatasync never
/// waits behind much of the worker's data (and the final fsync is short).
const SYNC_EVERY: u64 = 1 << 20;

/// The nice value of the worker's thread.
const WORKER_NICE: i32 = 10;

/// A progress line is logged at `INFO` every this many bytes copied.
const REPORT_EVERY: u64 = 256 << 20;

/// One stream as of the sealed segment's end.
pub(crate) struct Noted {
    pub name: Arc<str>,
    pub head: u64,
    pub low_water: u64,
    pub runs: VecDeque<Run>,
    pub snapshots: Vec<(u64, SnapLoc)>,
}

/// Where the copy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Writing the checkpoint of stream `next`.
    Checkpoints,
    /// Copying the events of stream `next` from `seq`.
    Events,
    /// Every record is copied.
    Done,
}

/// Everything the worker needs, handed over by the commit thread when it starts a compaction.
pub(crate) struct Plan {
    pub vfs: Arc<dyn Vfs>,
    pub dir_lock: Arc<Mutex<()>>,
    pub store: u64,
    /// The sealed segment being replaced.
    pub target: u64,
    pub frame_max: usize,
    /// The replacement's temporary file, its header written.
    pub file: Box<dyn VfsFile>,
    pub chain: u32,
    pub streams: Vec<Noted>,
    /// The segments up to the target (number, length): every one the copy may read.
    pub sealed: Vec<(u64, u64)>,
    /// The other segments open when the compaction started: those below the target are
    /// superseded by the replacement, and removed once it is in place (see [`superseded`]).
    pub others: Vec<u64>,
    /// The log's size when the compaction started (for the summary line).
    pub before: u64,
}

/// A complete replacement, durable under its temporary name (or already in place).
pub(crate) struct Output {
    pub target: u64,
    pub file: Box<dyn VfsFile>,
    pub len: u64,
    pub chain: u32,
    pub streams: Vec<Noted>,
    /// Event bytes copied, per noted stream.
    pub copied: Vec<u64>,
    /// Where each snapshot in the log was copied to.
    pub moved: HashMap<(u64, u64), Loc>,
    pub others: Vec<u64>,
    pub written: u64,
    pub before: u64,
    pub started: Instant,
}

/// What the worker is doing or has done.
pub(crate) enum Outcome {
    /// Copying.
    Copying,
    /// The replacement is complete and fsynced under its temporary name; the commit thread
    /// installs it.
    Ready(Box<Output>),
    /// The replacement is in place (renamed, directory synced, older segments removed); the
    /// commit thread moves its index over.
    Installed(Box<Output>),
    /// The copy failed before anything was renamed: the log is unchanged.
    Failed(io::Error),
    /// The rename was done but the directory sync after it failed: what is durable is unknown.
    InstallFailed(io::Error),
    /// Stopped on request; the temporary file is incomplete.
    Cancelled,
    /// The worker panicked.
    Panicked,
}

/// How the worker is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// It runs on its own thread and copies as fast as it can, beside the commit thread
    /// (real stores).
    Free,
    /// The commit thread runs its job inline, one step of `compact_step_bytes` after each
    /// group commit, holding the directory lock (so the result is installed by the commit
    /// thread): the same code with deterministic file operations, for the crash simulations.
    Lockstep,
    /// The same, but each step runs after the `execute` released the directory lock, so the
    /// job installs its result itself as an idle store's worker does, and the commit thread
    /// moves its index over at its next `execute`.
    LockstepIdle,
}

/// The state the commit thread and the worker share.
pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    cancel: AtomicBool,
}

pub(crate) struct State {
    pub outcome: Outcome,
    /// Bytes the worker may still copy before it waits (`u64::MAX` when free).
    pub budget: u64,
    /// Bytes written to the replacement so far.
    pub written: u64,
    /// A pause point (tests): the worker waits once it has written this many bytes, until
    /// it is cleared.
    pub hold_at: Option<u64>,
    /// The worker is waiting at the pause point.
    pub held: bool,
}

impl Shared {
    pub(crate) fn new(pacing: Pacing, hold_at: Option<u64>) -> Self {
        Self {
            state: Mutex::new(State {
                outcome: Outcome::Copying,
                budget: if pacing == Pacing::Free { u64::MAX } else { 0 },
                written: 0,
                hold_at,
                held: false,
            }),
            wake: Condvar::new(),
            cancel: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on the shared state's condition.
    pub(crate) fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.wake.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn notify(&self) {
        self.wake.notify_all();
    }

    /// Asks the worker to stop at its next frame (and wakes it if it waits).
    pub(crate) fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.notify();
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Waits until the worker may copy (budget left, not held) or is cancelled; returns
    /// whether it may go on.
    fn may_copy(&self, written: u64, wait: bool) -> Go {
        let mut state = self.lock();
        state.written = written;
        loop {
            if self.cancelled() {
                return Go::Stop;
            }
            let held = state.hold_at.is_some_and(|at| written >= at);
            if state.budget > 0 && !held {
                state.held = false;
                return Go::On;
            }
            if !wait {
                return Go::Pause;
            }
            if held && !state.held {
                state.held = true;
                self.notify();
            }
            state = self.wait(state);
        }
    }

    /// Counts `bytes` copied against the step's budget.
    fn spent(&self, bytes: u64) {
        let mut state = self.lock();
        state.budget = state.budget.saturating_sub(bytes);
        if state.budget == 0 {
            self.notify();
        }
    }

    fn finish(&self, outcome: Outcome) {
        let mut state = self.lock();
        state.outcome = outcome;
        self.notify();
    }
}

/// Whether the copy may go on.
enum Go {
    On,
    /// Its budget is spent (a paced job run inline).
    Pause,
    Stop,
}

/// The worker's side of a compaction: its own thread runs it to the end, or (paced) the
/// commit thread runs it a step at a time.
pub(crate) struct Job {
    plan: Plan,
    off: u64,
    stage: Stage,
    next: usize,
    seg_i: usize,
    /// The segments holding noted live events, in order.
    segs: Vec<u64>,
    seqs: Vec<u64>,
    copied: Vec<u64>,
    moved: HashMap<(u64, u64), Loc>,
    unsynced: u64,
    written: u64,
    reported: u64,
    started: Instant,
    /// The worker's own handles on the sealed segments it read.
    handles: HashMap<u64, Box<dyn VfsFile>>,
    /// The positions of the segment whose events are being copied.
    fine: Option<(u64, SegFine)>,
    /// The segments this copy has verified (every frame intact): nothing is copied from
    /// any other, so damaged bytes never get a fresh checksum.
    verified: HashSet<u64>,
}

/// Runs a compaction on the worker's thread; reports through `shared`.
impl Job {
    pub(crate) fn new(plan: Plan) -> Self {
        let mut segs: Vec<u64> = plan
            .streams
            .iter()
            .flat_map(|n| n.runs.iter().map(|r| r.seg))
            .collect();
        segs.sort_unstable();
        segs.dedup();
        Self {
            off: SEGMENT_HEADER_LEN as u64,
            stage: Stage::Checkpoints,
            next: 0,
            seg_i: 0,
            segs,
            seqs: plan.streams.iter().map(|n| n.low_water + 1).collect(),
            copied: vec![0; plan.streams.len()],
            moved: HashMap::new(),
            unsynced: 0,
            written: 0,
            reported: 0,
            started: Instant::now(),
            handles: HashMap::new(),
            fine: None,
            verified: HashSet::new(),
            plan,
        }
    }
}

/// Runs a compaction to its end on the worker's thread; reports through `shared`.
pub(crate) fn run(plan: Plan, shared: &Shared) {
    // The copy yields the CPU to the commit thread: a lower priority for this thread only
    // (Linux keeps one per thread). Where it cannot be lowered, it copies all the same.
    if let Err(error) = rustix::process::setpriority_process(None, WORKER_NICE) {
        tracing::debug!(%error, "could not lower the compaction worker's priority");
    }
    let mut job = Job::new(plan);
    let outcome = match job.copy_all(shared, true) {
        Ok(Go::On) => job.conclude(shared),
        Ok(Go::Stop | Go::Pause) => Outcome::Cancelled,
        Err(error) => Outcome::Failed(error),
    };
    shared.finish(outcome);
}

/// Runs a paced job (inline, on the commit thread) until its budget in `shared` is spent;
/// gives it back unless it finished (its outcome is then in `shared`).
pub(crate) fn step(mut job: Box<Job>, shared: &Shared) -> Option<Box<Job>> {
    let outcome = match job.copy_all(shared, false) {
        Ok(Go::Pause) => return Some(job),
        Ok(Go::On) => job.conclude(shared),
        Ok(Go::Stop) => Outcome::Cancelled,
        Err(error) => Outcome::Failed(error),
    };
    shared.finish(outcome);
    None
}

/// Installs the result when no `execute` runs (the directory lock is free): the idle path.
fn install_if_idle(vfs: &dyn Vfs, dir_lock: &Mutex<()>, out: Box<Output>) -> Outcome {
    let _guard = match dir_lock.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return Outcome::Ready(out),
    };
    match install_on_disk(vfs, &out) {
        Ok(()) => Outcome::Installed(out),
        Err(Install::NotRenamed(error)) => Outcome::Failed(error),
        Err(Install::Unknown(error)) => Outcome::InstallFailed(error),
    }
}

/// Why putting a replacement in place failed.
pub(crate) enum Install {
    /// The rename failed: the log is as it was.
    NotRenamed(io::Error),
    /// The directory sync after the rename failed: whether the rename is durable is unknown.
    Unknown(io::Error),
}

/// The segments a replacement supersedes: those below it (it holds everything live up to its
/// end), never the ones after it, which hold commits made since the compaction started.
pub(crate) fn superseded(out: &Output) -> impl Iterator<Item = &u64> {
    out.others.iter().filter(move |&&n| n < out.target)
}

/// Renames the (fsynced) replacement over its segment, makes that durable, then removes the
/// segments it supersedes (only those below it, which it replaces; a failure to remove one is
/// logged and the next open sets it aside as lying below the floor).
pub(crate) fn install_on_disk(vfs: &dyn Vfs, out: &Output) -> Result<(), Install> {
    let target = out.target;
    vfs.rename(&segment::temp_name(target), &segment::name(target))
        .map_err(Install::NotRenamed)?;
    vfs.sync_dir().map_err(Install::Unknown)?;
    for n in superseded(out) {
        if let Err(error) = vfs.remove(&segment::name(*n)) {
            tracing::warn!(%error, file = %vfs.path(&segment::name(*n)).display(), "could not remove a segment replaced by compaction; the next open sets it aside");
        }
    }
    if let Err(error) = vfs.sync_dir() {
        tracing::warn!(%error, "syncing the directory after compaction failed");
    }
    Ok(())
}

impl Job {
    fn name(&self) -> String {
        segment::temp_name(self.plan.target)
    }

    /// Copies frame by frame, pausing as `shared` says (waiting, or returning
    /// [`Go::Pause`] when `wait` is false); [`Go::On`] once everything is copied,
    /// [`Go::Stop`] when cancelled.
    fn copy_all(&mut self, shared: &Shared, wait: bool) -> io::Result<Go> {
        while self.stage != Stage::Done {
            match shared.may_copy(self.written, wait) {
                Go::On => {}
                other => return Ok(other),
            }
            let before = self.written;
            self.copy_frame()?;
            shared.spent((self.written - before).max(1));
        }
        Ok(Go::On)
    }

    /// Completes the copy (seal, fsync) and, unless asked to stop, installs the result when
    /// the store is idle.
    fn conclude(self, shared: &Shared) -> Outcome {
        let vfs = Arc::clone(&self.plan.vfs);
        let dir_lock = Arc::clone(&self.plan.dir_lock);
        match self.complete() {
            Outcome::Ready(out) if !shared.cancelled() => install_if_idle(&*vfs, &dir_lock, out),
            other => other,
        }
    }

    /// Writes the seal and fsyncs the replacement.
    fn complete(mut self) -> Outcome {
        let seal = batch::marker(Marker::Seal);
        let (bytes, chain) = seal.seal(self.plan.store, self.plan.chain, GROUP_START);
        let synced = self
            .plan
            .file
            .write_at(&bytes, self.off)
            .and_then(|()| self.plan.file.sync());
        if let Err(error) = synced {
            return Outcome::Failed(io::Error::new(
                error.kind(),
                format!("{}: {error}", self.plan.vfs.path(&self.name()).display()),
            ));
        }
        self.off += bytes.len() as u64;
        let Job {
            plan,
            off,
            copied,
            moved,
            written,
            started,
            ..
        } = self;
        Outcome::Ready(Box::new(Output {
            target: plan.target,
            file: plan.file,
            len: off,
            chain,
            streams: plan.streams,
            copied,
            moved,
            others: plan.others,
            written,
            before: plan.before,
            started,
        }))
    }

    /// Writes one frame to the replacement file.
    fn put_frame(&mut self, frame: FrameBuf) -> io::Result<()> {
        let flags = if self.off == SEGMENT_HEADER_LEN as u64 {
            GROUP_START
        } else {
            0
        };
        let (bytes, crc) = frame.seal(self.plan.store, self.plan.chain, flags);
        self.plan.file.write_at(&bytes, self.off)?;
        self.off += bytes.len() as u64;
        self.plan.chain = crc;
        self.written += bytes.len() as u64;
        self.unsynced += bytes.len() as u64;
        if self.unsynced >= SYNC_EVERY {
            self.plan.file.sync()?;
            self.unsynced = 0;
        }
        if self.written - self.reported >= REPORT_EVERY {
            self.reported = self.written;
            tracing::info!(
                segment = self.plan.target,
                copied_bytes = self.written,
                segments_done = self.seg_i,
                segments = self.segs.len(),
                "compaction progress"
            );
        }
        Ok(())
    }

    /// The worker's handle on sealed segment `seg` (opened on first use).
    fn handle(&mut self, seg: u64) -> io::Result<&dyn VfsFile> {
        if !self.handles.contains_key(&seg) {
            let file = self.plan.vfs.open(&segment::name(seg), false)?;
            self.handles.insert(seg, file);
        }
        self.handles
            .get(&seg)
            .map(|f| &**f)
            .ok_or_else(|| io::Error::other("no handle"))
    }

    fn seg_len(&self, seg: u64) -> io::Result<u64> {
        self.plan
            .sealed
            .iter()
            .find(|(n, _)| *n == seg)
            .map(|&(_, len)| len)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the compaction reads segment {seg}, which is not sealed"),
                )
            })
    }

    /// The bytes of a snapshot record in a sealed segment, once that segment is verified:
    /// damage there fails the copy (the segment stays, and reading the snapshot answers
    /// `Damaged`), never gives the damaged bytes a fresh checksum.
    fn read_loc(&mut self, loc: Loc) -> io::Result<SharedBytes> {
        self.verify(loc.seg)?;
        let len = self.seg_len(loc.seg)?;
        if loc.off + u64::from(loc.len) > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "segment {}: a snapshot at offset {} is outside the log",
                    loc.seg, loc.off
                ),
            ));
        }
        let mut buf = vec![0u8; loc.len as usize];
        self.handle(loc.seg)?.read_at(&mut buf, loc.off)?;
        Ok(SharedBytes::from(buf))
    }

    /// Verifies segment `seg` (every frame) unless this copy already has.
    fn verify(&mut self, seg: u64) -> io::Result<()> {
        if !self.verified.contains(&seg) {
            self.scan(seg)?;
        }
        Ok(())
    }

    /// Scans segment `seg`, verifying every frame; returns its events' positions.
    fn scan(&mut self, seg: u64) -> io::Result<SegFine> {
        let len = self.seg_len(seg)?;
        let store = self.plan.store;
        let path = self.plan.vfs.path(&segment::name(seg));
        let file = self.handle(seg)?;
        let fine = crate::positions::scan(file, len, store, seg).map_err(|e| {
            let e = io::Error::from(e);
            io::Error::new(
                e.kind(),
                format!(
                    "{}: {e}; the compaction keeps this segment (restore it from a backup)",
                    path.display()
                ),
            )
        })?;
        self.verified.insert(seg);
        Ok(fine)
    }

    /// Loads the positions of segment `seg`'s events (scanning and verifying it).
    fn load_fine(&mut self, seg: u64) -> io::Result<()> {
        if self.fine.as_ref().is_some_and(|(n, _)| *n == seg) {
            return Ok(());
        }
        self.fine = None;
        let fine = self.scan(seg)?;
        self.fine = Some((seg, fine));
        Ok(())
    }

    /// Events `first..=last` of `stream` in segment `seg` (whose positions are loaded), at
    /// most about [`CHUNK`] bytes of them (at least one): nearby extents are read together.
    fn read_events(
        &mut self,
        seg: u64,
        stream: &str,
        first: u64,
        last: u64,
    ) -> io::Result<Vec<StoredRecord>> {
        const RUN_MAX: u64 = 1 << 20;
        const GAP_MAX: u64 = 64 << 10;
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let extents: Vec<Extent> = {
            let Some((_, fine)) = self.fine.as_ref().filter(|(n, _)| *n == seg) else {
                return Err(bad(format!("segment {seg}'s positions are not loaded")));
            };
            let mut want = Vec::new();
            let mut size = 0u64;
            for e in fine.from(stream, first) {
                if e.first > last || (size > 0 && size + u64::from(e.span) > CHUNK as u64) {
                    break;
                }
                size += u64::from(e.span);
                want.push(*e);
            }
            want
        };
        let mut out = Vec::new();
        let mut seq = first;
        let mut i = 0;
        while i < extents.len() {
            let start = extents[i].off;
            let mut end = start + u64::from(extents[i].span);
            let mut j = i + 1;
            while let Some(next) = extents.get(j) {
                let next_end = next.off + u64::from(next.span);
                if next.off < end || next.off - end > GAP_MAX || next_end - start > RUN_MAX {
                    break;
                }
                end = next_end;
                j += 1;
            }
            let mut buf = vec![
                0u8;
                usize::try_from(end - start)
                    .map_err(|_| bad("a read too large".into()))?
            ];
            self.handle(seg)?.read_at(&mut buf, start)?;
            let run = SharedBytes::from(buf);
            for e in &extents[i..j] {
                if e.first > seq {
                    return Err(bad(format!(
                        "stream {stream:?}: event {seq} is not in segment {seg} where the index places it"
                    )));
                }
                let mut at = (e.off - start) as usize;
                for s in e.first..e.first + u64::from(e.count) {
                    let len = run
                        .get(at..at + 4)
                        .map(|b| crate::frame::u32_at(b, 0) as usize)
                        .ok_or_else(|| {
                            bad(format!(
                                "segment {seg}: a record at offset {} is outside its frame",
                                e.off
                            ))
                        })?;
                    let bytes = run.slice_checked(at + 4..at + 4 + len).ok_or_else(|| {
                        bad(format!(
                            "segment {seg}: a record at offset {} is outside its frame",
                            e.off
                        ))
                    })?;
                    at += 4 + len;
                    if s == seq && s <= last {
                        out.push(StoredRecord { seq, bytes });
                        seq += 1;
                    }
                }
            }
            i = j;
        }
        if out.is_empty() {
            return Err(bad(format!(
                "stream {stream:?}: event {first} is not in segment {seg} where the index places it"
            )));
        }
        Ok(out)
    }

    /// Writes the next frame of the copy (or moves to the next stage).
    fn copy_frame(&mut self) -> io::Result<()> {
        match self.stage {
            Stage::Checkpoints => self.copy_checkpoints(),
            Stage::Events => self.copy_events(),
            Stage::Done => Ok(()),
        }
    }

    /// One frame of checkpoints: several streams' heads, marks and snapshots.
    fn copy_checkpoints(&mut self) -> io::Result<()> {
        let mut frame = FrameBuf::new();
        frame.put_u32(0);
        let mut count = 0u32;
        let place = Placement {
            seg: self.plan.target,
            at: self.off,
        };
        let max = self.plan.frame_max.min(MAX_FRAME);
        while self.next < self.plan.streams.len() && frame.pos() < CHUNK {
            let n = &self.plan.streams[self.next];
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
            let (name, low_water) = (Arc::clone(&n.name), n.low_water);
            let snapshots = n.snapshots.clone();
            batch::checkpoint_start(&mut frame, &name, low_water, low_water, 0);
            batch::checkpoint_snapshots(&mut frame, snapshots.len() as u32);
            for (seq, loc) in snapshots {
                match loc {
                    SnapLoc::Log(l) => {
                        let bytes = self.read_loc(l).map_err(|e| {
                            io::Error::new(
                                e.kind(),
                                format!("the snapshot of stream {name:?} at seq {seq}: {e}"),
                            )
                        })?;
                        let to = batch::checkpoint_snapshot(
                            &mut frame,
                            place,
                            seq,
                            SnapIn::Inline(&bytes),
                        );
                        if let SnapLoc::Log(to) = to {
                            self.moved.insert((l.seg, l.off), to);
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
            self.next += 1;
        }
        if count > 0 {
            frame.patch_u32(crate::frame::FRAME_HEADER_LEN, count);
            self.put_frame(frame)?;
        }
        if self.next >= self.plan.streams.len() {
            self.stage = Stage::Events;
            self.next = 0;
            self.seg_i = 0;
        }
        Ok(())
    }

    /// One append of at most [`CHUNK`] bytes of one stream's events in the current segment
    /// (segment by segment, each one's positions loaded once; streams in name order).
    fn copy_events(&mut self) -> io::Result<()> {
        loop {
            let Some(&seg) = self.segs.get(self.seg_i) else {
                self.stage = Stage::Done;
                self.fine = None;
                self.handles.clear();
                return Ok(());
            };
            let Some(n) = self.plan.streams.get(self.next) else {
                // This segment is done: its handle is no longer needed.
                self.handles.remove(&seg);
                self.seg_i += 1;
                self.next = 0;
                continue;
            };
            let i = n.runs.partition_point(|r| r.seg < seg);
            let in_seg = n.runs.get(i).filter(|r| r.seg == seg).map(|r| {
                let last = n.runs.get(i + 1).map_or(n.head, |next| next.first - 1);
                (r.first.max(self.seqs[self.next]), last)
            });
            let Some((first, last)) = in_seg.filter(|(f, l)| f <= l) else {
                self.next += 1;
                continue;
            };
            let name = Arc::clone(&n.name);
            self.load_fine(seg)?;
            let records = self.read_events(seg, &name, first, last)?;
            let size: u64 = records
                .iter()
                .map(|r| r.bytes.len() as u64 + RECORD_OVERHEAD)
                .sum();
            let mut frame = FrameBuf::new();
            frame.put_u32(1);
            let place = Placement {
                seg: self.plan.target,
                at: self.off,
            };
            batch::append(&mut frame, place, &name, first - 1, &records, None);
            self.copied[self.next] += size;
            self.seqs[self.next] = first + records.len() as u64;
            return self.put_frame(frame);
        }
    }
}
