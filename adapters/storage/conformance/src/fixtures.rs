//! Fixtures for a backend's own tests beyond the kit (crash, kill and damage tests): run one
//! command, read back everything a stream shows, and build appends whose bytes say which
//! stream and seq they belong to, so a record shown at the wrong place is caught.
//!
//! ```
//! use persevere_conformance::fixtures::{append, dump, event_bytes};
//! use persevere_core::{memory::MemoryStore, Store};
//!
//! let mut store = MemoryStore::new();
//! Store::execute(&mut store, vec![append("a", 0, 3, true)]);
//! let (head, events, snapshots) = dump(&mut store, "a").unwrap();
//! assert_eq!((head, events.len(), snapshots.len()), (3, 3, 1));
//! assert_eq!(events[2].bytes, event_bytes("a", 3));
//! ```

use std::sync::Arc;

use persevere_core::{Command, CommandId, Completion, Store, StoredRecord, StreamCommand};

/// One stream's observable content: head, events, snapshots.
pub type StreamDump = (u64, Vec<StoredRecord>, Vec<StoredRecord>);

/// Runs one command.
pub fn one(store: &mut dyn Store, stream: &str, command: Command) -> Result<Completion, String> {
    store
        .execute(vec![StreamCommand {
            stream: Arc::from(stream),
            command,
        }])
        .pop()
        .ok_or_else(|| "no answer".to_owned())
        .and_then(|(_, r)| r.map_err(|e| e.to_string()))
}

/// Everything `store` shows for `stream`.
pub fn dump(store: &mut dyn Store, stream: &str) -> Result<StreamDump, String> {
    let Completion::Events { records, head } = one(
        store,
        stream,
        Command::ReadEvents {
            id: CommandId(0),
            from: 0,
            limit: usize::MAX,
        },
    )?
    else {
        return Err("not events".into());
    };
    let mut snapshots = Vec::new();
    let mut before = None;
    while let Completion::Snapshot(Some(s)) = one(
        store,
        stream,
        Command::LoadSnapshot {
            id: CommandId(0),
            before,
        },
    )? {
        before = Some(s.seq);
        snapshots.push(s);
    }
    Ok((head, records, snapshots))
}

/// The bytes of event `seq` of `stream` in these tests.
pub fn event_bytes(stream: &str, seq: u64) -> Vec<u8> {
    format!("{stream}:{seq}:{}", "e".repeat((seq % 40) as usize)).into_bytes()
}

/// An append of events `expected_last + 1 ..= expected_last + n`.
pub fn append(stream: &str, expected_last: u64, n: u64, snapshot: bool) -> StreamCommand {
    let last = expected_last + n;
    StreamCommand {
        stream: Arc::from(stream),
        command: Command::Append {
            id: CommandId(last),
            expected_last,
            events: (expected_last + 1..=last)
                .map(|seq| StoredRecord {
                    seq,
                    bytes: event_bytes(stream, seq).into(),
                })
                .collect(),
            snapshot: snapshot.then(|| StoredRecord {
                seq: last,
                bytes: format!("snapshot of {stream} at {last}")
                    .into_bytes()
                    .into(),
            }),
        },
    }
}
