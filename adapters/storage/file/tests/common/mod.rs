//! Helpers shared by the integration tests.
#![allow(dead_code)]

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

/// A frame of format 1 (magic, length, header CRC, payload, CRC): computable by anyone.
fn forged_v1(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x4D52_4650u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let hcrc = crc32fast::hash(&out);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A frame of format 2 under a guessed store id (0) and chain value (0).
fn forged_v2(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x4D52_4650u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&0u64.to_le_bytes());
    h.update(&out);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    let mut crc = crc32fast::Hasher::new_with_initial(0);
    crc.update(&out);
    let crc = crc.finalize();
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A frame of format 2 whose header checksum leaves the store id out.
fn forged_v2_without_id(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x4D52_4650u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let hcrc = crc32fast::hash(&out);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// An event (64 KiB) whose bytes are full of frames that look valid, each holding a
/// plausible operation: what a hostile or unlucky payload can contain.
pub fn hostile_event(seq: u64) -> Vec<u8> {
    let mut bytes = format!("hostile {seq} ").into_bytes();
    let mut op = vec![1, 0, 0, 0, 1, 1, 0, 0, 0, b'x'];
    op.extend_from_slice(&0u64.to_le_bytes());
    op.extend_from_slice(&0u32.to_le_bytes());
    op.push(0);
    while bytes.len() < 64 << 10 {
        bytes.extend_from_slice(&forged_v1(&op));
        bytes.extend_from_slice(&forged_v2(&op));
        bytes.extend_from_slice(&forged_v2_without_id(&op));
    }
    bytes
}
