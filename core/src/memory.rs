//! A pure, synchronous in-memory store that executes [`Command`]s: the reference semantics of
//! the storage contract, used by the testkit and wrapped by the async in-memory backend.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::command::{Command, CommandId, Completion, StorageError, StoredRecord};

mod records;

pub use records::{Iter, IterMut, Records};

/// One stream's records. Fields are public so tests can tamper with stored bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamData {
    /// The highest seq ever appended (compaction does not lower it).
    pub head: u64,
    /// Event records by seq.
    pub events: Records,
    /// Snapshot records by the seq they cover.
    pub snapshots: Records,
}

/// Streams by id; distinct ids never share records, whatever their spelling.
///
/// ```
/// use persevere_core::memory::MemoryStore;
/// use persevere_core::{Command, CommandId, Completion};
/// let mut store = MemoryStore::default();
/// let (id, result) = store.execute("a", Command::ReadEvents { id: CommandId(1), from: 1, limit: 10 });
/// assert_eq!(id, CommandId(1));
/// assert_eq!(result, Ok(Completion::Events { records: vec![], head: 0 }));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// Where each stream is in `streams`.
    index: HashMap<String, usize, BuildHasherDefault<StreamHasher>>,
    /// Every stream ever written, with its id, in the order of its first write.
    streams: Vec<(String, StreamData)>,
    /// The stream the last command addressed (an index into `streams`): a run of commands on
    /// one stream finds it with one comparison of ids instead of a hashed lookup.
    last: usize,
}

impl PartialEq for MemoryStore {
    /// The same streams with the same records, whatever order they were written in.
    fn eq(&self, other: &Self) -> bool {
        self.streams.len() == other.streams.len()
            && self
                .streams
                .iter()
                .all(|(id, data)| other.stream(id) == Some(data))
    }
}

impl Eq for MemoryStore {}

/// A fast hasher for stream ids (multiply-rotate over 8-byte words, as rustc's FxHash): the
/// in-memory store looks a stream up on every command, and SipHash's flooding resistance buys
/// nothing for a map whose keys the application names.
#[derive(Default, Clone, Copy)]
struct StreamHasher(u64);

impl Hasher for StreamHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, byte: u8) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Executes `command` against `stream`, returning its id and result.
    #[inline]
    pub fn execute(
        &mut self,
        stream: &str,
        command: Command,
    ) -> (CommandId, Result<Completion, StorageError>) {
        let id = command.id();
        (id, self.apply(stream, command))
    }

    /// Where `stream` is in `streams`, if it was ever written: the stream of the last command
    /// is recognised by its id, any other is looked up (and becomes the last).
    fn position(&mut self, stream: &str) -> Option<usize> {
        if self
            .streams
            .get(self.last)
            .is_some_and(|(id, _)| id == stream)
        {
            return Some(self.last);
        }
        let at = *self.index.get(stream)?;
        self.last = at;
        Some(at)
    }

    /// The records of `stream`, if it was ever written.
    fn stream_data(&mut self, stream: &str) -> Option<&mut StreamData> {
        let at = self.position(stream)?;
        self.streams.get_mut(at).map(|(_, data)| data)
    }

    /// The records of `stream`, created empty if need be (its id allocated only then).
    fn stream_entry(&mut self, stream: &str) -> &mut StreamData {
        let at = match self.position(stream) {
            Some(at) => at,
            None => {
                let at = self.streams.len();
                self.streams
                    .push((stream.to_owned(), StreamData::default()));
                self.index.insert(stream.to_owned(), at);
                self.last = at;
                at
            }
        };
        &mut self.streams[at].1
    }

    fn apply(&mut self, stream: &str, command: Command) -> Result<Completion, StorageError> {
        match command {
            Command::LoadSnapshot { before, .. } => {
                let found = self.stream_data(stream).and_then(|s| {
                    s.snapshots
                        .range(..before.unwrap_or(u64::MAX))
                        .next_back()
                        .map(|(&seq, bytes)| StoredRecord {
                            seq,
                            bytes: bytes.clone(),
                        })
                });
                Ok(Completion::Snapshot(found))
            }
            Command::ReadEvents { from, limit, .. } => {
                let Some(s) = self.stream_data(stream) else {
                    return Ok(Completion::Events {
                        records: Vec::new(),
                        head: 0,
                    });
                };
                // An exact-size iterator: the page is allocated once, at its size.
                let records = s
                    .events
                    .range(from..)
                    .take(limit)
                    .map(|(&seq, bytes)| StoredRecord {
                        seq,
                        bytes: bytes.clone(),
                    })
                    .collect();
                Ok(Completion::Events {
                    records,
                    head: s.head,
                })
            }
            Command::Append {
                expected_last,
                mut events,
                snapshot,
                ..
            } => {
                let s = self.stream_entry(stream);
                if s.head != expected_last {
                    return Err(StorageError::Conflict {
                        expected: expected_last,
                        actual: s.head,
                    });
                }
                let contiguous = events
                    .iter()
                    .zip(expected_last + 1..)
                    .all(|(r, seq)| r.seq == seq);
                let last = expected_last + events.len() as u64;
                if events.is_empty()
                    || !contiguous
                    || snapshot.as_ref().is_some_and(|snap| snap.seq != last)
                {
                    return Err(StorageError::Rejected(
                        "append must hold contiguous events after the head, and a snapshot at the last one"
                            .into(),
                    ));
                }
                // Each record's bytes are taken where they lie in the command: one move into
                // the stream, where an owning iterator would move each record twice more.
                for record in events.iter_mut() {
                    s.events
                        .insert(record.seq, std::mem::take(&mut record.bytes));
                }
                if let Some(snapshot) = snapshot {
                    s.snapshots.insert(snapshot.seq, snapshot.bytes);
                }
                s.head = last;
                Ok(Completion::Done)
            }
            Command::SaveSnapshot { snapshot, .. } => {
                let s = self.stream_entry(stream);
                s.snapshots.insert(snapshot.seq, snapshot.bytes);
                Ok(Completion::Done)
            }
            Command::DeleteEvents { up_to, .. } => {
                if let Some(s) = self.stream_data(stream) {
                    s.events.remove_through(up_to);
                }
                Ok(Completion::Done)
            }
            Command::DeleteSnapshots { keep, .. } => {
                if let Some(s) = self.stream_data(stream) {
                    let excess = s.snapshots.len().saturating_sub(keep.max(1));
                    for _ in 0..excess {
                        s.snapshots.pop_first();
                    }
                }
                Ok(Completion::Done)
            }
        }
    }

    /// The records of `stream`, if it was ever written.
    pub fn stream(&self, stream: &str) -> Option<&StreamData> {
        let at = *self.index.get(stream)?;
        self.streams.get(at).map(|(_, data)| data)
    }

    /// The records of `stream`, created empty if absent (for tests that tamper with storage).
    pub fn stream_mut(&mut self, stream: &str) -> &mut StreamData {
        self.stream_entry(stream)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(seq: u64) -> StoredRecord {
        StoredRecord {
            seq,
            bytes: vec![seq as u8].into(),
        }
    }

    fn append(
        store: &mut MemoryStore,
        stream: &str,
        expected_last: u64,
        seqs: &[u64],
    ) -> Result<Completion, StorageError> {
        store
            .execute(
                stream,
                Command::Append {
                    id: CommandId(1),
                    expected_last,
                    events: seqs.iter().map(|&s| rec(s)).collect(),
                    snapshot: None,
                },
            )
            .1
    }

    #[test]
    fn append_checks_the_expected_head_and_contiguity() {
        let mut store = MemoryStore::new();
        assert_eq!(append(&mut store, "s", 0, &[1, 2]), Ok(Completion::Done));
        assert_eq!(
            append(&mut store, "s", 1, &[2]),
            Err(StorageError::Conflict {
                expected: 1,
                actual: 2
            })
        );
        assert!(matches!(
            append(&mut store, "s", 2, &[4]),
            Err(StorageError::Rejected(_))
        ));
        assert_eq!(store.stream("s").map(|s| s.head), Some(2));
    }

    #[test]
    fn an_append_whose_snapshot_is_not_at_its_last_seq_writes_nothing() {
        let mut store = MemoryStore::new();
        for misplaced in [1, 3] {
            let result = store.execute(
                "s",
                Command::Append {
                    id: CommandId(1),
                    expected_last: 0,
                    events: vec![rec(1), rec(2)].into(),
                    snapshot: Some(rec(misplaced)),
                },
            );
            assert!(
                matches!(result.1, Err(StorageError::Rejected(_))),
                "{misplaced}"
            );
            assert_eq!(
                store.stream("s"),
                Some(&StreamData::default()),
                "{misplaced}"
            );
        }
    }

    #[test]
    fn similar_stream_names_stay_apart() {
        let mut store = MemoryStore::new();
        for name in ["a", "a.b", "a/b", "a_b"] {
            assert_eq!(append(&mut store, name, 0, &[1]), Ok(Completion::Done));
        }
        for name in ["a", "a.b", "a/b", "a_b"] {
            assert_eq!(store.stream(name).map(|s| s.events.len()), Some(1));
        }
    }

    #[test]
    fn alternating_streams_each_find_their_own_records() {
        let mut store = MemoryStore::new();
        let mut other = MemoryStore::new();
        for seq in 1..=3 {
            for name in ["a", "b", "ab"] {
                assert_eq!(
                    append(&mut store, name, seq - 1, &[seq]),
                    Ok(Completion::Done)
                );
            }
            // The same streams, written in another order.
            for name in ["ab", "b", "a"] {
                append(&mut other, name, seq - 1, &[seq]).unwrap();
            }
        }
        for name in ["a", "b", "ab"] {
            let (_, read) = store.execute(
                name,
                Command::ReadEvents {
                    id: CommandId(2),
                    from: 2,
                    limit: 10,
                },
            );
            assert!(
                matches!(read, Ok(Completion::Events { ref records, head: 3 }) if records.len() == 2),
                "{name}: {read:?}"
            );
        }
        assert_eq!(store, other);
        append(&mut other, "c", 0, &[1]).unwrap();
        assert_ne!(store, other);
    }

    #[test]
    fn compaction_keeps_the_head_and_retention_keeps_the_newest() {
        let mut store = MemoryStore::new();
        append(&mut store, "s", 0, &[1, 2, 3]).unwrap();
        for seq in 1..=3 {
            store
                .execute(
                    "s",
                    Command::SaveSnapshot {
                        id: CommandId(2),
                        snapshot: rec(seq),
                    },
                )
                .1
                .unwrap();
        }
        store
            .execute(
                "s",
                Command::DeleteEvents {
                    id: CommandId(3),
                    up_to: 2,
                },
            )
            .1
            .unwrap();
        store
            .execute(
                "s",
                Command::DeleteSnapshots {
                    id: CommandId(4),
                    keep: 2,
                },
            )
            .1
            .unwrap();
        let s = store.stream("s").unwrap();
        assert_eq!(s.head, 3);
        assert_eq!(s.events.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(s.snapshots.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
    }
}
