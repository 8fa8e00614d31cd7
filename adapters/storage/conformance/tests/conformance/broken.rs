//! Deliberately broken variants of the memory store: each breaks one rule of the contract.

use std::sync::MutexGuard;

use persevere_core::memory::MemoryStore;
use persevere_core::{
    Command, CommandResult, Completion, StorageError, Store, StoredRecord, StreamCommand,
};

use crate::Reopened;

/// The one rule a variant breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    IgnoresExpectedLast,
    WritesOnConflict,
    VagueConflict,
    AcceptsGaps,
    PartialBatch,
    BleedsPrefixes,
    SanitizesNames,
    SuffixMatch,
    SharedHead,
    LosesHeadOnCompaction,
    HeadFromRecords,
    ReordersReads,
    IgnoresReadLimit,
    IgnoresReadFrom,
    CorruptsLargeRecords,
    SnapshotsNotSaved,
    OldestSnapshot,
    InclusiveBefore,
    SnapshotNotReplaced,
    RetentionDeletesNewest,
    RetentionKeepsNone,
    SnapshotSetsHead,
    DeleteExclusive,
    DeleteDropsSnapshots,
    DeleteUnknownFails,
    DropsAppendSnapshot,
    AcceptsMisplacedSnapshot,
    SnapshotBeforeCheck,
    ShuffledResults,
    OnlyFirstOfBatch,
    ReordersBatch,
    ConflictAbortsBatch,
    ForgetsOnReopen,
}

impl Flaw {
    pub const ALL: &'static [Flaw] = &[
        Flaw::IgnoresExpectedLast,
        Flaw::WritesOnConflict,
        Flaw::VagueConflict,
        Flaw::AcceptsGaps,
        Flaw::PartialBatch,
        Flaw::BleedsPrefixes,
        Flaw::SanitizesNames,
        Flaw::SuffixMatch,
        Flaw::SharedHead,
        Flaw::LosesHeadOnCompaction,
        Flaw::HeadFromRecords,
        Flaw::ReordersReads,
        Flaw::IgnoresReadLimit,
        Flaw::IgnoresReadFrom,
        Flaw::CorruptsLargeRecords,
        Flaw::SnapshotsNotSaved,
        Flaw::OldestSnapshot,
        Flaw::InclusiveBefore,
        Flaw::SnapshotNotReplaced,
        Flaw::RetentionDeletesNewest,
        Flaw::RetentionKeepsNone,
        Flaw::SnapshotSetsHead,
        Flaw::DeleteExclusive,
        Flaw::DeleteDropsSnapshots,
        Flaw::DeleteUnknownFails,
        Flaw::DropsAppendSnapshot,
        Flaw::AcceptsMisplacedSnapshot,
        Flaw::SnapshotBeforeCheck,
        Flaw::ShuffledResults,
        Flaw::OnlyFirstOfBatch,
        Flaw::ReordersBatch,
        Flaw::ConflictAbortsBatch,
        Flaw::ForgetsOnReopen,
    ];
}

/// A memory store with one flaw.
pub struct Broken {
    flaw: Flaw,
    location: Reopened,
}

impl Broken {
    pub fn new(flaw: Flaw, location: Reopened) -> Self {
        if flaw == Flaw::ForgetsOnReopen {
            *lock(&location) = MemoryStore::new();
        }
        Self { flaw, location }
    }
}

fn lock(location: &Reopened) -> MutexGuard<'_, MemoryStore> {
    location.0.lock().unwrap_or_else(|e| e.into_inner())
}

const SHARED: &str = "one head for every stream";

impl Broken {
    fn stream_name(&self, store: &MemoryStore, stream: &str) -> String {
        match self.flaw {
            Flaw::BleedsPrefixes => stream
                .to_lowercase()
                .replace(['.', '/', '_', '-', ':'], "_"),
            Flaw::SanitizesNames => stream
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect(),
            Flaw::SuffixMatch if store.stream(stream).is_none() => {
                let mut names: Vec<String> = Vec::new();
                // Probe the names the kit uses: a missing stream falls back to the longest
                // known name it ends with.
                for known in ["known", "s", "a", "other"] {
                    if stream.ends_with(known) && store.stream(known).is_some() {
                        names.push(known.to_owned());
                    }
                }
                names
                    .into_iter()
                    .max_by_key(String::len)
                    .unwrap_or_else(|| stream.to_owned())
            }
            _ => stream.to_owned(),
        }
    }

    fn run(&self, store: &mut MemoryStore, stream: &str, command: Command) -> CommandResult {
        let id = command.id();
        let name = self.stream_name(store, stream);
        let stream = name.as_str();
        let flaw = self.flaw;
        let head = store.stream(stream).map_or(0, |s| s.head);
        match (flaw, command) {
            (
                Flaw::SharedHead,
                Command::Append {
                    id,
                    expected_last,
                    events,
                    snapshot,
                },
            ) => {
                let shared = store.stream(SHARED).map_or(0, |s| s.head);
                if shared != expected_last {
                    return (
                        id,
                        Err(StorageError::Conflict {
                            expected: expected_last,
                            actual: shared,
                        }),
                    );
                }
                let last = expected_last + events.len() as u64;
                let s = store.stream_mut(stream);
                for record in events {
                    s.events.insert(record.seq, record.bytes);
                }
                if let Some(snapshot) = snapshot {
                    s.snapshots.insert(snapshot.seq, snapshot.bytes);
                }
                s.head = last;
                store.stream_mut(SHARED).head = last;
                (id, Ok(Completion::Done))
            }
            (
                Flaw::IgnoresExpectedLast,
                Command::Append {
                    id,
                    events,
                    snapshot,
                    ..
                },
            ) => {
                let s = store.stream_mut(stream);
                for record in events {
                    s.head = s.head.max(record.seq);
                    s.events.insert(record.seq, record.bytes);
                }
                if let Some(snapshot) = snapshot {
                    s.snapshots.insert(snapshot.seq, snapshot.bytes);
                }
                (id, Ok(Completion::Done))
            }
            (
                Flaw::WritesOnConflict,
                Command::Append {
                    id,
                    expected_last,
                    events,
                    snapshot,
                },
            ) if expected_last != head => {
                let s = store.stream_mut(stream);
                for record in events {
                    s.events.insert(record.seq, record.bytes);
                }
                if let Some(snapshot) = snapshot {
                    s.snapshots.insert(snapshot.seq, snapshot.bytes);
                }
                (
                    id,
                    Err(StorageError::Conflict {
                        expected: expected_last,
                        actual: head,
                    }),
                )
            }
            (
                Flaw::SnapshotBeforeCheck,
                Command::Append {
                    id,
                    expected_last,
                    events,
                    snapshot,
                },
            ) => {
                if let Some(snapshot) = &snapshot {
                    store
                        .stream_mut(stream)
                        .snapshots
                        .insert(snapshot.seq, snapshot.bytes.clone());
                }
                let command = Command::Append {
                    id,
                    expected_last,
                    events,
                    snapshot,
                };
                store.execute(stream, command)
            }
            (Flaw::VagueConflict, command) => match store.execute(stream, command) {
                (id, Err(StorageError::Conflict { expected, .. })) => (
                    id,
                    Err(StorageError::Conflict {
                        expected,
                        actual: expected + 1,
                    }),
                ),
                other => other,
            },
            (
                Flaw::AcceptsGaps,
                Command::Append {
                    id,
                    expected_last,
                    events,
                    snapshot,
                },
            ) if expected_last == head => {
                let s = store.stream_mut(stream);
                for record in events {
                    s.head = s.head.max(record.seq);
                    s.events.insert(record.seq, record.bytes);
                }
                if let Some(snapshot) = snapshot {
                    s.snapshots.insert(snapshot.seq, snapshot.bytes);
                }
                (id, Ok(Completion::Done))
            }
            (
                Flaw::PartialBatch,
                Command::Append {
                    id,
                    expected_last,
                    mut events,
                    snapshot,
                },
            ) => {
                events.truncate(1);
                store.execute(
                    stream,
                    Command::Append {
                        id,
                        expected_last,
                        events,
                        snapshot,
                    },
                )
            }
            (
                Flaw::DropsAppendSnapshot,
                Command::Append {
                    id,
                    expected_last,
                    events,
                    ..
                },
            ) => store.execute(
                stream,
                Command::Append {
                    id,
                    expected_last,
                    events,
                    snapshot: None,
                },
            ),
            (
                Flaw::AcceptsMisplacedSnapshot,
                Command::Append {
                    id,
                    expected_last,
                    events,
                    snapshot: Some(snapshot),
                },
            ) => {
                // Files the snapshot under whatever seq it names.
                let result = store.execute(
                    stream,
                    Command::Append {
                        id,
                        expected_last,
                        events,
                        snapshot: None,
                    },
                );
                if result.1.is_ok() {
                    store
                        .stream_mut(stream)
                        .snapshots
                        .insert(snapshot.seq, snapshot.bytes);
                }
                result
            }
            (
                Flaw::CorruptsLargeRecords,
                Command::Append {
                    id,
                    expected_last,
                    mut events,
                    snapshot,
                },
            ) => {
                for record in &mut events {
                    record.bytes = record.bytes.slice(..64 * 1024);
                }
                store.execute(
                    stream,
                    Command::Append {
                        id,
                        expected_last,
                        events,
                        snapshot,
                    },
                )
            }
            (Flaw::LosesHeadOnCompaction, command @ Command::DeleteEvents { .. }) => {
                let result = store.execute(stream, command);
                let s = store.stream_mut(stream);
                s.head = s.events.keys().next_back().copied().unwrap_or(0);
                result
            }
            (Flaw::DeleteExclusive, Command::DeleteEvents { id, up_to }) => store.execute(
                stream,
                Command::DeleteEvents {
                    id,
                    up_to: up_to.saturating_sub(1),
                },
            ),
            (Flaw::DeleteDropsSnapshots, command @ Command::DeleteEvents { up_to, .. }) => {
                let result = store.execute(stream, command);
                let s = store.stream_mut(stream);
                s.snapshots = s.snapshots.split_off(&(up_to + 1));
                result
            }
            (Flaw::DeleteUnknownFails, command)
                if matches!(
                    command,
                    Command::DeleteEvents { .. } | Command::DeleteSnapshots { .. }
                ) && store.stream(stream).is_none() =>
            {
                (id, Err(StorageError::Rejected("no such stream".into())))
            }
            (Flaw::SnapshotsNotSaved, Command::SaveSnapshot { id, .. }) => {
                (id, Ok(Completion::Done))
            }
            (Flaw::SnapshotNotReplaced, Command::SaveSnapshot { id, snapshot }) => {
                let snapshots = &mut store.stream_mut(stream).snapshots;
                if !snapshots.contains_key(&snapshot.seq) {
                    snapshots.insert(snapshot.seq, snapshot.bytes);
                }
                (id, Ok(Completion::Done))
            }
            (Flaw::SnapshotSetsHead, command @ Command::SaveSnapshot { .. }) => {
                let seq = match &command {
                    Command::SaveSnapshot { snapshot, .. } => snapshot.seq,
                    _ => 0,
                };
                let result = store.execute(stream, command);
                store.stream_mut(stream).head = seq;
                result
            }
            (Flaw::OldestSnapshot, Command::LoadSnapshot { id, before }) => {
                let found = store.stream(stream).and_then(|s| {
                    s.snapshots
                        .range(..before.unwrap_or(u64::MAX))
                        .next()
                        .map(|(&seq, bytes)| StoredRecord {
                            seq,
                            bytes: bytes.clone(),
                        })
                });
                (id, Ok(Completion::Snapshot(found)))
            }
            (Flaw::InclusiveBefore, Command::LoadSnapshot { id, before }) => store.execute(
                stream,
                Command::LoadSnapshot {
                    id,
                    before: before.map(|b| b + 1),
                },
            ),
            (Flaw::RetentionDeletesNewest, Command::DeleteSnapshots { id, keep }) => {
                if let Some(s) = store.stream(stream).cloned() {
                    let s2 = store.stream_mut(stream);
                    s2.snapshots = s.snapshots.into_iter().take(keep.max(1)).collect();
                }
                (id, Ok(Completion::Done))
            }
            (Flaw::RetentionKeepsNone, Command::DeleteSnapshots { id, keep: 0 }) => {
                store.stream_mut(stream).snapshots.clear();
                (id, Ok(Completion::Done))
            }
            (_, command) => {
                let result = store.execute(stream, command);
                self.distort_read(result)
            }
        }
    }

    fn distort_read(&self, result: CommandResult) -> CommandResult {
        let (id, outcome) = result;
        let Ok(Completion::Events { mut records, head }) = outcome else {
            return (id, outcome);
        };
        let mut head = head;
        match self.flaw {
            Flaw::ReordersReads => records.reverse(),
            Flaw::HeadFromRecords => head = records.last().map_or(0, |r| r.seq),
            _ => {}
        }
        (id, Ok(Completion::Events { records, head }))
    }

    fn read_flaw(&self, command: Command) -> Command {
        match (self.flaw, command) {
            (Flaw::IgnoresReadLimit, Command::ReadEvents { id, from, .. }) => Command::ReadEvents {
                id,
                from,
                limit: usize::MAX,
            },
            (Flaw::IgnoresReadFrom, Command::ReadEvents { id, limit, .. }) => {
                Command::ReadEvents { id, from: 1, limit }
            }
            (_, command) => command,
        }
    }
}

impl Store for Broken {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        let location = self.location.clone();
        let mut store = lock(&location);
        let mut batch: Vec<(usize, StreamCommand)> = batch.into_iter().enumerate().collect();
        if self.flaw == Flaw::ReordersBatch {
            batch.reverse();
        }
        let mut results: Vec<(usize, CommandResult)> = Vec::new();
        let mut aborted = false;
        for (position, StreamCommand { stream, command }) in batch {
            let id = command.id();
            let result = if aborted {
                (id, Err(StorageError::Failed("batch aborted".into())))
            } else if self.flaw == Flaw::OnlyFirstOfBatch && position > 0 {
                (
                    id,
                    Ok(if command.is_write() {
                        Completion::Done
                    } else {
                        Completion::Events {
                            records: Vec::new(),
                            head: 0,
                        }
                    }),
                )
            } else {
                let command = self.read_flaw(command);
                self.run(&mut store, &stream, command)
            };
            if self.flaw == Flaw::ConflictAbortsBatch
                && matches!(result.1, Err(StorageError::Conflict { .. }))
            {
                aborted = true;
            }
            results.push((position, result));
        }
        results.sort_by_key(|(position, _)| *position);
        let mut results: Vec<CommandResult> = results.into_iter().map(|(_, r)| r).collect();
        if self.flaw == Flaw::ShuffledResults && results.len() > 1 {
            results.rotate_left(1);
        }
        results
    }
}
