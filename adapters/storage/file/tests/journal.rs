//! A `Journal` over a `FileStore`, end to end: persist with snapshots, compaction and retention
//! (Full and Light strategies), drop the store, reopen it, and recover the same state.

use std::sync::Arc;
use std::time::Duration;

use persevere_core::{
    Entity, Journal, JournalConfig, JournalEvent, Store, Strategy, StreamCommand,
};
use persevere_file::{FileOptions, FileStore};

#[derive(Default, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter {
    value: u64,
    applied: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.value += n;
        self.applied += 1;
        Ok(())
    }
}

fn drive(
    journal: &mut Journal<Counter>,
    store: &mut FileStore,
    state: &mut Counter,
) -> Vec<JournalEvent> {
    let stream: Arc<str> = Arc::from(journal.config().stream());
    let mut events = Vec::new();
    loop {
        while let Some(event) = journal.poll_event() {
            events.push(event);
        }
        let Some(command) = journal.poll_command() else {
            return events;
        };
        let batch = vec![StreamCommand {
            stream: Arc::clone(&stream),
            command,
        }];
        for (id, result) in store.execute(batch) {
            journal
                .handle_completion(Duration::ZERO, id, result, state)
                .expect("completion");
        }
    }
}

fn config(stream: &str, strategy: Strategy) -> JournalConfig {
    JournalConfig::new(stream)
        .strategy(strategy)
        .snapshot_every(Some(7))
        .compact_on_snapshot(true)
        .keep_snapshots(2)
}

#[test]
fn a_journal_recovers_from_a_reopened_file_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = FileOptions::default();
    options.segment_size = 512;
    options.compact_min_bytes = 256;
    options.snapshot_file_min = 16;
    for strategy in [Strategy::Full, Strategy::Light] {
        let stream = format!("counter/{strategy:?}");
        let mut expected = Counter::default();
        {
            let mut store =
                FileStore::open_or_create_with(dir.path(), options.clone()).expect("open");
            let mut state = Counter::default();
            let mut journal = Journal::new(config(&stream, strategy), Counter::default);
            drive(&mut journal, &mut store, &mut state);
            for n in 1..=50u64 {
                journal.handle_persist(n, &mut state).expect("persist");
                let events = drive(&mut journal, &mut store, &mut state);
                assert!(
                    events.iter().any(
                        |e| matches!(e, JournalEvent::Persisted { last_seq, .. } if *last_seq == n)
                    ),
                    "{strategy:?}: event {n} not persisted: {events:?}"
                );
                expected.apply(&n).expect("apply");
            }
            assert_eq!(state, expected);
            assert!(store.stats().compactions > 0, "{strategy:?}: no compaction");
        }
        let mut store = FileStore::open_with(dir.path(), options.clone()).expect("reopen");
        let mut state = Counter::default();
        let mut journal = Journal::new(config(&stream, strategy), Counter::default);
        let events = drive(&mut journal, &mut store, &mut state);
        // Full: a snapshot every 7 events, the newest at 49, then one event to replay; Light: a
        // snapshot with every append.
        let newest_snapshot = match strategy {
            Strategy::Light => (50, 0),
            _ => (49, 1),
        };
        assert!(
            events
                .iter()
                .any(|e| matches!(e, JournalEvent::Recovered { last_seq: 50, .. })),
            "{strategy:?}: {events:?}"
        );
        assert!(
            events.iter().any(|e| matches!(
                e,
                JournalEvent::Recovered {
                    snapshot_seq: Some(snapshot),
                    replayed,
                    ..
                } if (*snapshot, *replayed) == newest_snapshot
            )),
            "{strategy:?}: not recovered from the newest snapshot: {events:?}"
        );
        assert_eq!(state, expected, "{strategy:?}");
    }
}
