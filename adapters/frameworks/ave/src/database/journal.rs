//! [`DbStore`]: persevere's storage contract over any ave [`DbManager`] — the application's
//! own, ave-actors-sqlite's, ave-actors-store's memory manager.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use persevere_core::{
    Command, CommandResult, Completion, StorageError, Store, StoredRecord, StreamCommand,
};

use crate::database::{Collection, DbManager, State, StoreError};

/// The collection holding a stream's events, one entry per append.
pub const EVENTS: &str = "persevere_events";
/// The collection holding a stream's snapshots, one entry per snapshot.
pub const SNAPSHOTS: &str = "persevere_snapshots";

/// Keys looked up one by one before a read falls back to iterating the collection.
const PROBES: u32 = 64;

/// The format byte of an append entry.
const BATCH_FORMAT: u8 = 1;

/// The key of the entry whose last seq (or snapshot seq) is `seq`: zero-padded, so the
/// collection's key order is seq order.
pub(crate) fn key(seq: u64) -> String {
    format!("{seq:020}")
}

pub(crate) fn parse_key(key: &str) -> Result<u64, StorageError> {
    key.parse().map_err(|_| StorageError::Damaged {
        seq: 0,
        reason: format!("an entry key {key:?} is not a sequence number"),
    })
}

/// One append: its events, in seq order, stored under the key of its last seq. An entry with
/// no events marks the head after compaction deleted every event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) events: Vec<StoredRecord>,
}

impl Batch {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Self::encode_events(&self.events)
    }

    /// The entry of an append of `events`.
    fn encode_events(events: &[StoredRecord]) -> Vec<u8> {
        let size: usize = events.iter().map(|r| r.bytes.len() + 12).sum();
        let mut out = Vec::with_capacity(5 + size);
        out.push(BATCH_FORMAT);
        out.extend_from_slice(&(events.len() as u32).to_le_bytes());
        for record in events {
            out.extend_from_slice(&record.seq.to_le_bytes());
            out.extend_from_slice(&(record.bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&record.bytes);
        }
        out
    }

    fn decode(last: u64, bytes: &[u8]) -> Result<Self, StorageError> {
        let damaged = |what: &str| StorageError::Damaged {
            seq: last,
            reason: format!("the append entry ending at seq {last} is damaged: {what}"),
        };
        let (&format, mut rest) = bytes.split_first().ok_or_else(|| damaged("empty"))?;
        if format != BATCH_FORMAT {
            return Err(damaged(&format!("unknown format {format}")));
        }
        let mut take = |n: usize| -> Result<&[u8], StorageError> {
            if rest.len() < n {
                return Err(damaged("truncated"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let word = |b: &[u8]| {
            let mut w = [0u8; 4];
            w.copy_from_slice(b);
            u32::from_le_bytes(w) as usize
        };
        let count = word(take(4)?);
        let mut events = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let mut s = [0u8; 8];
            s.copy_from_slice(take(8)?);
            let seq = u64::from_le_bytes(s);
            let len = word(take(4)?);
            events.push(StoredRecord::new(seq, take(len)?.to_vec()));
        }
        if !rest.is_empty() {
            return Err(damaged("trailing bytes"));
        }
        if events.last().is_some_and(|r| r.seq != last) {
            return Err(damaged("its last event is not at its key"));
        }
        Ok(Self { events })
    }
}

/// One stream's two collections and its head, as last read or written. Nothing makes this
/// store the stream's only writer — an ave manager can be cloned into several stores (each
/// `start_store` given a foreign manager builds its own), and ave's collections have no
/// conditional put — so while another store of the process has the same stream open, an
/// append reads the head again from the collection first.
struct Open<C> {
    events: C,
    snapshots: C,
    head: Option<u64>,
    opened: Opened,
}

/// How many stores over ave managers have each stream open in this process.
static OPENED: LazyLock<Mutex<HashMap<Arc<str>, usize>>> = LazyLock::new(Default::default);

/// This store's count in [`OPENED`] for one stream, taken back when the store lets the stream go.
struct Opened(Arc<str>);

impl Opened {
    fn new(stream: &Arc<str>) -> Self {
        *opened().entry(Arc::clone(stream)).or_insert(0) += 1;
        Self(Arc::clone(stream))
    }

    /// Whether this is the only store of the process with the stream open (so the head it
    /// last read or wrote is still the stream's).
    fn alone(&self) -> bool {
        opened().get(&self.0).is_some_and(|&n| n == 1)
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let mut opened = opened();
        if let Some(n) = opened.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                opened.remove(&self.0);
            }
        }
    }
}

fn opened() -> std::sync::MutexGuard<'static, HashMap<Arc<str>, usize>> {
    OPENED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A persevere [`Store`] over an ave [`DbManager`]: each stream is two collections of the
/// manager, `persevere_events` and `persevere_snapshots`, whose prefix is the stream id.
///
/// - an append is **one `put`** (every event of it under the key of its last seq), so it is
///   atomic on any backend whose single put is; a Light append's snapshot is put first and
///   stays invisible until the events' put lands (snapshots above the head are ignored, and
///   overwritten by the next append at that seq);
/// - the head is the last entry's key, read once, and again before every append while another
///   store of the process has the stream open (so an append after another store's over the
///   same collections is a [`StorageError::Conflict`], never an overwrite); a write that fails
///   is an unknown outcome
///   ([`StorageError::Failed`]), after which the head is read again from the collection, so
///   the journal learns whether it landed (exactly once);
/// - compaction deletes whole entries and rewrites the one it cuts, keeping the head's entry
///   (possibly empty) so the head never goes down;
/// - reads find entries by key, one `get` per seq (the trait has no seek), iterating the
///   collection only across a compacted stretch.
///
/// It is as durable as the manager's `put` (ave-actors-sqlite's `durability` flag, for
/// example) and as exclusive as the manager: two processes must not open one database. Two
/// stores over one manager in a process see each other's appends (a conflict, not an
/// overwrite) when they append one after the other; ave's collections offer no conditional
/// put, so two appends racing at the same instant from two stores are not told apart — give
/// each stream one store (one [`Manager`](crate::Manager) built once and cloned).
/// Build it through [`Manager::from_db`](crate::Manager::from_db), or let `start_store` do it.
///
/// ```
/// use persevere_ave::database::{Collection, DbManager, DbStore, EVENTS};
/// use persevere_core::{Command, CommandId, Completion, Store, StoredRecord, StreamCommand};
///
/// let theirs = ave_actors_store::memory::MemoryManager::default();
/// let mut store = DbStore::new(theirs.clone());
/// let append = Command::Append {
///     id: CommandId(1),
///     expected_last: 0,
///     events: vec![StoredRecord::new(1, b"e1".to_vec()), StoredRecord::new(2, b"e2".to_vec())].into(),
///     snapshot: None,
/// };
/// let results = store.execute(vec![StreamCommand { stream: "/user/a/counter".into(), command: append }]);
/// assert_eq!(results[0].1, Ok(Completion::Done));
/// // One entry, under the key of its last seq, in the manager's own collection.
/// let events = theirs.create_collection(EVENTS, "/user/a/counter")?;
/// assert_eq!(events.last()?.map(|(key, _)| key), Some(format!("{:020}", 2)));
/// # Ok::<(), persevere_ave::Error>(())
/// ```
pub struct DbStore<M, C, S> {
    manager: M,
    streams: HashMap<Arc<str>, Open<C>>,
    _state: PhantomData<fn() -> S>,
}

impl<M, C, S> DbStore<M, C, S>
where
    M: DbManager<C, S> + 'static,
    C: Collection,
    S: State,
{
    /// A store over `manager`.
    pub fn new(manager: M) -> Self {
        Self {
            manager,
            streams: HashMap::new(),
            _state: PhantomData,
        }
    }

    fn open(&mut self, stream: &Arc<str>) -> Result<&mut Open<C>, StorageError> {
        if !self.streams.contains_key(stream) {
            let refused = |e: StoreError| {
                StorageError::Rejected(format!("opening the collections of {stream:?}: {e}"))
            };
            let events = self
                .manager
                .create_collection(EVENTS, stream)
                .map_err(refused)?;
            let snapshots = self
                .manager
                .create_collection(SNAPSHOTS, stream)
                .map_err(refused)?;
            self.streams.insert(
                Arc::clone(stream),
                Open {
                    events,
                    snapshots,
                    head: None,
                    opened: Opened::new(stream),
                },
            );
        }
        self.streams
            .get_mut(stream)
            .ok_or_else(|| StorageError::Rejected(format!("stream {stream:?} is not open")))
    }

    fn run(&mut self, stream: &Arc<str>, command: Command) -> Result<Completion, StorageError> {
        let open = self.open(stream)?;
        let result = open.run(stream, command);
        if matches!(result, Err(StorageError::Failed(_))) {
            // The outcome is unknown: read the head again before the next command.
            open.head = None;
        }
        result
    }
}

fn read_failed(stream: &str, e: StoreError) -> StorageError {
    StorageError::Rejected(format!("reading {stream:?} failed: {e}"))
}

fn write_failed(stream: &str, e: StoreError) -> StorageError {
    StorageError::Failed(format!("writing {stream:?} failed: {e}"))
}

impl<C: Collection> Open<C> {
    fn head(&mut self, stream: &str) -> Result<u64, StorageError> {
        if let Some(head) = self.head {
            return Ok(head);
        }
        let head = match self.events.last().map_err(|e| read_failed(stream, e))? {
            Some((key, _)) => parse_key(&key)?,
            None => 0,
        };
        self.head = Some(head);
        Ok(head)
    }

    /// The entries from the one holding `from` on, in order.
    fn batches_from(
        &self,
        stream: &str,
        from: u64,
    ) -> Result<impl Iterator<Item = Result<(u64, Vec<u8>), StorageError>> + '_, StorageError> {
        let from_key = key(from);
        let stream = stream.to_owned();
        let iter = self
            .events
            .iter(false)
            .map_err(|e| read_failed(&stream, e))?;
        Ok(iter.filter_map(move |item| match item {
            Ok((k, _)) if k < from_key => None,
            Ok((k, v)) => Some(parse_key(&k).map(|seq| (seq, v))),
            Err(e) => Some(Err(read_failed(&stream, e))),
        }))
    }

    /// Up to `limit` events from `from` on. Entries are found by key, one indexed `get` per
    /// seq (an entry's key is its last seq), so a replay costs one lookup per event rather
    /// than a scan per page; after [`PROBES`] keys in a row without an entry (a compacted
    /// stretch), the rest is read by iterating the collection from there.
    fn read_events(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
        head: u64,
    ) -> Result<Vec<StoredRecord>, StorageError> {
        let mut records = Vec::new();
        let take = |batch: Batch, records: &mut Vec<StoredRecord>| {
            records.extend(batch.events.into_iter().filter(|r| r.seq >= from));
            records.len() >= limit
        };
        let mut seq = from;
        let mut misses = 0;
        while seq <= head {
            match self.events.get(&key(seq)) {
                Ok(bytes) => {
                    misses = 0;
                    if take(Batch::decode(seq, &bytes)?, &mut records) {
                        records.truncate(limit);
                        return Ok(records);
                    }
                }
                Err(StoreError::EntryNotFound { .. }) => {
                    misses += 1;
                    if misses >= PROBES {
                        for batch in self.batches_from(stream, seq)? {
                            let (last, bytes) = batch?;
                            if take(Batch::decode(last, &bytes)?, &mut records) {
                                break;
                            }
                        }
                        records.truncate(limit);
                        return Ok(records);
                    }
                }
                Err(e) => return Err(read_failed(stream, e)),
            }
            seq += 1;
        }
        records.truncate(limit);
        Ok(records)
    }

    fn run(&mut self, stream: &str, command: Command) -> Result<Completion, StorageError> {
        match command {
            Command::LoadSnapshot { before, .. } => {
                let head = self.head(stream)?;
                let limit = before.unwrap_or(u64::MAX).min(head.saturating_add(1));
                let iter = self
                    .snapshots
                    .iter(true)
                    .map_err(|e| read_failed(stream, e))?;
                for item in iter {
                    let (k, v) = item.map_err(|e| read_failed(stream, e))?;
                    let seq = parse_key(&k)?;
                    if seq < limit {
                        return Ok(Completion::Snapshot(Some(StoredRecord::new(seq, v))));
                    }
                }
                Ok(Completion::Snapshot(None))
            }
            Command::ReadEvents { from, limit, .. } => {
                let head = self.head(stream)?;
                let records = if from <= head && limit > 0 {
                    self.read_events(stream, from, limit, head)?
                } else {
                    Vec::new()
                };
                Ok(Completion::Events { records, head })
            }
            Command::Append {
                expected_last,
                events,
                snapshot,
                ..
            } => {
                if !self.opened.alone() {
                    // Read afresh: another store over the same collections may have appended
                    // since (whose entry this put would otherwise overwrite).
                    self.head = None;
                }
                let head = self.head(stream)?;
                if head != expected_last {
                    return Err(StorageError::Conflict {
                        expected: expected_last,
                        actual: head,
                    });
                }
                let last = expected_last + events.len() as u64;
                let contiguous = events
                    .iter()
                    .zip(expected_last + 1..)
                    .all(|(r, seq)| r.seq == seq);
                if events.is_empty()
                    || !contiguous
                    || snapshot.as_ref().is_some_and(|s| s.seq != last)
                {
                    return Err(StorageError::Rejected(
                        "an append holds contiguous events after the head, and a snapshot at the last one"
                            .into(),
                    ));
                }
                if let Some(snapshot) = snapshot {
                    // Invisible until the events land (snapshots above the head are ignored).
                    self.snapshots
                        .put(&key(last), &snapshot.bytes)
                        .map_err(|e| write_failed(stream, e))?;
                }
                self.events
                    .put(&key(last), &Batch::encode_events(&events))
                    .map_err(|e| write_failed(stream, e))?;
                self.head = Some(last);
                Ok(Completion::Done)
            }
            Command::SaveSnapshot { snapshot, .. } => {
                self.snapshots
                    .put(&key(snapshot.seq), &snapshot.bytes)
                    .map_err(|e| write_failed(stream, e))?;
                Ok(Completion::Done)
            }
            Command::DeleteEvents { up_to, .. } => {
                let head = self.head(stream)?;
                let mut delete = Vec::new();
                let mut rewrite = None;
                for batch in self.batches_from(stream, 0)? {
                    let (last, bytes) = batch?;
                    if last <= up_to && last != head {
                        delete.push(last);
                        continue;
                    }
                    let mut kept = Batch::decode(last, &bytes)?;
                    let before = kept.events.len();
                    kept.events.retain(|r| r.seq > up_to);
                    if kept.events.len() != before {
                        rewrite = Some((last, kept));
                    }
                    break;
                }
                if let Some((last, kept)) = rewrite {
                    self.events
                        .put(&key(last), &kept.encode())
                        .map_err(|e| write_failed(stream, e))?;
                }
                for last in delete {
                    match self.events.del(&key(last)) {
                        Ok(()) | Err(StoreError::EntryNotFound { .. }) => {}
                        Err(e) => return Err(write_failed(stream, e)),
                    }
                }
                Ok(Completion::Done)
            }
            Command::DeleteSnapshots { keep, .. } => {
                let keys: Vec<String> = self
                    .snapshots
                    .iter(true)
                    .map_err(|e| read_failed(stream, e))?
                    .map(|item| item.map(|(k, _)| k))
                    .collect::<Result<_, _>>()
                    .map_err(|e| read_failed(stream, e))?;
                for k in keys.iter().skip(keep.max(1)) {
                    match self.snapshots.del(k) {
                        Ok(()) | Err(StoreError::EntryNotFound { .. }) => {}
                        Err(e) => return Err(write_failed(stream, e)),
                    }
                }
                Ok(Completion::Done)
            }
            other => Err(StorageError::Rejected(format!(
                "command {:?} is not known to this store",
                other.id()
            ))),
        }
    }
}

impl<M, C, S> Store for DbStore<M, C, S>
where
    M: DbManager<C, S> + 'static,
    C: Collection,
    S: State,
{
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        batch
            .into_iter()
            .map(|StreamCommand { stream, command }| {
                let id = command.id();
                (id, self.run(&stream, command))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_and_damage_is_reported() {
        let batch = Batch {
            events: vec![
                StoredRecord::new(4, b"a".to_vec()),
                StoredRecord::new(5, vec![]),
            ],
        };
        let bytes = batch.encode();
        assert_eq!(Batch::decode(5, &bytes), Ok(batch));
        for cut in 0..bytes.len() {
            assert!(matches!(
                Batch::decode(5, &bytes[..cut]),
                Err(StorageError::Damaged { seq: 5, .. })
            ));
        }
        assert!(Batch::decode(6, &bytes).is_err());
    }
}
