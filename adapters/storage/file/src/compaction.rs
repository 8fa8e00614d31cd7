//! Compaction off the commit path: the commit thread starts it and installs its result; a
//! worker thread (see the `compaction_worker` module) does the copying.
//!
//! When enough of the log is reclaimable, the commit thread seals the active segment (say it
//! is segment `a`): the index at that moment is the state the log holds up to the end of `a`.
//! It notes each stream's part of it — head, compaction mark, snapshots, where its live events
//! lie (a few words per stream and segment, never the events) — creates the temporary file of
//! a replacement of segment `a` (floor `a`) and hands both to a worker thread, which copies
//! the live records into it with its own file handles: first a checkpoint of every stream
//! (its mark as its head, and its snapshots), then its live events as appends of at most 1
//! MiB each, segment by segment (each segment is read once; a stream of any size is copied
//! without holding it in memory), then a seal, and fsyncs it. Sealed segments are never
//! written, so the worker and the commit thread read them side by side; writers keep
//! committing to the segments after `a` meanwhile, and their deletions and snapshot changes
//! replay after it.
//!
//! Installing the result is short and ordered: rename over segment `a`, directory fsync, then
//! the removal of the segments below `a` (the ones it supersedes; a crash before their removal
//! leaves them below the floor, which open sets aside), directory fsync. The commit thread
//! does it at its next `execute` (or at close, or in [`FileStore::compact`]); when no
//! `execute` runs, the worker does it itself under the store's directory lock, so an idle
//! store completes its compaction. Either way the commit thread then moves the noted streams'
//! index over to the new segment and writes the index checkpoint. A crash before the rename
//! leaves the log as it was, plus a temporary file open sets aside.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use persevere_core::StorageError;

use crate::compaction_worker::{self, Install, Noted, Outcome, Output, Pacing, Plan, Shared};
use crate::frame::{SegmentHeader, MAX_FRAME, SEGMENT_HEADER_LEN};
use crate::index::{Marker, Run, SnapLoc, RECORD_OVERHEAD};
use crate::segment::{self, Segment};
use crate::store::FileStore;

/// Bytes a step copies between checks of the worker (and after each group commit in the
/// crash simulations), by default (tiny in unit tests, so that compactions span many commits
/// there).
#[cfg(not(test))]
pub(crate) const STEP: u64 = 512 << 10;
#[cfg(test)]
pub(crate) const STEP: u64 = 300;

/// Whether a compaction is under way.
pub(crate) enum Compaction {
    /// None.
    Idle,
    /// A worker copies (or has copied) the live records into the replacement of `target`.
    Running(Box<Running>),
}

/// A compaction whose worker was started.
pub(crate) struct Running {
    target: u64,
    shared: Arc<Shared>,
    worker: Worker,
}

/// Where the compaction's job runs.
enum Worker {
    /// On its own thread (real stores).
    Thread(Option<std::thread::JoinHandle<()>>),
    /// On the commit thread, a step at a time ([`Pacing::Lockstep`] and
    /// [`Pacing::LockstepIdle`]: deterministic file operations for the simulations); `None`
    /// once finished.
    Inline(Option<Box<compaction_worker::Job>>),
}

/// A compaction failure: before the replacement was in place (nothing changed), or after
/// (the log's state is unknown: fence).
pub(crate) enum CompactError {
    Before(io::Error),
    After(io::Error),
}

/// How [`FileStore::compact_stop`] treats a finished result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Install a result that is complete (close).
    Keep,
    /// Drop it (reopen: the disk is read again anyway).
    Drop,
}

impl FileStore {
    /// After a group commit: concludes a finished compaction, steps a paced one, or starts
    /// one when enough is reclaimable. A failure is logged and retried after a growing number
    /// of commits; it never fences the store (the batch before it was durable), unless it
    /// happened after the replacement segment was renamed into place.
    pub(crate) fn maybe_compact(&mut self) {
        if matches!(self.compaction, Compaction::Idle) {
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
            if let Err(error) = self.compact_start() {
                self.compact_failed(error);
                return;
            }
        }
        if self.pacing == Pacing::Lockstep {
            self.compact_step(self.options.compact_step_bytes);
        }
        self.advance_compaction();
    }

    /// Concludes a compaction whose worker has finished (installing or switching to its
    /// result, or noting its failure); does nothing while it copies.
    pub(crate) fn advance_compaction(&mut self) {
        if let Some((target, outcome)) = self.compact_take(false) {
            if let Err(error) = self.conclude(target, outcome) {
                self.compact_failed(error);
            }
        }
    }

    /// Logs a failed compaction and schedules the retry (or fences, if the log's state is
    /// unknown).
    fn compact_failed(&mut self, error: CompactError) {
        match error {
            CompactError::Before(error) => {
                self.stats.failed_compactions += 1;
                self.compact_wait = self.compact_backoff;
                tracing::warn!(%error, retry_after_commits = self.compact_wait, "compaction failed; the log is unchanged and compaction will be retried");
                self.compact_backoff = (self.compact_backoff * 2).min(4096);
            }
            CompactError::After(error) => self.fence("compaction", &error),
        }
    }

    /// Compacts now, to completion: every live event and snapshot (and every stream's head and
    /// compaction mark) up to the end of the active segment, which is sealed first, is
    /// rewritten into a replacement of it, and the older segments are dropped. Finishes a
    /// compaction under way first, and waits for the copy. Runs by itself, on a worker thread
    /// beside the commit path, when enough space is reclaimable (see
    /// [`FileOptions::compact_min_bytes`](crate::FileOptions::compact_min_bytes)).
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
    ///         events: StoredRecord::new(seq, vec![0u8; 100]).into(),
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
        let lock = Arc::clone(&self.dir_lock);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = &self.fenced {
            return Err(StorageError::Failed(reason.clone()));
        }
        let mut started = false;
        let result = loop {
            if matches!(self.compaction, Compaction::Idle) {
                if started {
                    break Ok(());
                }
                started = true;
                if let Err(e) = self.compact_start() {
                    break Err(e);
                }
                if matches!(self.compaction, Compaction::Idle) {
                    break Ok(()); // skipped
                }
            }
            if self.pacing != Pacing::Free {
                self.compact_step(u64::MAX);
            }
            let Some((target, outcome)) = self.compact_take(true) else {
                continue;
            };
            if let Err(e) = self.conclude(target, outcome) {
                break Err(e);
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(CompactError::Before(error)) => {
                self.stats.failed_compactions += 1;
                tracing::warn!(%error, "compaction failed; the log is unchanged");
                Err(StorageError::Failed(format!(
                    "compaction failed, the log is unchanged: {error}"
                )))
            }
            Err(CompactError::After(error)) => {
                self.fence("compaction", &error);
                Err(StorageError::Failed(format!("compaction failed: {error}")))
            }
        }
    }

    /// Whether a compaction is under way (its worker copying, or its result not yet
    /// installed in the index).
    pub fn compacting(&self) -> bool {
        matches!(self.compaction, Compaction::Running(_))
    }

    /// Asks a worker under way to stop (the store is fenced); it is joined at reopen or close.
    pub(crate) fn compact_cancel(&self) {
        if let Compaction::Running(running) = &self.compaction {
            running.shared.cancel();
        }
    }

    /// Runs `budget` more bytes of a paced job (or to its end).
    pub(crate) fn compact_step(&mut self, budget: u64) {
        let Compaction::Running(running) = &mut self.compaction else {
            return;
        };
        let Worker::Inline(job) = &mut running.worker else {
            return;
        };
        let Some(taken) = job.take() else {
            return;
        };
        running.shared.lock().budget = budget;
        *job = compaction_worker::step(taken, &running.shared);
    }

    /// Takes the outcome of a finished worker (joining its thread), leaving no compaction
    /// under way; `None` while it copies (or, with `wait`, waits for it to finish).
    fn compact_take(&mut self, wait: bool) -> Option<(u64, Outcome)> {
        let Compaction::Running(running) = &self.compaction else {
            return None;
        };
        {
            let shared = &running.shared;
            let mut state = shared.lock();
            if let Worker::Inline(Some(_)) = &running.worker {
                // A paced job only moves in steps: it can be taken only once stopped.
                if !shared.cancelled() {
                    return None;
                }
                state.outcome = Outcome::Cancelled;
            }
            while wait && matches!(state.outcome, Outcome::Copying) {
                state = shared.wait(state);
            }
            if matches!(state.outcome, Outcome::Copying) {
                return None;
            }
        }
        let Compaction::Running(mut running) =
            std::mem::replace(&mut self.compaction, Compaction::Idle)
        else {
            return None;
        };
        let panicked = match &mut running.worker {
            Worker::Thread(thread) => thread.take().is_some_and(|t| t.join().is_err()),
            Worker::Inline(job) => {
                drop(job.take());
                false
            }
        };
        let outcome = std::mem::replace(&mut running.shared.lock().outcome, Outcome::Copying);
        if panicked {
            // It may have panicked halfway through installing: nothing is known of the
            // directory.
            return Some((running.target, Outcome::Panicked));
        }
        Some((running.target, outcome))
    }

    /// Stops a compaction under way (the worker stops at its next frame) and waits for its
    /// thread. With [`Stop::Keep`] a result that was complete is installed (unless the store
    /// is fenced); anything else is abandoned and its temporary file removed (the log is
    /// unchanged by it).
    pub(crate) fn compact_stop(&mut self, stop: Stop) {
        let Compaction::Running(running) = &self.compaction else {
            return;
        };
        running.shared.cancel();
        let Some((target, outcome)) = self.compact_take(true) else {
            return;
        };
        let keep = stop == Stop::Keep && self.fenced.is_none();
        match outcome {
            Outcome::Ready(out) if keep => {
                if let Err(error) = self.conclude(target, Outcome::Ready(out)) {
                    self.compact_failed(error);
                }
            }
            Outcome::Installed(out) if keep => self.switch(*out),
            Outcome::Installed(_) => {}
            Outcome::InstallFailed(error) => self.fence("compaction", &error),
            Outcome::Panicked => self.fence(
                "compaction",
                &io::Error::other("the compaction worker panicked"),
            ),
            _ => self.remove_temp(target),
        }
    }

    /// Removes the temporary file of an abandoned compaction.
    fn remove_temp(&self, target: u64) {
        let tmp = segment::temp_name(target);
        match self.vfs.remove(&tmp) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                tracing::warn!(%error, file = %self.vfs.path(&tmp).display(), "could not remove the file of an abandoned compaction; the next open sets it aside");
            }
            _ => {}
        }
    }

    /// Acts on a finished worker's outcome.
    fn conclude(&mut self, target: u64, outcome: Outcome) -> Result<(), CompactError> {
        match outcome {
            Outcome::Copying => Ok(()),
            Outcome::Ready(out) => {
                match compaction_worker::install_on_disk(&*self.vfs, &out) {
                    Ok(()) => {}
                    Err(Install::NotRenamed(error)) => {
                        self.remove_temp(target);
                        return Err(CompactError::Before(error));
                    }
                    Err(Install::Unknown(error)) => return Err(CompactError::After(error)),
                }
                self.switch(*out);
                Ok(())
            }
            Outcome::Installed(out) => {
                self.switch(*out);
                Ok(())
            }
            Outcome::Failed(error) => {
                // The log is unchanged; the temporary file is the compaction's own.
                self.remove_temp(target);
                Err(CompactError::Before(error))
            }
            Outcome::InstallFailed(error) => Err(CompactError::After(error)),
            Outcome::Cancelled => {
                self.remove_temp(target);
                Ok(())
            }
            Outcome::Panicked => Err(CompactError::After(io::Error::other(
                "the compaction worker panicked",
            ))),
        }
    }

    /// Seals the active segment, notes every stream's state as of its end, creates the
    /// replacement's temporary file and starts the worker.
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
            .map_err(|e| {
                self.remove_temp(target);
                CompactError::Before(e)
            })?;
        let live = self.index.live_bytes;
        let before = self.total_bytes();
        tracing::info!(
            segment = target,
            streams = streams.len(),
            live_bytes = live,
            log_bytes = before,
            "compaction started"
        );
        let plan = Plan {
            vfs: Arc::clone(&self.vfs),
            dir_lock: Arc::clone(&self.dir_lock),
            store: self.store_id,
            target,
            frame_max: self.options.frame_max,
            file,
            chain: SegmentHeader::chain(&header),
            streams,
            sealed: self
                .segments
                .range(..=target)
                .map(|(&n, s)| (n, s.len))
                .collect(),
            others: self
                .segments
                .keys()
                .copied()
                .filter(|&n| n != target)
                .collect(),
            before,
        };
        let shared = Arc::new(Shared::new(self.pacing, self.compact_hold));
        let worker = if self.pacing == Pacing::Free {
            let for_thread = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name(format!("persevere-compact-{target:x}"))
                .spawn(move || compaction_worker::run(plan, &for_thread))
                .map_err(|e| {
                    self.remove_temp(target);
                    CompactError::Before(e)
                })?;
            Worker::Thread(Some(thread))
        } else {
            Worker::Inline(Some(Box::new(compaction_worker::Job::new(plan))))
        };
        self.compaction = Compaction::Running(Box::new(Running {
            target,
            shared,
            worker,
        }));
        Ok(())
    }

    /// Moves the index over to a replacement that is in place: the noted streams' records
    /// now lie in it, the segments below it are gone; writes the index checkpoint.
    fn switch(&mut self, out: Output) {
        let target = out.target;
        self.floor = target;
        for (i, n) in out.streams.iter().enumerate() {
            let Some(s) = self.index.streams.get_mut(&n.name) else {
                continue;
            };
            let mut runs: VecDeque<Run> =
                s.runs.iter().filter(|r| r.seg > target).copied().collect();
            if n.head > n.low_water {
                runs.push_front(Run {
                    seg: target,
                    first: n.low_water + 1,
                    bytes: out.copied[i],
                });
            }
            s.runs = runs;
            crate::index::trim_runs(s);
            for loc in s.snapshots.values_mut() {
                if let SnapLoc::Log(l) = loc {
                    if l.seg <= target {
                        match out.moved.get(&(l.seg, l.off)) {
                            Some(to) => *l = *to,
                            None => {
                                // Cannot happen (every snapshot of the noted state was
                                // copied); a read of it will fail rather than answer
                                // other bytes.
                                tracing::error!(stream = %n.name, "a snapshot of the compacted segments was not copied");
                            }
                        }
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
        let removed = compaction_worker::superseded(&out).count();
        let kept = self.segments.split_off(&(target + 1));
        let replaced = std::mem::replace(&mut self.segments, kept);
        close_elsewhere(replaced);
        self.segments.insert(
            target,
            Segment {
                file: out.file,
                len: out.len,
                chain: out.chain,
            },
        );
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
        self.compact_backoff = 1;
        tracing::info!(
            segment = target,
            bytes_before = out.before,
            bytes_after = after,
            copied_bytes = out.written,
            segments_removed = removed,
            millis = out.started.elapsed().as_millis() as u64,
            "compacted the log"
        );
    }
}

/// Closes the handles of replaced segments on a thread of their own: the last close of a
/// removed file frees its blocks, which for a large segment takes long enough to show in a
/// commit's latency. (Where no thread can be started, they are closed here.)
fn close_elsewhere(replaced: std::collections::BTreeMap<u64, Segment>) {
    if replaced.is_empty() {
        return;
    }
    // Should no thread start, the closure is dropped here, and the handles with it.
    let _ = std::thread::Builder::new()
        .name("persevere-close".into())
        .spawn(move || drop(replaced));
}

/// Test hooks: pause the worker at a point of its copy, release it, wait for it.
#[cfg(test)]
impl FileStore {
    fn with_worker(&self, f: impl FnOnce(&Shared)) {
        if let Compaction::Running(running) = &self.compaction {
            f(&running.shared);
        }
    }

    /// Waits until the worker waits at its pause point (or has finished).
    pub(crate) fn compaction_wait_held(&self) {
        self.with_worker(|shared| {
            let mut state = shared.lock();
            while !state.held && matches!(state.outcome, Outcome::Copying) {
                state = shared.wait(state);
            }
        });
    }

    /// Bytes the worker has written to the replacement so far.
    pub(crate) fn compaction_written(&self) -> u64 {
        let mut written = 0;
        self.with_worker(|shared| written = shared.lock().written);
        written
    }

    /// Lets the worker go on past its pause point.
    pub(crate) fn compaction_release(&self) {
        self.with_worker(|shared| {
            shared.lock().hold_at = None;
            shared.notify();
        });
    }

    /// Waits until the worker has finished (its result ready, installed, or failed).
    pub(crate) fn compaction_wait_done(&self) {
        self.with_worker(|shared| {
            let mut state = shared.lock();
            while matches!(state.outcome, Outcome::Copying) {
                state = shared.wait(state);
            }
        });
    }
}
