//! Open and reopen: read the identity file, check every segment names this store and its
//! place, replay the log into an index, and set aside (never destroy) what is not used.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use persevere_core::Repair;

use crate::batch;
use crate::checkpoint::{self, Checkpoint, Position};
use crate::frame::{HeaderError, SegmentHeader, FORMAT, SEGMENT_HEADER_LEN};
use crate::index::{Index, Marker, Op, SnapLoc};
use crate::manifest::{self, Manifest, ManifestError};
use crate::quarantine;
use crate::segment::{self, End, Segment};
use crate::snapshot_file;
use crate::store::{FileOptions, Recovery, TornTail};
use crate::vfs::Vfs;
use crate::FileError;

/// What an open may do when the directory holds no store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The store must exist.
    Open,
    /// The store must not exist.
    Create,
    /// Open the store, or create it if the directory holds none.
    OpenOrCreate,
}

/// Everything open rebuilt.
pub(crate) struct Loaded {
    pub store_id: u64,
    pub index: Index,
    pub segments: BTreeMap<u64, Segment>,
    pub active: u64,
    pub floor: u64,
    pub newest_recorded: u64,
    /// Where the log ended at the last clean shutdown.
    pub clean_end: (u64, u64),
    pub repairs: Vec<Repair>,
    pub torn_tail: Option<TornTail>,
    /// The id of the next snapshot file: above every one present or referenced; `None` when
    /// one holds the last id (see [`reconcile_snapshot_files`]).
    pub next_snapshot_file: Option<u64>,
    /// The newest segment ends with a seal: the next write needs a new segment.
    pub active_sealed: bool,
    /// Frames written after the last close marker (or since creation).
    pub closed: bool,
    /// What open read and scanned.
    pub summary: OpenSummary,
}

/// Whether open used the index checkpoint (the `INDEX` file).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexCheckpoint {
    /// There was none: the whole log was replayed.
    Absent,
    /// It was used: only the log after `offset` of segment `segment` was replayed.
    Used {
        /// The segment it stands in.
        segment: u64,
        /// Where in that segment.
        offset: u64,
    },
    /// It could not be trusted (damaged, of another store, stale): the whole log was replayed.
    Ignored {
        /// Why.
        reason: String,
    },
}

/// What an open (or reopen) of a [`FileStore`](crate::FileStore) read, also logged as one
/// `INFO` line.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// drop(persevere_file::FileStore::create(dir.path()).unwrap());
/// let store = persevere_file::FileStore::open(dir.path()).unwrap();
/// let summary = store.open_summary();
/// // A clean shutdown leaves a checkpoint: nothing after it needs replaying.
/// assert!(matches!(summary.checkpoint, persevere_file::IndexCheckpoint::Used { .. }));
/// assert_eq!(summary.scanned_bytes, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenSummary {
    /// Segments in the log.
    pub segments: usize,
    /// Streams in the index.
    pub streams: usize,
    /// Bytes of the log.
    pub bytes: u64,
    /// Bytes of the log read and replayed (the rest was covered by the checkpoint).
    pub scanned_bytes: u64,
    /// Bytes of the newest segment covered by the checkpoint, read to verify them and to
    /// find its events (the other segments covered are read when first used).
    pub verified_bytes: u64,
    /// Whether the checkpoint was used.
    pub checkpoint: IndexCheckpoint,
    /// How long open took.
    pub took: Duration,
}

pub(crate) fn io_err(
    vfs: &dyn Vfs,
    op: &'static str,
    name: &str,
) -> impl Fn(io::Error) -> FileError {
    let path = vfs.path(name);
    move |source| FileError::Io {
        op,
        path: path.clone(),
        source,
    }
}

fn version_error(vfs: &dyn Vfs, name: &str, format: u16) -> FileError {
    let file = vfs.path(name);
    if format > FORMAT {
        FileError::NewerFormat {
            file,
            format,
            supported: FORMAT,
        }
    } else {
        FileError::OlderFormat {
            file,
            format,
            supported: FORMAT,
        }
    }
}

fn is_own_temp(name: &str) -> bool {
    name == manifest::TEMP
        || name == checkpoint::TEMP
        || name.strip_suffix(".tmp").is_some_and(|n| {
            segment::parse_name(n).is_some() || snapshot_file::parse_name(n).is_some()
        })
}

struct Repairer<'a> {
    vfs: &'a dyn Vfs,
    recovery: Recovery,
    repairs: Vec<Repair>,
}

impl Repairer<'_> {
    /// Refuses in strict mode, else records and logs the repair.
    fn check(&self, name: &str, what: &str) -> Result<(), FileError> {
        match self.recovery {
            Recovery::Strict => Err(FileError::NeedsRepair {
                file: self.vfs.path(name),
                what: what.into(),
            }),
            Recovery::Repair => Ok(()),
        }
    }

    fn done(&mut self, what: String, kept: String, streams: Vec<Arc<str>>) {
        let kept = self.vfs.path(&kept).display().to_string();
        tracing::warn!(what = %what, kept_at = %kept, streams = ?streams, "the file store set data aside at open");
        self.repairs.push(Repair::new(what, Some(kept), streams));
    }

    /// Moves a whole file of the store's own into quarantine.
    fn set_aside(&mut self, name: &str, why: &str) -> Result<(), FileError> {
        self.check(name, why)?;
        let what = format!(
            "{}: {why}; moved to quarantine",
            self.vfs.path(name).display()
        );
        let kept = quarantine::move_file(self.vfs, name, &what).map_err(io_err(
            self.vfs,
            "moving to quarantine",
            name,
        ))?;
        self.done(what, kept, Vec::new());
        Ok(())
    }
}

/// Opens (or creates) the store in `vfs`.
pub(crate) fn load(vfs: &dyn Vfs, options: &FileOptions, mode: Mode) -> Result<Loaded, FileError> {
    let started = Instant::now();
    let names = vfs.list().map_err(io_err(vfs, "listing", ""))?;
    let has_manifest = names.iter().any(|n| n == manifest::NAME);
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|n| segment::parse_name(n))
        .collect();
    numbers.sort_unstable();
    let snapshot_files: Vec<u64> = names
        .iter()
        .filter_map(|n| snapshot_file::parse_name(n))
        .collect();
    let evidence = if has_manifest {
        Some(manifest::NAME.to_owned())
    } else {
        numbers
            .first()
            .map(|&n| segment::name(n))
            .or_else(|| snapshot_files.first().map(|&id| snapshot_file::name(id)))
    };
    let create = match (mode, &evidence) {
        (Mode::Create, Some(found)) => {
            return Err(FileError::AlreadyAStore {
                path: vfs.path(""),
                found: found.clone(),
            })
        }
        (Mode::Open, None) => {
            return Err(FileError::NotAStore {
                path: vfs.path(""),
                reason: format!("no identity file `{}` and no segment", manifest::NAME),
            })
        }
        (Mode::Create | Mode::OpenOrCreate, None) => true,
        (Mode::Open | Mode::OpenOrCreate, Some(_)) => false,
    };
    let mut rep = Repairer {
        vfs,
        recovery: options.recovery,
        repairs: Vec::new(),
    };
    for name in names.iter().filter(|n| is_own_temp(n)) {
        rep.set_aside(name, "a temporary file left by an interrupted write")?;
    }
    let manifest = if create {
        let m = Manifest {
            store: manifest::new_store_id(),
            newest: 0,
            closed: (0, 0),
        };
        m.write(vfs)
            .map_err(io_err(vfs, "creating the identity file", manifest::NAME))?;
        tracing::info!(dir = %vfs.path("").display(), store_id = %format!("{:016x}", m.store), "created a file store");
        m
    } else {
        match Manifest::read(vfs) {
            Ok(m) => m,
            Err(ManifestError::Version(v)) => return Err(version_error(vfs, manifest::NAME, v)),
            Err(ManifestError::Bad(reason)) => {
                return Err(FileError::Corrupt {
                    file: vfs.path(manifest::NAME),
                    offset: 0,
                    reason: reason.into(),
                })
            }
            Err(ManifestError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                return Err(FileError::Missing {
                    file: vfs.path(manifest::NAME),
                    reason: format!(
                        "the directory holds the store's files ({}) but not its identity file",
                        evidence.unwrap_or_default()
                    ),
                })
            }
            Err(ManifestError::Io(e)) => return Err(io_err(vfs, "reading", manifest::NAME)(e)),
        }
    };
    let store = manifest.store;

    // Headers: each names this store and its own place.
    let mut headers = BTreeMap::new();
    for (i, &n) in numbers.iter().enumerate() {
        let name = segment::name(n);
        let file = vfs
            .open(&name, false)
            .map_err(io_err(vfs, "opening", &name))?;
        let len = file.len().map_err(io_err(vfs, "reading", &name))?;
        let mut head = vec![0u8; (len as usize).min(SEGMENT_HEADER_LEN)];
        file.read_at(&mut head, 0)
            .map_err(io_err(vfs, "reading", &name))?;
        match SegmentHeader::decode(&head) {
            Ok(h) if h.store != store => {
                return Err(FileError::Foreign {
                    file: vfs.path(&name),
                    expected: store,
                    found: h.store,
                })
            }
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
            Err(HeaderError::Version(v)) => return Err(version_error(vfs, &name, v)),
            Err(HeaderError::Bad(reason)) => {
                // Only the creation of a segment newer than the identity file records can
                // have been interrupted.
                let newest = i + 1 == numbers.len();
                let interrupted = newest
                    && n == manifest.newest + 1
                    && (len < SEGMENT_HEADER_LEN as u64 || head.iter().all(|&b| b == 0));
                if !interrupted {
                    return Err(FileError::Corrupt {
                        file: vfs.path(&name),
                        offset: 0,
                        reason: reason.into(),
                    });
                }
                rep.set_aside(
                    &name,
                    "a segment whose creation was interrupted (incomplete header)",
                )?;
            }
        }
    }
    let floor = headers.values().map(|h| h.floor).max().unwrap_or(0);
    let stale: Vec<u64> = headers.range(..floor).map(|(&n, _)| n).collect();
    for n in stale {
        headers.remove(&n);
        rep.set_aside(
            &segment::name(n),
            &format!("a segment replaced by compaction (below the floor {floor})"),
        )?;
    }
    // Complete: the newest segment is the recorded one (or the next, if the identity file's
    // update was interrupted), and no segment from the floor on is missing.
    let newest = headers.keys().next_back().copied().unwrap_or(0);
    if newest < manifest.newest {
        return Err(FileError::Missing {
            file: vfs.path(&segment::name(manifest.newest)),
            reason: format!(
                "the identity file records segment {} but the newest present is {}",
                manifest.newest, newest
            ),
        });
    }
    if newest > manifest.newest + 1 {
        return Err(FileError::Corrupt {
            file: vfs.path(&segment::name(newest)),
            offset: 0,
            reason: format!(
                "a segment beyond the newest the identity file records ({})",
                manifest.newest
            ),
        });
    }
    for (expected, &n) in (floor.max(1)..).zip(headers.keys()) {
        if n != expected {
            return Err(FileError::Missing {
                file: vfs.path(&segment::name(expected)),
                reason: "a segment is missing from the middle of the log".into(),
            });
        }
    }
    if headers.is_empty() && floor == 0 && manifest.newest > 0 {
        return Err(FileError::Missing {
            file: vfs.path(&segment::name(manifest.newest)),
            reason: "every segment is gone".into(),
        });
    }

    let last = headers.keys().next_back().copied();
    let (checkpoint, state) = match trusted_checkpoint(vfs, store, floor, &headers) {
        Ok(Some(cp)) => {
            let state = IndexCheckpoint::Used {
                segment: cp.position.seg,
                offset: cp.position.len,
            };
            (Some(cp), state)
        }
        Ok(None) => (None, IndexCheckpoint::Absent),
        Err(reason) => {
            tracing::warn!(dir = %vfs.path("").display(), %reason, "the index checkpoint cannot be trusted: replaying the whole log");
            (None, IndexCheckpoint::Ignored { reason })
        }
    };
    let mut loaded = Loaded {
        store_id: store,
        index: Index::default(),
        segments: BTreeMap::new(),
        active: 0,
        floor,
        newest_recorded: manifest.newest,
        clean_end: manifest.closed,
        repairs: Vec::new(),
        torn_tail: None,
        next_snapshot_file: Some(1),
        active_sealed: false,
        closed: true,
        summary: OpenSummary {
            segments: headers.len(),
            streams: 0,
            bytes: 0,
            scanned_bytes: 0,
            verified_bytes: 0,
            checkpoint: state,
            took: Duration::ZERO,
        },
    };
    let mut from = None;
    if let Some(cp) = checkpoint {
        loaded.index = cp.index;
        from = Some(cp.position);
    }
    if let Some(last) = last {
        // Only the newest segment's event positions are kept (older ones are rebuilt when
        // read). The part of it a checkpoint covers is scanned for them, which verifies
        // every frame of it; what follows is replayed.
        let fine = match from {
            Some(p) if p.seg == last => {
                let name = segment::name(last);
                let file = vfs
                    .open(&name, false)
                    .map_err(io_err(vfs, "opening", &name))?;
                let fine =
                    crate::positions::scan(&*file, p.len, store, last).map_err(|e| match e {
                        crate::positions::ScanError::Io(e) => io_err(vfs, "reading", &name)(e),
                        crate::positions::ScanError::Damaged { at, reason } => FileError::Corrupt {
                            file: vfs.path(&name),
                            offset: at,
                            reason,
                        },
                    })?;
                loaded.summary.verified_bytes += p.len;
                fine
            }
            _ => Default::default(),
        };
        loaded.index.fine.insert(last, fine);
    }
    for (&n, header) in &headers {
        match from {
            Some(p) if n < p.seg => {
                // Covered by the checkpoint (which checked its length).
                let name = segment::name(n);
                let file = vfs
                    .open(&name, false)
                    .map_err(io_err(vfs, "opening", &name))?;
                let len = file.len().map_err(io_err(vfs, "reading", &name))?;
                loaded.summary.bytes += len;
                loaded.segments.insert(
                    n,
                    Segment {
                        file,
                        len,
                        chain: 0,
                    },
                );
            }
            Some(p) if n == p.seg => {
                replay(
                    vfs,
                    &mut loaded,
                    &mut rep,
                    n,
                    header,
                    Some(n) == last,
                    Some(p),
                )?;
            }
            _ => replay(vfs, &mut loaded, &mut rep, n, header, Some(n) == last, None)?,
        }
    }
    loaded.index.dropped_files.clear();
    reconcile_snapshot_files(vfs, &mut loaded, &mut rep, &snapshot_files)?;
    loaded.active = last.unwrap_or(0);
    loaded.repairs = rep.repairs;
    loaded.summary.streams = loaded.index.streams.len();
    loaded.summary.took = started.elapsed();
    let sum = &loaded.summary;
    tracing::info!(
        dir = %vfs.path("").display(),
        segments = sum.segments,
        streams = sum.streams,
        bytes = sum.bytes,
        scanned_bytes = sum.scanned_bytes,
        verified_bytes = sum.verified_bytes,
        checkpoint = ?sum.checkpoint,
        millis = sum.took.as_millis() as u64,
        "opened the file store"
    );
    Ok(loaded)
}

/// The checkpoint, if there is one and it can be trusted: this store's, intact, standing in
/// the log as it is on disk. `Err` says why one present cannot be used.
fn trusted_checkpoint(
    vfs: &dyn Vfs,
    store: u64,
    floor: u64,
    headers: &BTreeMap<u64, SegmentHeader>,
) -> Result<Option<Checkpoint>, String> {
    let Some(bytes) = checkpoint::read(vfs).map_err(|e| format!("reading it failed: {e}"))? else {
        return Ok(None);
    };
    let cp = checkpoint::decode(&bytes)?;
    if cp.store != store {
        return Err(format!("it belongs to store {:016x}", cp.store));
    }
    if cp.floor != floor {
        return Err(format!(
            "it was written before a compaction (floor {} against {floor})",
            cp.floor
        ));
    }
    let p = cp.position;
    let covered: Vec<u64> = headers.range(..=p.seg).map(|(&n, _)| n).collect();
    let listed: Vec<u64> = cp.segments.iter().map(|&(n, _)| n).collect();
    if covered != listed || !headers.contains_key(&p.seg) {
        return Err(format!(
            "it covers segments {listed:?}, the log has {covered:?} up to segment {}",
            p.seg
        ));
    }
    for &(n, len) in &cp.segments {
        let name = segment::name(n);
        let file = vfs
            .open(&name, false)
            .map_err(|e| format!("opening {name}: {e}"))?;
        let on_disk = file.len().map_err(|e| format!("reading {name}: {e}"))?;
        if n == p.seg {
            if len != p.len || on_disk < len {
                return Err(format!(
                    "it stands at offset {} of {name}, which holds {on_disk} bytes",
                    p.len
                ));
            }
            let chain = if p.len <= SEGMENT_HEADER_LEN as u64 {
                SegmentHeader::chain(&headers[&n].encode())
            } else {
                let mut b = [0u8; 4];
                file.read_at(&mut b, p.len - 4)
                    .map_err(|e| format!("reading {name}: {e}"))?;
                u32::from_le_bytes(b)
            };
            if chain != p.chain {
                return Err(format!(
                    "the frame before offset {} of {name} is not the one it covers",
                    p.len
                ));
            }
        } else if on_disk != len {
            return Err(format!(
                "it records {name} with {len} bytes, it holds {on_disk}"
            ));
        }
    }
    // Every live byte lies in the segments it covers: a larger count is not this log's (and
    // could overflow as the store adds to it).
    let log_bytes = cp
        .segments
        .iter()
        .fold(0u64, |sum, &(_, len)| sum.saturating_add(len));
    if cp.index.live_bytes > log_bytes {
        return Err(format!(
            "it counts {} live bytes in a log of {log_bytes} bytes",
            cp.index.live_bytes
        ));
    }
    let known = |seg: u64| seg >= floor && seg <= p.seg;
    for (name, s) in &cp.index.streams {
        // The head leaves room for the seq after it, so `low_water + 1` and the runs' ends
        // are computed without overflow.
        let runs_ok = crate::index::seq_after(s.head, 0).is_some()
            && s.low_water <= s.head
            && s.runs.iter().all(|r| known(r.seg))
            && s.runs
                .iter()
                .zip(s.runs.iter().skip(1))
                .all(|(a, b)| a.first < b.first && a.seg <= b.seg)
            && s.runs
                .front()
                .is_none_or(|r| Some(r.first) == s.low_water.checked_add(1))
            && s.runs.back().is_none_or(|r| r.first <= s.head)
            && (s.runs.is_empty() == (s.head == s.low_water));
        let snaps_ok = s.snapshots.values().all(|l| match l {
            SnapLoc::Log(l) => known(l.seg),
            SnapLoc::File { .. } => true,
        });
        if !runs_ok || !snaps_ok {
            return Err(format!("its entry of stream {name:?} does not fit the log"));
        }
    }
    Ok(Some(cp))
}

fn replay(
    vfs: &dyn Vfs,
    loaded: &mut Loaded,
    rep: &mut Repairer<'_>,
    n: u64,
    header: &SegmentHeader,
    last: bool,
    from: Option<Position>,
) -> Result<(), FileError> {
    let name = segment::name(n);
    let mut file = vfs
        .open(&name, false)
        .map_err(io_err(vfs, "opening", &name))?;
    let file_len = file.len().map_err(io_err(vfs, "reading", &name))?;
    let compacted = header.floor == n;
    let start = from.map_or(SEGMENT_HEADER_LEN as u64, |p| p.len);
    // Compaction's stream checkpoints only open a compacted segment: none follows a place
    // the index checkpoint stands at.
    let mut seen_batch = start > SEGMENT_HEADER_LEN as u64;
    let mut marker: Option<Marker> = from.and_then(|p| p.marker);
    let index = &mut loaded.index;
    let corrupt = |offset: u64, reason: String| FileError::Corrupt {
        file: vfs.path(&name),
        offset,
        reason,
    };
    let (end, chain) = segment::scan_frames(
        &*file,
        (
            start,
            from.map_or_else(|| SegmentHeader::chain(&header.encode()), |p| p.chain),
        ),
        file_len,
        loaded.store_id,
        last,
        io_err(vfs, "reading", &name),
        |seen| {
            if marker == Some(Marker::Seal) {
                return Err(corrupt(seen.at, "a frame after the segment's seal".into()));
            }
            let (start, end) = seen.payload;
            let ops = batch::decode(seen.data, seen.base, start, end, n)
                .map_err(|r| corrupt(seen.at, r.into()))?;
            marker = None;
            for op in ops {
                let checkpoint = matches!(op, Op::Checkpoint { .. });
                if checkpoint && (!compacted || seen_batch) {
                    return Err(corrupt(
                        seen.at,
                        "checkpoint outside a compacted segment".into(),
                    ));
                }
                if let Op::Marker(m) = op {
                    marker = Some(m);
                } else {
                    seen_batch |= !checkpoint;
                }
                index.apply(op).map_err(|r| {
                    corrupt(seen.at, format!("operation does not fit the log: {r}"))
                })?;
            }
            Ok(())
        },
    )?;
    let (clean_seg, clean_len) = loaded.clean_end;
    let below_clean_end = |at: u64| n == clean_seg && at < clean_len;
    let len = match end {
        End::Clean => file_len,
        End::Torn { at } if below_clean_end(at) => {
            return Err(corrupt(
                at,
                format!("damaged before the end recorded at the last clean shutdown ({clean_len})"),
            ))
        }
        End::Torn { at } => {
            let dropped = file_len - at;
            let mut bytes = vec![0u8; dropped as usize];
            file.read_at(&mut bytes, at)
                .map_err(io_err(vfs, "reading", &name))?;
            let streams = bytes
                .get(crate::frame::FRAME_HEADER_LEN..)
                .map(batch::streams_in)
                .unwrap_or_default();
            let what = format!(
                "{}: cut the torn tail at offset {at} ({dropped} bytes): the last write before a crash, never acknowledged unless a journal remembers it",
                vfs.path(&name).display()
            );
            rep.check(&name, &what)?;
            let kept = quarantine::keep_bytes(vfs, &name, &bytes, &what).map_err(io_err(
                vfs,
                "copying to quarantine",
                &name,
            ))?;
            file.truncate(at)
                .and_then(|()| file.sync())
                .map_err(io_err(vfs, "truncating", &name))?;
            rep.done(what, kept, streams);
            loaded.torn_tail = Some(TornTail {
                file: vfs.path(&name),
                offset: at,
                dropped_bytes: dropped,
            });
            marker = None;
            at
        }
        End::Corrupt { at, reason } => return Err(corrupt(at, reason.into())),
    };
    if below_clean_end(len) {
        return Err(FileError::Missing {
            file: vfs.path(&name),
            reason: format!(
                "the segment ends at offset {len}, before the end recorded at the last clean shutdown ({clean_len}): it was cut"
            ),
        });
    }
    if !last && marker != Some(Marker::Seal) {
        return Err(FileError::Missing {
            file: vfs.path(&name),
            reason: format!(
                "the segment ends at offset {len} without its seal although a newer segment exists: it was cut"
            ),
        });
    }
    if last {
        loaded.active_sealed = marker == Some(Marker::Seal);
        loaded.closed = marker == Some(Marker::Close);
    }
    loaded.summary.bytes += len;
    loaded.summary.scanned_bytes += len.saturating_sub(from.map_or(0, |p| p.len));
    loaded.segments.insert(n, Segment { file, len, chain });
    Ok(())
}

/// Snapshot files the log references must be there (a missing one is reported, and loading
/// it answers `Damaged`); this store's files it does not reference (written by a batch that
/// never committed, or dropped by one whose removal was interrupted) go to quarantine; files
/// of another store are left alone.
fn reconcile_snapshot_files(
    vfs: &dyn Vfs,
    loaded: &mut Loaded,
    rep: &mut Repairer<'_>,
    present: &[u64],
) -> Result<(), FileError> {
    let referenced: HashSet<u64> = loaded
        .index
        .streams
        .values()
        .flat_map(|s| s.snapshots.values())
        .filter_map(|l| match l {
            SnapLoc::File { id, .. } => Some(*id),
            SnapLoc::Log(_) => None,
        })
        .collect();
    let mut present_set: HashSet<u64> = present.iter().copied().collect();
    for (stream, s) in &loaded.index.streams {
        for (seq, loc) in &s.snapshots {
            if let SnapLoc::File { id, .. } = loc {
                if !present_set.contains(id) {
                    tracing::warn!(file = %vfs.path(&snapshot_file::name(*id)).display(), stream = %stream, seq, "a snapshot file the log references is missing: loading it falls back to an older snapshot or a full replay");
                }
            }
        }
    }
    for id in present.iter().filter(|id| !referenced.contains(id)) {
        let name = snapshot_file::name(*id);
        match snapshot_file::owner(vfs, *id) {
            Some(owner) if owner == loaded.store_id => {
                rep.set_aside(&name, "a snapshot file no log frame references")?;
                present_set.remove(id);
            }
            _ => {
                tracing::warn!(file = %vfs.path(&name).display(), "a snapshot file this store did not write: left untouched");
            }
        }
    }
    // New files are numbered above every file in the directory (never renamed over one)
    // and every file the log references.
    let highest = present_set.iter().chain(&referenced).max().copied();
    loaded.next_snapshot_file = match highest {
        None => Some(1),
        Some(m) => m.checked_add(1),
    };
    if loaded.next_snapshot_file.is_none() {
        tracing::warn!(file = %vfs.path(&snapshot_file::name(u64::MAX)).display(), "a snapshot file holds the last id: large snapshots are refused until it is moved out of the store directory");
    }
    Ok(())
}
