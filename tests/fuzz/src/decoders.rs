//! The fuzz targets: every decoder of stored bytes. Each must return a typed error or a value for
//! any input, and never panic.
//!
//! `cargo test -p persevere-fuzz` runs each target briefly on random inputs (the CI
//! smoke run). The long run uses libFuzzer through `cargo-bolero`:
//!
//! ```sh
//! cargo install cargo-bolero
//! cargo bolero test -p persevere-fuzz decoders::fuzz_record_envelope --sanitizer NONE -T 5min
//! ```

use std::time::Duration;

use persevere_core::record;
use persevere_core::{Command, Completion, Journal, JournalConfig, JournalEvent, StoredRecord};
use persevere_tests::Ledger;

/// The envelope decoder, on arbitrary bytes: a record (a plaintext one re-encodes to the input),
/// or an error.
#[test]
fn fuzz_record_envelope() {
    bolero::check!().for_each(|bytes: &[u8]| {
        if let Ok(rec) = record::decode(bytes) {
            if !rec.sealed {
                assert_eq!(record::encode(rec.header, rec.payload), bytes);
            }
        }
    });
}

/// Recovery over arbitrary stored records: the journal recovers or reports a typed failure.
#[test]
fn fuzz_recovery_of_arbitrary_records() {
    bolero::check!()
        .with_type::<(Option<Vec<u8>>, Vec<(u8, Vec<u8>)>, u8)>()
        .for_each(|(snapshot, events, head)| {
            let mut journal = Journal::<Ledger>::new(JournalConfig::new("fuzz"), Ledger::default);
            let mut state = Ledger::default();
            let mut snapshot = snapshot.clone().map(|bytes| StoredRecord { seq: 1, bytes });
            let mut events: Vec<StoredRecord> = events
                .iter()
                .map(|(seq, bytes)| StoredRecord {
                    seq: u64::from(*seq),
                    bytes: bytes.clone(),
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
                let _ = journal.handle_completion(
                    Duration::ZERO,
                    command.id(),
                    Ok(completion),
                    &mut state,
                );
            }
            while let Some(event) = journal.poll_event() {
                if let JournalEvent::Recovered { last_seq, .. } = event {
                    assert_eq!(state.ids.len() as u64, last_seq);
                }
            }
        });
}
