//! The fuzz targets: every decoder of stored bytes. Each must return a typed error or a value for
//! any input, and never panic.
//!
//! `cargo test -p persevere-fuzz` runs each target on its corpus and on a fixed set of
//! generated inputs (the CI run: the same cases every time, see [`fixed`]). The long run, on
//! random inputs, uses libFuzzer through `cargo-bolero`:
//!
//! ```sh
//! cargo install cargo-bolero
//! cargo bolero test -p persevere-fuzz decoders::fuzz_record_envelope --sanitizer NONE -T 5min
//! ```

use std::time::Duration;

use persevere_core::record;
use persevere_core::{Command, Completion, Journal, JournalConfig, JournalEvent, StoredRecord};
use persevere_tests::Ledger;

use crate::fixed;

/// Fixed-seed cases per target under `cargo test`, beyond its corpus.
const CASES: u64 = 3_000;
/// Fewer for the file store, whose every case opens a store.
const OPEN_CASES: u64 = 300;

/// The envelope decoder, on arbitrary bytes: a record (a plaintext one re-encodes to the input),
/// or an error.
#[test]
fn fuzz_record_envelope() {
    let target = |bytes: &[u8]| {
        if let Ok(rec) = record::decode(bytes) {
            if !rec.sealed {
                assert_eq!(record::encode(rec.header, rec.payload), bytes);
            }
        }
    };
    fixed::check("record_envelope", CASES, |bytes: &Vec<u8>| target(bytes));
    bolero::check!().with_iterations(0).for_each(target);
}

/// Recovery over arbitrary stored records: the journal recovers or reports a typed failure.
#[test]
fn fuzz_recovery_of_arbitrary_records() {
    type Input = (Option<Vec<u8>>, Vec<(u8, Vec<u8>)>, u8);
    let target = |(snapshot, events, head): &Input| {
        let mut journal = Journal::<Ledger>::new(JournalConfig::new("fuzz"), Ledger::default);
        let mut state = Ledger::default();
        let mut snapshot = snapshot.clone().map(|bytes| StoredRecord {
            seq: 1,
            bytes: bytes.into(),
        });
        let mut events: Vec<StoredRecord> = events
            .iter()
            .map(|(seq, bytes)| StoredRecord {
                seq: u64::from(*seq),
                bytes: bytes.clone().into(),
            })
            .collect();
        // The store answers each command by its kind: the snapshot once (then none older),
        // the events once (then none after them).
        while let Some(command) = journal.poll_command() {
            let completion = match command {
                Command::LoadSnapshot { .. } => Completion::Snapshot(snapshot.take()),
                Command::ReadEvents { .. } => Completion::Events {
                    records: std::mem::take(&mut events),
                    head: u64::from(*head),
                },
                _ => Completion::Done,
            };
            let _ =
                journal.handle_completion(Duration::ZERO, command.id(), Ok(completion), &mut state);
        }
        while let Some(event) = journal.poll_event() {
            if let JournalEvent::Recovered { last_seq, .. } = event {
                assert_eq!(state.ids.len() as u64, last_seq);
            }
        }
    };
    fixed::check("recovery_of_arbitrary_records", CASES, target);
    bolero::check!()
        .with_type::<Input>()
        .with_iterations(0)
        .for_each(target);
}

/// Applies fuzzer-chosen edits (xor a byte, or cut the tail) to `bytes`; returns whether they
/// changed anything.
fn edit(bytes: &mut Vec<u8>, edits: &[(u16, u8)]) -> bool {
    let before = bytes.clone();
    for &(at, value) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = usize::from(at) % bytes.len();
        if value == 0 {
            bytes.truncate(at);
        } else {
            bytes[at] ^= value;
        }
    }
    *bytes != before
}

/// The sealed-payload opener: a genuine sealed payload (the part of a record the envelope's
/// checksum covers) with any change fails to open — never a panic, never a wrong plaintext;
/// unchanged, it opens to the plaintext.
#[test]
fn fuzz_sealed_payload() {
    use persevere_core::record::RecordKind;
    use persevere_core::seal::{self, Binding, ChaChaRandom, Key, KeyId, KeyRing, CHAIN_LEN};

    let keys = KeyRing::new(KeyId(3), Key::from_bytes([42; 32]));
    type Input = (Vec<u8>, Vec<(u16, u8)>, bool, u64);
    let target = |(plaintext, edits, snapshot, nonce_seed): &Input| {
        let at = Binding {
            store: "store",
            stream: "stream",
            kind: if *snapshot {
                RecordKind::Snapshot
            } else {
                RecordKind::Event
            },
            codec: 1,
            seq: 9,
        };
        let chain = [5; CHAIN_LEN];
        let mut random = ChaChaRandom::from_u64(*nonce_seed);
        let Ok(record) = seal::seal_payload(&keys, &mut random, &at, 1, &chain, plaintext) else {
            return;
        };
        // Past the envelope's checksum: the edits go to the sealed payload itself.
        let mut sealed = record::decode(&record)
            .expect("a fresh record decodes")
            .payload
            .to_vec();
        let changed = edit(&mut sealed, edits);
        match seal::open_payload(&keys, &at, 1, &chain, &sealed) {
            Ok(opened) => {
                assert!(!changed, "a changed sealed payload opened");
                assert_eq!(&opened.plaintext, plaintext);
            }
            Err(_) => assert!(changed, "an unchanged sealed payload failed to open"),
        }
    };
    fixed::check("sealed_payload", CASES, target);
    bolero::check!()
        .with_type::<Input>()
        .with_iterations(0)
        .for_each(target);
}

/// A small genuine file store: three streams, snapshots, compaction, as a disk image.
fn genuine_store_image() -> &'static persevere_file::sim::Image {
    use persevere_core::{CommandId, Store, StreamCommand};
    use persevere_file::sim::SimDisk;
    use persevere_file::{FileOptions, FileStore};
    use std::sync::OnceLock;

    static IMAGE: OnceLock<persevere_file::sim::Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let disk = SimDisk::new();
        let mut options = FileOptions::default();
        options.segment_size = 512;
        let mut store = FileStore::open_sim(disk.clone(), options).expect("an empty disk opens");
        for (n, stream) in ["a", "a.b", "a/b"].iter().enumerate() {
            for seq in 1..=6u64 {
                let bytes = record::encode(
                    record::RecordHeader {
                        kind: record::RecordKind::Event,
                        codec: 1,
                        type_version: 1,
                        seq,
                    },
                    &[n as u8; 8],
                );
                let snapshot = (seq % 3 == 0).then(|| StoredRecord {
                    seq,
                    bytes: bytes.clone().into(),
                });
                let append = Command::Append {
                    id: CommandId(seq),
                    expected_last: seq - 1,
                    events: StoredRecord {
                        seq,
                        bytes: bytes.into(),
                    }
                    .into(),
                    snapshot,
                };
                let delete = Command::DeleteEvents {
                    id: CommandId(seq + 100),
                    up_to: seq.saturating_sub(3),
                };
                for command in [append, delete] {
                    store.execute(vec![StreamCommand {
                        stream: (*stream).into(),
                        command,
                    }]);
                }
            }
        }
        drop(store);
        disk.image()
    })
}

/// The file journal's decoders (segment headers, frames, the index rebuilt at open, snapshot
/// references): a genuine store with any edits to any file opens or fails with a typed error,
/// and everything an opened store answers is readable.
#[test]
fn fuzz_file_store_open() {
    use persevere_core::{CommandId, StorageError, Store, StreamCommand};
    use persevere_file::sim::SimDisk;
    use persevere_file::{FileOptions, FileStore};

    type Input = Vec<(u8, Vec<(u16, u8)>)>;
    let target = |edits: &Input| {
        let mut image = genuine_store_image().clone();
        let names: Vec<String> = image.keys().cloned().collect();
        for (file, file_edits) in edits {
            if let Some(name) = names.get(usize::from(*file) % names.len().max(1)) {
                if let Some(content) = image.get_mut(name) {
                    edit(content, file_edits);
                }
            }
        }
        let Ok(mut store) =
            FileStore::open_sim(SimDisk::from_image(&image), FileOptions::default())
        else {
            return;
        };
        // Everything the opened store answers is readable: events are contiguous record
        // envelopes up to the head, a snapshot is a record envelope at or below the head
        // (or a typed `Damaged` when its file is); an unknown stream is empty.
        for stream in ["a", "a.b", "a/b", "missing"] {
            let read = Command::ReadEvents {
                id: CommandId(1),
                from: 0,
                limit: 100,
            };
            let load = Command::LoadSnapshot {
                id: CommandId(2),
                before: None,
            };
            let answers = store.execute(vec![
                StreamCommand {
                    stream: stream.into(),
                    command: read,
                },
                StreamCommand {
                    stream: stream.into(),
                    command: load,
                },
            ]);
            // A store that opens serves each stream's events, or says they are damaged
            // (damage in a segment its checkpoint covered is found when it is read).
            let head = match &answers[0].1 {
                Ok(Completion::Events { records, head }) => {
                    for pair in records.windows(2) {
                        assert_eq!(pair[0].seq + 1, pair[1].seq, "{stream}: a gap");
                    }
                    if let Some(last) = records.last() {
                        assert!(last.seq <= *head, "{stream}: an event past the head");
                    }
                    for r in records {
                        let rec = record::decode(&r.bytes)
                            .unwrap_or_else(|e| panic!("{stream}: unreadable event: {e}"));
                        assert_eq!(rec.header.seq, r.seq, "{stream}: event at the wrong seq");
                    }
                    if stream == "missing" {
                        assert!(records.is_empty() && *head == 0);
                    }
                    Some(*head)
                }
                Err(StorageError::Damaged { reason, .. }) => {
                    assert!(
                        reason.contains(".log"),
                        "{stream}: damage names no file: {reason}"
                    );
                    None
                }
                other => panic!("{stream}: reading events failed: {other:?}"),
            };
            match &answers[1].1 {
                Ok(Completion::Snapshot(Some(snapshot))) => {
                    if let Some(head) = head {
                        assert!(snapshot.seq <= head, "{stream}: a snapshot past the head");
                    }
                    let rec = record::decode(&snapshot.bytes)
                        .unwrap_or_else(|e| panic!("{stream}: unreadable snapshot: {e}"));
                    assert_eq!(rec.header.seq, snapshot.seq, "{stream}: snapshot seq");
                }
                Ok(Completion::Snapshot(None)) | Err(StorageError::Damaged { .. }) => {}
                other => panic!("{stream}: loading a snapshot failed: {other:?}"),
            }
        }
    };
    fixed::check("file_store_open", OPEN_CASES, target);
    bolero::check!()
        .with_type::<Input>()
        .with_iterations(0)
        .for_each(target);
}
